//! Rust's std on the Hurd: threads, files, processes and clocks, each reported as a test line.

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

fn main() -> ExitCode {
    let tests: [Test; 4] = [
        ("threads", threads),
        ("files", files),
        ("processes", processes),
        ("clocks", clocks),
    ];
    let mut failed = false;
    for (name, test) in tests {
        match test() {
            Ok(()) => println!("test rust_std_{name} ... ok"),
            Err(why) => {
                failed = true;
                println!("test rust_std_{name} ... FAILED: {why}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
