//! `cargo xtask setup`: host packages, `rust-src`, and the Debian packages fetched from newer suites
//! into `target/sysroot/` without touching the system's apt configuration.
//!
//! Every step checks before it acts, so a second run does nothing and prints nothing. The sysroot is
//! built in a scratch folder and renamed into place only when complete, so a failed run never leaves
//! a half-extracted sysroot that later steps could mistake for a good one.

use crate::host::{extract_deb, sysroot_dir, system_mirror, PrivateApt};
use crate::util::{project_root, run_quiet, Error};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the host needs, installed with the system's own apt.
const HOST_PACKAGES: &[&str] = &[
    "qemu-system-x86", // runs GNU Mach
    "qemu-utils",      // qemu-img for disk images
    "grub-pc-bin",     // BIOS GRUB for the boot ISO
    "grub-common",     // grub-mkrescue
    "xorriso",         // ISO writer used by grub-mkrescue
    "mtools",          // FAT image for grub-mkrescue's EFI part
    "libclang-dev",    // bindgen, for constants from gnumach's headers
    "gcc-multilib",    // 32-bit C for the i686 MIG conformance tests
    "perl",            // GNU MIG's driver script
    "valgrind",        // callgrind instruction counts in the benchmarks
    "debootstrap",     // the build root of the Hurd built from sources
    "e2fsprogs",       // mke2fs and debugfs for the Hurd's root image
    "dpkg-dev",        // dpkg-gencontrol and dpkg-parsechangelog for the Debian packages
    "lintian",         // checks the Debian packages
    "fdisk",           // sfdisk: the partition tables of the second disk in hurd-storectl
];

/// One architecture's worth of packages from a newer Debian suite.
struct Fetch {
    arch: &'static str,
    /// Suites to try, preferred first: a suite whose index fails to download falls back to the next.
    suites: &'static [&'static str],
    packages: &'static [&'static str],
    /// The sysroot folder they are extracted into.
    into: &'static str,
}

/// The GNU Mach kernels the VM scenarios boot, their headers and GNU MIG, plus the libc that runs
/// each migcom on this host (bookworm's glibc is older than the one the newer migcom needs).
/// The i386 and the newest kernel come from one suite each: one that cannot be fetched is an error.
const FETCHES: &[Fetch] = &[
    Fetch {
        arch: "amd64",
        suites: &["trixie", "sid"],
        packages: &[
            "gnumach-image-1.8-amd64-up",
            "gnumach-dev",
            "mig-x86-64-gnu",
            "libc6",
        ],
        into: "amd64",
    },
    Fetch {
        arch: "i386",
        suites: &["sid", "trixie"],
        packages: &["gnumach-dev", "mig-i686-gnu", "libc6"],
        into: "i386",
    },
    Fetch {
        arch: "i386",
        suites: &["trixie"],
        packages: &["gnumach-image-1.8-486-up"],
        into: "i386",
    },
    // The newest kernel, so a kernel change that breaks the project shows before Debian ships it.
    Fetch {
        arch: "amd64",
        suites: &["sid"],
        packages: &["gnumach-image-1.8-amd64-up"],
        into: "amd64-sid",
    },
];

/// Bump when the sysroot's layout or package set changes: an older sysroot is then rebuilt.
const SYSROOT_FORMAT: &str = "rumpdisk-rs sysroot 2";

pub fn run() -> Result<(), Error> {
    install_host_packages()?;
    ensure_rust_src()?;
    ensure_cargo_fuzz()?;
    ensure_sysroot()?;
    Ok(())
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn install_host_packages() -> Result<(), Error> {
    if which("dpkg-query").is_none() || which("apt-get").is_none() {
        return Err(Error::new(
            "setup needs a Debian system with dpkg and apt-get; install these packages by other means: ".to_owned()
                + &HOST_PACKAGES.join(" "),
        ));
    }
    let missing: Vec<&str> = HOST_PACKAGES
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(Error::new(format!(
            "these Debian packages are missing and installing them needs root: {0}\n  run as root, or: sudo apt-get install {0}",
            missing.join(" ")
        )));
    }
    eprintln!("setup: installing {}", missing.join(" "));
    let install = |quiet_update: bool| -> Result<(), Error> {
        if quiet_update {
            run_quiet(
                Command::new("apt-get").args(["update", "-qq"]),
                "apt-get update",
            )?;
        }
        run_quiet(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing),
            "apt-get install",
        )
    };
    // Stale package lists are the usual reason an install fails on a fresh machine: refresh once.
    install(false).or_else(|_| install(true))
}

fn ensure_rust_src() -> Result<(), Error> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(project_root())
        .output()
        .map_err(|e| Error::new(format!("cannot run rustc: {e}")))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Ok(());
    }
    eprintln!("setup: adding rust-src to the toolchain");
    run_quiet(
        Command::new("rustup")
            .args(["component", "add", "rust-src"])
            .current_dir(project_root()),
        "rustup component add rust-src",
    )
}

/// cargo-fuzz, from crates.io, for the fuzz smoke run.
fn ensure_cargo_fuzz() -> Result<(), Error> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("setup: installing cargo-fuzz");
    run_quiet(
        Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]),
        "cargo install cargo-fuzz",
    )
}

