//! `cargo xtask test` (every test, step by step) and `cargo xtask vm` (the VM scenarios and their
//! `N passed, N failed` line).

use crate::util::{cargo, project_root, Error};
use crate::{fuzz, hurd, package, scenario, scenarios, setup, vm};
use std::process::Command;
use std::time::Instant;

/// The Hurd targets the library crates are cross-checked for (no Hurd libc here: build, not link).
const HURD_TARGETS: &[&str] = &["x86_64-unknown-hurd-gnu", "i686-unknown-hurd-gnu"];

/// Library crates built for the Hurd targets (the binaries need std and a Hurd libc to link).
const HURD_CRATES: &[&str] = &["mach", "store", "rumpdisk"];

pub fn test_all() -> Result<(), Error> {
    let start = Instant::now();
    step("set-up", setup::run)?;
    step("host tests", host_tests)?;
    // Built from sources when the cache outside the clone does not hold it yet (about 45 minutes).
    step("GNU/Hurd x86_64 from sources", || hurd::build().map(drop))?;
    step(
        &format!("link the Hurd programs for {}", hurd::link::TARGET),
        || hurd::link::build_and_check().map(drop),
    )?;
    step(
        "Debian packages: build and lintian",
        package::build_and_lint,
    )?;
    for target in HURD_TARGETS {
        step(&format!("cross-build for {target}"), || {
            let mut args = vec![
                "build",
                "--quiet",
                "--lib",
                "-Z",
                "build-std=core,alloc",
                "--target",
                target,
            ];
            for c in HURD_CRATES {
                args.extend(["-p", c]);
            }
            cargo(&args)
        })?;
        // x86_64's rump build is linked with the rump kernel above; i686 has no Hurd toolchain
        // here, so its rump build is type-checked.
        if *target == hurd::link::TARGET {
            continue;
        }
        step(
            &format!("check the rumpdisk translator for {target}"),
            || {
                cargo(&[
                    "check",
                    "--quiet",
                    "--features",
                    "rump",
                    "--bin",
                    "rumpdisk",
                    "-Z",
                    "build-std=std,panic_abort",
                    "--target",
                    target,
                ])
            },
        )?;
    }
    step("fuzz smoke run", fuzz::smoke)?;
    step("VM tests on GNU Mach (three kernels) and GNU/Hurd", || vm_scenarios(&[]))?;
    eprintln!(
        "xtask: all tests passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Boots the scenarios named (all when none is) on the kernels `--kernel` names (all when none
/// is) and reports `N passed, N failed`.
pub fn vm_scenarios(args: &[String]) -> Result<(), Error> {
    let (kernels, names) = vm::Kernel::select(args)?;
    let scenarios = scenarios::all(&names, &kernels)?;
    if scenarios.is_empty() {
        return Err(Error::new(format!(
            "no VM scenario named {}",
            names.join(", ")
        )));
    }
    let (mut passed, mut failed) = (0, 0);
    for scenario in &scenarios {
        let start = Instant::now();
        let outcome = scenario::run(scenario)?;
        if scenario::report(scenario, &outcome, start.elapsed()) {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::new(format!("{failed} VM scenario(s) failed")))
    }
}

fn step(name: &str, f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    let start = Instant::now();
    eprintln!("xtask: {name}");
    let r = f();
    let verdict = if r.is_ok() { "ok" } else { "FAILED" };
    eprintln!(
        "xtask: {name}: {verdict} ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    r
}

/// Longest the host tests may take (a few minutes here): past it the run is killed and the
/// tests libtest reported as running for over a minute are named, so a test that hangs fails
/// the suite instead of hanging it.
const HOST_TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// `cargo test --workspace`, built first (however long that takes), run within
/// [`HOST_TEST_LIMIT`].
fn host_tests() -> Result<(), Error> {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    cargo(&["test", "--workspace", "--quiet", "--no-run"])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["test", "--workspace", "--quiet"])
        .current_dir(project_root())
        .stdout(std::process::Stdio::piped())
        .process_group(0) // cargo and the test binaries it runs, killed together
        .spawn()
        .map_err(|e| Error::new(format!("cannot run cargo: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let slow = std::thread::spawn(move || {
        let mut slow = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            println!("{line}");
            slow.extend(slow_test(&line).map(str::to_owned));
        }
        slow
    });
    let deadline = Instant::now() + HOST_TEST_LIMIT;
    let status = loop {
        match child
            .try_wait()
            .map_err(|e| Error::new(format!("cargo test: {e}")))?
        {
            Some(status) => break Some(status),
            None if Instant::now() > deadline => break None,
            None => std::thread::sleep(std::time::Duration::from_secs(1)),
        }
    };
    if status.is_none() {
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
    }
    let slow = slow.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(Error::new(format!(
            "cargo test --workspace failed ({status})"
        ))),
        None => Err(Error::new(format!(
            "host tests killed after {} min; running for over a minute: {}",
            HOST_TEST_LIMIT.as_secs() / 60,
            if slow.is_empty() {
                "none reported".into()
            } else {
                slow.join(", ")
            }
        ))),
    }
}

/// The test a libtest line reports as slow (`test NAME has been running for over 60 seconds`).
fn slow_test(line: &str) -> Option<&str> {
    line.strip_prefix("test ")?
        .split_once(" has been running for over ")
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn libtest_s_slow_test_lines_name_the_test() {
        let line = "test tests::flush_waits has been running for over 60 seconds";
        assert_eq!(super::slow_test(line), Some("tests::flush_waits"));
        assert_eq!(super::slow_test("test tests::flush_waits ... ok"), None);
    }
}
