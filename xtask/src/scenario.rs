//! One VM scenario, GNU Mach's or the Hurd's: what it boots (kernel, boot modules, disks), what
//! its console must show, what the host checks afterwards; its run and its result lines.

use crate::iso::{self, Module};
use crate::util::Error;
use crate::vm::{self, Disk, Expect, Kernel, Outcome, HOST_CHECK};
use std::io::Write as _;
use std::time::Duration;

pub struct Scenario {
    pub name: String,
    /// The GNU Mach it boots.
    pub kernel: Kernel,
    pub modules: Vec<Module>,
    pub disks: Vec<Disk>,
    pub timeout: Duration,
    pub expect: Expect,
    /// SIGKILL QEMU as soon as a console line contains this (no shutdown flush).
    pub kill_on: Option<String>,
    /// The guest's RAM in MiB ([`vm::MEMORY_MIB`] for most).
    pub memory_mib: u32,
    /// A check of what the run left on the host (disk images, logs), after QEMU ended.
    pub after: Option<Box<dyn Fn() -> Result<(), String>>>,
}

/// Boots `scenario` and returns what its console showed, with the host's check afterwards as
/// one more test; the console is kept in `target/vm/<name>/console.log`.
pub fn run(scenario: &Scenario) -> Result<Outcome, Error> {
    let dir = scenario.kernel.run_dir(&scenario.name);
    let iso = iso::build(
        &dir,
        &scenario.kernel.image(),
        &scenario.kernel.command_line(&scenario.disks)?,
        &scenario.modules,
    )?;
    let mut outcome = vm::boot(
        scenario.kernel,
        &iso,
        &scenario.disks,
        scenario.memory_mib,
        scenario.timeout,
        scenario.kill_on.as_deref(),
        &dir.join("console.log"),
    )?;
    if let Some(after) = &scenario.after {
        match after() {
            Ok(()) => outcome.passed.push(HOST_CHECK.into()),
            Err(why) => outcome.failed.push((HOST_CHECK.into(), why)),
        }
    }
    Ok(outcome)
}

/// Prints a scenario's per-test lines and its verdict; returns whether it met its expectation.
pub fn report(scenario: &Scenario, outcome: &Outcome, took: Duration) -> bool {
    let mut out = std::io::stdout().lock();
    let name = format!("{} [{}]", scenario.name, scenario.kernel.label());
    for test in &outcome.passed {
        let _ = writeln!(out, "  {name}: {test} ... ok");
    }
    // In a scenario that must fail, the failure it reports is the expected outcome.
    let label = match scenario.expect {
        Expect::Failure => "failed as expected",
        Expect::Gap(_) => "FAILED (upstream's recorded gap)",
        Expect::Pass => "FAILED",
    };
    for (test, why) in &outcome.failed {
        let _ = writeln!(out, "  {name}: {test} ... {label}: {why}");
    }
    let verdict = outcome.verdict(scenario.expect);
    let _ = match &verdict {
        Ok(()) => writeln!(out, "vm {name} ... ok ({:.2} s)", took.as_secs_f64()),
        Err(why) => writeln!(
            out,
            "vm {name} ... FAILED: {why} (console: {})",
            scenario.kernel.run_dir(&scenario.name).join("console.log").display()
        ),
    };
    verdict.is_ok()
}
