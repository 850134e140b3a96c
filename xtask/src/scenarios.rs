//! The VM scenarios: which tasks boot on GNU Mach with which disks, and what they must show.

use crate::tasks::{build_tasks, task, tasks_for, Tasks};
use crate::util::Error;
use crate::iso::Module;
use crate::scenario::Scenario;
use crate::vm::{Bus, Disk, Expect, Kernel, Throttle};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The runtime's own tests: kernel RPCs, the RAM disk, two tasks exchanging messages.
pub fn runtime(tasks: &Tasks) -> Result<Scenario, Error> {
    let rd0 = ram_disk(tasks.kernel, "runtime")?;
    let rd0size = format!(
        "rd0size={}",
        fs::metadata(&rd0.file)
            .map_err(|e| Error::io(&rd0.file, e))?
            .len()
    );
    Ok(Scenario {
        kernel: tasks.kernel,
        name: "runtime".into(),
        modules: supervised(
            tasks,
            vec![
                rd0,
                task(
                    tasks,
                    "runtime-tests",
                    "peer",
                    &[
                        "${host-port}",
                        "${device-port}",
                        "role=peer",
                        "$(peer-task=task-create)",
                    ],
                ),
                task(
                    tasks,
                    "runtime-tests",
                    "runtime-tests",
                    &[
                        "${host-port}",
                        "${device-port}",
                        "role=main",
                        "peer=${peer-task}",
                        &rd0size,
                        "$(main-task=task-create)",
                    ],
                ),
            ],
            &["main-task", "peer-task"],
            2,
        ),
        disks: vec![],
        timeout: Duration::from_secs(60),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: None,
    })
}

/// A task that faults: the supervisor must turn it into a named failure, not a hang.
pub fn fault(tasks: &Tasks) -> Result<Scenario, Error> {
    let console = tasks.kernel.run_dir("fault").join("console.log");
    Ok(Scenario {
        kernel: tasks.kernel,
        name: "fault".into(),
        modules: supervised(
            tasks,
            vec![task(
                tasks,
                "runtime-tests",
                "faulty",
                &[
                    "${host-port}",
                    "${device-port}",
                    "role=fault",
                    "$(faulty-task=task-create)",
                ],
            )],
            &["faulty-task"],
            1,
        ),
        disks: vec![],
        timeout: Duration::from_secs(60),
        expect: Expect::Failure,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: Some(Box::new(move || {
            let text = fs::read_to_string(&console).map_err(|e| e.to_string())?;
            match text
                .lines()
                .find(|l| l.contains("test no_task_faults ... FAILED:"))
            {
                Some(line) if line.contains("faulted: exception") => Ok(()),
                _ => Err("the supervisor did not name the fault".into()),
            }
        })),
    })
}

/// Sectors of the IDE disk image the disk scenarios serve (64 MiB).
const DISK_SECTORS: u64 = 128 * 1024;

/// Where `scenario`'s disk image lives (made anew, zeroed, before each boot: see `Disk::fresh`).
fn disk_image(kernel: Kernel, scenario: &str) -> Result<PathBuf, Error> {
    let dir = kernel.run_dir(scenario);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir.join("wd0.img"))
}

/// The RAM disk module: GNU Mach serves it as `rd0` (and answers DEV_FLUSH_CACHE on it with
/// success: it has no cache).
fn ram_disk(kernel: Kernel, scenario: &str) -> Result<Module, Error> {
    let dir = kernel.run_dir(scenario);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let rd0 = dir.join("rd0.img");
    let mut image = b"rumpdisk-rs rd0\n".to_vec();
    image.resize(64 * 1024, 0);
    fs::write(&rd0, &image).map_err(|e| Error::io(&rd0, e))?;
    Ok(Module {
        file: rd0,
        name: "rd0.img".into(),
        words: vec!["$(ramdisk-create)".into()],
    })
}

/// How a scenario's rumpdisk.static moves data: its default (bus-master DMA on QEMU's PIIX
/// IDE), or the `--ata-transfer` mode its name ends with (`disk-pio`); `ahci` also puts the
/// disk on an AHCI controller instead of the IDE channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    Default,
    Mode(&'static str),
    /// The disk on an AHCI controller, no `--ata-transfer`: `auto` must find it there.
    AutoOnAhci,
    /// The `q35` machine, no `--ata-transfer`: `auto` must find the disk on the chipset's AHCI
    /// and not stall on the IDE ports the machine does not have.
    AutoOnQ35,
}

impl Transfer {
    fn name(self, base: &str) -> String {
        match self {
            Transfer::Default => base.to_owned(),
            Transfer::Mode(mode) => format!("{base}-{mode}"),
            Transfer::AutoOnAhci => format!("{base}-ahci-auto"),
            Transfer::AutoOnQ35 => format!("{base}-q35"),
        }
    }

    /// The driver's line about the drive (`ata: wd0:`, `ahci: wd0:`) and what it says of the
    /// transfer: `transfer Dma`, `transfer Pio`, ..., `port` for the AHCI port.
    fn logged(self) -> (&'static str, &'static str) {
        let what = match self {
            Transfer::Mode("ahci") | Transfer::AutoOnAhci | Transfer::AutoOnQ35 => return ("ahci: wd0:", "port "),
            Transfer::Default | Transfer::Mode("dma") => "transfer Dma",
            Transfer::Mode("multiple") => "transfer Multiple",
            Transfer::Mode(_) => "transfer Pio",
        };
        ("ata: wd0:", what)
    }
}

