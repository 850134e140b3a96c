//! Every routine's request size, reply size and type descriptors against the C that GNU MIG
//! (the sysroot's migcom) generates from the same preprocessed .defs, for both ABIs. Needs
//! `cargo xtask setup`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::io::Write;

use mig::layout::{self, Descriptor};
use mig::Abi;

fn sysroot() -> PathBuf {
    std::env::var_os("RUMPDISK_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sysroot"))
}

/// What GNU MIG's user stub states for one routine.
#[derive(Debug, PartialEq)]
struct Stub {
    name: String,
    request_size: u32,
    /// Minimum reply size (`None` for simpleroutines).
    reply_size: Option<u32>,
    /// `<arg>Type` constants (request, in order) then `<arg>Check` constants (reply).
    descriptors: Vec<(String, Descriptor)>,
}

fn number_after(text: &str, marker: &str) -> Option<u32> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest[..rest.find(|c: char| !c.is_ascii_digit())?].parse().ok()
}

fn field(block: &str, name: &str) -> u32 {
    let rest = &block[block.find(name).unwrap_or_else(|| panic!("{name} in {block}")) + name.len()..];
    let value = rest.trim_start_matches([' ', '=', '\t']);
    let value = value.trim_start_matches("(unsigned char) ").trim_start_matches("(unsigned short) ");
    let token = &value[..value.find(',').unwrap()];
    match token {
        "TRUE" => 1,
        "FALSE" => 0,
        t if t.starts_with("MACH_MSG_TYPE_") => mig::types::builtin_name(t).map_or(u32::MAX, |(n, _)| n),
        t => t.parse().unwrap_or_else(|_| panic!("value {t}")),
    }
}

fn descriptors(section: &str) -> Vec<(String, Descriptor)> {
    let mut found = Vec::new();
    for piece in section.split("\tconst mach_msg_type").skip(1) {
        let long = piece.starts_with("_long_t");
        let name = piece.split_whitespace().nth(1).unwrap().to_owned();
        let block = &piece[..piece.find("};").unwrap()];
        let (type_name, size, number) = if long && block.contains(".msgtl_name") {
            (field(block, ".msgtl_name"), field(block, ".msgtl_size"), field(block, ".msgtl_number"))
        } else {
            (field(block, ".msgt_name"), field(block, ".msgt_size"), field(block, ".msgt_number"))
        };
        let descriptor = Descriptor {
            name: (type_name != mig::types::name::POLYMORPHIC && type_name != u32::MAX).then_some(type_name),
            size_bits: size,
            number,
            inline: field(block, ".msgt_inline") == 1,
            long: field(block, ".msgt_longform") == 1,
            dealloc: field(block, ".msgt_deallocate") == 1,
        };
        found.push((name, descriptor));
    }
    found
}

/// The routines of GNU MIG's user stubs.
fn gnu_stubs(abi: Abi, defs: &str, preprocessed: &str) -> Vec<Stub> {
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
    let mut stubs = Vec::new();
    for section in text.replace("/* SimpleRoutine ", "/* Routine ").split("/* Routine ").skip(1) {
        let name = section[..section.find(' ').unwrap()].to_owned();
        let request_size = number_after(section, "_Static_assert(sizeof(Request) == ")
            .or_else(|| number_after(section, "\tmsgh_size = "))
            .unwrap_or_else(|| panic!("no request size for {name}"));
        let checks = section.find("#if\tTypeCheck\n\tmsgh_size = OutP").map(|at| &section[at..]);
        let reply_size = section.find("OutP->Head.msgh_id != ").map(|_| {
            let checks = checks.unwrap_or(section);
            [
                number_after(checks, "(msgh_size != "),
                number_after(checks, "(msgh_size < "),
                number_after(checks, "msgh_size != "),
                number_after(checks, "OutP->Head.msgh_size != "),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_else(|| panic!("no reply size for {name}"))
        });
        stubs.push(Stub { name, request_size, reply_size, descriptors: descriptors(section) });
    }
    stubs
}

/// Our view of the same routine, named as GNU MIG names its constants.
fn our_stub(abi: Abi, routine: &mig::parser::Routine) -> Stub {
    let request = layout::request(abi, routine);
    let mut descriptors: Vec<(String, Descriptor)> =
        request.items.iter().map(|i| (format!("{}Type", i.name), i.descriptor)).collect();
    let reply = (!routine.simple).then(|| layout::reply(abi, routine));
    if let Some(reply) = &reply {
        descriptors.push(("RetCodeCheck".to_owned(), reply.items[0].descriptor));
        for item in &reply.items[1..] {
            let arg = routine.args.iter().find(|a| a.name == item.name).unwrap();
            descriptors.push((format!("{}Check", item.name), layout::received(abi, arg)));
        }
    }
    Stub { name: routine.name.clone(), request_size: request.min_size, reply_size: reply.map(|r| r.min_size), descriptors }
}

fn include(abi: Abi) -> PathBuf {
    let (dir, triple) = match abi {
        Abi::X86_64 => ("amd64", "x86_64-linux-gnu"),
        Abi::I686 => ("i386", "i386-linux-gnu"),
    };
    sysroot().join(dir).join("usr/include").join(triple)
}

/// `defs` is under gnumach's include directory, or (`project`) in the project's `defs/`.
fn check_file(defs: &str, project: bool, defines: &[&str]) {
    for abi in Abi::ALL {
        let include = include(abi);
        let path = if project {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../defs").join(defs)
        } else {
            include.join(defs)
        };
        let text = mig::cpp::preprocess(&path, abi, &include, defines).unwrap();
        let subsystem = mig::parse_preprocessed(&text, defs, abi).unwrap();
        let gnu = gnu_stubs(abi, defs, &text);
        let ours: Vec<Stub> = subsystem.routines.iter().flatten().map(|r| our_stub(abi, r)).collect();
        assert_eq!(ours.len(), gnu.len(), "{defs} on {abi:?}: routine count");
        for (ours, gnu) in ours.iter().zip(&gnu) {
            assert_eq!((&ours.name, ours.request_size, ours.reply_size), (&gnu.name, gnu.request_size, gnu.reply_size), "{defs} on {abi:?}: sizes");
            // GNU MIG writes constants only for what it checks or copies whole: every one of
            // them must be ours too.
            for (name, descriptor) in &gnu.descriptors {
                let mine = ours.descriptors.iter().find(|(n, _)| n == name);
                assert_eq!(mine.map(|(_, d)| d), Some(descriptor), "{defs} on {abi:?}: {}.{name}", gnu.name);
            }
        }
    }
}

fn check(defs: &str) {
    check_file(defs, false, &[]);
}

#[test]
fn project_interfaces_match_gnu_mig() {
    for defs in ["fsys.defs", "startup_notify.defs", "fs.defs", "startup.defs", "process.defs", "mach_port_ktype.defs", "auth.defs"] {
        check_file(defs, true, &[]);
    }
}

#[test]
fn device_requests_match_gnu_mig() {
    check("device/device.defs");
    check_file("device/device.defs", false, &["DEVICE_ENABLE_DEVICE_OPEN_NEW"]);
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
