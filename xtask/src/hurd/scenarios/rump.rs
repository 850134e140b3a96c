//! `hurd-rump-translator`: our `rumpdisk` built with the rump backend (`rumpdisk-rump`, linked
//! with the NetBSD rump kernel `cargo xtask hurd` builds from Debian's sources) as a translator in
//! the Hurd, driving a second disk through NetBSD's `piixide`/`wd` drivers. `DEV_FLUSH_CACHE`
//! becomes `DIOCCACHESYNC`, and the second disk's write log must show it reach the drive as a
//! FLUSH after the write it covers; with `--flush=skip` set at run time no FLUSH may follow the
//! write before the next one (the negative control); a flush the disk fails (QEMU `blkdebug`)
//! must fail the client's sync, through rump's error path.
//!
//! NetBSD's `wd` flushes a disk's cache at its last close. `storectl` opens and closes the
//! device for each command, so a storeio node over it is held open (descriptor 3 of the script)
//! from the first write to the last: the flushes the log shows are then the syncs' alone.
//!
//! The rump kernel attaches every ATA controller it finds through `/servers/bus/pci` (here the
//! Hurd's `pci-arbiter` as a translator): the IDE controller whose primary channel our boot disk
//! server (kept to that channel) drives too. The scenario touches only the secondary channel's
//! disk (`wd1` in NetBSD's attach order) through it, but NetBSD's probe resets and reads the
//! primary channel and takes its IRQ 14: a request of the boot server's in flight then is lost
//! ("piixide0:0:0: lost interrupt", our driver's command timed out). Whether one is in flight is
//! chance (the root file system's own traffic, pages of the translator read in): the scenario
//! passed its device checks in one run here and hung in two, so it runs only when named. Two
//! drivers on one controller is not a set-up a Hurd user has (upstream's rumpdisk would do the
//! same); a second controller the boot server does not drive would end it, but the rump kernel
//! attaches every kind it is linked with.

use super::boot::{boot_disk_on_primary, read_log, Barrier, Hurd};
use crate::barrier::log::{Entry, Log};
use crate::hurd::image;
use crate::scenario::Scenario;
use crate::vm::{run_dir, Disk, Fresh, SUCCESS_MARKER};
use crate::util::Error;

pub const NAME: &str = "hurd-rump-translator";

/// What the client writes, each in a sector of its own past the second disk's file system.
const SYNCED_MARK: &str = "synced-through-the-rump-kernel";
const SKIPPED_MARK: &str = "written-while-flushes-are-skipped";
const AFTER_MARK: &str = "written-once-flushes-are-back";
/// The sync that the disk fails: its write, and the flush `blkdebug` fails (QEMU passes on only
/// flushes that follow a write: those of the two syncs that flushed before it, then this one).
const FAILED_MARK: &str = "written-before-a-failing-flush";
const FAILING_FLUSH: u32 = 3;
const DISK_MIB: u64 = 32;
const FS_MIB: u64 = 24;
const FIRST_SECTOR: u64 = FS_MIB * 2048;

impl Hurd {
    /// See the module's documentation.
    pub fn rump_translator(&self) -> Result<Scenario, Error> {
        let marks = [SYNCED_MARK, SKIPPED_MARK, AFTER_MARK, FAILED_MARK];
        let mut script = String::from(
            r#"
check pci_arbiter_on_servers_bus_pci sh -c 'mkdir -p /servers/bus && settrans -ac /servers/bus/pci /hurd/pci-arbiter < /dev/null > /dev/null 2>&1'
check rump_translator_set settrans -c /dev/rumpdisk-rump /hurd/rumpdisk-rump
check storeio_holds_wd1 sh -c 'settrans -ac /tmp/wd1 /hurd/storeio @/dev/rumpdisk-rump:wd1 < /dev/null > /dev/null 2>&1'
exec 3< /tmp/wd1
"#,
        );
        for (i, mark) in marks.iter().enumerate() {
            script += &format!("printf '%-512s' {mark} > /tmp/block{i}\n");
        }
        let write = |i: usize| {
            format!(
                "sh -c 'storectl write device:@/dev/rumpdisk-rump:wd1 {} < /tmp/block{i}'",
                (FIRST_SECTOR + i as u64) * 512
            )
        };
        script += &format!(
            r#"check write_through_rump {w0}
check sync_through_rump storectl sync device:@/dev/rumpdisk-rump:wd1
check read_back_through_rump sh -c 'storectl read device:@/dev/rumpdisk-rump:wd1 {at0} 512 | grep -q {SYNCED_MARK}'
check flush_skip_set fsysopts /dev/rumpdisk-rump --flush=skip
check write_while_skipping {w1}
check sync_while_skipping storectl sync device:@/dev/rumpdisk-rump:wd1
check flush_device_set fsysopts /dev/rumpdisk-rump --flush=device
check write_once_back {w2}
check sync_once_back storectl sync device:@/dev/rumpdisk-rump:wd1
check write_before_the_failing_flush {w3}
check failed_flush_fails_the_sync sh -c '! storectl sync device:@/dev/rumpdisk-rump:wd1 > /tmp/failed 2>&1 && cat /tmp/failed && grep -qi "error" /tmp/failed'
exec 3<&-
check storeio_goes_away settrans -g /tmp/wd1
check translator_goes_away settrans -g /dev/rumpdisk-rump
echo {SUCCESS_MARKER}
"#,
            w0 = write(0),
            w1 = write(1),
            w2 = write(2),
            w3 = write(3),
            at0 = FIRST_SECTOR * 512,
        );
        let (mut scenario, _) = self.scenario(NAME, &script, Barrier::Honoured)?;
        boot_disk_on_primary(&mut scenario);
        let dir = run_dir(NAME);
        let (template, write_log) = (dir.join("wd1-template.img"), dir.join("wd1.log"));
        image::data_disk(&template, DISK_MIB, FS_MIB)?;
        scenario.disks.push(Disk {
            fresh: Some(Fresh::CopyOf(template)),
            write_log: Some(write_log.clone()),
            fail_flush: Some(FAILING_FLUSH),
            ..Disk::fresh(dir.join("wd1.img"), 0)
        });
        scenario.after = Some(Box::new(move || {
            let log = read_log(&write_log)?;
            check_log(&log)
        }));
        Ok(scenario)
    }
}

