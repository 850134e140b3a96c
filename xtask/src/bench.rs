//! `cargo xtask bench`: the speed goals of the project, measured on GNU Mach in QEMU in one run
//! and written to `docs/bench.md` (with `docs/bench-throughput.svg`). Not a test: it prints
//! medians and ratios, and fails only when a run cannot be measured.
//!
//! VM boots. `bench-MODE`, one per ATA transfer mode (`--ata-transfer=MODE` of rumpdisk.static,
//! and the same for the bench task's direct driver): rumpdisk.static with the bench task
//! (tasks/src/bin/bench.rs) as its next task and a peer task; the bench task times with the
//! guest's TSC and prints medians in ticks. `bench-barrier`: the barrier workload with 8 clients,
//! its write log counted and checked. `bench-slow-poll` and `bench-slow-interrupt`: the slow-disk
//! measure of issue 28 (`bench slow` alone; see `slow.rs`).
//! Ticks become seconds with the host's TSC rate: under TCG, QEMU's `rdtsc` reads the host's
//! counter (offset to start at 0 when the virtual CPU starts), so the rate is the host's.

mod ahci;
mod gnumach;
mod goals;
pub mod hurd;
mod hurd_crash;
mod i386;
mod linux;
mod markers;
mod plot;
mod slow;

use crate::tasks::{build_tasks, tasks_for};
use crate::util::{project_root, Error};
use crate::vm::Kernel;
use goals::{machine, today, Results};
use gnumach::{bench_scenario, boot, flush_merging, host_tsc_hz, Guest};
use std::fs;

/// The ATA transfer modes measured, one boot each, the slowest first: the goals are judged on
/// the last, the fastest.
const TRANSFERS: [&str; 3] = ["pio", "multiple", "dma"];

/// `bench vm`, or with no argument both benchmarks: this one, then `bench mig`; `bench linux`
/// measures the Linux anchor alone and prints it; `bench ahci` the AHCI section alone; `bench
/// slow` the slow-disk section alone, into docs/bench.md.
pub fn run(args: &[String]) -> Result<(), Error> {
    match args {
        [] => vm_goals().and_then(|()| crate::bench_mig::run(&[])),
        [vm] if vm == "vm" => vm_goals(),
        [hurd] if hurd == "hurd" => hurd::run(&build_tasks()?),
        [hurd] if hurd == "hurd-crash" => hurd_crash::run(&build_tasks()?),
        [part] if part == "ahci" => {
            let tsc_hz = host_tsc_hz(&fs::read_to_string("/proc/cpuinfo").map_err(|e| Error::new(format!("/proc/cpuinfo: {e}")))?)?;
            print!("{}", ahci::measure(&tasks_for(Kernel::Amd64)?)?.markdown(tsc_hz));
            Ok(())
        }
        [slow] if slow == "slow" => slow::run(&tasks_for(Kernel::Amd64)?),
        [anchor] if anchor == "linux" => {
            let anchor = linux::measure()?;
            println!("{}: {:?}", anchor.kernel, anchor.mib_per_s);
            Ok(())
        }
        other => Err(Error::new(format!(
            "`bench` takes `vm`, `mig`, `linux`, `ahci`, `slow`, `hurd`, `hurd-crash` or nothing (got {other:?})"
        ))),
    }
}

/// The speed goals on GNU Mach, into docs/bench.md and its plot.
fn vm_goals() -> Result<(), Error> {
    let tsc_hz = host_tsc_hz(
        &fs::read_to_string("/proc/cpuinfo")
            .map_err(|e| Error::new(format!("/proc/cpuinfo: {e}")))?,
    )?;
    let tasks = tasks_for(Kernel::Amd64)?;
    let anchor = linux::measure()?;
    let mut runs = Vec::new();
    for transfer in TRANSFERS {
        let console = boot(&bench_scenario(&tasks, transfer))?;
        runs.push((transfer, Guest::parse(&console)?));
    }
    let flushes = flush_merging(&tasks)?;
    let server_bytes = fs::metadata(tasks.dir.join("rumpdisk-static"))
        .map_err(|e| Error::io(&tasks.dir.join("rumpdisk-static"), e))?
        .len();
    let results = Results {
        tsc_hz,
        runs,
        anchor,
        flushes,
        server_bytes,
    };
    let on_i386 = i386::measure()?;
    let on_ahci = ahci::measure(&tasks)?;
    let on_slow_disk = slow::measure(&tasks)?;
    let root = project_root();
    let report = results.markdown(&today()?, &machine())
        + &on_i386.markdown(&results)
        + &on_ahci.markdown(results.tsc_hz)
        + &slow::MARKERS.around(&on_slow_disk.markdown(results.tsc_hz, "the same day, in the same run"));
    print!("{report}");
    for (file, text) in [
        ("docs/bench.md", report),
        ("docs/bench-throughput.svg", results.throughput_svg()),
    ] {
        let path = root.join(file);
        fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        eprintln!("xtask: wrote {file}");
    }
    Ok(())
}
