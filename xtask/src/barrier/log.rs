//! Reader for the dm-log-writes format that QEMU's `blklogwrites` filter records.
//!
//! Layout: a superblock in sector 0 (`magic`, `version`, `nr_entries` as little-endian u64, then the
//! log's sector size as u32), then `nr_entries` entries from sector 1 on. Each entry is a header
//! sector (`sector`, `nr_sectors`, `flags`, `data_len`, little-endian u64) followed by `nr_sectors`
//! sectors of written data. Only the first `nr_entries` entries count: the log file may hold stale
//! bytes after them.

use std::fmt;

pub const MAGIC: u64 = 0x006a_7366_7773_6872;
pub const VERSION: u64 = 1;
pub const FLAG_FLUSH: u64 = 1;
pub const FLAG_FUA: u64 = 2;
pub const FLAG_DISCARD: u64 = 4;
pub const FLAG_MARK: u64 = 8;

/// One logged device operation, in the order the device completed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Data written at `sector` (in units of the log's sector size). A `fua` write (forced unit
    /// access) is durable as soon as it completes; any other needs a later FLUSH.
    Write {
        sector: u64,
        data: Vec<u8>,
        fua: bool,
    },
    /// A cache flush: everything completed before it is durable.
    Flush,
    Discard {
        sector: u64,
        sectors: u64,
    },
    Mark(Vec<u8>),
}

