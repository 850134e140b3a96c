//! The GNU Mach bench boots: rumpdisk.static with the bench task as its next task, the barrier
//! workload's flush count, and what the guest printed (medians in TSC ticks) read back.

use crate::barrier::check::Console;
use crate::scenarios::{self, Barrier};
use crate::tasks::{task, Tasks};
use crate::util::Error;
use crate::iso::Module;
use crate::scenario::{self, Scenario};
use crate::vm::{run_dir, Disk, Expect};
use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

/// Concurrent syncing clients of the flush-merging measure, and their work.
const BARRIER_WORDS: [&str; 3] = ["clients=8", "rounds=25", "sectors=4"];
/// Sectors of the bench disk image (64 MiB), as the other disk scenarios use.
pub const DISK_SECTORS: u64 = 128 * 1024;
pub const MIB: f64 = (1u64 << 20) as f64;

/// rumpdisk.static, started at boot with `extra` options, the bench task as its next task.
pub fn bench_server(tasks: &Tasks, extra: &[&str]) -> Module {
    let mut words = vec!["--host-priv-port=${host-port}", "--device-master-port=${device-port}", "--next-task=${bench-task}"];
    words.extend_from_slice(extra);
    words.extend(["$(task-create)", "$(task-resume)"]);
    task(tasks, "rumpdisk-static", "rumpdisk.static", &words)
}

/// rumpdisk.static serving a fresh image with `--ata-transfer=transfer`, the bench task as its
/// next task (its direct driver moving data the same way), and the null peer.
pub fn bench_scenario(tasks: &Tasks, transfer: &str) -> Scenario {
    let name = format!("bench-{transfer}");
    let server_transfer = format!("--ata-transfer={transfer}");
    let client_transfer = format!("transfer={transfer}");
    let module = |file: &str, name: &str, words: &[&str]| task(tasks, file, name, words);
    Scenario {
        name: name.clone(),
        kernel: tasks.kernel,
        modules: vec![
            bench_server(tasks, &[&server_transfer]),
            // Started by the bench task after its first open, so that nothing but the server and
            // the bench task runs before it, as in a Hurd boot.
            module(
                "bench",
                "peer",
                &[
                    "${host-port}",
                    "${device-port}",
                    "role=peer",
                    "$(peer-task=task-create)",
                ],
            ),
            module(
                "bench",
                "bench",
                &[
                    "role=client",
                    "kernel-master=${device-port}",
                    "peer=${peer-task}",
                    &client_transfer,
                    "$(bench-task=task-create)",
                ],
            ),
        ],
        disks: vec![Disk::fresh(tasks.kernel.run_dir(&name).join("wd0.img"), DISK_SECTORS)],
        timeout: Duration::from_secs(600),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: None,
    }
}

/// Boots `scenario`, requires it to complete, and returns its console.
pub fn boot(scenario: &Scenario) -> Result<String, Error> {
    let outcome = scenario::run(scenario)?;
    let console = scenario.kernel.run_dir(&scenario.name).join("console.log");
    outcome.verdict(scenario.expect).map_err(|why| {
        Error::new(format!(
            "vm {}: {why} (console: {})",
            scenario.name,
            console.display()
        ))
    })?;
    fs::read_to_string(&console).map_err(|e| Error::io(&console, e))
}

/// Flushes the drive saw per DEV_FLUSH_CACHE request, with 8 clients syncing at once.
#[derive(Debug)]
pub struct FlushMerging {
    pub requests: usize,
    pub flushes: usize,
    pub writes: usize,
}

pub fn flush_merging(tasks: &Tasks) -> Result<FlushMerging, Error> {
    let mut scenario =
        scenarios::barrier(tasks, "bench-barrier", &BARRIER_WORDS, Barrier::Honoured)?;
    scenario.after = None; // checked below, where the counts are kept
    let console = boot(&scenario)?;
    let disk = &scenario.disks[0];
    let log = disk
        .write_log
        .as_deref()
        .ok_or_else(|| Error::new("the barrier scenario has no write log"))?;
    let verdict = crate::barrier::check_run(
        log,
        &run_dir("bench-barrier").join("console.log"),
        Some(&disk.image),
    )?;
    if !verdict.holds() {
        return Err(Error::new(format!(
            "bench-barrier: the write log does not prove the barrier: {}",
            verdict.summary()
        )));
    }
    // Every sync a client made is one DEV_FLUSH_CACHE request, whether it returned or failed.
    let reported = Console::parse(&console);
    Ok(FlushMerging {
        requests: reported.synced.len() + reported.failed.len(),
        flushes: verdict.flushes,
        writes: verdict.writes,
    })
}

/// The TSC rate from /proc/cpuinfo: the `cpu MHz` of a CPU whose TSC is invariant
/// (`constant_tsc` and `nonstop_tsc`), so the counter ticks at that rate whatever the core does.
pub fn host_tsc_hz(cpuinfo: &str) -> Result<f64, Error> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim())
        })
    };
    let flags: Vec<&str> = field("flags").unwrap_or("").split_whitespace().collect();
    if !(flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")) {
        return Err(Error::new(
            "this CPU's TSC is not invariant (no constant_tsc/nonstop_tsc): ticks cannot be timed",
        ));
    }
    let mhz: f64 = field("cpu MHz")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::new("/proc/cpuinfo has no cpu MHz"))?;
    Ok(mhz * 1e6)
}

