//! A scenario's disks as QEMU drives them: the image made anew or kept, on an IDE channel or an
//! AHCI port of its own, with a write log (`blklogwrites`), injected errors (`blkdebug`) and a
//! speed limit (`throttle`).

use crate::util::{project_root, Error};
use std::path::PathBuf;

/// Block device options for one IDE disk on the primary channel.
#[derive(Clone, Debug)]
pub struct Disk {
    pub image: PathBuf,
    /// Make `image` anew right before the boot (so building a scenario touches no file, and
    /// every run starts from the same disk); `None` boots `image` as it is.
    pub fresh: Option<Fresh>,
    /// Record every write and flush in this dm-log-writes file (QEMU `blklogwrites`).
    pub write_log: Option<PathBuf>,
    /// Make the Nth flush that reaches the disk fail with EIO, 1 being the first (QEMU
    /// `blkdebug`, above the write log; QEMU skips flushes with no write since the last one).
    pub fail_flush: Option<u32>,
    /// Make the first write to this sector fail with EIO.
    pub fail_write_at_sector: Option<u64>,
    /// Serve requests no faster than this (QEMU's `throttle` filter): a slow disk, whose
    /// requests take milliseconds as a real drive's do, where the image file answers in
    /// microseconds.
    pub throttle: Option<Throttle>,
    /// Whether the kernel's own IDE driver drives it (the i386 kernel's `hd*`) rather than
    /// rumpdisk.static or a task's own driver.
    pub kernel_driven: bool,
    /// The controller it is attached to.
    pub bus: Bus,
}

/// Where a disk is attached, and so which machine QEMU emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// The `pc` machine's PIIX3 IDE, each disk its own channel's master.
    Ide,
    /// The first port of an AHCI controller of its own (`-device ahci`, QEMU's ICH9 AHCI) on
    /// the `pc` machine.
    Ahci,
    /// A port of the `q35` machine's own AHCI controller (ICH9, function 00:1f.2), disk N on
    /// port N; the boot CD on its last port.
    Q35,
}

/// A disk's speed limit: requests a second and bytes a second, reads and writes together
/// (QEMU's `x-iops-total` and `x-bps-total` of a throttle group of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub iops: u32,
    pub bytes_per_second: u64,
}

/// The q35 machine's AHCI ports (`ide.0` to `ide.5`): the boot CD takes the last.
const Q35_CD_PORT: usize = 5;

/// What a disk image is made anew from.
#[derive(Clone, Debug)]
pub enum Fresh {
    /// Zeroes, this many sectors.
    Zeroed(u64),
    /// A copy of this image (a file system built on the host, say).
    CopyOf(PathBuf),
}

impl Disk {
    /// A zeroed image of `sectors` sectors at `image`, no log, no injected error.
    pub fn fresh(image: PathBuf, sectors: u64) -> Disk {
        Disk {
            image,
            fresh: Some(Fresh::Zeroed(sectors)),
            write_log: None,
            fail_flush: None,
            fail_write_at_sector: None,
            throttle: None,
            kernel_driven: false,
            bus: Bus::Ide,
        }
    }

    /// The blkdebug rules file of drive `index`, when the disk injects errors.
    pub fn blkdebug_rules_file(&self, index: usize) -> Option<PathBuf> {
        (self.fail_flush.is_some() || self.fail_write_at_sector.is_some())
            .then(|| self.image.with_extension(format!("blkdebug{index}.conf")))
    }
}

