//! `cargo xtask bench hurd`: the boot disk drivers side by side on the Hurd built from sources,
//! each booted with Debian's GRUB line (pci-arbiter, the driver, ext2fs on part:2:device:wd0) in
//! the same VM set-up, running the same workload (`Hurd::bench`): upstream's C rumpdisk with the
//! NetBSD rump kernel, ours with its native ATA driver, and ours over the same rump kernel.
//! Written to `docs/bench-hurd.md`.
//!
//! Rates come from the guest's own clock (`hurd-bench` prints bytes, files and microseconds);
//! flushes per sync from the disk's write log between two marker writes; boot time from when
//! the console line of `runsystem` arrived on the host, QEMU started at 0.

use crate::barrier::log::{Entry, Log};
use crate::hurd::scenarios::{
    read_log, Driver, Hurd, BENCH_FILES_FOUR, BENCH_FOUR_DIR, BENCH_FOUR_END, BENCH_FOUR_START,
};
use crate::scenario;
use crate::util::{project_root, Error};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// What one driver's boot measured.
#[derive(Debug, Default, PartialEq)]
pub struct Measures {
    /// (row, value): MiB/s, files/s, flushes per sync, seconds, KiB.
    pub rows: BTreeMap<String, f64>,
}

/// The rows in the order printed, each with its unit and whether more is better.
const ROWS: [(&str, &str, bool); 11] = [
    ("raw write 4 KiB", "MiB/s", true),
    ("raw read 4 KiB", "MiB/s", true),
    ("raw write 1 MiB", "MiB/s", true),
    ("raw read 1 MiB", "MiB/s", true),
    ("files of 4 KiB synced, one client", "files/s", true),
    ("files of 1 MiB synced, one client", "files/s", true),
    ("files of 4 KiB synced, four clients", "files/s", true),
    ("flushes per sync, four clients", "", false),
    ("boot: QEMU start to the Hurd's runsystem", "s", false),
    ("driver resident memory after the workload", "KiB", false),
    ("the driver's program", "KiB", false),
];

/// The drivers measured, in the table's order: upstream's first, the one the others are
/// measured against.
const DRIVERS: [Driver; 3] = [Driver::Upstream, Driver::Ours, Driver::OursRump];

pub fn run(tasks: &Path) -> Result<(), Error> {
    let hurd = Hurd::new(tasks, crate::hurd::Systems::Upstream)?;
    let mut measured = Vec::new();
    for driver in DRIVERS {
        let hurd = hurd.with(driver);
        let (scenario, write_log) = hurd.bench()?;
        let outcome = scenario::run(&scenario)?;
        scenario::report(&scenario, &outcome, std::time::Duration::ZERO);
        outcome
            .verdict(scenario.expect)
            .map_err(|why| Error::new(format!("{}: {why}", scenario.name)))?;
        let console_path = scenario.kernel.run_dir(&scenario.name).join("console.log");
        let console =
            fs::read_to_string(&console_path).map_err(|e| Error::io(&console_path, e))?;
        let log = read_log(&write_log).map_err(Error::new)?;
        let mut measures = Measures::parse(&console, &outcome.line_times, &log)?;
        let program = hurd.driver_program();
        let size = fs::metadata(&program).map_err(|e| Error::io(&program, e))?.len();
        measures.rows.insert(ROWS[10].0.into(), size as f64 / 1024.0);
        measured.push((driver, measures));
    }
    let report = markdown(&measured);
    print!("{report}");
    let path = project_root().join("docs/bench-hurd.md");
    fs::write(&path, report).map_err(|e| Error::io(&path, e))?;
    eprintln!("xtask: wrote docs/bench-hurd.md");
    Ok(())
}