/// The slow disk of `cargo xtask bench slow` (and, slower, `barrier-slow-disk`): 200 requests and 20 MiB
/// a second, so a request takes milliseconds (5 ms for 4 KiB, 50 ms for 1 MiB), as on a real
/// drive, where the image file answers in microseconds and the driver's wait hardly shows.
pub const SLOW_DISK: Throttle = Throttle { iops: 200, bytes_per_second: 20 << 20 };

/// The disk of `barrier-slow-disk`: [`SLOW_DISK`] at half its request rate. QEMU's throttle
/// limits a rate (a bucket of 20 requests' burst), it adds no latency below it: the barrier
/// workload makes about 150 requests a second on its own here (400 writes and 51 flushes in
/// 3 s), so at 200 most would pass undelayed; at 100 the disk sets the pace.
const SLOWER_DISK: Throttle = Throttle { iops: SLOW_DISK.iops / 2, ..SLOW_DISK };

/// The barrier workload on [`SLOWER_DISK`], rumpdisk.static told to complete commands by
/// interrupt (its default): requests wait milliseconds for the disk's interrupt, the other
/// serving threads run meanwhile, and the write log must still show every synced round covered
/// by a flush (the check of `barrier`, interrupts included).
fn barrier_slow_disk(tasks: &Tasks, workload: &[&str]) -> Result<Scenario, Error> {
    let mut scenario = barrier(tasks, "barrier-slow-disk", workload, Barrier::Honoured)?;
    for module in scenario.modules.iter_mut().filter(|m| m.name == "rumpdisk.static") {
        module.words.push("--completion=interrupt".into());
    }
    scenario.disks[0].throttle = Some(SLOWER_DISK);
    Ok(scenario)
}

/// `scenario` with its rumpdisk.static moving data as `transfer` says.
fn with_transfer(mut scenario: Scenario, transfer: Transfer) -> Scenario {
    if let Transfer::Mode(mode) = transfer {
        for module in scenario
            .modules
            .iter_mut()
            .filter(|m| m.name == "rumpdisk.static")
        {
            module.words.push(format!("--ata-transfer={mode}"));
        }
        // The disk rumpdisk.static drives is the first.
        scenario.disks[0].bus = if mode == "ahci" { Bus::Ahci } else { Bus::Ide };
    }
    if transfer == Transfer::AutoOnAhci {
        scenario.disks[0].bus = Bus::Ahci;
    }
    if transfer == Transfer::AutoOnQ35 {
        // The machine has no IDE channel for any disk.
        for disk in &mut scenario.disks {
            disk.bus = Bus::Q35;
        }
    }
    scenario
}

/// Whether a scenario's `console` shows the driver moving data as `transfer` says.
fn drove_with(console: &Path, transfer: Transfer) -> Result<(), String> {
    let text = fs::read_to_string(console).map_err(|e| format!("{}: {e}", console.display()))?;
    let (driver, what) = transfer.logged();
    let line = text
        .lines()
        .find(|l| l.contains(driver))
        .ok_or_else(|| format!("the driver never opened wd0 ({driver})"))?;
    if line.contains(what) {
        Ok(())
    } else {
        Err(format!("wd0 not driven with {what}: {line}"))
    }
}

/// rumpdisk.static as the boot disk driver, starting `next` as the Hurd starts its file system.
fn rumpdisk_static(tasks: &Tasks, next: &str, extra: &[&str]) -> Module {
    let mut words = vec![
        "--host-priv-port=${host-port}".to_owned(),
        "--device-master-port=${device-port}".to_owned(),
        format!("--next-task=${{{next}}}"),
    ];
    words.extend(extra.iter().map(|w| w.to_string()));
    // Started by the supervisor, once it holds the task's exception port.
    words.push("$(rumpdisk-task=task-create)".to_owned());
    Module {
        file: tasks.dir.join("rumpdisk-static"),
        name: "rumpdisk.static".into(),
        words,
    }
}

/// Adds the supervisor to `modules`: it becomes the exception port of the tasks bound to the
/// boot-script variables `watch` (so a fault is a named failure, not a hang) and resumes the
/// first `resume` of them; the tasks must be created without `$(task-resume)`.
fn supervised(
    tasks: &Tasks,
    mut modules: Vec<Module>,
    watch: &[&str],
    resume: usize,
) -> Vec<Module> {
    let mut words = vec!["${host-port}".to_owned(), "${device-port}".to_owned()];
    for (key, var) in ["watch", "watch2", "watch3"].iter().zip(watch) {
        words.push(format!("{key}=${{{var}}}"));
    }
    words.extend([
        format!("resume={resume}"),
        "$(task-create)".to_owned(),
        "$(task-resume)".to_owned(),
    ]);
    modules.push(Module {
        file: tasks.dir.join("supervisor"),
        name: "supervisor".into(),
        words,
    });
    modules
}