/// The second disk's log: the synced write covered by a FLUSH before the next write, none while
/// flushes are skipped, one again after. (The failing flush is not logged: `blkdebug` sits above
/// the log.)
fn check_log(log: &Log) -> Result<(), String> {
    let synced = log
        .flushed_after(SYNCED_MARK.as_bytes())
        .map_err(|why| format!("the sync through the rump kernel: {why}"))?;
    let skipped = log
        .flushed_after(SKIPPED_MARK.as_bytes())
        .map_err(|why| format!("the write while flushes were skipped: {why}"))?;
    let after = log
        .flushed_after(AFTER_MARK.as_bytes())
        .map_err(|why| format!("the sync once flushes were back: {why}"))?;
    if synced.flush > skipped.write {
        return Err(format!(
            "no FLUSH between the synced write (log entry {}) and the next write (entry {}): DIOCCACHESYNC did not reach the disk",
            synced.write, skipped.write
        ));
    }
    if skipped.flush < after.write {
        return Err(format!(
            "a FLUSH (log entry {}) followed the write made while flushes were skipped: the negative control is blind",
            skipped.flush
        ));
    }
    let writes = |range: std::ops::Range<usize>| {
        log.entries[range]
            .iter()
            .filter(|e| matches!(e, Entry::Write { .. }))
            .count()
    };
    println!(
        "  second disk: the synced write at log entry {} flushed at {}; {} writes later the skipped one at {}, no FLUSH before the next write at {}, flushed at {}",
        synced.write,
        synced.flush,
        writes(synced.write + 1..skipped.write),
        skipped.write,
        after.write,
        after.flush
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(mark: &str) -> Entry {
        let mut data = vec![b' '; 512];
        data[..mark.len()].copy_from_slice(mark.as_bytes());
        Entry::Write {
            sector: FIRST_SECTOR,
            data,
            fua: false,
        }
    }

    fn log(entries: Vec<Entry>) -> Log {
        Log {
            sector_size: 512,
            entries,
        }
    }

    #[test]
    fn flushes_where_the_syncs_asked_pass() {
        let good = log(vec![
            marked(SYNCED_MARK),
            Entry::Flush,
            marked(SKIPPED_MARK),
            marked(AFTER_MARK),
            Entry::Flush,
        ]);
        check_log(&good).unwrap();
    }

    #[test]
    fn a_missing_flush_or_a_flush_while_skipping_is_caught() {
        let unflushed = log(vec![
            marked(SYNCED_MARK),
            marked(SKIPPED_MARK),
            marked(AFTER_MARK),
            Entry::Flush,
        ]);
        assert!(check_log(&unflushed)
            .unwrap_err()
            .contains("did not reach the disk"));
        let blind = log(vec![
            marked(SYNCED_MARK),
            Entry::Flush,
            marked(SKIPPED_MARK),
            Entry::Flush,
            marked(AFTER_MARK),
            Entry::Flush,
        ]);
        assert!(check_log(&blind)
            .unwrap_err()
            .contains("negative control is blind"));
    }
}
