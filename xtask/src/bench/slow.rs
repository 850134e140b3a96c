//! `cargo xtask bench slow` (issue 28): whether a slow disk's requests burn the processor. Two
//! boots on the same throttled disk ([`SLOW_DISK`]), rumpdisk.static completing commands by
//! polling in one and by interrupt in the other, each with the slow-disk task
//! (tasks/src/bin/slowdisk.rs) as its next task and a CPU-bound neighbour task beside it. Per
//! boot: the neighbour's progress while the client does 4 KiB and 1 MiB I/O, as a share of its
//! progress while the system is idle; the processor time the driver's task used, as a share of
//! the requests' wall time; requests a second. Written into `docs/bench.md` between its
//! [`MARKERS`], and part of the whole `cargo xtask bench`.

use super::gnumach::{after, bench_server, boot, fields, host_tsc_hz, DISK_SECTORS};
use super::goals::{machine, today};
use super::markers::Markers;
use crate::interrupts::{self, Taken};
use crate::iso::Module;
use crate::scenario::Scenario;
use crate::scenarios::SLOW_DISK;
use crate::tasks::{task, Tasks};
use crate::util::{project_root, Error};
use crate::vm::{Disk, Expect};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

pub const MARKERS: Markers = Markers { begin: "<!-- cargo xtask bench slow: begin -->", end: "<!-- cargo xtask bench slow: end -->" };
const DOC: &str = "docs/bench.md";
/// The two ways rumpdisk.static awaits a command's end (`--completion=`), polling first.
const COMPLETIONS: [&str; 2] = ["poll", "interrupt"];
/// The goals, with interrupts: the neighbour keeps this share of its idle speed at least...
const NEIGHBOUR_GOAL: f64 = 0.90;
/// ... and the driver uses this share of the requests' time at most.
const DRIVER_GOAL: f64 = 0.05;

/// `bench slow` alone: measures, prints the section and puts it into docs/bench.md.
pub fn run(tasks: &Tasks) -> Result<(), Error> {
    let tsc_hz = host_tsc_hz(&fs::read_to_string("/proc/cpuinfo").map_err(|e| Error::new(format!("/proc/cpuinfo: {e}")))?)?;
    let section = measure(tasks)?.markdown(tsc_hz, &format!("{}, on {}", today()?, machine()));
    print!("{section}");
    let path = project_root().join(DOC);
    let doc = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let doc = match MARKERS.replace(&doc, &section) {
        Ok(doc) => doc,
        // A page the whole bench wrote before this section existed: it goes at the end.
        Err(_) => format!("{doc}\n{}", MARKERS.around(&section)),
    };
    fs::write(&path, doc).map_err(|e| Error::io(&path, e))?;
    eprintln!("xtask: wrote the slow-disk section into {DOC}");
    Ok(())
}

/// Both boots, polling first.
pub fn measure(tasks: &Tasks) -> Result<SlowDisk, Error> {
    let started = Instant::now();
    let mut runs = Vec::new();
    for completion in COMPLETIONS {
        let console = boot(&scenario(tasks, completion))?;
        let run = Run::parse(completion, &console).map_err(|why| Error::new(format!("bench-slow-{completion}: {why}")))?;
        runs.push(run);
    }
    Ok(SlowDisk { runs, took: started.elapsed() })
}

/// rumpdisk.static with `--completion=completion` on a fresh throttled disk, the slow-disk
/// client as its next task, the neighbour created for the client to resume.
fn scenario(tasks: &Tasks, completion: &str) -> Scenario {
    let name = format!("bench-slow-{completion}");
    let server_completion = format!("--completion={completion}");
    let module = |name: &str, words: &[&str]| -> Module { task(tasks, "slowdisk", name, words) };
    Scenario {
        name: name.clone(),
        kernel: tasks.kernel,
        modules: vec![
            bench_server(tasks, &[&server_completion]),
            module("neighbour", &["role=neighbour", "$(neighbour-task=task-create)"]),
            module("slowdisk", &["role=client", "neighbour=${neighbour-task}", "$(bench-task=task-create)"]),
        ],
        disks: vec![Disk { throttle: Some(SLOW_DISK), ..Disk::fresh(tasks.kernel.run_dir(&name).join("wd0.img"), DISK_SECTORS) }],
        timeout: Duration::from_secs(300),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: None,
    }
}