/// rumpdisk.static on an IDE disk, moving data as `transfer` says, with the disk tests (and the
/// store client) as its next task; afterwards the image must hold what the guest wrote and
/// flushed, and the console show the transfer mode.
pub fn disk(tasks: &Tasks, transfer: Transfer) -> Result<Scenario, Error> {
    let name = transfer.name("disk");
    let image = disk_image(tasks.kernel, &name)?;
    let sectors = format!("wd0sectors={DISK_SECTORS}");
    let console = tasks.kernel.run_dir(&name).join("console.log");
    let label = format!("{name} [{}]", tasks.kernel.label());
    let scenario = Scenario {
        kernel: tasks.kernel,
        name: name.clone(),
        modules: supervised(
            tasks,
            vec![
                rumpdisk_static(tasks, "disk-task", &[]),
                task(
                    tasks,
                    "disk-tests",
                    "disk-tests",
                    &[&sectors, "$(disk-task=task-create)"],
                ),
            ],
            &["rumpdisk-task", "disk-task"],
            1,
        ),
        disks: vec![Disk::fresh(image.clone(), DISK_SECTORS)],
        timeout: Duration::from_secs(60),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: Some(Box::new(move || {
            drove_with(&console, transfer)?;
            crate::interrupts::check(&console, &label)?;
            image_holds(&image, 2048, b"rumpdisk-rs wrote this through wd0")
        })),
    };
    Ok(with_transfer(scenario, transfer))
}

/// Sectors of the second disk of `disk-two-channels` (32 MiB: another size than the first's).
const SECOND_DISK_SECTORS: u64 = 64 * 1024;

/// A disk on each IDE channel's master: rumpdisk.static drives both channels and names the
/// disks in attach order, as NetBSD does under the Hurd's rumpdisk: the secondary master is
/// `wd1` (the boot CD, the secondary's slave, is no `wd`).
pub fn disk_two_channels(tasks: &Tasks) -> Result<Scenario, Error> {
    let name = "disk-two-channels".to_owned();
    let image = disk_image(tasks.kernel, &name)?;
    let second = image.with_file_name("wd1.img");
    let (sectors, second_sectors) = (format!("wd0sectors={DISK_SECTORS}"), format!("wd1sectors={SECOND_DISK_SECTORS}"));
    let check = second.clone();
    Ok(Scenario {
        kernel: tasks.kernel,
        name,
        modules: supervised(
            tasks,
            vec![
                rumpdisk_static(tasks, "disk-task", &[]),
                task(tasks, "disk-tests", "disk-tests", &[&sectors, &second_sectors, "$(disk-task=task-create)"]),
            ],
            &["rumpdisk-task", "disk-task"],
            1,
        ),
        disks: vec![Disk::fresh(image, DISK_SECTORS), Disk::fresh(second, SECOND_DISK_SECTORS)],
        timeout: Duration::from_secs(60),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: Some(Box::new(move || image_holds(&check, 2048, b"rumpdisk-rs wrote this through wd1"))),
    })
}

/// Whether `image` holds `text` at `sector`.
fn image_holds(image: &Path, sector: u64, text: &[u8]) -> Result<(), String> {
    let bytes = fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let at = sector as usize * 512;
    match bytes.get(at..at + text.len()) {
        Some(found) if found == text => Ok(()),
        found => Err(format!(
            "sector {sector} of the image holds {:?}",
            found.map(|f| String::from_utf8_lossy(f).into_owned())
        )),
    }
}

/// The store client on the kernel's RAM disk: typed names opened through the kernel's device
/// master, data written and read back, syncs of the device and of a concat of two remaps of it
/// reported as the kernel answers `DEV_FLUSH_CACHE` on a RAM disk (success, or `EOPNOTSUPP` from
/// a kernel that refuses the flavor: see [`Kernel::ram_disk_flushes`]); and a sync of the kernel's
/// console, which does not know the flavor, reported as `EOPNOTSUPP`, never as success.
pub fn store_rd0(tasks: &Tasks) -> Result<Scenario, Error> {
    let sync = match tasks.kernel.ram_disk_flushes() {
        true => "sync=flushes",
        false => "sync=unsupported",
    };
    let words = [
        "${host-port}",
        "${device-port}",
        "disk=rd0",
        sync,
        "noflush=console",
        "$(store-task=task-create)",
    ];
    Ok(Scenario {
        kernel: tasks.kernel,
        name: "store-rd0".into(),
        modules: supervised(
            tasks,
            vec![
                ram_disk(tasks.kernel, "store-rd0")?,
                task(tasks, "store-tests", "store-tests", &words),
            ],
            &["store-task"],
            1,
        ),
        disks: vec![],
        timeout: Duration::from_secs(60),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: None,
    })
}

/// The store client as rumpdisk.static's next task, on `device:wd0` (an IDE disk): syncs succeed,
/// the drive's write log shows a FLUSH between the client's data and the record it wrote after its
/// sync returned, and the image holds what the client wrote; rumpdisk.static moves data as
/// `transfer` says.
pub fn store_wd0(tasks: &Tasks, transfer: Transfer) -> Result<Scenario, Error> {
    let name = transfer.name("store-wd0");
    let image = disk_image(tasks.kernel, &name)?;
    let write_log = tasks.kernel.run_dir(&name).join("w.log");
    let console = tasks.kernel.run_dir(&name).join("console.log");
    let label = format!("{name} [{}]", tasks.kernel.label());
    let words = [
        "master=bootstrap",
        "disk=wd0",
        "sync=flushes",
        "$(store-task=task-create)",
    ];
    let scenario = Scenario {
        kernel: tasks.kernel,
        name: name.clone(),
        modules: supervised(
            tasks,
            vec![
                rumpdisk_static(tasks, "store-task", &[]),
                task(tasks, "store-tests", "store-tests", &words),
            ],
            &["rumpdisk-task", "store-task"],
            1,
        ),
        disks: vec![Disk {
            write_log: Some(write_log.clone()),
            ..Disk::fresh(image.clone(), DISK_SECTORS)
        }],
        timeout: Duration::from_secs(60),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: Some(Box::new(move || {
            drove_with(&console, transfer)?;
            crate::interrupts::check(&console, &label)?;
            flushed_before_synced_record(&write_log)?;
            image_holds_store_pattern(&image)
        })),
    };
    Ok(with_transfer(scenario, transfer))
}

