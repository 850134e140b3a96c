//! Rust's std on the Hurd: threads, files, processes and clocks, each reported as a test line.
//!
//! The static build starts as `rumpdisk-rump.static` does, from a C `main` glibc calls: std's own
//! runtime set-up hangs a static Hurd program before `main` (seen with this program and with the
//! static rumpdisk); std itself works once started.

#![cfg_attr(target_feature = "crt-static", no_main)]
#![cfg_attr(target_feature = "crt-static", feature(exitcode_exit_method))]

use std::io::Write;
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn threads() -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let workers: Vec<_> = (0..4u64)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                tx.send((0..=1000u64).map(|n| n * (i + 1)).sum::<u64>())
                    .unwrap()
            })
        })
        .collect();
    drop(tx);
    for w in workers {
        w.join().map_err(|_| "a thread panicked".to_owned())?;
    }
    let total: u64 = rx.iter().sum();
    (total == 500_500 * 10)
        .then_some(())
        .ok_or(format!("threads summed {total}"))
}

fn files() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("rust-std-check-{}", std::process::id()));
    fn e(what: &'static str) -> impl Fn(std::io::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    std::fs::create_dir_all(&dir).map_err(e("mkdir"))?;
    let a = dir.join("a");
    let mut f = std::fs::File::create(&a).map_err(e("create"))?;
    f.write_all(&[7u8; 10_000]).map_err(e("write"))?;
    f.sync_all().map_err(e("fsync"))?;
    let b = dir.join("b");
    std::fs::rename(&a, &b).map_err(e("rename"))?;
    let len = std::fs::metadata(&b).map_err(e("stat"))?.len();
    let back = std::fs::read(&b).map_err(e("read"))?;
    std::fs::remove_dir_all(&dir).map_err(e("remove"))?;
    (len == 10_000 && back == [7u8; 10_000])
        .then_some(())
        .ok_or(format!("read back {len} bytes"))
}

fn processes() -> Result<(), String> {
    let out = Command::new("/bin/sh")
        .args(["-c", "echo hurd"])
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    (out.status.success() && out.stdout == b"hurd\n")
        .then_some(())
        .ok_or(format!("sh said {:?}", out))
}

fn clocks() -> Result<(), String> {
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    let took = start.elapsed();
    (took >= Duration::from_millis(20))
        .then_some(())
        .ok_or(format!("slept {took:?}"))
}

/// A named check: `Err` says what went wrong.
type Test = (&'static str, fn() -> Result<(), String>);

/// glibc's `main` for the static build (see the module's text).
#[cfg(target_feature = "crt-static")]
#[no_mangle]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    run().exit_process()
}

#[cfg(not(target_feature = "crt-static"))]
fn main() -> ExitCode {
    run()
}

fn run() -> ExitCode {
    let tests: [Test; 4] = [
        ("threads", threads),
        ("files", files),
        ("processes", processes),
        ("clocks", clocks),
    ];
    // The static build (glibc's libc.a, as the Hurd's boot servers are linked) reports apart.
    let prefix = if cfg!(target_feature = "crt-static") { "rust_std_static" } else { "rust_std" };
    let mut failed = false;
    for (name, test) in tests {
        match test() {
            Ok(()) => println!("test {prefix}_{name} ... ok"),
            Err(why) => {
                failed = true;
                println!("test {prefix}_{name} ... FAILED: {why}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