/// One `slowdisk: phase` line: the differences between its two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Phase {
    pub requests: u64,
    pub ticks: u64,
    pub count: u64,
    pub driver_ns: u64,
    pub neighbour_ns: u64,
    /// The client's own processor time (its RPCs, the kernel's work on its messages).
    pub client_ns: u64,
}

/// One boot's phases.
#[derive(Debug, PartialEq)]
pub struct Run {
    pub completion: String,
    /// The idle phases before the rounds of each request size, summed.
    pub idle: BTreeMap<u64, Phase>,
    /// The I/O phases by request size and operation (`write`, `read`).
    pub io: BTreeMap<(u64, String), Phase>,
    /// Interrupts the driver logged at least (none when it polled).
    pub interrupts: Option<u64>,
}

impl Run {
    /// The phases `console` shows, and a check that the driver completed commands as
    /// `completion` says.
    pub fn parse(completion: &str, console: &str) -> Result<Run, String> {
        let interrupts = match (completion, interrupts::taken(console)) {
            ("interrupt", Ok(Taken::AtLeast(count))) => Some(count),
            ("interrupt", Ok(Taken::NoDisk)) => return Err("the driver opened no disk".into()),
            ("interrupt", Err(why)) => return Err(why),
            (_, Ok(_)) => return Err("the driver took an interrupt line where it was told to poll".into()),
            (_, Err(_)) if console.contains("--completion=poll: commands complete by polling") => None,
            (_, Err(why)) => return Err(format!("the console does not say the driver polled ({why})")),
        };
        let mut run = Run { completion: completion.into(), idle: BTreeMap::new(), io: BTreeMap::new(), interrupts };
        for line in console.lines() {
            let Some(rest) = after(line, "slowdisk: phase ") else { continue };
            let fields = fields(rest);
            let number = |key: &str| fields.get(key).and_then(|v| v.parse::<u64>().ok()).ok_or(format!("a phase line lacks {key}=: {line}"));
            let phase = Phase {
                requests: number("requests")?,
                ticks: number("ticks")?,
                count: number("count")?,
                driver_ns: number("driver_ns")?,
                neighbour_ns: number("neighbour_ns")?,
                client_ns: number("client_ns")?,
            };
            // The rounds' phases of one kind and size add up.
            let bytes = number("bytes")?;
            let sum = match fields.get("what") {
                Some(&"idle") => run.idle.entry(bytes).or_default(),
                Some(&op) if op == "write" || op == "read" => run.io.entry((bytes, op.to_owned())).or_default(),
                _ => return Err(format!("a phase line of no known phase: {line}")),
            };
            *sum = sum.plus(phase);
        }
        let idle = run.all_idle();
        let sizes_idle = run.io.keys().all(|(bytes, _)| run.idle.get(bytes).is_some_and(|idle| idle.ticks > 0 && idle.count > 0));
        if idle.neighbour_ns == 0 || run.io.is_empty() || !sizes_idle {
            return Err("the console lacks the idle or the I/O phases".into());
        }
        Ok(run)
    }

    fn all_idle(&self) -> Phase {
        self.idle.values().copied().fold(Phase::default(), Phase::plus)
    }

    /// The I/O phases of `bytes`, writes and reads summed, or those of `op` alone.
    pub fn io(&self, bytes: u64, op: Option<&str>) -> Option<Phase> {
        self.io.iter().filter(|((b, o), _)| *b == bytes && op.is_none_or(|op| op == o)).map(|(_, phase)| *phase).reduce(Phase::plus)
    }

    /// The neighbour's speed during the I/O of `bytes` as a share of its idle speed.
    pub fn neighbour_share(&self, bytes: u64) -> Option<f64> {
        self.neighbour_share_in(bytes, self.io(bytes, None)?)
    }