impl Measures {
    /// Reads the guest's `hurd-bench:` lines, the boot time and the four clients' flushes.
    pub fn parse(console: &str, line_times: &[std::time::Duration], log: &Log) -> Result<Measures, Error> {
        let mut rows = BTreeMap::new();
        let mut four_clients_us = 0u64;
        // The serial console ends its lines with a carriage return.
        for line in console.lines().map(str::trim_end) {
            let Some(rest) = line.split("hurd-bench: ").nth(1) else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            let number = |s: &str| {
                s.trim_end_matches(':')
                    .parse::<u64>()
                    .map_err(|_| Error::new(format!("hurd-bench: not a number in `{line}`")))
            };
            match words[..] {
                // raw write 4096: 8388608 bytes in 123 us
                ["raw", what, size, bytes, "bytes", "in", us, "us"] => {
                    let (size, bytes, us) = (number(size)?, number(bytes)?, number(us)?.max(1));
                    let label = format!("raw {what} {}", if size == 4096 { "4 KiB" } else { "1 MiB" });
                    rows.insert(label, bytes as f64 / (1u64 << 20) as f64 / (us as f64 / 1e6));
                }
                // files /data/one 0 4096: 40 files, 40 syncs in 123 us
                ["files", dir, _client, size, files, "files,", _, "syncs", "in", us, "us"] => {
                    let (size, files, us) = (number(size)?, number(files)?, number(us)?.max(1));
                    if dir == BENCH_FOUR_DIR {
                        four_clients_us = four_clients_us.max(us);
                    } else {
                        let label = format!(
                            "files of {} synced, one client",
                            if size == 4096 { "4 KiB" } else { "1 MiB" }
                        );
                        rows.insert(label, files as f64 / (us as f64 / 1e6));
                    }
                }
                // The driver's line (GRUB names both drivers so), not grep's own.
                ["ps:", _pid, rss, program, ..] if program.ends_with("rumpdisk.static") => {
                    if let Some(kib) = rss_kib(rss) {
                        rows.insert(ROWS[9].0.into(), kib);
                    }
                }
                _ => {}
            }
        }
        if four_clients_us > 0 {
            rows.insert(
                ROWS[6].0.into(),
                f64::from(4 * BENCH_FILES_FOUR) / (four_clients_us as f64 / 1e6),
            );
        }
        let flushes = flushes_between(log, BENCH_FOUR_START.as_bytes(), BENCH_FOUR_END.as_bytes())?;
        rows.insert(ROWS[7].0.into(), flushes as f64 / f64::from(4 * BENCH_FILES_FOUR));
        let up = console
            .lines()
            .position(|l| l.contains("runsystem: the Hurd is up"))
            .and_then(|i| line_times.get(i))
            .ok_or_else(|| Error::new("the console never showed runsystem starting"))?;
        rows.insert(ROWS[8].0.into(), up.as_secs_f64());
        Ok(Measures { rows })
    }
}

/// Hurd ps prints sizes with a unit suffix (`1.2M`, `640K`) or in bytes.
fn rss_kib(field: &str) -> Option<f64> {
    let (digits, scale) = match field.chars().last()? {
        'K' | 'k' => (&field[..field.len() - 1], 1.0),
        'M' | 'm' => (&field[..field.len() - 1], 1024.0),
        'G' | 'g' => (&field[..field.len() - 1], 1024.0 * 1024.0),
        _ => (field, 1.0 / 1024.0),
    };
    digits.parse::<f64>().ok().map(|v| v * scale)
}

/// The FLUSH entries between the write holding `start` and the write holding `end`.
fn flushes_between(log: &Log, start: &[u8], end: &[u8]) -> Result<usize, Error> {
    let holds = |mark: &[u8]| {
        log.entries.iter().position(|e| match e {
            Entry::Write { data, .. } => data.windows(mark.len()).any(|w| w == mark),
            _ => false,
        })
    };
    let (Some(from), Some(to)) = (holds(start), holds(end)) else {
        return Err(Error::new("the write log lacks the bench's marker writes"));
    };
    Ok(log.entries[from..to]
        .iter()
        .filter(|e| matches!(e, Entry::Flush))
        .count())
}

