//! `cargo xtask bench mig`: instructions to encode a request and decode its reply, the generated
//! Rust stubs against GNU MIG's C stubs, counted by callgrind in one run.
//!
//! Both sides are small programs that call one routine N times per `bench_<routine>` function
//! over a loopback transport (the reply, made once by GNU MIG's own server, is copied into the
//! message buffer), so each function's inclusive instruction count / N is one encode + one reply
//! copy + one decode. The C side is `bench_mig/bench.c` with GNU MIG's stubs (gcc -O2, as Debian
//! builds the Hurd); the Rust side is `mach/examples/bench_mig.rs` (the workspace's release
//! profile). Results go to stdout and `docs/bench-mig.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::host::sysroot_dir;
use crate::util::{output_of, project_root, run_quiet, Error};

/// The routines measured, in the order both programs run them.
const ROUTINES: [(&str, &str); 5] = [
    (
        "device_open",
        "master 5, D_READ \\| D_WRITE, \"wd0\" → device port",
    ),
    (
        "device_write_inband",
        "128 bytes inline at record 8 → bytes written",
    ),
    (
        "device_read",
        "4096 bytes wanted at record 8 → out-of-line data",
    ),
    (
        "device_set_status",
        "DEV_FLUSH_CACHE, empty status → return code",
    ),
    (
        "device_get_status",
        "DEV_GET_RECORDS, capacity 1024 → 2 words",
    ),
];

/// Calls per routine: large enough that start-up noise does not matter, small enough for valgrind.
const ITERATIONS: u64 = 10_000;

pub fn run(args: &[String]) -> Result<(), Error> {
    if !args.is_empty() {
        return Err(Error::new(format!(
            "`bench mig` takes no arguments (got {args:?})"
        )));
    }
    let root = project_root();
    let out = target_dir().join("bench-mig");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;

    let c_program = build_c_side(&root, &out)?;
    let replies = output_of(
        Command::new(&c_program).arg("replies"),
        "the C side making replies",
    )?;
    let replies_file = out.join("replies.txt");
    std::fs::write(&replies_file, &replies).map_err(|e| Error::io(&replies_file, e))?;

    run_quiet(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "mach",
                "--example",
                "bench_mig",
            ])
            .current_dir(&root),
        "cargo build --example bench_mig",
    )?;
    let rust_program = target_dir().join("release/examples/bench_mig");

    let c = callgrind(&c_program, &out.join("c.callgrind"), &replies_file)?;
    let rust = callgrind(&rust_program, &out.join("rust.callgrind"), &replies_file)?;

    let report = report(&c, &rust);
    print!("{report}");
    let doc = root.join("docs/bench-mig.md");
    std::fs::write(&doc, report).map_err(|e| Error::io(&doc, e))?;
    eprintln!(
        "xtask: wrote {}",
        doc.strip_prefix(&root).unwrap_or(&doc).display()
    );
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from)
}