    /// Against the idle phases that took turns with the I/O of `bytes`.
    fn neighbour_share_in(&self, bytes: u64, io: Phase) -> Option<f64> {
        let idle = self.idle.get(&bytes)?;
        Some((io.count as f64 / io.ticks as f64) / (idle.count as f64 / idle.ticks as f64))
    }

    /// GNU Mach's processor-time clock against real time: the neighbour's time in the idle
    /// phases over their length (it had the processor alone, but for the kernel's own work).
    /// Under TCG the kernel's clocks need not run at real time (its `host_get_time` ran 2×
    /// fast here once); the driver's time is divided by this.
    pub fn kernel_clock_rate(&self, tsc_hz: f64) -> f64 {
        let idle = self.all_idle();
        idle.neighbour_ns as f64 / (idle.ticks as f64 / tsc_hz * 1e9)
    }

    /// The driver's processor time during the I/O of `bytes`, in real time, as a share of the
    /// requests' wall time, and per request in µs.
    pub fn driver_share(&self, bytes: u64, tsc_hz: f64) -> Option<(f64, f64)> {
        self.time_share(self.io(bytes, None)?, |p| p.driver_ns, tsc_hz)
    }

    /// A task's processor time in `io` (`of` picks it), in real time, as a share of the
    /// phase's wall time, and per request in µs.
    fn time_share(&self, io: Phase, of: fn(&Phase) -> u64, tsc_hz: f64) -> Option<(f64, f64)> {
        let ns = of(&io) as f64 / self.kernel_clock_rate(tsc_hz);
        let wall_ns = io.ticks as f64 / tsc_hz * 1e9;
        (io.requests > 0).then(|| (ns / wall_ns, ns / io.requests as f64 / 1e3))
    }

    pub fn requests_per_second(&self, bytes: u64, tsc_hz: f64) -> Option<f64> {
        let io = self.io(bytes, None)?;
        Some(io.requests as f64 / (io.ticks as f64 / tsc_hz))
    }
}

impl Phase {
    fn plus(self, other: Phase) -> Phase {
        Phase {
            requests: self.requests + other.requests,
            ticks: self.ticks + other.ticks,
            count: self.count + other.count,
            driver_ns: self.driver_ns + other.driver_ns,
            neighbour_ns: self.neighbour_ns + other.neighbour_ns,
            client_ns: self.client_ns + other.client_ns,
        }
    }
}

/// Both boots' figures, and how long the two boots took.
pub struct SlowDisk {
    pub runs: Vec<Run>,
    pub took: Duration,
}

/// Where the figures are explained (a pointer, not figures: those are the run's).
const WHY: &str = "\nWhat the figures show, and why 1 MiB writes cost the driver processor time with \
                   interrupts too (the task's wiring, not the wait): [design.md](design.md), \
                   \"Completion by interrupt\".\n";

/// The request sizes of the table.
const SIZES: [u64; 2] = [4096, 1 << 20];

