//! `part:N:CHILD`: partition N of a store, found in the child's MBR or GPT and opened as a remap
//! of the child's blocks — libstore's `part` class, with the tables read here instead of through
//! libparted.
//!
//! Numbering follows libparted's, which upstream relies on: MBR primary partitions are numbered
//! by their slot (1–4, gaps stay gaps), logical partitions inside the extended one from 5 in the
//! order of the chain, the extended partition itself has no number; GPT partitions are numbered
//! by their entry (1-based), unused entries leave gaps. Tables are read in 512-byte sectors
//! whatever the child's block size (libparted's `PED_SECTOR_SIZE`, as upstream uses it).
//!
//! A table is checked whole before any partition is used: every partition inside the child and
//! clear of the table and of every other partition, the GPT header and entry array CRCs right.
//! Only the primary GPT header is read; a disk whose primary header is damaged is refused rather
//! than repaired from the backup header.

mod crc32;
mod gpt;
mod mbr;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::class::remap;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::Run;
use crate::store::Store;

/// The sector size partition tables are written in.
pub const SECTOR: u64 = 512;

/// One partition, in 512-byte sectors of the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub start: u64,
    pub sectors: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Mbr,
    Gpt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub scheme: Scheme,
    /// In number order.
    pub partitions: Vec<Partition>,
}

/// Why partition `number` could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionError {
    pub number: u32,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Sector 0 does not end in 0x55 0xAA.
    NoTable,
    /// The table (or a structure it points to) lies past the end of the child.
    Truncated,
    /// An MBR slot's boot indicator is neither 0x00 nor 0x80: not a partition table.
    BadBootIndicator { slot: u8, value: u8 },
    /// More than one extended partition in the MBR.
    TwoExtended,
    /// The chain of extended boot records is broken or loops.
    BadChain(&'static str),
    /// A protective MBR (type 0xEE) with no GPT header at sector 1.
    ProtectiveWithoutGpt,
    /// The GPT header or entry array is damaged.
    BadGpt(&'static str),
    /// A partition ends before it starts.
    Inverted { number: u32 },
    /// A partition ends past the end of the child (`end` and `sectors` in sectors).
    PastEnd { number: u32, end: u64, sectors: u64 },
    /// A partition covers sector 0, where the table is.
    OverTable { number: u32 },
    Overlap { first: u32, second: u32 },
    NotFound { scheme: Scheme, available: Vec<u32> },
    /// The partition does not start and end on a block of the child.
    Misaligned { block_size: u32 },
}

impl PartitionError {
    /// As upstream: a table libparted rejects is `EIO`; a block size it cannot use `EINVAL`.
    pub fn errno(&self) -> Errno {
        match self.problem {
            Problem::Misaligned { .. } => Errno::EINVAL,
            _ => Errno::EIO,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Mbr => "MBR",
            Scheme::Gpt => "GPT",
        })
    }
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "part: partition {}: ", self.number)?;
        match &self.problem {
            Problem::NoTable => f.write_str("no partition table (sector 0 does not end in 55 aa)"),
            Problem::Truncated => f.write_str("the partition table lies past the end of the store"),
            Problem::BadBootIndicator { slot, value } => {
                write!(f, "not a partition table (MBR slot {slot} has boot indicator {value:#04x})")
            }
            Problem::TwoExtended => f.write_str("the MBR has more than one extended partition"),
            Problem::BadChain(what) => write!(f, "broken chain of logical partitions: {what}"),
            Problem::ProtectiveWithoutGpt => f.write_str("a protective MBR but no GPT header at sector 1"),
            Problem::BadGpt(what) => write!(f, "bad GPT: {what}"),
            Problem::Inverted { number } => write!(f, "partition {number} ends before it starts"),
            Problem::PastEnd { number, end, sectors } => {
                write!(f, "partition {number} ends at sector {end}, past the end of the store ({sectors} sectors)")
            }
            Problem::OverTable { number } => write!(f, "partition {number} covers the partition table"),
            Problem::Overlap { first, second } => write!(f, "partitions {first} and {second} overlap"),
            Problem::NotFound { scheme, available } => {
                write!(f, "no such partition in the {scheme} (it has")?;
                if available.is_empty() {
                    f.write_str(" none")?;
                }
                for (n, number) in available.iter().enumerate() {
                    write!(f, "{}{number}", if n == 0 { " " } else { ", " })?;
                }
                f.write_str(")")
            }
            Problem::Misaligned { block_size } => {
                write!(f, "does not start and end on a block of the store ({block_size} bytes)")
            }
        }
    }
}