/// The store client through rumpdisk on a drive whose first cache flush fails (QEMU blkdebug):
/// the client's first sync must report `EIO` — a failed flush is never success — and later
/// syncs succeed.
pub fn store_wd0_flush_fails(tasks: &Tasks, transfer: Transfer) -> Result<Scenario, Error> {
    let scenario = store_through_rumpdisk(
        tasks,
        &transfer.name("store-wd0-flush-fails"),
        &[],
        "sync=first-fails",
        Some(1),
    )?;
    Ok(with_transfer(scenario, transfer))
}

/// The store client through a rumpdisk that does not know `DEV_FLUSH_CACHE` (`--flush=refuse`,
/// as Debian's packaged hurd): every sync must report `EOPNOTSUPP`, never success.
pub fn store_wd0_refusing_flush(tasks: &Tasks, transfer: Transfer) -> Result<Scenario, Error> {
    let scenario = store_through_rumpdisk(
        tasks,
        &transfer.name("store-wd0-refusing-flush"),
        &["--flush=refuse"],
        "sync=unsupported",
        None,
    )?;
    Ok(with_transfer(scenario, transfer))
}

/// store-tests as the next task of rumpdisk.static (started with `server` options) on `device:wd0`.
fn store_through_rumpdisk(
    tasks: &Tasks,
    name: &str,
    server: &[&str],
    expect: &str,
    fail_flush: Option<u32>,
) -> Result<Scenario, Error> {
    let image = disk_image(tasks.kernel, name)?;
    let words = [
        "master=bootstrap",
        "disk=wd0",
        expect,
        "$(store-task=task-create)",
    ];
    Ok(Scenario {
        kernel: tasks.kernel,
        name: name.into(),
        modules: supervised(
            tasks,
            vec![
                rumpdisk_static(tasks, "store-task", server),
                task(tasks, "store-tests", "store-tests", &words),
            ],
            &["rumpdisk-task", "store-task"],
            1,
        ),
        disks: vec![Disk {
            fail_flush,
            ..Disk::fresh(image, DISK_SECTORS)
        }],
        timeout: Duration::from_secs(60),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: None,
    })
}

/// Whether the write log has a FLUSH after store-tests' first data (sectors 32-63) and before the
/// record it writes at sector 8 once its sync returned.
fn flushed_before_synced_record(write_log: &Path) -> Result<(), String> {
    use crate::barrier::log::{Entry, Log};
    let bytes = fs::read(write_log).map_err(|e| format!("{}: {e}", write_log.display()))?;
    let log = Log::parse(&bytes).map_err(|e| format!("write log: {e:?}"))?;
    let sectors = |sector: u64, data: &[u8]| sector..sector + (data.len() / log.sector_size) as u64;
    let record = log
        .entries
        .iter()
        .position(|e| matches!(e, Entry::Write { sector: 8, data, .. } if data.starts_with(b"store-tests: synced")))
        .ok_or("the synced record is not in the write log")?;
    let data = log.entries[..record]
        .iter()
        .rposition(|e| matches!(e, Entry::Write { sector, data, .. } if sectors(*sector, data).any(|s| (32..64).contains(&s))))
        .ok_or("the data written before the sync is not in the write log")?;
    match log.entries[data..record].contains(&Entry::Flush) {
        true => Ok(()),
        false => {
            Err("no FLUSH between the data and the record written after the sync returned".into())
        }
    }
}

/// Whether `image` holds what store-tests last wrote: 16 KiB of its pattern 2 at block 16,
/// written through a concat of two remaps of wd0.
fn image_holds_store_pattern(image: &Path) -> Result<(), String> {
    let bytes = fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let expected: Vec<u8> = (0..16 * 1024)
        .map(|i: usize| (i as u8).wrapping_mul(37).wrapping_add(2))
        .collect();
    match bytes.get(16 * 512..16 * 512 + expected.len()) {
        Some(found) if found == expected => Ok(()),
        _ => Err("blocks 16-47 of the image do not hold what store-tests wrote".into()),
    }
}

/// How a barrier scenario's server treats DEV_FLUSH_CACHE, and what the checker must say.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    /// The real server: the log must prove every returned sync.
    Honoured,
    /// The negative control: a server that answers without flushing must be caught.
    Skipped,
    /// The negative control of one missing flush among many (`--flush=skip-one=K`): the checker
    /// must find exactly the rounds that flush should have covered, where they are lost.
    SkipOne(u32),
}

