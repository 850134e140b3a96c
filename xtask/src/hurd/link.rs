//! The project's programs linked for GNU/Hurd x86_64 (with the toolchain `cargo xtask hurd` built,
//! through `.cargo/hurd-linker`), and checked to be Hurd programs: an x86-64 ELF with the GNU ABI
//! tag for the Hurd, the Hurd's dynamic linker as interpreter and the Hurd's libc needed.

use crate::util::{cargo, project_root, Error};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-unknown-hurd-gnu";
/// The dynamic linker of GNU/Hurd x86_64 (glibc's name for it).
pub const INTERPRETER: &str = "/lib/ld-x86-64.so.1";
/// The Hurd's libc soname.
pub const LIBC: &str = "libc.so.0.3";

/// (package, binary, features): what is linked for the Hurd.
pub const PROGRAMS: &[(&str, &str, &str)] = &[
    ("rumpdisk", "rumpdisk", "hurd"),
    ("store", "storectl", ""),
    ("guest", "fs-barrier", ""),
    ("guest", "rust-std-check", ""),
    ("guest", "hurd-bench", ""),
];

/// The rump build of `rumpdisk` (linked with the rump kernel `cargo xtask hurd` built), put
/// beside the others under this name. Its own target folder keeps the two feature sets of one
/// binary from rebuilding each other.
pub const RUMP_PROGRAM: &str = "rumpdisk-rump";
/// The same, static: the boot disk server GRUB loads, linked as upstream's `rumpdisk.static`.
pub const RUMP_STATIC_PROGRAM: &str = "rumpdisk-rump.static";

/// (package, binary, features, name): what is linked statically, and the name it gets.
const STATIC_PROGRAMS: &[(&str, &str, &str, &str)] = &[
    ("rumpdisk", "rumpdisk", "rump", RUMP_STATIC_PROGRAM),
];

/// Where cargo puts release binaries for the Hurd.
pub fn out_dir() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from);
    project_root().join(target_dir).join(TARGET).join("release")
}

/// Links every program in [`PROGRAMS`] and [`RUMP_PROGRAM`] and checks each; returns their
/// folder.
pub fn build_and_check() -> Result<PathBuf, Error> {
    for (package, bin, features) in PROGRAMS {
        cargo(&build_args(package, bin, features))?;
        check(&out_dir().join(bin), bin)?;
    }
    let rump_dir = project_root().join("target/hurd-rump");
    let rump_dir_arg = rump_dir.display().to_string();
    let mut args = build_args("rumpdisk", "rumpdisk", "rump");
    args.extend(["--target-dir", &rump_dir_arg]);
    cargo(&args)?;
    let built = rump_dir.join(TARGET).join("release/rumpdisk");
    let path = out_dir().join(RUMP_PROGRAM);
    std::fs::copy(&built, &path).map_err(|e| Error::io(&built, e))?;
    check(&path, RUMP_PROGRAM)?;
    let needed = HurdElf::read(&path).map_err(Error::new)?.needed;
    if !needed.iter().any(|n| n.starts_with("librump.so")) {
        return Err(Error::new(format!(
            "{}: does not link librump (needs {needed:?})",
            path.display()
        )));
    }
    for (package, bin, features, name) in STATIC_PROGRAMS {
        let path = out_dir().join(name);
        link_static(package, bin, features, &path)?;
        HurdElf::read(&path)
            .map_err(Error::new)?
            .check_static()
            .and_then(|()| threads_start(&symbols(&path)?))
            .map_err(|why| Error::new(format!("{}: {why}", path.display())))?;
        println!("test hurd_link_{} ... ok", name.replace(['-', '.'], "_"));
    }
    Ok(out_dir())
}

/// cargo's arguments for a release build of `bin` of `package` with `features` for the Hurd.
fn build_args<'a>(package: &'a str, bin: &'a str, features: &'a str) -> Vec<&'a str> {
    let mut args = vec!["build", "--quiet", "--release", "-p", package, "--bin", bin];
    if !features.is_empty() {
        args.extend(["--features", features]);
    }
    args.extend(["-Z", "build-std=std,panic_abort", "--target", TARGET]);
    args
}

