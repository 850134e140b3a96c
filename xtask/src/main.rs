//! `cargo xtask`: the project's host-side orchestration (set-up, test suite, VM runs, benchmarks).

mod barrier;
mod bench;
mod bench_mig;
mod fuzz;
mod hurd;
mod interrupts;
mod package;
mod scenarios;
mod setup;
mod vm;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

  setup   install host packages and fetch GNU Mach, its headers and GNU MIG into target/sysroot
  hurd [path]
          build GNU/Hurd for x86_64 from sources (toolchain, glibc, the Hurd, a shell) into a cache
          outside the clone, or print where that cache is
  test    set up, then run every test: host tests, the Hurd from sources (cached), programs
          linked for the Hurd, their Debian packages, Hurd cross-builds, a fuzz smoke run, VM
          tests on GNU Mach and GNU/Hurd
  package build the Debian packages for hurd-amd64 (rumpdisk-rs, storectl) into target/debian/
          and check them with lintian
  run [IMAGE]
          the main job: boot GNU Mach in QEMU with rumpdisk.static serving IMAGE (a fresh 64 MiB
          image if none is given) and store clients writing, syncing and reading back; then show
          what was written, how many flushes the device logged, and the barrier checker's verdict
  run --hurd
          the main job on GNU/Hurd built from sources: rumpdisk.static as the boot disk driver
          under the Hurd's ext2fs, files written and synced, QEMU killed, every crash point of
          the disk's write log checked with e2fsck and the files
  vm [--kernel amd64|i386|sid-amd64]... [NAME...]
          boot the VM scenarios (all, or those named) and report their tests: GNU Mach's on
          each kernel named (all three when none is: trixie's amd64 and i386, sid's amd64),
          GNU/Hurd's when the amd64 kernel is among them
  fuzz    the fuzz smoke run: each cargo-fuzz target for 45 s, fixed random seed
  check-fs IMAGE LOG DIR
          check every crash point of LOG (a write log of the disk that started as IMAGE, an ext2
          file system) with e2fsck and the fs-barrier rounds committed in folder DIR
  check-barrier LOG CONSOLE [IMAGE]
          check a blklogwrites device log against the syncs a console capture reports
  bench [vm|mig]
          both benchmarks, or one: `vm` measures the speed goals on GNU Mach into docs/bench.md
  bench mig
          callgrind: instructions per encode+decode, generated Rust stubs vs GNU MIG's C stubs
  bench ahci
          the AHCI section of docs/bench.md alone (rumpdisk.static and Linux on an AHCI disk), printed
  bench hurd-crash
          both Hurds (upstream's, and with hurd-patches/) under 1, 4 and 8 clients, fsync alone and
          with syncfs: crash points, repairs after the replay, synced files lost, files/s, written
          into docs/hurd-patches.md
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("hurd") => setup::run().and_then(|()| hurd::run(&args[1..])),
        Some("test") => test_all(),
        Some("check-barrier") => barrier::check_files(&args[1..]),
        Some("check-fs") => hurd::fscheck::check_files(&args[1..]),
        Some("fuzz") => setup::run().and_then(|()| fuzz::smoke()),
        Some("package") => setup::run().and_then(|()| package::build_and_lint()),
        Some("bench") if args.get(1).map(String::as_str) == Some("mig") => {
            setup::run().and_then(|()| bench_mig::run(&args[2..]))
        }
        Some("bench") => setup::run().and_then(|()| bench::run(&args[1..])),
        Some("vm") => setup::run().and_then(|()| vm_scenarios(&args[1..])),
        Some("run") if args.get(1).map(String::as_str) == Some("--hurd") => setup::run()
            .and_then(|()| scenarios::build_tasks())
            .and_then(|tasks| hurd::scenarios::main_job(&tasks)),
        Some("run") => setup::run().and_then(|()| scenarios::main_job(args.get(1).map(Path::new))),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(Error::new(format!("unknown command `{other}`\n{USAGE}"))),
        None => Err(Error::new(USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Hurd targets the library crates are cross-checked for (no Hurd libc here: build, not link).
const HURD_TARGETS: &[&str] = &["x86_64-unknown-hurd-gnu", "i686-unknown-hurd-gnu"];

/// Library crates built for the Hurd targets (the binaries need std and a Hurd libc to link).
const HURD_CRATES: &[&str] = &["mach", "store", "rumpdisk"];

fn test_all() -> Result<(), Error> {
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
fn vm_scenarios(args: &[String]) -> Result<(), Error> {
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
        let outcome = vm::run(scenario)?;
        if vm::report(scenario, &outcome, start.elapsed()) {
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

pub fn cargo(args: &[&str]) -> Result<(), Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(project_root())
        .status()
        .map_err(|e| Error::new(format!("cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "cargo {} failed ({status})",
            args.join(" ")
        )))
    }
}

/// Runs a command, showing its output only when it fails.
pub fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let out = cmd
        .output()
        .map_err(|e| Error::new(format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::new(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// Runs a command and returns its standard output; a failure carries its standard error.
pub fn output_of(cmd: &mut Command, what: &str) -> Result<String, Error> {
    let out = cmd
        .output()
        .map_err(|e| Error::new(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| Error::new(format!("{what}: output is not UTF-8")))
}

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Error(format!("{}: {e}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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
