//! The write-barrier proof: QEMU's device write log, read back and checked on the host.

pub mod check;
pub mod log;
#[cfg(test)]
pub mod model;
pub mod skip_one;

use crate::util::Error;
use std::fs;
use std::path::Path;

/// Reads the files a VM run left behind and checks them.
pub fn check_run(
    log: &Path,
    console: &Path,
    image: Option<&Path>,
) -> Result<check::Verdict, Error> {
    let read = |p: &Path| fs::read(p).map_err(|e| Error::io(p, e));
    let log =
        log::Log::parse(&read(log)?).map_err(|e| Error::new(format!("{}: {e}", log.display())))?;
    let console = check::Console::parse(&String::from_utf8_lossy(&read(console)?));
    let image = image.map(read).transpose()?;
    Ok(check::check(&log, &console, image.as_deref()))
}

/// `cargo xtask check-barrier LOG CONSOLE [IMAGE]`.
pub fn check_files(args: &[String]) -> Result<(), Error> {
    let [log, console, rest @ ..] = args else {
        return Err(Error::new(
            "usage: cargo xtask check-barrier LOG CONSOLE [IMAGE]",
        ));
    };
    let verdict = check_run(
        Path::new(log),
        Path::new(console),
        rest.first().map(Path::new),
    )?;
    println!("{}", verdict.summary());
    for v in &verdict.violations {
        println!("  violation: {v}");
    }
    if verdict.holds() {
        Ok(())
    } else {
        Err(Error::new("the write barrier does not hold"))
    }
}

#[cfg(test)]
mod tests {
    use super::check::{Console, Violation};
    use super::*;
    use pattern::{Kind, Stamp, SECTOR};
    use std::process::Command;

    /// Runs a round-based workload through QEMU's own blklogwrites driver (with `qemu-io`), so the
    /// checker is tested on logs written by the real thing, not only on hand-made ones.
    fn qemu_io_workload(name: &str, flush_each_round: bool) -> (log::Log, Vec<u8>) {
        let dir =
            std::env::temp_dir().join(format!("rumpdisk-barrier-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (img, wlog) = (dir.join("disk.img"), dir.join("w.log"));
        fs::write(&img, vec![0u8; 64 * SECTOR]).unwrap();
        fs::write(&wlog, b"").unwrap();
        let mut commands = Vec::new();
        for round in 0..3u32 {
            let lba = 8 + 4 * u64::from(round);
            let mut bytes = Vec::new();
            for index in 0..4 {
                let mut s = [0u8; SECTOR];
                Stamp {
                    kind: Kind::Data,
                    client: 0,
                    round,
                    index,
                    count: 4,
                    lba: lba + u64::from(index),
                }
                .write(&mut s);
                bytes.extend_from_slice(&s);
            }
            let data = dir.join(format!("round{round}"));
            fs::write(&data, bytes).unwrap();
            commands.push(format!(
                "write -s {} {} {}",
                data.display(),
                lba * SECTOR as u64,
                4 * SECTOR
            ));
            if flush_each_round {
                commands.push("flush".into());
            }
            let mut s = [0u8; SECTOR];
            Stamp {
                kind: Kind::Commit,
                client: 0,
                round,
                index: 0,
                count: 4,
                lba: 1,
            }
            .write(&mut s);
            let commit = dir.join(format!("commit{round}"));
            fs::write(&commit, s).unwrap();
            commands.push(format!(
                "write -s {} {} {}",
                commit.display(),
                SECTOR,
                SECTOR
            ));
        }
        let mut qemu_io = Command::new("qemu-io");
        // qemu-io is write-through by default: a flush after every write would hide the missing ones.
        qemu_io.args(["-t", "writeback", "--image-opts"]).arg(format!(
            "driver=blklogwrites,file.driver=file,file.filename={},log.driver=file,log.filename={},log-super-update-interval=1",
            img.display(),
            wlog.display()
        ));
        for c in &commands {
            qemu_io.arg("-c").arg(c);
        }
        let out = qemu_io
            .output()
            .expect("qemu-io (Debian package qemu-utils) runs");
        assert!(
            out.status.success(),
            "qemu-io failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed = log::Log::parse(&fs::read(&wlog).unwrap()).unwrap();
        let image = fs::read(&img).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        (parsed, image)
    }

    #[test]
    fn qemu_log_with_a_flush_per_round_holds() {
        let (log, image) = qemu_io_workload("flushed", true);
        let verdict = check::check(&log, &Console::default(), Some(&image));
        assert!(verdict.holds(), "{:?}", verdict.violations);
        // One flush per round, and QEMU's own flush when the image is closed.
        assert_eq!(
            (verdict.writes, verdict.flushes, verdict.synced_rounds),
            (6, 4, 3)
        );
    }

    #[test]
    fn qemu_log_without_flushes_is_rejected() {
        let (log, image) = qemu_io_workload("unflushed", false);
        let verdict = check::check(&log, &Console::default(), Some(&image));
        assert!(!verdict.holds());
        // QEMU flushes when it closes the image: the log ends in a FLUSH after every write, which is
        // exactly the trap that "a FLUSH follows my writes" falls into.
        assert_eq!(verdict.flushes, 1);
        let lost = verdict
            .violations
            .iter()
            .filter(|v| matches!(v, Violation::LostAtCrash { .. }))
            .count();
        assert_eq!(lost, 12, "a crash before QEMU's closing flush loses every data sector of the 3 committed rounds: {:?}", verdict.violations);
    }
}
