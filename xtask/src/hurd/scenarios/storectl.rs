//! `hurd-storectl`: the Rust store's `storectl` as a Hurd user runs it, on a second disk with a
//! real partition table written on the host by `sfdisk` — an MBR whose partition 2 holds a GPT
//! of its own, so partitions start at non-zero offsets, one inside another. Our translator
//! (`/dev/rumpdisk-rs`, the secondary IDE channel) serves the disk as `wd0`: the kernel's device
//! master has no `wd*` on amd64 GNU Mach, so every store reaches the disk through the
//! translator's node (`device:@/dev/rumpdisk-rs:wd0`). On five stores — the whole device, an
//! MBR partition, the GPT partition inside another, the Hurd's storeio node opened the libstore
//! way (`file_get_storage_info`), and a concat of two partitions — `storectl` shows the store,
//! writes a marked block, syncs, reads it back, and copies two marked halves (with its progress
//! output), which it syncs. On the host, each mark must be in the disk's write log at its disk
//! byte, and a FLUSH must follow before the writes of the next sync.

use super::boot::{boot_disk_on_primary, read_log, Barrier, Hurd};
use crate::barrier::log::Log;
use crate::hurd::partition::sfdisk;
use crate::scenario::Scenario;
use crate::vm::{run_dir, Disk, Fresh, SUCCESS_MARKER};
use crate::util::Error;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const NAME: &str = "hurd-storectl";

const MIB: u64 = 1 << 20;
const DISK_MIB: u64 = 32;
/// The second disk, through our translator.
const DEVICE: &str = "device:@/dev/rumpdisk-rs:wd0";
/// The disk's MBR, as `sfdisk` takes it (sectors): partition 1 at 1 MiB (8 MiB), partition 2 at
/// 9 MiB (8 MiB, the GPT inside), partition 3 at 17 MiB (4 MiB); from 21 MiB on, no partition.
const MBR: &str = "label: dos\nunit: sectors\n2048,16384,83\n18432,16384,83\n34816,8192,83\n";
/// The GPT at the start of MBR partition 2: its partition 1 at 1 MiB into it (4 MiB).
const GPT: &str = "label: gpt\nunit: sectors\n2048,8192\n";
const GPT_AT: u64 = 9 * MIB;
const GPT_MIB: u64 = 8;
/// One store the scenario uses, and where its writes must land on the disk.
struct Target {
    /// In test names and marks.
    label: &'static str,
    /// The store's name, as typed in the guest.
    name: String,
    /// A line `storectl info` must print (a grep pattern).
    info: &'static str,
    /// `storectl write` at this byte of the store lands at this byte of the disk.
    write: (u64, u64),
    copy: MarkedCopy,
}

/// A copy of two halves of [`HALF`] bytes, each starting with a mark, to byte `at` of the store;
/// the halves land at these bytes of the disk.
struct MarkedCopy {
    at: u64,
    on_disk: [u64; 2],
}

/// A byte count as storectl takes it, in the largest unit that divides it.
fn bytes(count: u64) -> String {
    match count {
        0 => "0".into(),
        _ if count.is_multiple_of(MIB) => format!("{}m", count / MIB),
        _ if count.is_multiple_of(1024) => format!("{}k", count / 1024),
        _ => count.to_string(),
    }
}

impl Target {
    fn write_mark(&self) -> String {
        format!("storectl-write-{}", self.label)
    }

    fn copy_marks(&self) -> [String; 2] {
        [0, 1].map(|i| format!("storectl-copy-{}-half-{i}", self.label))
    }