/// The write-barrier proof: concurrent store clients write and sync through rumpdisk.static on a
/// disk whose writes and flushes QEMU logs; the checker replays the log at every flush.
pub fn barrier(tasks: &Tasks, name: &str, words: &[&str], mode: Barrier) -> Result<Scenario, Error> {
    let image = disk_image(tasks.kernel, name)?;
    let log = tasks.kernel.run_dir(name).join("writes.log");
    let console = tasks.kernel.run_dir(name).join("console.log");
    let flush = match mode {
        Barrier::Honoured => None,
        Barrier::Skipped => Some("--flush=skip".to_owned()),
        Barrier::SkipOne(k) => Some(format!("--flush=skip-one={k}")),
    };
    let flush: Vec<&str> = flush.iter().map(String::as_str).collect();
    let mut client = vec!["$(barrier-task=task-create)"];
    client.extend_from_slice(words);
    let (log_path, image_path) = (log.clone(), image.clone());
    let label = format!("{name} [{}]", tasks.kernel.label());
    Ok(Scenario {
        kernel: tasks.kernel,
        name: name.into(),
        modules: supervised(
            tasks,
            vec![
                rumpdisk_static(tasks, "barrier-task", &flush),
                task(tasks, "barrier", "barrier", &client),
            ],
            &["rumpdisk-task", "barrier-task"],
            1,
        ),
        disks: vec![Disk {
            write_log: Some(log),
            ..Disk::fresh(image, DISK_SECTORS)
        }],
        timeout: Duration::from_secs(180),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: Some(Box::new(move || {
            let verdict = crate::barrier::check_run(&log_path, &console, Some(&image_path))
                .map_err(|e| e.to_string())?;
            println!("  {label}: write log: {}", verdict.summary());
            crate::interrupts::check(&console, &label)?;
            let Barrier::SkipOne(k) = mode else {
                return barrier_verdict(mode, &verdict);
            };
            let text = fs::read(&console).map_err(|e| format!("{}: {e}", console.display()))?;
            let log = fs::read(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
            let log = crate::barrier::log::Log::parse(&log).map_err(|e| e.to_string())?;
            let lost = crate::barrier::skip_one::exactly_the_skipped(&log, &String::from_utf8_lossy(&text), &verdict, k)
                .map_err(|why| format!("--flush=skip-one={k}: {why}"))?;
            println!("  {label}: flush {k} skipped: the checker found exactly its {lost} lost sectors, where they are lost");
            Ok(())
        })),
    })
}

/// The scenario's verdict from the checker's. The real server passes only with rounds synced
/// and no violation; the negative control only when the checker found a violation — a run in
/// which nothing synced proves nothing about the checker.
fn barrier_verdict(mode: Barrier, verdict: &crate::barrier::check::Verdict) -> Result<(), String> {
    match (mode, verdict.violations.first()) {
        (Barrier::Honoured, None) if verdict.holds() => Ok(()),
        (Barrier::Honoured, None) => Err("no round was reported synced".into()),
        (Barrier::Honoured, Some(violation)) => Err(format!("barrier violated: {violation}")),
        (Barrier::Skipped, Some(_)) => Ok(()),
        (Barrier::SkipOne(k), _) => Err(format!("skip-one={k} is judged against its write log")),
        (Barrier::Skipped, None) => Err(format!(
            "the checker found no violation in a server that never flushed ({} rounds synced)",
            verdict.synced_rounds
        )),
    }
}

/// Which device error a fault scenario injects under the barrier workload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The third flush to reach the disk fails (QEMU blkdebug `flush_to_disk`): the syncs it
    /// answers must return EIO, those before it succeed.
    Flush,
    /// A write of client 0's round 2 fails: that write must return EIO and the round never sync.
    Write,
}

/// The barrier workload over a disk that fails once, rumpdisk.static moving data as `transfer`
/// says; what the clients report must match.
pub fn barrier_fault(tasks: &Tasks, fault: Fault, transfer: Transfer) -> Result<Scenario, Error> {
    let (base, rounds, sectors) = match fault {
        Fault::Flush => ("barrier-flush-error", 6, 2),
        Fault::Write => ("barrier-write-error", 6, 2),
    };
    let name = transfer.name(base);
    let mut scenario = barrier(
        tasks,
        &name,
        &[
            "clients=2",
            &format!("rounds={rounds}"),
            &format!("sectors={sectors}"),
        ],
        Barrier::Honoured,
    )?;
    let disk = &mut scenario.disks[0];
    match fault {
        // Not the first: the syncs answered before the failure must have succeeded.
        Fault::Flush => disk.fail_flush = Some(FAILING_FLUSH),
        // Client 0's round 2 starts at this sector (tasks/src/bin/barrier.rs: DATA_BASE + round × sectors).
        Fault::Write => disk.fail_write_at_sector = Some(1024 + 2 * sectors),
    }
    let (log, console, image) = (
        disk.write_log.clone().unwrap_or_default(),
        tasks.kernel.run_dir(&name).join("console.log"),
        disk.image.clone(),
    );
    let label = format!("{name} [{}]", tasks.kernel.label());
    scenario.after = Some(Box::new(move || {
        let verdict =
            crate::barrier::check_run(&log, &console, Some(&image)).map_err(|e| e.to_string())?;
        println!("  {label}: write log: {}", verdict.summary());
        if let Some(v) = verdict.violations.first() {
            return Err(format!("barrier violated: {v}"));
        }
        let text = fs::read_to_string(&console).map_err(|e| e.to_string())?;
        let reported = crate::barrier::check::Console::parse(&text);
        println!(
            "  {label}: {} rounds synced, {} syncs and {} writes failed",
            reported.synced.len(),
            reported.failed.len(),
            reported.write_failed.len()
        );
        fault_reported(&reported, fault)
    }));
    Ok(with_transfer(scenario, transfer))
}