/// QEMU's block options for `disk` as drive `index` (the master of IDE channel `index`).
pub fn disk_args(disk: &Disk, index: usize) -> Vec<String> {
    let node = |n: &str| format!("{n}{index}");
    let mut args = vec![
        "-blockdev".to_owned(),
        format!(
            "driver=file,node-name={},filename={},cache.direct=off",
            node("img"),
            disk.image.display()
        ),
    ];
    let mut top = node("img");
    if let Some(log) = &disk.write_log {
        args.push("-blockdev".into());
        args.push(format!(
            "driver=file,node-name={},filename={}",
            node("log"),
            log.display()
        ));
        args.push("-blockdev".into());
        args.push(format!(
            "driver=blklogwrites,node-name={},file={top},log={},log-super-update-interval=1",
            node("blw"),
            node("log")
        ));
        top = node("blw");
    }
    if let Some(rules) = disk.blkdebug_rules_file(index) {
        // blkdebug above the log, so a failed flush is not logged as a FLUSH.
        args.push("-blockdev".into());
        args.push(format!(
            "driver=blkdebug,node-name={},image={top},config={}",
            node("dbg"),
            rules.display()
        ));
        top = node("dbg");
    }
    if let Some(Throttle { iops, bytes_per_second }) = disk.throttle {
        // At the top, right under the drive: every request the guest makes waits its turn,
        // and what is below (the write log, injected errors) sees it when it is let through.
        args.push("-object".into());
        args.push(format!("throttle-group,id={},x-iops-total={iops},x-bps-total={bytes_per_second}", node("tg")));
        args.push("-blockdev".into());
        args.push(format!("driver=throttle,node-name={},file={top},throttle-group={}", node("thr"), node("tg")));
        top = node("thr");
    }
    args.push("-blockdev".into());
    args.push(format!("driver=raw,node-name={},file={top}", node("raw")));
    // cache=writeback: the host page cache (cache.direct=off) behind a drive with a volatile
    // write cache the guest must flush (never cache=unsafe, which drops the guest's flushes).
    // Each disk on a channel of its own, as master: the second disk never shares a channel (so a
    // driver) with the first.
    args.push("-device".into());
    match disk.bus {
        Bus::Ahci => {
            // QEMU's ICH9 AHCI; the disk on its first port.
            args.push(format!("ahci,id={}", node("ahci")));
            args.push("-device".into());
            args.push(format!(
                "ide-hd,drive={},bus={}.0,write-cache=on",
                node("raw"),
                node("ahci")
            ));
        }
        Bus::Ide => args.push(format!(
            "ide-hd,drive={},bus=ide.{index},unit=0,write-cache=on",
            node("raw")
        )),
        // On q35, `ide.N` is the chipset's AHCI port N.
        Bus::Q35 => args.push(format!(
            "ide-hd,drive={},bus=ide.{index},write-cache=on",
            node("raw")
        )),
    }
    args
}

/// The machine and the boot CD's place for `disks`: the `q35` machine when a disk is on its
/// AHCI controller (then every disk must be: it has no IDE channel), else `pc`.
pub fn machine_and_cd(disks: &[Disk]) -> Result<[String; 4], Error> {
    let on_q35 = disks.iter().filter(|d| d.bus == Bus::Q35).count();
    if on_q35 == 0 {
        return Ok(["-M".into(), "pc".into(), "-device".into(), format!("ide-cd,drive=cd,bus=ide.1,unit={}", cd_unit(disks))]);
    }
    if on_q35 != disks.len() || disks.len() > Q35_CD_PORT {
        return Err(Error::new(format!("q35: every disk on its AHCI ports, at most {Q35_CD_PORT} of them")));
    }
    Ok(["-M".into(), "q35".into(), "-device".into(), format!("ide-cd,drive=cd,bus=ide.{Q35_CD_PORT}")])
}

/// The boot CD's unit on the secondary IDE channel: its master when no disk is (NetBSD's ATA
/// probe, upstream's rumpdisk, stalls on a slave with no master), else the slave of the disk
/// there (each disk is its channel's master).
fn cd_unit(disks: &[Disk]) -> u32 {
    u32::from(disks.get(1).is_some_and(|d| d.bus == Bus::Ide))
}

/// The blkdebug rules for `disk`'s injected errors.
pub fn blkdebug_rules(disk: &Disk) -> String {
    let mut rules = String::new();
    if let Some(nth) = disk.fail_flush {
        // blkdebug starts in state 1; each flush moves it on, and the rule fires in state N.
        for state in 1..nth {
            rules += &format!("[set-state]\nevent = \"flush_to_disk\"\nstate = \"{state}\"\nnew_state = \"{}\"\n\n", state + 1);
        }
        rules += &format!(
            "[inject-error]\nevent = \"flush_to_disk\"\nstate = \"{nth}\"\niotype = \"flush\"\nerrno = \"5\"\nonce = \"on\"\n\n"
        );
    }
    if let Some(sector) = disk.fail_write_at_sector {
        rules += &format!(
            "[inject-error]\nevent = \"pwritev\"\niotype = \"write\"\nerrno = \"5\"\nsector = \"{sector}\"\nonce = \"on\"\n\n"
        );
    }
    rules
}