impl SlowDisk {
    /// The section of docs/bench.md (its heading, how it was measured, the table, the goals);
    /// `when` says when and on what it was measured.
    pub fn markdown(&self, tsc_hz: f64, when: &str) -> String {
        let percent = |share: Option<f64>| share.map_or("—".to_owned(), |s| format!("{:.1} %", s * 100.0));
        let mut md = format!(
            "\n## On a slow disk: what waiting costs the processor\n\n\
             Written by `cargo xtask bench slow` (also part of the whole `cargo xtask bench`) on \
             {when}.\n\n\
             The disk throttled by QEMU's `throttle` filter to {} requests and {} MiB a second \
             (at that pace a 4 KiB request takes 5 ms, a 1 MiB one 50 ms, as on a real drive; \
             the throttle lets a burst through after an idle spell, so the writes, which follow \
             the idle phases, take less), the same disk in two boots: rumpdisk.static awaiting \
             each command's end by polling (`--completion=poll`: it spins on the controller's status) and by the disk's \
             interrupt (`--completion=interrupt`, the default). Beside it, a CPU-bound neighbour \
             task that only counts; the client (`tasks/src/bin/slowdisk.rs`) reads the \
             neighbour's count (`vm_read` of its page), the TSC and the processor time GNU Mach \
             charged each task at both ends of each phase. Per request size, 8 rounds of: sleep \
             250 ms (the idle phase), write {{50, 5}} requests of {{4 KiB, 1 MiB}} one after \
             another, read them back (about 250 ms each way): short phases taking turns, so \
             that the shared host's changes of speed, which slow the neighbour's count per TSC \
             tick whatever the guest does, fall on idle and busy phases alike. The neighbour's \
             speed during I/O is its count per TSC tick over all rounds' writes and reads of a \
             size, over its count per tick in those rounds' idle phases. The driver's processor \
             time is what GNU Mach charged the threads of rumpdisk.static's task \
             (`task_info(TASK_THREAD_TIMES_INFO)`, user and system, read by the client through \
             the task port the boot hand-off gives it), converted to real time with the rate \
             GNU Mach's clock charged the neighbour in the idle phases (it had the processor \
             alone then), over the I/O phases' wall time. GNU Mach charges processor time by \
             clock tick (10 ms): each figure counts the ticks that found the driver running in \
             the 3 s or so of a size's I/O, one tick being 0.3 % of it. Both boots: 1 virtual CPU \
             under TCG, every task at the boot script's default priority, GNU Mach's \
             time-sharing scheduler between them (nothing is given a priority); the \
             client's own work (its RPCs) is part of what the neighbour loses. One run of the \
             two boots took {:.0} s.\n\n\
             | completion | neighbour's speed, 4 KiB I/O | neighbour's speed, 1 MiB I/O | driver CPU / request time, 4 KiB | driver CPU / request time, 1 MiB | requests/s, 4 KiB | requests/s, 1 MiB |\n\
             |---|---|---|---|---|---|---|\n",
            SLOW_DISK.iops,
            SLOW_DISK.bytes_per_second >> 20,
            self.took.as_secs_f64(),
        );
        for run in &self.runs {
            let label = match run.interrupts {
                Some(count) => format!("`{}` (at least {count} interrupts)", run.completion),
                None => format!("`{}`", run.completion),
            };
            let _ = write!(md, "| {label} |");
            for bytes in SIZES {
                let _ = write!(md, " {} |", percent(run.neighbour_share(bytes)));
            }
            for bytes in SIZES {
                let cell = run.driver_share(bytes, tsc_hz).map_or("—".to_owned(), |(share, us)| format!("{:.1} % ({us:.0} µs a request)", share * 100.0));
                let _ = write!(md, " {cell} |");
            }
            for bytes in SIZES {
                let _ = write!(md, " {} |", run.requests_per_second(bytes, tsc_hz).map_or("—".to_owned(), |r| format!("{r:.1}")));
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "\nGNU Mach's processor-time clock ran at {} of real time in the idle phases (polling, \
             interrupt).\n",
            self.runs.iter().map(|r| format!("{:.2}×", r.kernel_clock_rate(tsc_hz))).collect::<Vec<_>>().join(", ")
        );
        md.push_str(&self.goals(tsc_hz));
        md.push_str(&self.breakdown(tsc_hz));
        md.push_str(WHY);
        md
    }

    /// Each boot's phases apart: writes and reads, and the client's own processor time beside
    /// the driver's.
    fn breakdown(&self, tsc_hz: f64) -> String {
        let mut md = String::from(
            "\nBy phase (the client's processor time is its own task's, measured as the driver's):\n\n\
             | completion | requests | request time | neighbour's speed | driver CPU (a request) | client CPU (a request) |\n\
             |---|---|---|---|---|---|\n",
        );
        let cell = |share: Option<(f64, f64)>| share.map_or("—".to_owned(), |(share, us)| format!("{:.1} % ({us:.0} µs)", share * 100.0));
        for run in &self.runs {
            for ((bytes, op), io) in &run.io {
                let _ = writeln!(
                    md,
                    "| `{}` | {} {op}s of {} | {:.2} ms | {} | {} | {} |",
                    run.completion,
                    io.requests,
                    super::gnumach::size_label(*bytes),
                    io.ticks as f64 / tsc_hz * 1e3 / io.requests.max(1) as f64,
                    run.neighbour_share_in(*bytes, *io).map_or("—".to_owned(), |s| format!("{:.1} %", s * 100.0)),
                    cell(run.time_share(*io, |p| p.driver_ns, tsc_hz)),
                    cell(run.time_share(*io, |p| p.client_ns, tsc_hz)),
                );
            }
        }
        md
    }

    /// The goals, judged on the interrupt boot.
    fn goals(&self, tsc_hz: f64) -> String {
        let Some(run) = self.runs.iter().find(|r| r.completion == "interrupt") else { return String::new() };
        let mut md = String::from("| goal, with interrupts | measured | met? |\n|---|---|---|\n");
        let met = |ok: bool| if ok { "yes" } else { "**no**" };
        for bytes in SIZES {
            let label = super::gnumach::size_label(bytes);
            if let Some(share) = run.neighbour_share(bytes) {
                let _ = writeln!(md, "| neighbour keeps ≥ {:.0} % of its idle speed, {label} I/O | {:.1} % | {} |", NEIGHBOUR_GOAL * 100.0, share * 100.0, met(share >= NEIGHBOUR_GOAL));
            }
            if let Some((share, _)) = run.driver_share(bytes, tsc_hz) {
                let _ = writeln!(md, "| driver CPU ≤ {:.0} % of the request time, {label} | {:.1} % | {} |", DRIVER_GOAL * 100.0, share * 100.0, met(share <= DRIVER_GOAL));
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSC_HZ: f64 = 1e9;

    /// A console of the interrupt boot: idle phases of 1 s (1e9 ticks) in which the neighbour
    /// counts 1000 and is charged 1 s; 4 KiB I/O in 2 s (writes, then reads) with 1800 counted
    /// and 50 ms of driver time over 400 requests.
    fn console(completion_line: &str) -> String {
        format!(
            "{completion_line}ata: wd0: \"QEMU HARDDISK\", 131072 sectors, transfer Dma\n\
             slowdisk: phase what=idle bytes=4096 requests=0 ticks=1000000000 count=1000 driver_ns=0 neighbour_ns=1000000000 client_ns=0\r\n\
             slowdisk: phase what=write bytes=4096 requests=200 ticks=1200000000 count=1000 driver_ns=30000000 neighbour_ns=1000000000 client_ns=10000000\n\
             slowdisk: phase what=read bytes=4096 requests=200 ticks=800000000 count=800 driver_ns=20000000 neighbour_ns=800000000 client_ns=0\n\
             slowdisk: phase what=idle bytes=4096 requests=0 ticks=1000000000 count=1000 driver_ns=0 neighbour_ns=1000000000 client_ns=0\n\
             ata: Primary channel: IRQ 14: 256 interrupts taken\n"
        )
    }

    const BY_INTERRUPT: &str = "ata: Primary channel: commands complete by interrupt (IRQ 14)\n";
    const BY_POLLING: &str = "ata: --completion=poll: commands complete by polling\n";

    #[test]
    fn the_shares_are_of_the_idle_speed_and_of_the_wall_time() {
        let run = Run::parse("interrupt", &console(BY_INTERRUPT)).unwrap();
        assert_eq!(run.interrupts, Some(256));
        assert_eq!(run.idle[&4096].ticks, 2_000_000_000, "both idle phases count");
        assert_eq!(run.neighbour_share(4096), Some(0.9));
        assert_eq!(run.kernel_clock_rate(TSC_HZ), 1.0);
        let (share, us) = run.driver_share(4096, TSC_HZ).unwrap();
        assert!((share - 0.025).abs() < 1e-12 && (us - 125.0).abs() < 1e-9, "{share} {us}");
        assert_eq!(run.requests_per_second(4096, TSC_HZ), Some(200.0));
        assert_eq!(run.neighbour_share(1 << 20), None, "a size not measured");
    }

    /// A kernel clock that charges twice real time halves the driver's share.
    #[test]
    fn the_driver_s_time_is_read_in_real_time() {
        let doubled = console(BY_INTERRUPT).replace("neighbour_ns=1000000000", "neighbour_ns=2000000000");
        let run = Run::parse("interrupt", &doubled).unwrap();
        assert_eq!(run.kernel_clock_rate(TSC_HZ), 2.0);
        let (share, _) = run.driver_share(4096, TSC_HZ).unwrap();
        assert!((share - 0.0125).abs() < 1e-12, "{share}");
    }

    /// The host ran at half speed through the 1 MiB rounds: their I/O is judged against their
    /// own idle phases, not the 4 KiB rounds'.
    #[test]
    fn each_size_is_judged_against_the_idle_phases_of_its_rounds() {
        let slower_host = "slowdisk: phase what=idle bytes=1048576 requests=0 ticks=1000000000 count=500 driver_ns=0 neighbour_ns=2500000000 client_ns=0\n\
                           slowdisk: phase what=write bytes=1048576 requests=5 ticks=1000000000 count=450 driver_ns=0 neighbour_ns=900000000 client_ns=0\n";
        let run = Run::parse("interrupt", &(console(BY_INTERRUPT) + slower_host)).unwrap();
        assert_eq!(run.neighbour_share(1 << 20), Some(0.9));
        assert_eq!(run.neighbour_share(4096), Some(0.9));
        // 2 s of the 4 KiB rounds' idle phases and 2.5 s of the 1 MiB rounds' in 3 s.
        assert_eq!(run.kernel_clock_rate(TSC_HZ), 1.5, "every idle phase calibrates the clock");
    }

    #[test]
    fn each_boot_must_have_completed_as_it_was_told() {
        assert_eq!(Run::parse("poll", &console(BY_POLLING)).unwrap().interrupts, None);
        assert!(Run::parse("poll", &console(BY_INTERRUPT)).unwrap_err().contains("where it was told to poll"));
        assert!(Run::parse("interrupt", &console(BY_POLLING)).unwrap_err().contains("the driver polled"));
        assert!(Run::parse("poll", "ata: wd0: a disk\n").unwrap_err().contains("does not say the driver polled"));
        let no_io = console(BY_POLLING).lines().filter(|l| !l.contains("what=write") && !l.contains("what=read")).collect::<Vec<_>>().join("\n");
        assert!(Run::parse("poll", &no_io).unwrap_err().contains("lacks the idle or the I/O"));
    }

    #[test]
    fn the_goals_are_judged_on_the_interrupt_boot() {
        let slow = SlowDisk {
            runs: vec![Run::parse("poll", &console(BY_POLLING)).unwrap(), Run::parse("interrupt", &console(BY_INTERRUPT)).unwrap()],
            took: Duration::from_secs(1),
        };
        let md = slow.markdown(TSC_HZ, "today");
        assert!(md.contains("| `poll` | 90.0 % | — | 2.5 % (125 µs a request) | — | 200.0 | — |"), "{md}");
        assert!(md.contains("| `interrupt` (at least 256 interrupts) |"), "{md}");
        assert!(md.contains("| neighbour keeps ≥ 90 % of its idle speed, 4 KiB I/O | 90.0 % | yes |"), "{md}");
        assert!(md.contains("| driver CPU ≤ 5 % of the request time, 4 KiB | 2.5 % | yes |"), "{md}");
        // Apart: the writes took 6 ms each, and the neighbour counted 1000 where idle it counts 1200.
        assert!(md.contains("| `interrupt` | 200 writes of 4 KiB | 6.00 ms | 83.3 % | 2.5 % (150 µs) | 0.8 % (50 µs) |"), "{md}");
        assert!(md.contains("| `interrupt` | 200 reads of 4 KiB | 4.00 ms | 100.0 % | 2.5 % (100 µs) | 0.0 % (0 µs) |"), "{md}");
        let slower = console(BY_INTERRUPT).replace("count=800", "count=700");
        let slow = SlowDisk { runs: vec![Run::parse("interrupt", &slower).unwrap()], took: Duration::from_secs(1) };
        assert!(slow.markdown(TSC_HZ, "today").contains("4 KiB I/O | 85.0 % | **no** |"));
    }
}