    /// The lines of the scenario script for this store.
    fn script(&self) -> String {
        let (label, name, info, copy) = (self.label, &self.name, self.info, &self.copy);
        let (write_mark, [first, second]) = (self.write_mark(), self.copy_marks());
        let (write_at, copy_at, second_at) =
            (bytes(self.write.0), bytes(copy.at), bytes(copy.at + HALF));
        let (half, copy_bytes) = (HALF, 2 * HALF);
        let (copy_block, copy_blocks) = (copy.at / 512, copy_bytes / 512);
        format!(
            r#"
typed info_{label} '{info}' 'storectl info {name}'
typed block_{label} '' 'printf "%-511s\n" {write_mark} > /tmp/block'
typed write_{label} '' 'storectl write {name} {write_at} < /tmp/block'
typed sync_{label} '' 'storectl sync {name}'
typed read_back_{label} {write_mark} 'storectl read {name} {write_at} 512'
typed source_{label} '' '{{ printf "%-{half}s" {first}; printf "%-{half}s" {second}; }} > /tmp/copy'
typed copy_{label} '^copied {copy_bytes} bytes' 'storectl copy file:/tmp/copy remap:{copy_block}+{copy_blocks}:{name}'
check read_back_copy_{label} sh -c 'storectl read {name} {copy_at} 512 | grep -q {first} && storectl read {name} {second_at} 512 | grep -q {second}'
"#
        )
    }

    /// The marks each sync must cover, with the disk bytes they must be at: the write's, then
    /// the copy's two.
    fn syncs(&self) -> [Vec<(String, u64)>; 2] {
        let copy = self
            .copy_marks()
            .into_iter()
            .zip(self.copy.on_disk)
            .collect();
        [vec![(self.write_mark(), self.write.1)], copy]
    }
}

/// Each half of a copy: small, as every sector written costs milliseconds with the write log on
/// (the IDE disk is written a sector at a time, and QEMU rewrites the log's superblock after each
/// entry): a 2 MiB copy took 5 to 25 s here, 0.3 to 0.6 s without the log. A copy this short
/// prints only its closing line; the per-second progress lines are tested on the host.
const HALF: u64 = 64 << 10;

fn targets() -> Vec<Target> {
    let first = format!("part:1:{DEVICE}");
    vec![
        Target {
            label: "device",
            name: DEVICE.into(),
            info: "^device wd0: 33554432 bytes",
            write: (22 * MIB, 22 * MIB),
            copy: MarkedCopy {
                at: 26 * MIB,
                on_disk: [26 * MIB, 26 * MIB + HALF],
            },
        },
        Target {
            label: "mbr_partition",
            name: first.clone(),
            info: "^remap: 8388608 bytes",
            write: (MIB, 2 * MIB),
            copy: MarkedCopy {
                at: 4 * MIB,
                on_disk: [5 * MIB, 5 * MIB + HALF],
            },
        },
        Target {
            label: "gpt_partition",
            name: format!("part:1:part:2:{DEVICE}"),
            info: "^remap: 4194304 bytes",
            write: (MIB, 11 * MIB),
            copy: MarkedCopy {
                at: 2 * MIB,
                on_disk: [12 * MIB, 12 * MIB + HALF],
            },
        },
        // storeio answers file_get_storage_info with its device: a device store, not the
        // node's contents (which `file:/dev/xd0` would be, whose sync does not flush).
        Target {
            label: "storeio_node",
            name: "/dev/xd0".into(),
            // Named as storeio names its store.
            info: "^device .*wd0: 33554432 bytes",
            write: (23 * MIB, 23 * MIB),
            copy: MarkedCopy {
                at: 29 * MIB,
                on_disk: [29 * MIB, 29 * MIB + HALF],
            },
        },
        // Partition 1 (8 MiB) then partition 3 (at 17 MiB): the copy straddles the two members.
        Target {
            label: "concat",
            name: format!("concat:,{first},part:3:{DEVICE}"),
            info: "^concat: 12582912 bytes",
            write: (9 * MIB, 18 * MIB),
            copy: MarkedCopy {
                at: 8 * MIB - HALF,
                on_disk: [9 * MIB - HALF, 17 * MIB],
            },
        },
    ]
}

/// What the script starts with past the harness's prelude: `typed NAME PATTERN 'COMMAND'` runs a
/// command line as a user types it at the root prompt, shows it and what it printed, and passes
/// when it succeeds and (for a PATTERN that is not empty) printed a line matching PATTERN. Its
/// output goes to a file, not a pipe: a translator it starts keeps its standard streams.
const TYPED: &str = r##"
typed() {
    name=$1; pattern=$2
    printf '# %s\n' "$3"
    if sh -c "$3" > /tmp/out 2>&1; then status=0; else status=$?; fi
    cat /tmp/out
    if [ $status -ne 0 ]; then
        echo "test $name ... FAILED: exit status $status: $(tail -n 2 /tmp/out | tr '\n' ' ')"
    elif [ -n "$pattern" ] && ! grep -q "$pattern" /tmp/out; then
        echo "test $name ... FAILED: no line matches $pattern"
    else
        echo "test $name ... ok"
    fi
}
"##;