/// Which flush `barrier-flush-error` fails: the first two cover rounds before the failure.
const FAILING_FLUSH: u32 = 3;

/// What the clients reported under `fault` is right: the error came back as EIO, no round whose
/// write or sync failed was reported synced, nor any later round of that client (it stops);
/// and with a failed flush, the rounds flushed before it were reported synced.
fn fault_reported(reported: &crate::barrier::check::Console, fault: Fault) -> Result<(), String> {
    let failures = match fault {
        Fault::Flush => &reported.failed,
        Fault::Write => &reported.write_failed,
    };
    if failures.is_empty() {
        return Err("no client reported the injected error".into());
    }
    let eio = i64::from(store::Errno::EIO.0);
    for (failed, &errno) in failures {
        if errno != eio {
            return Err(format!(
                "{failed}: the injected error came back as errno {errno:#x}, not EIO"
            ));
        }
        if let Some(synced) = reported
            .synced
            .iter()
            .find(|r| r.client == failed.client && r.round >= failed.round)
        {
            return Err(format!("{synced} reported synced, but {failed} failed"));
        }
    }
    if fault == Fault::Flush && reported.synced.is_empty() {
        return Err(format!(
            "no round synced before flush {FAILING_FLUSH} failed"
        ));
    }
    if fault == Fault::Write {
        // Progress before the fault: the failing client's earlier rounds all synced, so the
        // run shows a working path that the failed write then stopped.
        for failed in reported.write_failed.keys() {
            if let Some(round) = (0..failed.round).find(|&round| {
                !reported.synced.contains(&crate::barrier::check::Round {
                    client: failed.client,
                    round,
                })
            }) {
                return Err(format!(
                    "client {} round {round} was not reported synced before {failed} failed",
                    failed.client
                ));
            }
        }
    }
    Ok(())
}

/// The seed's own check, automated: SIGKILL QEMU right after a sync is reported (no shutdown
/// flush), then read the image on the host: every round reported synced is there.
pub fn barrier_killed(tasks: &Tasks, transfer: Transfer) -> Result<Scenario, Error> {
    let mut scenario = barrier(
        tasks,
        &transfer.name("barrier-killed"),
        &["clients=1", "rounds=1000", "sectors=2"],
        Barrier::Honoured,
    )?;
    scenario.kill_on = Some("barrier: synced client=0 round=20".into());
    Ok(with_transfer(scenario, transfer))
}

/// The main job: the barrier workload through rumpdisk.static on `image` (or a fresh one), with a
/// short account of what happened.
pub fn main_job(image: Option<&Path>) -> Result<(), Error> {
    let start = std::time::Instant::now();
    let tasks = tasks_for(Kernel::Amd64)?;
    let (clients, rounds, sectors): (u32, u32, u32) = (4, 25, 8);
    let words = [
        format!("clients={clients}"),
        format!("rounds={rounds}"),
        format!("sectors={sectors}"),
    ];
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut scenario = barrier(&tasks, "main", &words, Barrier::Honoured)?;
    if let Some(image) = image {
        let size = fs::metadata(image).map_err(|e| Error::io(image, e))?.len();
        let needed = 1024 + u64::from(clients * rounds * sectors);
        if size < needed * 512 {
            return Err(Error::new(format!(
                "{}: {size} bytes, the workload needs at least {}",
                image.display(),
                needed * 512
            )));
        }
        scenario.disks[0] = Disk {
            image: image.to_owned(),
            fresh: None,
            ..scenario.disks[0].clone()
        };
    }
    // The account replaces the per-test lines: keep the checker's verdict for the summary.
    let after = scenario.after.take();
    let outcome = crate::scenario::run(&scenario)?;
    let check = after.map_or(Ok(()), |check| check());
    let dir = tasks.kernel.run_dir("main");
    let disk = &scenario.disks[0];
    println!(
        "rumpdisk-rs on GNU Mach ({:.1} s):",
        start.elapsed().as_secs_f64()
    );
    println!(
        "  wrote {clients} clients × {rounds} rounds × {sectors} sectors ({} KiB) to {} through rumpdisk.static (ATA, FLUSH CACHE EXT),",
        clients * rounds * sectors / 2,
        disk.image.display()
    );
    println!("  syncing after every round and reading every round back at the end");
    println!(
        "  console: {}, device write log: {}",
        dir.join("console.log").display(),
        dir.join("writes.log").display()
    );
    match (outcome.verdict(Expect::Pass), check) {
        (Ok(()), Ok(())) => {
            println!("  verdict: every sync the clients saw return was covered by a device flush");
            Ok(())
        }
        (Err(why), _) | (_, Err(why)) => Err(Error::new(format!("the main job failed: {why}"))),
    }
}

/// The scenarios named in `names` (every one when it is empty): GNU Mach's on each of `kernels`,
/// then the Hurd's (which boot trixie's amd64 kernel: only when `kernels` has it).
pub fn all(names: &[String], kernels: &[Kernel]) -> Result<Vec<Scenario>, Error> {
    let wanted = |name: &str| names.is_empty() || names.iter().any(|w| w == name);
    let mut scenarios = Vec::new();
    for &kernel in kernels {
        let tasks = tasks_for(kernel)?;
        scenarios.extend(on_gnumach(&tasks)?.into_iter().filter(|s| wanted(&s.name)));
    }
    if kernels.contains(&Kernel::Amd64) {
        let hurd_names = crate::hurd::scenarios::wanted(names);
        scenarios.extend(crate::hurd::scenarios::some(&build_tasks()?, &hurd_names)?);
    }
    Ok(scenarios)
}