/// What stopped a table from being read: the table itself, or the child's I/O.
pub(crate) enum Failure {
    Table(Problem),
    Read(Error),
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Failure {
        Failure::Table(problem)
    }
}

/// The child seen in 512-byte sectors, whatever its block size.
pub(crate) struct Sectors<'a> {
    store: &'a mut Store,
    count: u64,
}

impl Sectors<'_> {
    /// Sectors `lba..lba + count`; `Truncated` when they are not all in the child.
    pub(crate) fn read(&mut self, lba: u64, count: u64) -> core::result::Result<Vec<u8>, Failure> {
        if lba.checked_add(count).is_none_or(|end| end > self.count) {
            return Err(Problem::Truncated.into());
        }
        let bs = u64::from(self.store.block_size());
        let (first, last) = (lba * SECTOR, (lba + count) * SECTOR);
        let (block, skip) = (first / bs, (first % bs) as usize);
        let blocks = last.div_ceil(bs) - block;
        let want = usize::try_from(blocks * bs).map_err(|_| Failure::Table(Problem::Truncated))?;
        let data = self.store.read_vec(block, want).map_err(|e| Failure::Read(Error::child("part", 0, e)))?;
        let len = (count * SECTOR) as usize;
        // The sectors are inside the child: a short read is the child's failure, not the table's.
        let short = || Failure::Read(Error::child("part", 0, Error::class(self.store.class_name(), Errno::EIO)));
        data.get(skip..skip + len).map(<[u8]>::to_vec).ok_or_else(short)
    }
}

/// Little-endian fields of on-disk structures (callers index within a buffer they sized).
pub(crate) fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

pub(crate) fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from(le32(bytes, at)) | u64::from(le32(bytes, at + 4)) << 32
}

/// Reads and checks `store`'s partition table.
pub(crate) fn read_table(store: &mut Store) -> core::result::Result<Table, Failure> {
    let count = store.size() / SECTOR;
    let mut disk = Sectors { store, count };
    let sector0 = disk.read(0, 1)?;
    if sector0[510..512] != [0x55, 0xAA] {
        return Err(Problem::NoTable.into());
    }
    let table = if mbr::is_protective(&sector0) {
        Table { scheme: Scheme::Gpt, partitions: gpt::parse(&mut disk)? }
    } else {
        Table { scheme: Scheme::Mbr, partitions: mbr::parse(&sector0, &mut disk)? }
    };
    check(&table.partitions, count)?;
    Ok(table)
}

/// Every partition inside the child, off sector 0, and clear of the others.
fn check(partitions: &[Partition], sectors: u64) -> core::result::Result<(), Problem> {
    for part in partitions {
        let end = part.start.checked_add(part.sectors).filter(|end| *end <= sectors);
        if end.is_none() {
            let end = part.start.saturating_add(part.sectors);
            return Err(Problem::PastEnd { number: part.number, end, sectors });
        }
        if part.start == 0 {
            return Err(Problem::OverTable { number: part.number });
        }
    }
    let mut by_start: Vec<&Partition> = partitions.iter().collect();
    by_start.sort_by_key(|part| part.start);
    for pair in by_start.windows(2) {
        // Ends are known not to overflow from the loop above.
        if pair[0].start + pair[0].sectors > pair[1].start {
            let (first, second) = (pair[0].number.min(pair[1].number), pair[0].number.max(pair[1].number));
            return Err(Problem::Overlap { first, second });
        }
    }
    Ok(())
}

/// Partition `number` (1-based) of `child`, as a remap store over it; `child` is consumed.
pub fn create(mut child: Store, number: u32) -> Result<Store> {
    let fail = |problem| Error::from(PartitionError { number, problem });
    let table = match read_table(&mut child) {
        Ok(table) => table,
        Err(Failure::Table(problem)) => return Err(fail(problem)),
        Err(Failure::Read(error)) => return Err(error),
    };
    let Some(part) = table.partitions.iter().find(|p| p.number == number) else {
        let available = table.partitions.iter().map(|p| p.number).collect();
        return Err(fail(Problem::NotFound { scheme: table.scheme, available }));
    };
    let block_size = child.block_size();
    let bs = u64::from(block_size);
    let (start, length) = (part.start * SECTOR, part.sectors * SECTOR);
    if start % bs != 0 || length % bs != 0 {
        return Err(fail(Problem::Misaligned { block_size }));
    }
    remap::create(child, vec![Run::new(start / bs, length / bs)])
}

impl From<PartitionError> for Error {
    fn from(error: PartitionError) -> Error {
        Error::Partition(Box::new(error))
    }
}

#[cfg(test)]
pub(crate) mod tests;