impl Hurd {
    /// See the module's documentation.
    pub fn storectl(&self) -> Result<Scenario, Error> {
        let targets = targets();
        let mut script = format!(
            r#"{TYPED}
typed translator_set '' 'settrans -c /dev/rumpdisk-rs /hurd/rumpdisk-rs --ide-channel=secondary'
typed storeio_set '' 'settrans -ac /dev/xd0 /hurd/storeio @/dev/rumpdisk-rs:wd0'
"#
        );
        for target in &targets {
            script += &target.script();
        }
        script += &format!(
            "typed storeio_goes_away '' 'settrans -g /dev/xd0'\ntyped translator_goes_away '' 'settrans -g /dev/rumpdisk-rs'\necho {SUCCESS_MARKER}\n"
        );
        let (mut scenario, _) = self.scenario(NAME, &script, Barrier::Honoured)?;
        boot_disk_on_primary(&mut scenario);
        let dir = run_dir(NAME);
        let (template, write_log) = (dir.join("wd2-template.img"), dir.join("wd2.log"));
        partitioned_disk(&template)?;
        scenario.disks.push(Disk {
            fresh: Some(Fresh::CopyOf(template)),
            write_log: Some(write_log.clone()),
            ..Disk::fresh(dir.join("wd2.img"), 0)
        });
        let syncs: Vec<Vec<(String, u64)>> = targets.iter().flat_map(Target::syncs).collect();
        scenario.after = Some(Box::new(move || {
            let log = read_log(&write_log)?;
            check_syncs(&log, &syncs)?;
            println!(
                "  second disk: {} marked writes at their disk bytes, each covered by its sync's FLUSH before the next sync's writes",
                syncs.iter().map(Vec::len).sum::<usize>()
            );
            Ok(())
        }));
        Ok(scenario)
    }
}

/// Each sync's marks written at their disk bytes, and the FLUSH after the last of them logged
/// before the first write of the next sync's marks (nothing else flushes that disk).
fn check_syncs(log: &Log, syncs: &[Vec<(String, u64)>]) -> Result<(), String> {
    let mut covering_flush: Option<(usize, &str)> = None;
    for marks in syncs {
        for (n, (mark, byte)) in marks.iter().enumerate() {
            let covered = log
                .flushed_after(mark.as_bytes())
                .map_err(|why| format!("{mark}: {why}"))?;
            if covered.byte != *byte {
                return Err(format!(
                    "{mark} is at disk byte {} ({:.3} MiB), not {byte} ({:.3} MiB)",
                    covered.byte,
                    covered.byte as f64 / MIB as f64,
                    *byte as f64 / MIB as f64
                ));
            }
            if let Some((flush, previous)) = covering_flush.filter(|_| n == 0) {
                if covered.write < flush {
                    return Err(format!("{mark} was written (log entry {}) before the sync of {previous} flushed (entry {flush})", covered.write));
                }
            }
            if n + 1 == marks.len() {
                covering_flush = Some((covered.flush, mark));
            }
        }
    }
    Ok(())
}

/// The second disk: zeros, the MBR, and the GPT inside MBR partition 2, each table by `sfdisk`.
fn partitioned_disk(out: &Path) -> Result<(), Error> {
    zeroed(out, DISK_MIB)?;
    sfdisk(out, MBR)?;
    let inner = out.with_extension("gpt.img");
    zeroed(&inner, GPT_MIB)?;
    sfdisk(&inner, GPT)?;
    let bytes = fs::read(&inner).map_err(|e| Error::io(&inner, e))?;
    let disk = File::options()
        .write(true)
        .open(out)
        .map_err(|e| Error::io(out, e))?;
    disk.write_all_at(&bytes, GPT_AT)
        .map_err(|e| Error::io(out, e))?;
    fs::remove_file(&inner).map_err(|e| Error::io(&inner, e))
}

