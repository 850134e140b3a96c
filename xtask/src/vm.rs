//! QEMU and its disks: GNU Mach booted from its ISO with a scenario's disks, its console kept,
//! within a time limit, and the console's test results. Tasks report through the kernel console
//! with lines `test NAME ... ok` or `test NAME ... FAILED: why`, and end with GNU Mach's own test
//! markers: `gnumach-test-success-and-reboot` or `gnumach-test-failure`.

mod disk;
mod kernel;

use crate::util::{copy, Error};
pub use disk::{disk_args, run_dir, Bus, Disk, Fresh, Throttle};
use disk::{blkdebug_rules, machine_and_cd};
pub use kernel::Kernel;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SUCCESS_MARKER: &str = "gnumach-test-success-and-reboot";
pub const FAILURE_MARKER: &str = "gnumach-test-failure";
/// The test that stands for a scenario's check of what it left on the host.
pub const HOST_CHECK: &str = "host check afterwards";

/// What a scenario expects from the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The success marker, no failed test, at least one test.
    Pass,
    /// The failure marker (a negative test: e.g. a faulting task must be reported).
    Failure,
    /// A recorded gap of upstream's C code: the run completes and every test passes but those
    /// whose reason holds this text, and at least one does. Should upstream close the gap, the
    /// scenario fails and says so, so the record is never stale.
    Gap(&'static str),
}

/// What one VM run printed, as tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub passed: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub success_marker: bool,
    pub failure_marker: bool,
    pub timed_out: bool,
    pub killed: bool,
    /// When each console line arrived, from QEMU's start (one entry a line).
    pub line_times: Vec<Duration>,
}

impl Outcome {
    /// Reads `test NAME ... ok|FAILED: why` lines and the end markers out of a console capture.
    pub fn parse(console: &str) -> Outcome {
        let mut o = Outcome::default();
        for line in console.lines() {
            let line = line.trim_end_matches('\r');
            if line.contains(SUCCESS_MARKER) {
                o.success_marker = true;
            } else if line.contains(FAILURE_MARKER) {
                o.failure_marker = true;
            }
            let Some(rest) = line.find("test ").map(|i| &line[i + 5..]) else {
                continue;
            };
            let Some((name, result)) = rest.split_once(" ... ") else {
                continue;
            };
            if result == "ok" {
                o.passed.push(name.to_owned());
            } else if let Some(why) = result.strip_prefix("FAILED") {
                o.failed.push((
                    name.to_owned(),
                    why.trim_start_matches(':').trim().to_owned(),
                ));
            }
        }
        o
    }

    /// Whether the run meets `expect`; the reason when it does not.
    pub fn verdict(&self, expect: Expect) -> Result<(), String> {
        match expect {
            Expect::Failure
                if self.failure_marker
                    && self.failed.iter().all(|(name, _)| name != HOST_CHECK) =>
            {
                Ok(())
            }
            Expect::Failure => Err("the expected failure was not reported".into()),
            Expect::Gap(_) if self.timed_out => Err("timed out".into()),
            Expect::Gap(known) => {
                let (gap, other): (Vec<_>, Vec<_>) =
                    self.failed.iter().partition(|(_, why)| why.contains(known));
                match (gap.is_empty(), other.first()) {
                    (_, Some((name, why))) => Err(format!("{name} failed beside the recorded gap: {why}")),
                    (true, None) => Err(format!(
                        "the recorded gap ({known}) did not show: record what upstream does now"
                    )),
                    (false, None) => Ok(()),
                }
            }
            Expect::Pass if self.timed_out => Err("timed out".into()),
            Expect::Pass if self.failure_marker => Err("a task reported a failure".into()),
            Expect::Pass if !self.failed.is_empty() => {
                Err(format!("{} test(s) failed", self.failed.len()))
            }
            Expect::Pass if self.killed && !self.passed.is_empty() => Ok(()),
            Expect::Pass if !self.success_marker => Err("the end marker is missing".into()),
            Expect::Pass if self.passed.is_empty() => Err("no test ran".into()),
            Expect::Pass => Ok(()),
        }
    }
}

/// The RAM of every VM here but those that test a small one.
pub const MEMORY_MIB: u32 = 512;

/// QEMU's machine for every VM here (the bench's Linux anchor too): TCG, one CPU, the serial
/// console on standard output, no reboot. The RAM is the scenario's (`-m`).
pub const MACHINE: [&str; 10] = [
    "-accel",
    "tcg",
    "-smp",
    "1",
    "-nographic",
    "-no-reboot",
    "-monitor",
    "none",
    "-serial",
    "stdio",
];