/// GNU MIG on the x86_64 `device.defs`, then gcc on its stubs and `bench.c`.
fn build_c_side(root: &Path, out: &Path) -> Result<PathBuf, Error> {
    let sysroot = sysroot_dir();
    let include = sysroot.join("amd64/usr/include/x86_64-linux-gnu");
    let migcom = sysroot.join("bin/x86_64-gnu-migcom");
    if !sysroot.join("COMPLETE").exists() {
        return Err(Error::new("no GNU MIG sysroot: run `cargo xtask setup`"));
    }
    let preprocessed = output_of(
        Command::new("gcc")
            .args(["-E", "-x", "c"])
            .arg(format!("-I{}", include.display()))
            .arg(include.join("device/device.defs")),
        "cpp on device.defs",
    )?;
    let mut mig = Command::new(&migcom);
    mig.current_dir(out)
        .args([
            "-user",
            "deviceUser.c",
            "-server",
            "deviceServer.c",
            "-header",
            "device.h",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = mig
        .spawn()
        .map_err(|e| Error::new(format!("cannot run {}: {e}", migcom.display())))?;
    std::io::Write::write_all(
        &mut child.stdin.take().expect("piped"),
        preprocessed.as_bytes(),
    )
    .map_err(|e| Error::new(format!("migcom: {e}")))?;
    let status = child
        .wait_with_output()
        .map_err(|e| Error::new(format!("migcom: {e}")))?;
    if !status.status.success() {
        return Err(Error::new(format!(
            "migcom failed: {}",
            String::from_utf8_lossy(&status.stderr)
        )));
    }

    let shims = root.join("mach/tests/gnu_mig");
    let program = out.join("bench-c");
    run_quiet(
        Command::new("gcc")
            .args(["-O2", "-g", "-w", "-std=gnu11"])
            .arg(format!("-I{}", shims.join("include").display()))
            .arg(format!("-I{}", include.display()))
            .arg(format!("-I{}", out.display()))
            .arg(root.join("xtask/src/bench_mig/bench.c"))
            .arg(shims.join("mig_support.c"))
            .arg(out.join("deviceUser.c"))
            .arg(out.join("deviceServer.c"))
            .arg("-o")
            .arg(&program),
        "gcc (benchmark C side)",
    )?;
    Ok(program)
}

/// Runs `program run ITERATIONS < replies` under callgrind; the per-call count of each routine.
fn callgrind(program: &Path, profile: &Path, replies: &Path) -> Result<Vec<f64>, Error> {
    let input = std::fs::File::open(replies).map_err(|e| Error::io(replies, e))?;
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(program)
        .args(["run", &ITERATIONS.to_string()])
        .stdin(input)
        .status()
        .map_err(|e| Error::new(format!("cannot run valgrind: {e}")))?;
    if !status.success() {
        return Err(Error::new(format!(
            "{} under callgrind failed ({status})",
            program.display()
        )));
    }
    let annotated = output_of(
        Command::new("callgrind_annotate")
            .args(["--inclusive=yes", "--auto=no", "--threshold=100"])
            .arg(profile),
        "callgrind_annotate",
    )?;
    ROUTINES
        .iter()
        .map(|(routine, _)| {
            inclusive_count(&annotated, &format!("bench_{routine}"))
                .map(|count| count as f64 / ITERATIONS as f64)
                .ok_or_else(|| Error::new(format!("no bench_{routine} in {}", profile.display())))
        })
        .collect()
}

/// The inclusive instruction count of `function` in `callgrind_annotate --inclusive=yes` output
/// (lines like `1,234,567 (12.34%)  file.c:function [object]`).
fn inclusive_count(annotated: &str, function: &str) -> Option<u64> {
    annotated.lines().find_map(|line| {
        let (count, rest) = line.trim_start().split_once(' ')?;
        let symbol = rest.split_whitespace().find(|w| w.contains(':'))?;
        let name = symbol.rsplit(':').next()?;
        (name == function).then(|| count.replace(',', "").parse().ok())?
    })
}

fn report(c: &[f64], rust: &[f64]) -> String {
    let mut s = String::from(
        "# Rust MIG stubs vs GNU MIG: instructions per call\n\n\
         Written by `cargo xtask bench mig` (valgrind --tool=callgrind, one run). Each figure is the\n\
         instructions to encode the request, copy the ready-made reply in (loopback transport) and\n\
         decode it, for the x86_64 ABI, averaged over the calls. C: GNU MIG's user stubs (trixie's\n\
         migcom) built with gcc -O2; Rust: the generated stubs in the workspace's release profile.\n\n\
         | routine | inputs | Rust | C | Rust/C |\n|---|---|---:|---:|---:|\n",
    );
    for (((routine, inputs), c), rust) in ROUTINES.iter().zip(c).zip(rust) {
        writeln!(
            s,
            "| {routine} | {inputs} | {rust:.0} | {c:.0} | {:.2} |",
            rust / c
        )
        .unwrap();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::inclusive_count;

    #[test]
    fn reads_inclusive_counts_from_callgrind_annotate() {
        let annotated = "\
--------------------------------------------------------------------------------
Ir                 file:function
--------------------------------------------------------------------------------
12,345,678 (95.00%)  ???:main [bench-c]
   820,000 ( 6.31%)  bench.c:bench_device_open [bench-c]
   410,000 ( 3.15%)  ???:bench_device_open_helper [bench-c]
";
        assert_eq!(
            inclusive_count(annotated, "bench_device_open"),
            Some(820_000)
        );
        assert_eq!(inclusive_count(annotated, "bench_device_read"), None);
    }
}
