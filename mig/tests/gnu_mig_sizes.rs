//! Request sizes of every routine against the C that GNU MIG (the sysroot's migcom) generates
//! from the same preprocessed .defs, for both ABIs. Needs `cargo xtask setup`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::io::Write;

use mig::{layout, Abi};

fn sysroot() -> PathBuf {
    std::env::var_os("RUMPDISK_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sysroot"))
}

/// (routine, minimum request size) as GNU MIG's user stubs state them.
fn gnu_request_sizes(abi: Abi, defs: &str, preprocessed: &str) -> Vec<(String, u32)> {
    let migcom = sysroot().join("bin").join(match abi {
        Abi::X86_64 => "x86_64-gnu-migcom",
        Abi::I686 => "i686-gnu-migcom",
    });
    let dir = std::env::temp_dir().join(format!("mig-sizes-{}-{:?}-{}", std::process::id(), abi, defs.replace('/', "_")));
    std::fs::create_dir_all(&dir).unwrap();
    let user = dir.join("user.c");
    let mut child = Command::new(&migcom)
        .arg("-user").arg(&user)
        .arg("-server").arg(dir.join("server.c"))
        .arg("-header").arg(dir.join("h.h"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (run `cargo xtask setup`): {e}", migcom.display()));
    child.stdin.take().unwrap().write_all(preprocessed.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "GNU MIG failed");
    let text = std::fs::read_to_string(&user).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut sizes = Vec::new();
    for section in text.replace("/* SimpleRoutine ", "/* Routine ").split("/* Routine ").skip(1) {
        let name = section[..section.find(' ').unwrap()].to_owned();
        let fixed = section.split("_Static_assert(sizeof(Request) == ").nth(1);
        let variable = section.split("\tmsgh_size = ").nth(1);
        let size = match (fixed, variable) {
            (Some(rest), _) | (None, Some(rest)) => rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()].parse().unwrap(),
            (None, None) => panic!("no request size for {name}"),
        };
        sizes.push((name, size));
    }
    sizes
}

fn include(abi: Abi) -> PathBuf {
    let (dir, triple) = match abi {
        Abi::X86_64 => ("amd64", "x86_64-linux-gnu"),
        Abi::I686 => ("i386", "i386-linux-gnu"),
    };
    sysroot().join(dir).join("usr/include").join(triple)
}

/// `defs` is under gnumach's include directory, or (`project`) in the project's `defs/`.
fn check_file(defs: &str, project: bool) {
    for abi in Abi::ALL {
        let include = include(abi);
        let path = if project {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../defs").join(defs)
        } else {
            include.join(defs)
        };
        let text = mig::cpp::preprocess(&path, abi, &include, &[]).unwrap();
        let subsystem = mig::parse_preprocessed(&text, defs).unwrap();
        let gnu = gnu_request_sizes(abi, defs, &text);
        let ours: Vec<(String, u32)> = subsystem
            .routines
            .iter()
            .flatten()
            .map(|r| (r.name.clone(), layout::request(abi, r).min_size))
            .collect();
        assert_eq!(ours, gnu, "{defs} on {abi:?}");
    }
}

fn check(defs: &str) {
    check_file(defs, false);
}

#[test]
fn project_interfaces_match_gnu_mig() {
    check_file("fsys.defs", true);
    check_file("startup_notify.defs", true);
}

#[test]
fn device_requests_match_gnu_mig() {
    check("device/device.defs");
}

#[test]
fn device_request_and_reply_match_gnu_mig() {
    check("device/device_request.defs");
    check("device/device_reply.defs");
}

#[test]
fn kernel_interfaces_match_gnu_mig() {
    for defs in ["mach/mach.defs", "mach/mach_port.defs", "mach/mach_host.defs", "mach/gnumach.defs", "mach/notify.defs", "mach/machine/mach_i386.defs"] {
        check(defs);
    }
}