fn ensure_sysroot() -> Result<(), Error> {
    let dest = sysroot_dir();
    let stamp = dest.join("COMPLETE");
    if fs::read_to_string(&stamp)
        .map(|s| s.starts_with(SYSROOT_FORMAT))
        .unwrap_or(false)
    {
        return Ok(());
    }
    let mirror = system_mirror()?;
    let scratch = dest.with_extension("partial");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let mut manifest = format!("{SYSROOT_FORMAT}\n");
    for fetch in FETCHES {
        let (suite, debs) = fetch_packages(fetch, &mirror, &scratch)?;
        manifest += &format!("{} {} {suite} {}\n", fetch.into, fetch.arch, debs.join(" "));
    }
    write_migcom_wrappers(&scratch)?;
    fs::write(scratch.join("COMPLETE"), &manifest).map_err(|e| Error::io(&scratch, e))?;
    let _ = fs::remove_dir_all(&dest);
    fs::rename(&scratch, &dest).map_err(|e| Error::io(&dest, e))?;
    // Paths written into the wrappers name the scratch folder until rewritten for the final one.
    write_migcom_wrappers(&dest)?;
    eprint!("setup: sysroot ready in {}:\n{}", dest.display(), manifest);
    Ok(())
}

/// Downloads and extracts `fetch` from the first suite whose index works; returns that suite and
/// the names of the package files (which carry their versions).
fn fetch_packages(fetch: &Fetch, mirror: &str, scratch: &Path) -> Result<(&'static str, Vec<String>), Error> {
    let mut failures = Vec::new();
    for (i, suite) in fetch.suites.iter().enumerate() {
        match fetch_from_suite(fetch, suite, mirror, scratch) {
            Ok(debs) => {
                if i > 0 {
                    eprintln!(
                        "setup: {} packages taken from {suite} ({})",
                        fetch.arch,
                        failures.join("; ")
                    );
                }
                return Ok((suite, debs));
            }
            Err(e) => failures.push(format!("{suite} failed: {e}")),
        }
    }
    Err(Error::new(format!(
        "could not fetch {} for {} from any suite:\n  {}",
        fetch.packages.join(" "),
        fetch.arch,
        failures.join("\n  ")
    )))
}

fn fetch_from_suite(fetch: &Fetch, suite: &str, mirror: &str, scratch: &Path) -> Result<Vec<String>, Error> {
    let apt = PrivateApt::new(
        &scratch.join(format!("apt-{}-{suite}", fetch.into)),
        fetch.arch,
        suite,
        mirror,
    )?;
    let qualified: Vec<String> = fetch
        .packages
        .iter()
        .map(|p| format!("{p}:{}", fetch.arch))
        .collect();
    let into = scratch.join(fetch.into);
    let mut debs = Vec::new();
    for deb in apt.download(&qualified)? {
        debs.push(deb.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()));
        extract_deb(&deb, &into)?;
    }
    apt.remove()?;
    debs.sort();
    Ok(debs)
}

/// The newer migcom needs the newer glibc: wrap each in a script that runs it through the loader of
/// the libc extracted beside it, and point GNU MIG's own driver script at the wrappers (`MIGDIR`).
fn write_migcom_wrappers(root: &Path) -> Result<(), Error> {
    let wrappers = [
        (
            "x86_64-gnu-migcom",
            "amd64",
            "x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "x86_64-linux-gnu",
        ),
        (
            "i686-gnu-migcom",
            "i386",
            "i386-linux-gnu/ld-linux.so.2",
            "i386-linux-gnu",
        ),
    ];
    let bin = root.join("bin");
    fs::create_dir_all(&bin).map_err(|e| Error::io(&bin, e))?;
    for (name, arch, loader, libdir) in wrappers {
        let base = root
            .join(arch)
            .canonicalize()
            .map_err(|e| Error::io(&root.join(arch), e))?;
        let b = base.display();
        let script = format!(
            "#!/bin/sh\n# Generated by cargo xtask setup.\nexec {b}/usr/lib/{loader} --library-path {b}/usr/lib/{libdir} {b}/usr/lib/mig/{name} \"$@\"\n"
        );
        let path = bin.join(name);
        fs::write(&path, script).map_err(|e| Error::io(&path, e))?;
        run_quiet(Command::new("chmod").arg("+x").arg(&path), "chmod")?;
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use crate::host::sysroot_dir;
    use std::process::Command;

    /// The fetched trixie GNU MIG must run on this host and compile the fetched device.defs; a broken
    /// or partial fetch fails here rather than in the conformance tests.
    #[test]
    fn fetched_gnu_mig_turns_device_defs_into_c_stubs() {
        let sysroot = sysroot_dir();
        assert!(
            sysroot.join("COMPLETE").is_file(),
            "no sysroot in {}: run `cargo xtask setup`",
            sysroot.display()
        );
        let include = sysroot.join("amd64/usr/include/x86_64-linux-gnu");
        let out = std::env::temp_dir().join(format!("rumpdisk-mig-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let status = Command::new(sysroot.join("amd64/usr/bin/x86_64-gnu-mig"))
            .env("MIGDIR", sysroot.join("bin"))
            .arg(format!("-I{}", include.display()))
            .arg(include.join("device/device.defs"))
            .current_dir(&out)
            .status()
            .expect("x86_64-gnu-mig runs");
        assert!(status.success(), "x86_64-gnu-mig failed: {status}");
        let user = std::fs::read_to_string(out.join("deviceUser.c")).expect("user stubs written");
        let server =
            std::fs::read_to_string(out.join("deviceServer.c")).expect("server stubs written");
        std::fs::remove_dir_all(&out).unwrap();
        assert!(
            user.contains("mig_external kern_return_t device_open\n"),
            "no device_open client stub"
        );
        assert!(
            server.contains("InP->msgh_id > 2814") && server.contains("InP->msgh_id < 2800"),
            "server demux does not span device ids 2800..=2814"
        );
    }
}