/// Boots GNU Mach from `iso` in `kernel`'s QEMU with `disks` (made anew first when they say
/// so), `memory_mib` of RAM, within `timeout`, SIGKILLed at the first console line holding
/// `kill_on`; keeps the console in `console_path` and returns what it showed.
pub fn boot(
    kernel: Kernel,
    iso: &Path,
    disks: &[Disk],
    memory_mib: u32,
    timeout: Duration,
    kill_on: Option<&str>,
    console_path: &Path,
) -> Result<Outcome, Error> {
    let mut qemu = Command::new(kernel.qemu());
    qemu.args(MACHINE)
        .args(["-m", &memory_mib.to_string()])
        .args(["-boot", "d"])
        .arg("-drive")
        .arg(format!(
            "file={},media=cdrom,if=none,id=cd,readonly=on",
            iso.display()
        ))
        .args(machine_and_cd(disks)?);
    for (i, disk) in disks.iter().enumerate() {
        match &disk.fresh {
            Some(Fresh::Zeroed(sectors)) => {
                let _ = fs::remove_file(&disk.image);
                let file = fs::File::create(&disk.image).map_err(|e| Error::io(&disk.image, e))?;
                file.set_len(sectors * 512)
                    .map_err(|e| Error::io(&disk.image, e))?;
            }
            Some(Fresh::CopyOf(template)) => {
                let _ = fs::remove_file(&disk.image);
                copy(template, &disk.image)?;
            }
            None => {}
        }
        if let Some(log) = &disk.write_log {
            fs::write(log, b"").map_err(|e| Error::io(log, e))?;
        }
        if let Some(rules) = disk.blkdebug_rules_file(i) {
            fs::write(&rules, blkdebug_rules(disk)).map_err(|e| Error::io(&rules, e))?;
        }
        qemu.args(disk_args(disk, i));
    }
    let (console, line_times, timed_out, killed) =
        run_qemu(qemu, timeout, kill_on)?;
    fs::write(console_path, &console).map_err(|e| Error::io(console_path, e))?;
    let mut outcome = Outcome::parse(&console);
    outcome.timed_out = timed_out;
    outcome.killed = killed;
    outcome.line_times = line_times;
    Ok(outcome)
}

/// Runs QEMU, collecting its serial console until it exits, the time limit passes, or a line
/// contains `kill_on` (then SIGKILL: QEMU must not flush the disk on the way out).
fn run_qemu(
    mut qemu: Command,
    timeout: Duration,
    kill_on: Option<&str>,
) -> Result<(String, Vec<Duration>, bool, bool), Error> {
    let started = Instant::now();
    let mut line_times = Vec::new();
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("cannot run {}: {e}", qemu.get_program().to_string_lossy())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (lines, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            if lines
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut console = String::new();
    let (mut timed_out, mut killed) = (false, false);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let hit = kill_on.is_some_and(|k| line.contains(k));
                line_times.push(started.elapsed());
                console.push_str(&line);
                console.push('\n');
                if hit {
                    let _ = child.kill(); // SIGKILL
                    killed = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                timed_out = true;
                break;
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::new(format!("waiting for qemu: {e}")))?;
    if !status.success() && !killed && !timed_out {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        if !err.trim().is_empty() {
            return Err(Error::new(format!(
                "qemu failed ({status}): {}",
                err.trim()
            )));
        }
    }
    Ok((console, line_times, timed_out, killed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_gap_must_show_alone() {
        let run = |failed: &[(&str, &str)]| Outcome {
            passed: vec!["booted".into()],
            failed: failed.iter().map(|(n, w)| (n.to_string(), w.to_string())).collect(),
            success_marker: true,
            ..Outcome::default()
        };
        let gap = Expect::Gap("no flush at shutdown");
        assert_eq!(run(&[("host check afterwards", "no flush at shutdown: 3 writes")]).verdict(gap), Ok(()));
        assert!(run(&[]).verdict(gap).unwrap_err().contains("did not show"));
        assert!(run(&[("host check afterwards", "no flush at shutdown"), ("sync", "EIO")])
            .verdict(gap)
            .unwrap_err()
            .contains("sync failed beside"));
        let timed_out = Outcome { timed_out: true, ..run(&[("x", "no flush at shutdown")]) };
        assert_eq!(timed_out.verdict(gap), Err("timed out".into()));
    }

    #[test]
    fn parses_tests_and_markers() {
        let console = "GNU Mach 1.8\r\nboot: test vm_allocate ... ok\r\ntest ports ... FAILED: names leaked\n\
                       test x ... ok\ngnumach-test-success-and-reboot\n";
        let o = Outcome::parse(console);
        assert_eq!(o.passed, vec!["vm_allocate", "x"]);
        assert_eq!(
            o.failed,
            vec![("ports".to_owned(), "names leaked".to_owned())]
        );
        assert!(o.success_marker && !o.failure_marker);
        assert_eq!(o.verdict(Expect::Pass), Err("1 test(s) failed".into()));
    }

    #[test]
    fn a_run_needs_its_end_marker_and_a_test() {
        let mut o = Outcome::parse("test a ... ok\n");
        assert_eq!(
            o.verdict(Expect::Pass),
            Err("the end marker is missing".into())
        );
        o.success_marker = true;
        assert_eq!(o.verdict(Expect::Pass), Ok(()));
        assert_eq!(
            Outcome::parse(SUCCESS_MARKER).verdict(Expect::Pass),
            Err("no test ran".into())
        );
        o.timed_out = true;
        assert_eq!(o.verdict(Expect::Pass), Err("timed out".into()));
    }

    #[test]
    fn a_negative_scenario_needs_the_failure_marker() {
        assert_eq!(
            Outcome::parse("gnumach-test-failure\n").verdict(Expect::Failure),
            Ok(())
        );
        assert!(Outcome::parse(SUCCESS_MARKER)
            .verdict(Expect::Failure)
            .is_err());
    }
}