/// A write that carried a marker, and the FLUSH that covers it.
#[derive(Debug, PartialEq, Eq)]
pub struct Covered {
    /// The write's entry.
    pub write: usize,
    /// The disk byte the marker starts at.
    pub byte: u64,
    /// The first FLUSH entry after the write.
    pub flush: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Log {
    pub sector_size: usize,
    pub entries: Vec<Entry>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LogError {
    TooShort,
    BadMagic(u64),
    BadVersion(u64),
    BadSectorSize(u32),
    /// Entry `index` runs past the end of the file.
    Truncated {
        index: u64,
    },
    /// Entry `index` has flags this reader does not know.
    UnknownFlags {
        index: u64,
        flags: u64,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::TooShort => write!(f, "write log shorter than its superblock"),
            LogError::BadMagic(m) => write!(f, "write log magic is {m:#x}, not {MAGIC:#x}"),
            LogError::BadVersion(v) => write!(f, "write log version {v}, only {VERSION} is known"),
            LogError::BadSectorSize(s) => {
                write!(f, "write log sector size {s} is not a power of two ≥ 512")
            }
            LogError::Truncated { index } => {
                write!(f, "write log entry {index} runs past the end of the file")
            }
            LogError::UnknownFlags { index, flags } => {
                write!(f, "write log entry {index} has unknown flags {flags:#x}")
            }
        }
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl Log {
    pub fn parse(bytes: &[u8]) -> Result<Log, LogError> {
        let magic = u64_at(bytes, 0).ok_or(LogError::TooShort)?;
        if magic != MAGIC {
            return Err(LogError::BadMagic(magic));
        }
        let version = u64_at(bytes, 8).ok_or(LogError::TooShort)?;
        if version != VERSION {
            return Err(LogError::BadVersion(version));
        }
        let count = u64_at(bytes, 16).ok_or(LogError::TooShort)?;
        let raw_size = u32::from_le_bytes(
            bytes
                .get(24..28)
                .ok_or(LogError::TooShort)?
                .try_into()
                .unwrap_or_default(),
        );
        if raw_size < 512 || !raw_size.is_power_of_two() {
            return Err(LogError::BadSectorSize(raw_size));
        }
        let size = raw_size as usize;
        let mut entries = Vec::new();
        let mut at = size;
        for index in 0..count {
            let header = bytes
                .get(at..at + 32)
                .ok_or(LogError::Truncated { index })?;
            let field = |i: usize| u64_at(header, 8 * i).unwrap_or_default();
            let (sector, sectors, flags, data_len) = (field(0), field(1), field(2), field(3));
            at += size;
            let data_bytes = usize::try_from(sectors)
                .ok()
                .and_then(|n| n.checked_mul(size))
                .ok_or(LogError::Truncated { index })?;
            let entry = if flags & !(FLAG_FLUSH | FLAG_FUA | FLAG_DISCARD | FLAG_MARK) != 0 {
                return Err(LogError::UnknownFlags { index, flags });
            } else if flags & FLAG_MARK != 0 {
                let len = usize::try_from(data_len).map_err(|_| LogError::Truncated { index })?;
                let mark = bytes
                    .get(at..at.saturating_add(len))
                    .ok_or(LogError::Truncated { index })?
                    .to_vec();
                at += len.div_ceil(size) * size;
                Entry::Mark(mark)
            } else if flags & FLAG_DISCARD != 0 {
                Entry::Discard { sector, sectors }
            } else if sectors == 0 && flags & FLAG_FLUSH != 0 {
                Entry::Flush
            } else {
                let data = bytes
                    .get(at..at.saturating_add(data_bytes))
                    .ok_or(LogError::Truncated { index })?
                    .to_vec();
                at += data_bytes;
                let write = Entry::Write {
                    sector,
                    data,
                    fua: flags & FLAG_FUA != 0,
                };
                // A write carrying the flush flag is a flush followed by the write (REQ_PREFLUSH).
                if flags & FLAG_FLUSH != 0 {
                    entries.push(Entry::Flush);
                }
                write
            };
            entries.push(entry);
        }
        Ok(Log {
            sector_size: size,
            entries,
        })
    }

    /// The first write whose data holds `mark`, where on the disk the mark is, and the first
    /// FLUSH after that write.
    pub fn flushed_after(&self, mark: &[u8]) -> Result<Covered, String> {
        let (write, byte) = self
            .entries
            .iter()
            .enumerate()
            .find_map(|(index, entry)| match entry {
                Entry::Write { sector, data, .. } => data
                    .windows(mark.len())
                    .position(|w| w == mark)
                    .map(|at| (index, sector * self.sector_size as u64 + at as u64)),
                _ => None,
            })
            .ok_or("the write is not in the log")?;
        let flush = self.entries[write..]
            .iter()
            .position(|e| matches!(e, Entry::Flush))
            .ok_or("no FLUSH after the write")?;
        Ok(Covered {
            write,
            byte,
            flush: write + flush,
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// One logged request as blklogwrites records it: its sector, flags and data (a mark's text).
    pub struct Raw<'a> {
        pub sector: u64,
        pub sectors: u64,
        pub flags: u64,
        pub data: &'a [u8],
    }

    /// Builds a log file the way blklogwrites lays it out; the checker's tests use it too.
    pub fn build(entries: &[Entry]) -> Vec<u8> {
        let raw: Vec<Raw> = entries
            .iter()
            .map(|e| match e {
                Entry::Write { sector, data, fua } => Raw {
                    sector: *sector,
                    sectors: (data.len() / 512) as u64,
                    flags: if *fua { FLAG_FUA } else { 0 },
                    data,
                },
                Entry::Flush => Raw {
                    sector: 0,
                    sectors: 0,
                    flags: FLAG_FLUSH,
                    data: &[],
                },
                Entry::Discard { sector, sectors } => Raw {
                    sector: *sector,
                    sectors: *sectors,
                    flags: FLAG_DISCARD,
                    data: &[],
                },
                Entry::Mark(m) => Raw {
                    sector: 0,
                    sectors: 0,
                    flags: FLAG_MARK,
                    data: m,
                },
            })
            .collect();
        build_raw(&raw)
    }

    /// Builds a log file of raw requests (any flags: a preflushed write is `FLAG_FLUSH` on a write).
    pub fn build_raw(entries: &[Raw]) -> Vec<u8> {
        const S: usize = 512;
        let mut out = vec![0u8; S];
        for e in entries {
            let mut header = [0u8; S];
            let data_len = if e.flags & FLAG_MARK != 0 {
                e.data.len() as u64
            } else {
                0
            };
            for (i, v) in [e.sector, e.sectors, e.flags, data_len].iter().enumerate() {
                header[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&header);
            out.extend_from_slice(e.data);
            out.resize(out.len().div_ceil(S) * S, 0);
        }
        out[..8].copy_from_slice(&MAGIC.to_le_bytes());
        out[8..16].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
        out[24..28].copy_from_slice(&512u32.to_le_bytes());
        out
    }

    #[test]
    fn parses_what_it_built() {
        let entries = vec![
            Entry::Write {
                sector: 7,
                data: vec![0xab; 1024],
                fua: false,
            },
            Entry::Flush,
            Entry::Mark(b"round 1".to_vec()),
            Entry::Discard {
                sector: 9,
                sectors: 3,
            },
            Entry::Write {
                sector: 0,
                data: vec![1; 512],
                fua: false,
            },
        ];
        let log = Log::parse(&build(&entries)).unwrap();
        assert_eq!(log.sector_size, 512);
        assert_eq!(log.entries, entries);
    }

    #[test]
    fn finds_a_marked_write_its_disk_byte_and_its_flush() {
        let mut marked = vec![0u8; 1024];
        marked[600..604].copy_from_slice(b"mark");
        let write = |sector, data: &[u8]| Entry::Write {
            sector,
            data: data.to_vec(),
            fua: false,
        };
        let log = Log::parse(&build(&[
            Entry::Flush,
            write(1, &[0; 512]),
            write(8, &marked),
            write(2, &[0; 512]),
            Entry::Flush,
        ]))
        .unwrap();
        assert_eq!(
            log.flushed_after(b"mark"),
            Ok(Covered {
                write: 2,
                byte: 8 * 512 + 600,
                flush: 4
            })
        );
        assert_eq!(
            log.flushed_after(b"other"),
            Err("the write is not in the log".into())
        );
        let unflushed = Log::parse(&build(&[Entry::Flush, write(8, &marked)])).unwrap();
        assert_eq!(
            unflushed.flushed_after(b"mark"),
            Err("no FLUSH after the write".into())
        );
    }

    #[test]
    fn ignores_stale_bytes_after_the_counted_entries() {
        let mut bytes = build(&[Entry::Flush]);
        bytes.extend(build(&[Entry::Write {
            sector: 1,
            data: vec![5; 512],
            fua: false,
        }]));
        assert_eq!(Log::parse(&bytes).unwrap().entries, vec![Entry::Flush]);
    }

    #[test]
    fn a_flagged_write_is_a_flush_then_the_write() {
        let mut bytes = build(&[Entry::Write {
            sector: 2,
            data: vec![3; 512],
            fua: false,
        }]);
        bytes[512 + 16] = FLAG_FLUSH as u8;
        assert_eq!(
            Log::parse(&bytes).unwrap().entries,
            vec![
                Entry::Flush,
                Entry::Write {
                    sector: 2,
                    data: vec![3; 512],
                    fua: false,
                }
            ]
        );
    }

    #[test]
    fn rejects_bad_headers_and_truncation() {
        assert_eq!(Log::parse(&[0; 4]), Err(LogError::TooShort));
        let mut bytes = build(&[Entry::Write {
            sector: 1,
            data: vec![1; 1024],
            fua: false,
        }]);
        bytes[0] ^= 1;
        assert!(matches!(Log::parse(&bytes), Err(LogError::BadMagic(_))));
        bytes[0] ^= 1;
        bytes.truncate(bytes.len() - 1);
        assert_eq!(Log::parse(&bytes), Err(LogError::Truncated { index: 0 }));
        let mut bytes = build(&[Entry::Flush]);
        bytes[512 + 16] = 0x40;
        assert_eq!(
            Log::parse(&bytes),
            Err(LogError::UnknownFlags {
                index: 0,
                flags: 0x40
            })
        );
    }
}