fn zeroed(image: &Path, mib: u64) -> Result<(), Error> {
    let _ = fs::remove_file(image);
    let file = File::create(image).map_err(|e| Error::io(image, e))?;
    file.set_len(mib * MIB).map_err(|e| Error::io(image, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::log::tests::build;
    use crate::barrier::log::Entry;
    use store::class::memory;
    use store::part;

    /// A log of `writes` (mark, disk byte) with a FLUSH after the entries named in `flush_after`.
    fn log(writes: &[(&str, u64)], flush_after: &[usize]) -> Log {
        let mut entries = Vec::new();
        for (n, (mark, byte)) in writes.iter().enumerate() {
            let mut data = vec![0u8; 1024];
            let at = (byte % 512) as usize;
            data[at..at + mark.len()].copy_from_slice(mark.as_bytes());
            entries.push(Entry::Write {
                sector: byte / 512,
                data,
                fua: false,
            });
            if flush_after.contains(&n) {
                entries.push(Entry::Flush);
            }
        }
        Log::parse(&build(&entries)).unwrap()
    }

    fn syncs() -> Vec<Vec<(String, u64)>> {
        vec![
            vec![("w".into(), 4096)],
            vec![("a".into(), 8192), ("b".into(), 10240)],
        ]
    }

    #[test]
    fn byte_counts_in_the_largest_unit_that_divides_them() {
        assert_eq!(bytes(26 * MIB), "26m");
        assert_eq!(bytes(8 * MIB - HALF), "8128k");
        assert_eq!(bytes(1536), "1536");
        assert_eq!(bytes(0), "0");
    }

    #[test]
    fn every_mark_at_its_byte_and_flushed_before_the_next_sync() {
        let good = log(&[("w", 4096), ("a", 8192), ("b", 10240)], &[0, 2]);
        assert_eq!(check_syncs(&good, &syncs()), Ok(()));
    }

    #[test]
    fn a_mark_elsewhere_is_caught() {
        let moved = log(&[("w", 4096 - 1024), ("a", 8192), ("b", 10240)], &[0, 2]);
        assert!(check_syncs(&moved, &syncs())
            .unwrap_err()
            .contains("w is at disk byte 3072"));
    }

    #[test]
    fn a_sync_without_its_flush_is_caught_even_when_a_later_one_flushes() {
        let late = log(&[("w", 4096), ("a", 8192), ("b", 10240)], &[2]);
        let why = check_syncs(&late, &syncs()).unwrap_err();
        assert!(
            why.contains("a was written (log entry 1) before the sync of w flushed"),
            "{why}"
        );
        let none = log(&[("w", 4096), ("a", 8192), ("b", 10240)], &[]);
        assert!(check_syncs(&none, &syncs())
            .unwrap_err()
            .contains("no FLUSH after the write"));
    }

    #[test]
    fn the_stores_find_the_partitions_where_sfdisk_wrote_them() {
        let dir = std::env::temp_dir().join(format!("hurd-storectl-disk-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let image = dir.join("disk.img");
        partitioned_disk(&image).unwrap();
        let mut disk = fs::read(&image).unwrap();
        let _ = fs::remove_dir_all(&dir);
        let at = |mib: u64| (mib * MIB) as usize;
        disk[at(1)..at(1) + 4].copy_from_slice(b"mbr1");
        disk[at(10)..at(10) + 4].copy_from_slice(b"gpt1");
        disk[at(17)..at(17) + 4].copy_from_slice(b"mbr3");
        let whole = || {
            let mut store = memory::create(disk.len() as u64, 512).unwrap();
            store.write(0, &disk).unwrap();
            store
        };
        let mut first = part::create(whole(), 1).unwrap();
        let mut third = part::create(whole(), 3).unwrap();
        let mut inner = part::create(part::create(whole(), 2).unwrap(), 1).unwrap();
        for (store, mark, size) in [
            (&mut first, b"mbr1", 8),
            (&mut third, b"mbr3", 4),
            (&mut inner, b"gpt1", 4),
        ] {
            assert_eq!(&store.read_vec(0, 512).unwrap()[..4], mark);
            assert_eq!(store.size(), size * MIB);
        }
    }
}