/// Where a scenario's files go.
pub fn run_dir(scenario: &str) -> PathBuf {
    project_root().join("target/vm").join(scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_on_ahci_is_on_its_own_controller_s_first_port() {
        let disk = Disk { bus: Bus::Ahci, ..Disk::fresh("d.img".into(), 8) };
        let args = disk_args(&disk, 0).join(" ");
        assert!(args.contains("-device ahci,id=ahci0 -device ide-hd,drive=raw0,bus=ahci0.0,write-cache=on"), "{args}");
        assert!(!args.contains("bus=ide."), "{args}");
        assert_eq!(machine_and_cd(&[disk]).unwrap()[..2], ["-M", "pc"]);
    }

    /// On q35 the disks are on the chipset's AHCI ports, the CD on the last; the machine has no
    /// IDE channel for a disk beside them.
    #[test]
    fn q35_disks_are_on_the_chipset_s_ahci_ports() {
        let on_q35 = |image: &str| Disk { bus: Bus::Q35, ..Disk::fresh(image.into(), 8) };
        let args = disk_args(&on_q35("d.img"), 1).join(" ");
        assert!(args.contains("-device ide-hd,drive=raw1,bus=ide.1,write-cache=on"), "{args}");
        assert_eq!(machine_and_cd(&[on_q35("a"), on_q35("b")]).unwrap(), ["-M", "q35", "-device", "ide-cd,drive=cd,bus=ide.5"]);
        assert!(machine_and_cd(&[on_q35("a"), Disk::fresh("b".into(), 8)]).is_err(), "an IDE disk on q35");
        assert_eq!(machine_and_cd(&[Disk::fresh("a".into(), 8)]).unwrap()[3], "ide-cd,drive=cd,bus=ide.1,unit=0");
    }

    #[test]
    fn disk_stack_puts_blkdebug_above_the_write_log() {
        let disk = Disk {
            write_log: Some("w.log".into()),
            fail_flush: Some(1),
            ..Disk::fresh("d.img".into(), 8)
        };
        let args = disk_args(&disk, 0).join(" ");
        let (log, dbg, raw) = (
            args.find("blklogwrites").unwrap(),
            args.find("blkdebug").unwrap(),
            args.find("driver=raw").unwrap(),
        );
        assert!(log < dbg && dbg < raw, "{args}");
        assert!(
            args.contains("image=blw0")
                && args.contains("file=dbg0")
                && args.contains("ide-hd,drive=raw0,bus=ide.0,unit=0,write-cache=on")
        );
        assert!(blkdebug_rules(&disk).contains("event = \"flush_to_disk\""));
    }

    /// The throttle sits right under the drive, over the write log, in a group of the disk's
    /// own (so two throttled disks do not share one budget).
    #[test]
    fn a_throttled_disk_waits_above_its_write_log() {
        let disk = Disk {
            write_log: Some("w.log".into()),
            throttle: Some(Throttle { iops: 200, bytes_per_second: 20 << 20 }),
            ..Disk::fresh("d.img".into(), 8)
        };
        let args = disk_args(&disk, 1);
        let joined = args.join(" ");
        assert!(joined.contains("-object throttle-group,id=tg1,x-iops-total=200,x-bps-total=20971520"), "{joined}");
        assert!(joined.contains("-blockdev driver=throttle,node-name=thr1,file=blw1,throttle-group=tg1"), "{joined}");
        assert!(joined.contains("driver=raw,node-name=raw1,file=thr1"), "{joined}");
        let (log, throttle) = (joined.find("blklogwrites").unwrap(), joined.find("driver=throttle").unwrap());
        assert!(log < throttle, "{joined}");
        assert!(!disk_args(&Disk::fresh("d.img".into(), 8), 0).join(" ").contains("throttle"), "none unless asked");
    }

    #[test]
    fn a_later_flush_fails_through_blkdebug_states() {
        let first = Disk {
            fail_flush: Some(1),
            ..Disk::fresh("d.img".into(), 8)
        };
        assert!(!blkdebug_rules(&first).contains("[set-state]"));
        assert!(blkdebug_rules(&first).contains("state = \"1\"\niotype = \"flush\""));
        let third = Disk {
            fail_flush: Some(3),
            ..Disk::fresh("d.img".into(), 8)
        };
        let rules = blkdebug_rules(&third);
        assert_eq!(rules.matches("[set-state]").count(), 2, "{rules}");
        assert!(rules.contains("state = \"1\"\nnew_state = \"2\""));
        assert!(rules.contains("state = \"2\"\nnew_state = \"3\""));
        assert_eq!(rules.matches("[inject-error]").count(), 1);
        assert!(rules.contains("[inject-error]\nevent = \"flush_to_disk\"\nstate = \"3\"\niotype = \"flush\"\nerrno = \"5\"\nonce = \"on\""));
    }
}