fn markdown(measured: &[(Driver, Measures)]) -> String {
    let value = |driver: Driver, row: &str| {
        measured
            .iter()
            .find(|(d, _)| *d == driver)
            .and_then(|(_, m)| m.rows.get(row).copied())
    };
    let mut out = String::from(
        "# The Hurd's boot disk drivers side by side (`cargo xtask bench hurd`)\n\n\
         One run, the same VM (QEMU TCG, one CPU, 512 MiB, IDE disk with a write-back cache), the \
         same Debian GRUB line (pci-arbiter.static, the driver, ext2fs.static on \
         part:2:device:wd0) and the same workload for each driver; ratios are ours over \
         upstream's, each row's better direction marked.\n\n\
         | measure | upstream's C rumpdisk (rump) | rumpdisk-rs (native ATA) | rumpdisk-rs (rump) | native / upstream | rump / upstream |\n\
         |---|---|---|---|---|---|\n",
    );
    for (row, unit, more_is_better) in ROWS {
        let upstream = value(Driver::Upstream, row);
        let show = |v: Option<f64>| v.map_or("not measured".to_owned(), |v| format!("{v:.2} {unit}"));
        let ratio = |ours: Option<f64>| match (upstream, ours) {
            (Some(c), Some(o)) if c > 0.0 => format!(
                "{:.2}× ({} is better)",
                o / c,
                if more_is_better { "more" } else { "less" }
            ),
            _ => "—".to_owned(),
        };
        let (native, rump) = (value(Driver::Ours, row), value(Driver::OursRump, row));
        let _ = writeln!(
            out,
            "| {row} | {} | {} | {} | {} | {} |",
            show(upstream),
            show(native),
            show(rump),
            ratio(native),
            ratio(rump)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn marked(mark: &str) -> Entry {
        let mut data = vec![b' '; 512];
        data[..mark.len()].copy_from_slice(mark.as_bytes());
        Entry::Write { sector: 9, data, fua: false }
    }

    #[test]
    fn the_guest_lines_become_rates() {
        let console = "boot\nrunsystem: the Hurd is up\n\
            hurd-bench: raw write 4096: 8388608 bytes in 2000000 us\r\n\
            hurd-bench: raw read 1048576: 8388608 bytes in 500000 us\n\
            hurd-bench: files /data/one 0 4096: 40 files, 40 syncs in 4000000 us\n\
            hurd-bench: files /data/one 0 1048576: 8 files, 8 syncs in 2000000 us\n\
            hurd-bench: files /data/four 0 4096: 10 files, 10 syncs in 1000000 us\n\
            hurd-bench: files /data/four 3 4096: 10 files, 10 syncs in 2000000 us\n\
            hurd-bench: ps:  42  1.5M rumpdisk.static --next-task=1\n\
            hurd-bench: ps:  43  936K grep -i rumpdisk\n";
        let times = [Duration::from_secs(1), Duration::from_secs(7)];
        let log = Log {
            sector_size: 512,
            entries: vec![marked(BENCH_FOUR_START), Entry::Flush, Entry::Flush, marked(BENCH_FOUR_END), Entry::Flush],
        };
        let m = Measures::parse(console, &times, &log).unwrap();
        assert_eq!(m.rows["raw write 4 KiB"], 4.0);
        assert_eq!(m.rows["raw read 1 MiB"], 16.0);
        assert_eq!(m.rows["files of 4 KiB synced, one client"], 10.0);
        assert_eq!(m.rows["files of 1 MiB synced, one client"], 4.0);
        assert_eq!(m.rows["files of 4 KiB synced, four clients"], 20.0, "40 files by the slowest client's 2 s");
        assert_eq!(m.rows["flushes per sync, four clients"], 2.0 / 40.0);
        assert_eq!(m.rows["boot: QEMU start to the Hurd's runsystem"], 7.0);
        assert_eq!(m.rows["driver resident memory after the workload"], 1536.0);
    }

    /// Each driver's value in its own column, and each of ours over upstream's.
    #[test]
    fn the_table_puts_each_driver_in_its_column() {
        let measures = |write: f64| Measures { rows: BTreeMap::from([("raw write 4 KiB".to_owned(), write)]) };
        let table = markdown(&[
            (Driver::Upstream, measures(2.0)),
            (Driver::Ours, measures(8.0)),
            (Driver::OursRump, measures(3.0)),
        ]);
        let row = table.lines().find(|l| l.starts_with("| raw write 4 KiB")).unwrap();
        assert_eq!(
            row,
            "| raw write 4 KiB | 2.00 MiB/s | 8.00 MiB/s | 3.00 MiB/s | 4.00× (more is better) | 1.50× (more is better) |"
        );
        let boot = table.lines().find(|l| l.starts_with("| boot")).unwrap();
        assert!(boot.ends_with("| not measured | not measured | not measured | — | — |"), "{boot}");
    }

    #[test]
    fn a_log_without_the_markers_is_refused() {
        let log = Log { sector_size: 512, entries: vec![Entry::Flush] };
        let err = Measures::parse("runsystem: the Hurd is up\n", &[Duration::ZERO], &log).unwrap_err();
        assert!(err.to_string().contains("marker"), "{err}");
    }
}
