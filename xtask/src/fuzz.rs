//! The fuzz smoke run of the test command: every cargo-fuzz target for a bounded time from an
//! empty corpus with a fixed random seed, so a crash in the generated decoders or the device
//! server fails the tests. The long runs are `cargo fuzz run` by hand, from the GNU MIG seeds
//! (see `fuzz/README.md`); their counts are in `docs/fuzz.md`.

use crate::util::{project_root, Error};
use std::fs;
use std::process::Command;

/// The cargo-fuzz targets in `fuzz/`.
pub const TARGETS: &[&str] = &["demux", "reply_decode", "device_server"];

/// How long each target runs in the smoke run.
const SECONDS: u32 = 45;

/// Runs every target for [`SECONDS`] (AddressSanitizer, as cargo-fuzz builds by default).
pub fn smoke() -> Result<(), Error> {
    for target in TARGETS {
        // The corpus libFuzzer grows, made anew each run: the run depends on the seed alone.
        let scratch = project_root().join("target/fuzz-smoke").join(target);
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        let out = Command::new("cargo")
            .args(["fuzz", "run", "-O", target])
            .arg(&scratch)
            .args(["--", "-seed=1", "-max_len=8192", "-print_final_stats=1"])
            .arg(format!("-max_total_time={SECONDS}"))
            .current_dir(project_root())
            .output()
            .map_err(|e| Error::new(format!("cannot run cargo fuzz: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            println!("test fuzz_smoke_{target} ... FAILED: {}", out.status);
            return Err(Error::new(format!(
                "fuzz target {target} failed:\n{}",
                tail.join("\n")
            )));
        }
        println!(
            "test fuzz_smoke_{target} ... ok ({} runs in {SECONDS} s)",
            executed_units(&stderr).unwrap_or(0)
        );
    }
    Ok(())
}

/// libFuzzer's `stat::number_of_executed_units` from its final statistics.
fn executed_units(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::executed_units;

    #[test]
    fn reads_the_executed_units() {
        let report = "Done 12 runs\nstat::number_of_executed_units: 123456\nstat::average_exec_per_sec:   2743\n";
        assert_eq!(executed_units(report), Some(123456));
        assert_eq!(executed_units("no statistics"), None);
    }
}