/// Which flush `barrier-skipped-one-flush` skips: from 2 to 25 (the workload's 4 clients × 50
/// rounds make well over 25 flushes), chosen by `RUMPDISK_SKIP_ONE_SEED` or else by the clock,
/// and printed, so that a failing choice can be run again.
fn skipped_flush() -> u32 {
    let seed = std::env::var("RUMPDISK_SKIP_ONE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into())
    });
    let k = skipped_flush_of(seed);
    println!("barrier-skipped-one-flush: --flush=skip-one={k} (RUMPDISK_SKIP_ONE_SEED={seed})");
    k
}

fn skipped_flush_of(seed: u64) -> u32 {
    2 + (seed % 24) as u32
}

/// The workload of the negative control of one skipped flush: one client, so that its commit
/// record follows the skipped flush's answer before another flush starts. With concurrent
/// clients and a driver that waits for the flush's interrupt (the processor free meanwhile),
/// the requests gathered during the skipped flush start the next one at once, and the answered
/// clients' commit records reach the disk only after it: the next flush covers the skipped
/// one's data, and the log shows nothing lost (in every run
/// tried: three draws on amd64, one on each other kernel).
const LONE_CLIENT: [&str; 3] = ["clients=1", "rounds=100", "sectors=4"];

/// Every GNU Mach scenario, on the kernel `tasks` were built for.
fn on_gnumach(tasks: &Tasks) -> Result<Vec<Scenario>, Error> {
    let workload = ["clients=4", "rounds=50", "sectors=4"];
    Ok(vec![
        runtime(tasks)?,
        fault(tasks)?,
        disk(tasks, Transfer::Default)?,
        disk(tasks, Transfer::Mode("pio"))?,
        disk(tasks, Transfer::Mode("multiple"))?,
        disk_two_channels(tasks)?,
        store_rd0(tasks)?,
        store_wd0(tasks, Transfer::Default)?,
        store_wd0(tasks, Transfer::Mode("pio"))?,
        store_wd0_flush_fails(tasks, Transfer::Default)?,
        store_wd0_refusing_flush(tasks, Transfer::Default)?,
        barrier(tasks, "barrier", &workload, Barrier::Honoured)?,
        // The barrier proof on each way of moving data (the default is DMA).
        with_transfer(barrier(tasks, "barrier-pio", &workload, Barrier::Honoured)?, Transfer::Mode("pio")),
        with_transfer(barrier(tasks, "barrier-multiple", &workload, Barrier::Honoured)?, Transfer::Mode("multiple")),
        barrier_slow_disk(tasks, &workload)?,
        barrier(tasks, "barrier-skipped-flush", &workload, Barrier::Skipped)?,
        barrier(tasks, "barrier-skipped-one-flush", &LONE_CLIENT, Barrier::SkipOne(skipped_flush()))?,
        barrier(
            tasks,
            "barrier-long",
            &["clients=1", "rounds=1100", "sectors=1"],
            Barrier::Honoured,
        )?,
        // Syncs waiting behind bursts of 80 one-sector writes: flushes started by the write
        // bound (64 writes) must be real ones too.
        barrier(
            tasks,
            "barrier-write-bound",
            &["clients=3", "rounds=4", "sectors=80", "burst=1"],
            Barrier::Honoured,
        )?,
        barrier_fault(tasks, Fault::Flush, Transfer::Default)?,
        barrier_fault(tasks, Fault::Flush, Transfer::Mode("pio"))?,
        barrier_fault(tasks, Fault::Write, Transfer::Default)?,
        barrier_fault(tasks, Fault::Write, Transfer::Mode("pio"))?,
        barrier_killed(tasks, Transfer::Default)?,
    ]
    .into_iter()
    .chain(on_ahci(tasks, &workload)?)
    .collect())
}

