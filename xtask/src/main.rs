//! `cargo xtask`: the project's host-side orchestration (set-up, test suite, VM runs, benchmarks).

mod barrier;
mod bench;
mod bench_mig;
mod fuzz;
mod host;
mod hurd;
mod interrupts;
mod iso;
mod package;
mod scenario;
mod scenarios;
mod setup;
mod suite;
mod tasks;
mod util;
mod vm;

use std::path::Path;
use std::process::ExitCode;
use util::Error;

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
  bench slow
          a throttled (slow) disk, rumpdisk.static polling then by interrupt: a CPU-bound
          neighbour's speed and the driver's CPU time during 4 KiB and 1 MiB I/O, written into
          docs/bench.md (its section; also part of the whole `bench`)
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
        Some("test") => suite::test_all(),
        Some("check-barrier") => barrier::check_files(&args[1..]),
        Some("check-fs") => hurd::fscheck::check_files(&args[1..]),
        Some("fuzz") => setup::run().and_then(|()| fuzz::smoke()),
        Some("package") => setup::run().and_then(|()| package::build_and_lint()),
        Some("bench") if args.get(1).map(String::as_str) == Some("mig") => {
            setup::run().and_then(|()| bench_mig::run(&args[2..]))
        }
        Some("bench") => setup::run().and_then(|()| bench::run(&args[1..])),
        Some("vm") => setup::run().and_then(|()| suite::vm_scenarios(&args[1..])),
        Some("run") if args.get(1).map(String::as_str) == Some("--hurd") => setup::run()
            .and_then(|()| tasks::build_tasks())
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