/// Links `bin` of `package` with `features` statically (glibc's `libc.a`, no dynamic linker,
/// not position-independent: the boot servers run before any file system) into `out`.
///
/// Rust's `unwind` asks for `-lgcc_s` whatever the link; a static link has no `libgcc_s.a`, so
/// a linker script of that name in the build's own folder takes libgcc's static unwinder and
/// support routines in its place; `libc.a`, which rustc names before them, needs them again
/// after it (`__popcountdi2`, `__gcc_personality_v0`).
///
/// The Hurd's `libpthread.a` is a linker script whose `libpthread_syms.a` names the thread
/// library's start-up (`__pthread_initialize_minimal`) as needed; the code is in `libc.a`, so
/// that must be read first. rustc names `-lpthread` after `-lc`: the start-up is then left out,
/// while std's `pthread_create` is in, and glibc starts the signal thread as a pthread before
/// the main thread is one — the first thread made takes the main thread's kernel thread, the
/// signal thread never runs, and the process spins before `main` waiting for it (seen with
/// `rpctrace` on the Hurd). Naming the script before everything else restores the order gcc
/// gives a C program.
fn link_static(package: &str, bin: &str, features: &str, out: &Path) -> Result<(), Error> {
    let dir = project_root().join("target/hurd-static");
    let gcc_dir = super::build_root().join("opt/hurd/tools/lib/gcc").join(super::TARGET);
    let version = std::fs::read_dir(&gcc_dir)
        .map_err(|e| Error::io(&gcc_dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| Error::new(format!("no GCC in {}", gcc_dir.display())))?;
    // The path as the linker sees it, inside the build root.
    let libgcc = format!("/opt/hurd/tools/lib/gcc/{}/{version}", super::TARGET);
    let script_dir = dir.join("gcc_s");
    std::fs::create_dir_all(&script_dir).map_err(|e| Error::io(&script_dir, e))?;
    let script = script_dir.join("libgcc_s.a");
    std::fs::write(&script, format!("GROUP ( {libgcc}/libgcc_eh.a {libgcc}/libgcc.a )\n"))
        .map_err(|e| Error::io(&script, e))?;
    let rustflags = format!(
        "target.{TARGET}.rustflags=[\"-C\",\"target-feature=+crt-static\",\"-C\",\"relocation-model=static\",\"-Z\",\"pre-link-arg=-lpthread_syms\",\"-C\",\"link-arg=-L{}\",\"-C\",\"link-arg=-lgcc\",\"-C\",\"link-arg=-lgcc_eh\"]",
        script_dir.display()
    );
    let dir_arg = dir.display().to_string();
    let mut args = build_args(package, bin, features);
    args.extend(["--target-dir", &dir_arg, "--config", &rustflags]);
    cargo(&args)?;
    let built = dir.join(TARGET).join("release").join(bin);
    std::fs::copy(&built, out).map_err(|e| Error::io(&built, e))?;
    Ok(())
}

/// `nm`'s list of the symbols `path` defines.
fn symbols(path: &Path) -> Result<String, String> {
    report_of("nm", &["--defined-only"], path)
}

/// What `program` with `options` prints of the file `path`; the error names the program and
/// the file, with what it said.
fn report_of(program: &str, options: &[&str], path: &Path) -> Result<String, String> {
    let out = Command::new(program)
        .args(options)
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A static program that can make pthreads must have the thread library's start-up too (see
/// [`link_static`]): without it, it spins before `main` on the Hurd. `defined`: `nm`'s list.
fn threads_start(defined: &str) -> Result<(), String> {
    let has = |name: &str| defined.lines().any(|line| line.split_whitespace().last() == Some(name));
    if has("__libc_pthread_create") && !has("__pthread_initialize_minimal") {
        return Err("it makes pthreads but lacks __pthread_initialize_minimal: \
                    glibc's signal thread would never start (libpthread_syms.a not read before libc.a)"
            .into());
    }
    Ok(())
}

/// Checks that `path` is a Hurd program, and prints its test line.
fn check(path: &Path, bin: &str) -> Result<(), Error> {
    HurdElf::read(path)
        .map_err(Error::new)?
        .check()
        .map_err(|why| Error::new(format!("{}: {why}", path.display())))?;
    println!("test hurd_link_{} ... ok", bin.replace('-', "_"));
    Ok(())
}

/// What makes an ELF file a GNU/Hurd program, as `readelf` reports it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HurdElf {
    pub x86_64: bool,
    pub abi_tag_os: Option<String>,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
}

impl HurdElf {
    pub fn read(path: &Path) -> Result<HurdElf, String> {
        report_of("readelf", &["-hlndW"], path).map(|report| HurdElf::parse(&report))
    }

    /// Reads `readelf -hlndW`'s report.
    pub fn parse(text: &str) -> HurdElf {
        let mut elf = HurdElf::default();
        let bracketed = |line: &str, after: &str| {
            let rest = &line[line.find(after)? + after.len()..];
            Some(
                rest.trim_start()
                    .trim_start_matches('[')
                    .split(']')
                    .next()?
                    .trim()
                    .to_owned(),
            )
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("Machine:") && line.contains("X86-64") {
                elf.x86_64 = true;
            } else if let Some(interp) = bracketed(line, "Requesting program interpreter:") {
                elf.interpreter = Some(interp);
            } else if line.contains("(NEEDED)") {
                elf.needed.extend(bracketed(line, "Shared library:"));
            } else if let Some(at) = line.find("OS: ").filter(|_| line.contains("ABI")) {
                elf.abi_tag_os = line[at + 4..]
                    .split(',')
                    .next()
                    .map(|os| os.trim().to_owned());
            }
        }
        elf
    }

    pub fn check(&self) -> Result<(), String> {
        if !self.x86_64 {
            return Err("not an x86-64 ELF file".into());
        }
        if self.abi_tag_os.as_deref() != Some("Hurd") {
            return Err(format!(
                "its GNU ABI tag names {:?}, not the Hurd",
                self.abi_tag_os
            ));
        }
        if self.interpreter.as_deref() != Some(INTERPRETER) {
            return Err(format!(
                "its interpreter is {:?}, not {INTERPRETER}",
                self.interpreter
            ));
        }
        if !self.needed.iter().any(|n| n == LIBC) {
            return Err(format!(
                "it does not need {LIBC} (needs {})",
                self.needed.join(", ")
            ));
        }
        Ok(())
    }

    /// A static GNU/Hurd program: x86-64, the Hurd's ABI tag, no interpreter, no library.
    pub fn check_static(&self) -> Result<(), String> {
        if !self.x86_64 {
            return Err("not an x86-64 ELF file".into());
        }
        if self.abi_tag_os.as_deref() != Some("Hurd") {
            return Err(format!("its GNU ABI tag names {:?}, not the Hurd", self.abi_tag_os));
        }
        match (&self.interpreter, self.needed.is_empty()) {
            (None, true) => Ok(()),
            _ => Err(format!(
                "not static: interpreter {:?}, needs {}",
                self.interpreter,
                self.needed.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This very test binary is a Linux program: every Hurd mark must be found missing.
    #[test]
    fn a_linux_program_is_not_taken_for_a_hurd_one() {
        let me = std::env::current_exe().unwrap();
        let elf = HurdElf::read(&me).unwrap();
        assert!(elf.x86_64);
        assert!(
            elf.interpreter
                .as_deref()
                .is_some_and(|i| i.contains("ld-linux")),
            "{elf:?}"
        );
        let why = elf.check().unwrap_err();
        assert!(
            why.contains("ABI tag") || why.contains("interpreter"),
            "{why}"
        );
    }

    /// The symbols of `rust-std-check` linked statically as rustc orders the libraries, and with
    /// the thread library's start-up read first (`nm`, cut to what matters).
    #[test]
    fn a_static_program_with_threads_needs_their_start_up() {
        let without = "000000000044b310 T __libc_pthread_create\n0000000000407c80 T _start\n";
        let with = "000000000044ceb0 W __pthread_initialize_minimal\n\
                    0000000000403e9f t __pthread_initialize_minimal.cold\n\
                    000000000044b310 T __libc_pthread_create\n";
        assert!(threads_start(without).unwrap_err().contains("__pthread_initialize_minimal"));
        assert_eq!(threads_start(with), Ok(()));
        // A program without pthreads (GNU Mach's own tasks) starts its signal thread itself.
        assert_eq!(threads_start("0000000000407c80 T _start\n"), Ok(()));
        let only_cold = "0000000000403e9f t __pthread_initialize_minimal.cold\n\
                         000000000044b310 T __libc_pthread_create\n";
        assert!(threads_start(only_cold).is_err());
    }

    #[test]
    fn reads_what_readelf_reports_of_a_hurd_program() {
        let report = "\
  Machine:                           Advanced Micro Devices X86-64
      [Requesting program interpreter: /lib/ld-x86-64.so.1]
 0x0000000000000001 (NEEDED)             Shared library: [libgcc_s.so.1]
 0x0000000000000001 (NEEDED)             Shared library: [libc.so.0.3]
  GNU                  0x00000010\tNT_GNU_ABI_TAG (ABI version tag)\t    OS: Hurd, ABI: 0.0.0
";
        let elf = HurdElf::parse(report);
        assert_eq!(elf.interpreter.as_deref(), Some(INTERPRETER));
        assert_eq!(elf.needed, ["libgcc_s.so.1", "libc.so.0.3"]);
        assert_eq!(elf.abi_tag_os.as_deref(), Some("Hurd"));
        assert_eq!(elf.check(), Ok(()));
        let without_libc = HurdElf {
            needed: vec!["libgcc_s.so.1".into()],
            ..HurdElf::parse(report)
        };
        assert!(without_libc.check().unwrap_err().contains("libc.so.0.3"));
    }
}