/// What the guest printed, in TSC ticks.
#[derive(Debug, Default, PartialEq)]
pub struct Guest {
    pub server_started: u64,
    /// The bench task's own start, which splits the first open's time.
    pub client_started: u64,
    pub first_open: u64,
    /// Median ticks of the drive's cache flush after a few writes (direct driver).
    pub device_flush: u64,
    /// Ticks one console line took the bench task to print.
    pub console_line: u64,
    /// Console lines printed between the server's start and the first open (its start line too).
    pub lines_in_start: usize,
    /// Median ticks of each kind of timed call (RPCs, the direct one-sector read).
    pub calls: BTreeMap<String, u64>,
    /// Median ticks per request, by (path, op, bytes).
    pub io: BTreeMap<IoKey, u64>,
}

impl Guest {
    pub fn parse(console: &str) -> Result<Guest, Error> {
        let mut guest = Guest::default();
        for line in console.lines() {
            if guest.server_started != 0 && guest.client_started == 0 {
                guest.lines_in_start += 1;
            }
            if let Some(rest) = after(line, "rumpdisk: started ") {
                guest.server_started = number(&fields(rest), "tsc")?;
            } else if let Some(rest) = after(line, "bench: flush ") {
                guest.device_flush = number(&fields(rest), "median")?;
            } else if let Some(rest) = after(line, "bench: console-line ") {
                guest.console_line = number(&fields(rest), "ticks")?;
            } else if let Some(rest) = after(line, "bench: client-start ") {
                guest.client_started = number(&fields(rest), "tsc")?;
            } else if let Some(rest) = after(line, "bench: first-open ") {
                guest.first_open = number(&fields(rest), "tsc")?;
            } else if let Some(rest) = after(line, "bench: call ") {
                let f = fields(rest);
                guest.calls.insert(text(&f, "what")?, number(&f, "median")?);
            } else if let Some(io) = io_median(line) {
                let (key, median) = io?;
                guest.io.insert(key, median);
            }
        }
        if guest.server_started == 0 || guest.client_started == 0 || guest.first_open == 0 {
            return Err(Error::new(
                "the console lacks the server's start or the first open's time",
            ));
        }
        Ok(guest)
    }

    pub fn call(&self, what: &str) -> Result<u64, Error> {
        self.calls
            .get(what)
            .copied()
            .ok_or_else(|| Error::new(format!("the console has no `{what}` time")))
    }

    /// Request sizes measured on both paths, ascending.
    pub fn sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.io.keys().map(|(_, _, b)| *b).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    pub fn ticks(&self, path: &str, op: &str, bytes: u64) -> Option<u64> {
        self.io
            .get(&(path.to_owned(), op.to_owned(), bytes))
            .copied()
    }
}

/// What a `bench: io` line measured: (path, op, bytes).
pub type IoKey = (String, String, u64);

/// A `bench: io` line's key and median ticks.
pub fn io_median(line: &str) -> Option<Result<(IoKey, u64), Error>> {
    let f = fields(after(line, "bench: io ")?);
    let key = || Ok((text(&f, "path")?, text(&f, "op")?, number(&f, "bytes")?));
    Some(key().and_then(|key| Ok((key, number(&f, "median")?))))
}

/// What follows `marker` in `line`, without the serial console's carriage return.
pub fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker)
        .map(|i| line[i + marker.len()..].trim_end_matches('\r'))
}

/// The `key=value` words of a guest's line.
pub fn fields(rest: &str) -> BTreeMap<&str, &str> {
    rest.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn text(fields: &BTreeMap<&str, &str>, key: &str) -> Result<String, Error> {
    fields
        .get(key)
        .map(|v| v.to_string())
        .ok_or_else(|| Error::new(format!("a bench line lacks {key}=")))
}

fn number(fields: &BTreeMap<&str, &str>, key: &str) -> Result<u64, Error> {
    fields
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::new(format!("a bench line lacks a number {key}=")))
}

pub fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub const CONSOLE: &str = "rumpdisk: started tsc=1000\r\n\
        ata: wd0: a drive\n\
        bench: client-start tsc=2000\n\
        bench: console-line ticks=500\n\
        bench: flush count=32 median=70\n\
        bench: first-open tsc=4000\n\
        bench: call what=task-null count=10000 median=50\n\
        bench: call what=server-read-inband-1 count=10000 median=150\n\
        bench: call what=direct-read-512 count=10000 median=60\n\
        bench: io path=direct op=read bytes=4096 count=256 median=100\n\
        bench: io path=server op=read bytes=4096 count=256 median=125\n\
        bench: io path=direct op=read bytes=16384 count=256 median=190\n\
        bench: io path=server op=read bytes=16384 count=256 median=200\n\
        bench: io path=null-server op=read bytes=16384 count=256 median=10\n";

    #[test]
    fn reads_what_the_guest_printed() {
        let g = Guest::parse(CONSOLE).unwrap();
        assert_eq!(
            (
                g.server_started,
                g.first_open,
                g.console_line,
                g.lines_in_start
            ),
            (1000, 4000, 500, 2)
        );
        assert_eq!(g.call("task-null").unwrap(), 50);
        assert_eq!(g.device_flush, 70);
        assert_eq!(g.ticks("server", "read", 4096), Some(125));
        assert_eq!(g.sizes(), vec![4096, 16384]);
        assert!(Guest::parse("bench: call what=x median=\n").is_err());
        assert!(Guest::parse("nothing\n").is_err());
    }

    #[test]
    fn the_tsc_rate_needs_an_invariant_counter() {
        let info =
            "model name\t: X\ncpu MHz\t\t: 2596.122\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n";
        assert_eq!(host_tsc_hz(info).unwrap(), 2_596_122_000.0);
        assert!(host_tsc_hz("cpu MHz : 2000\nflags : fpu tsc\n").is_err());
    }

    #[test]
    fn sizes_are_labelled_in_binary_units() {
        assert_eq!(size_label(512), "512 B");
        assert_eq!(size_label(16 << 10), "16 KiB");
        assert_eq!(size_label(1 << 20), "1 MiB");
    }
}