/// The disk, store and barrier scenarios with the disk on an AHCI controller (`-device ahci`)
/// and rumpdisk.static driving it (`--ata-transfer=ahci`).
fn on_ahci(tasks: &Tasks, workload: &[&str]) -> Result<Vec<Scenario>, Error> {
    let ahci = Transfer::Mode("ahci");
    Ok(vec![
        disk(tasks, ahci)?,
        disk(tasks, Transfer::AutoOnAhci)?,
        disk(tasks, Transfer::AutoOnQ35)?,
        store_wd0(tasks, ahci)?,
        store_wd0_flush_fails(tasks, ahci)?,
        store_wd0_refusing_flush(tasks, ahci)?,
        with_transfer(barrier(tasks, "barrier-ahci", workload, Barrier::Honoured)?, ahci),
        with_transfer(barrier(tasks, "barrier-skipped-flush-ahci", workload, Barrier::Skipped)?, ahci),
        with_transfer(barrier(tasks, "barrier-skipped-one-flush-ahci", &LONE_CLIENT, Barrier::SkipOne(skipped_flush()))?, ahci),
        with_transfer(barrier(tasks, "barrier-long-ahci", &["clients=1", "rounds=1100", "sectors=1"], Barrier::Honoured)?, ahci),
        with_transfer(
            barrier(tasks, "barrier-write-bound-ahci", &["clients=3", "rounds=4", "sectors=80", "burst=1"], Barrier::Honoured)?,
            ahci,
        ),
        barrier_fault(tasks, Fault::Flush, ahci)?,
        barrier_fault(tasks, Fault::Write, ahci)?,
        barrier_killed(tasks, ahci)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::check::{Console, Round};

    fn console(synced: &[(u32, u32)], failed: &[(u32, u32, i64)]) -> Console {
        Console {
            synced: synced
                .iter()
                .map(|&(client, round)| Round { client, round })
                .collect(),
            failed: failed
                .iter()
                .map(|&(client, round, errno)| (Round { client, round }, errno))
                .collect(),
            ..Console::default()
        }
    }

    /// `barrier-slow-disk` is `barrier` on the throttled disk, its server told to complete by
    /// interrupt, with the write log and the host's check (which holds the interrupt check).
    #[test]
    fn the_slow_disk_barrier_is_throttled_and_completes_by_interrupt() {
        let tasks = Tasks { dir: "tasks".into(), kernel: Kernel::Amd64 };
        let scenario = barrier_slow_disk(&tasks, &["clients=4"]).unwrap();
        assert_eq!(scenario.disks[0].throttle, Some(Throttle { iops: 100, bytes_per_second: 20 << 20 }));
        assert!(scenario.disks[0].write_log.is_some() && scenario.after.is_some());
        let server = scenario.modules.iter().find(|m| m.name == "rumpdisk.static").unwrap();
        assert!(server.words.iter().any(|w| w == "--completion=interrupt"), "{:?}", server.words);
        let plain = barrier(&tasks, "barrier", &["clients=4"], Barrier::Honoured).unwrap();
        assert_eq!(plain.disks[0].throttle, None, "only this scenario is slowed down");
    }

    #[test]
    fn a_failed_flush_is_eio_after_good_syncs_and_nothing_after_it_is_synced() {
        let eio = i64::from(store::Errno::EIO.0);
        assert_eq!(
            fault_reported(
                &console(&[(0, 0), (1, 0), (0, 1)], &[(0, 2, eio), (1, 1, eio)]),
                Fault::Flush
            ),
            Ok(())
        );
        assert!(fault_reported(&console(&[(0, 0)], &[]), Fault::Flush)
            .unwrap_err()
            .contains("no client reported"));
        assert!(
            fault_reported(&console(&[(0, 0)], &[(0, 1, 5)]), Fault::Flush)
                .unwrap_err()
                .contains("not EIO")
        );
        assert!(fault_reported(&console(&[], &[(0, 0, eio)]), Fault::Flush)
            .unwrap_err()
            .contains("no round synced"));
        let late =
            fault_reported(&console(&[(0, 0), (0, 3)], &[(0, 2, eio)]), Fault::Flush).unwrap_err();
        assert!(late.contains("client 0 round 3 reported synced"), "{late}");
        let same = fault_reported(&console(&[(1, 2)], &[(1, 2, eio)]), Fault::Flush).unwrap_err();
        assert!(same.contains("client 1 round 2 reported synced"), "{same}");
    }

    #[test]
    fn a_failed_write_never_syncs_its_round() {
        let eio = i64::from(store::Errno::EIO.0);
        let mut reported = console(&[(0, 0), (0, 1), (1, 0)], &[]);
        reported.write_failed.insert(
            Round {
                client: 0,
                round: 2,
            },
            eio,
        );
        assert_eq!(fault_reported(&reported, Fault::Write), Ok(()));
        let mut no_progress = console(&[(1, 0)], &[]);
        no_progress.write_failed = reported.write_failed.clone();
        let error = fault_reported(&no_progress, Fault::Write).unwrap_err();
        assert!(
            error.contains("client 0 round 0 was not reported synced"),
            "{error}"
        );
        no_progress.synced.insert(Round {
            client: 0,
            round: 0,
        });
        assert!(
            fault_reported(&no_progress, Fault::Write).is_err(),
            "round 1 missing"
        );
        reported.synced.insert(Round {
            client: 0,
            round: 2,
        });
        assert!(fault_reported(&reported, Fault::Write).is_err());
    }

    fn verdict(synced_rounds: usize, violations: usize) -> crate::barrier::check::Verdict {
        let round = Round {
            client: 0,
            round: 1,
        };
        crate::barrier::check::Verdict {
            flushes: 3,
            writes: 12,
            synced_rounds,
            violations: (0..violations)
                .map(|_| crate::barrier::check::Violation::NotInLog { round })
                .collect(),
        }
    }

    #[test]
    fn the_real_server_passes_only_a_clean_log_with_synced_rounds() {
        assert_eq!(barrier_verdict(Barrier::Honoured, &verdict(4, 0)), Ok(()));
        assert!(barrier_verdict(Barrier::Honoured, &verdict(4, 1))
            .unwrap_err()
            .contains("barrier violated"));
        assert!(barrier_verdict(Barrier::Honoured, &verdict(0, 0))
            .unwrap_err()
            .contains("no round"));
    }

    #[test]
    fn the_negative_control_passes_only_when_the_checker_finds_a_violation() {
        assert_eq!(barrier_verdict(Barrier::Skipped, &verdict(4, 2)), Ok(()));
        assert!(
            barrier_verdict(Barrier::Skipped, &verdict(4, 0)).is_err(),
            "the checker accepted a skipping server"
        );
        assert!(
            barrier_verdict(Barrier::Skipped, &verdict(0, 0)).is_err(),
            "nothing synced: nothing shown"
        );
    }
}
