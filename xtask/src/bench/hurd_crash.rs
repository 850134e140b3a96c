//! `cargo xtask bench hurd-crash`: the crash-point figures of issue 25, both Hurds in one run.
//! For each system (upstream's Hurd, and the Hurd with `hurd-patches/`), each way of making a
//! file durable (`fsync` alone, or `fsync` and `file_syncfs`) and 1, 4 and 8 concurrent clients
//! of the barrier workload: every crash point of the root disk's write log checked, the crash
//! images that needed `e2fsck -fy` after their journal replay, the files reported synced and
//! lost, and the rate the clients made files durable. Written into `docs/hurd-patches.md`,
//! between its [`MARKERS`].

use super::markers::Markers;
use crate::hurd::fscheck::Report;
use crate::hurd::scenarios::{check_log, scratch_dir, Durability, Hurd, System, Workload};
use crate::scenario;
use crate::vm;
use crate::util::{project_root, Error};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Where the table goes in the document.
const DOC: &str = "docs/hurd-patches.md";
const MARKERS: Markers = Markers { begin: "<!-- cargo xtask bench hurd-crash: begin -->", end: "<!-- cargo xtask bench hurd-crash: end -->" };
/// Rounds per run, shared among the clients (each round: a data file and its commit record).
const ROUNDS: u32 = 24;
const CLIENTS: [u32; 3] = [1, 4, 8];
const SECTORS: u32 = 16;

/// What one run measured.
struct Figures {
    system: System,
    durability: Durability,
    clients: u32,
    report: Report,
    /// Files made durable per second (none when fewer than two rounds were reported).
    files_per_s: Option<f64>,
}

pub fn run(tasks: &Path) -> Result<(), Error> {
    let hurd = Hurd::new(tasks, crate::hurd::Systems::UpstreamAndPatched)?;
    let mut runs = Vec::new();
    for system in [System::Upstream, System::Patched] {
        let hurd = hurd.with_system(system);
        for durability in [Durability::Fsync, Durability::Syncfs] {
            for clients in CLIENTS {
                runs.push(measure(&hurd, system, durability, clients)?);
            }
        }
    }
    let table = markdown(&runs);
    print!("{table}");
    let path = project_root().join(DOC);
    let doc = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let doc = MARKERS.replace(&doc, &table).map_err(|why| Error::new(format!("{DOC}: {why}")))?;
    fs::write(&path, doc).map_err(|e| Error::io(&path, e))?;
    eprintln!("xtask: wrote the crash-point figures into {DOC}");
    Ok(())
}

/// One run: the workload booted, its write log checked at every crash point.
fn measure(hurd: &Hurd, system: System, durability: Durability, clients: u32) -> Result<Figures, Error> {
    let workload = Workload {
        clients,
        rounds: ROUNDS / clients,
        sectors: SECTORS,
        durability,
    };
    let (scenario, root, write_log) = hurd.crash_figures(workload)?;
    let outcome = scenario::run(&scenario)?;
    scenario::report(&scenario, &outcome, Duration::ZERO);
    // A run whose clients did not finish measures nothing: the table would be wrong.
    outcome
        .verdict(vm::Expect::Pass)
        .map_err(|why| Error::new(format!("{}: {why}", scenario.name)))?;
    let console_path = scenario.kernel.run_dir(&scenario.name).join("console.log");
    let console = fs::read_to_string(&console_path).map_err(|e| Error::io(&console_path, e))?;
    let report = check_log(&root, &write_log, &scratch_dir(&scenario.name)).map_err(Error::new)?;
    println!("  {}", report.summary());
    Ok(Figures {
        system,
        durability,
        clients,
        report,
        files_per_s: files_per_second(&console, &outcome.line_times),
    })
}

/// Files made durable per second: between the first and the last round the clients reported
/// synced (console lines, timed on the host), two files a round (its data and its commit record).
fn files_per_second(console: &str, line_times: &[Duration]) -> Option<f64> {
    let synced: Vec<Duration> = console
        .lines()
        .zip(line_times)
        .filter(|(line, _)| line.contains("fs-barrier: client") && line.trim_end().ends_with("synced"))
        .map(|(_, at)| *at)
        .collect();
    let (first, last) = (synced.first()?, synced.last()?);
    let span = last.checked_sub(*first)?.as_secs_f64();
    (synced.len() > 1 && span > 0.0).then(|| 2.0 * (synced.len() - 1) as f64 / span)
}

fn markdown(runs: &[Figures]) -> String {
    let mut out = String::from(
        "| system | durability | clients | crash points checked | images needing `e2fsck -fy` after the replay | synced files lost | files/s |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for run in runs {
        let system = match run.system {
            System::Upstream => "upstream",
            System::Patched => "patched",
        };
        let durability = match run.durability {
            Durability::Fsync => "`fsync` alone",
            Durability::Syncfs => "`fsync` + `syncfs`",
        };
        let rate = run.files_per_s.map_or("not measured".to_owned(), |r| format!("{r:.1}"));
        let _ = writeln!(
            out,
            "| {system} | {durability} | {} | {} | {} of {} | {} of {} | {rate} |",
            run.clients,
            run.report.crash_points,
            run.report.repairs.len(),
            run.report.images_checked,
            run.report.rounds_lost(),
            run.report.committed,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_two_files_a_round_between_the_first_and_last_report() {
        let console = "runsystem: the Hurd is up\r\nfs-barrier: client 0 round 0 synced\r\n\
                       fs-barrier: client 1 round 0 synced\r\nfs-barrier: client 0 round 1 synced\r\n";
        let at = |ms| Duration::from_millis(ms);
        let times = [at(100), at(1000), at(1500), at(3000)];
        assert_eq!(files_per_second(console, &times), Some(2.0));
        assert_eq!(files_per_second(console, &times[..2]), None, "one round reported: no span");
    }
}
