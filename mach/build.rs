//! Generates the kernel and device interfaces from gnumach's .defs files (both ABIs) with the
//! project's MIG, and the C constants from gnumach's headers with bindgen.

use std::env;
use std::path::{Path, PathBuf};

include!("gnumach_interfaces.rs");
include!("project_interfaces.rs");

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let sysroot = env::var_os("RUMPDISK_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/sysroot"));
    let include_x86_64 = sysroot.join("amd64/usr/include/x86_64-linux-gnu");
    let include_i686 = sysroot.join("i386/usr/include/i386-linux-gnu");
    if !include_x86_64.is_dir() || !include_i686.is_dir() {
        panic!("gnumach headers not found under {}: run `cargo xtask setup`", sysroot.display());
    }
    println!("cargo:rerun-if-env-changed=RUMPDISK_SYSROOT");
    println!("cargo:rerun-if-changed=gnumach_interfaces.rs");
    println!("cargo:rerun-if-changed=project_interfaces.rs");
    println!("cargo:rerun-if-changed={}", sysroot.join("COMPLETE").display());
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generate = |module: &str, defs_x86_64: PathBuf, defs_i686: PathBuf, defines: &[&str]| {
        println!("cargo:rerun-if-changed={}", defs_x86_64.display());
        let interface = mig::Interface {
            defs_x86_64,
            defs_i686,
            include_x86_64: include_x86_64.clone(),
            include_i686: include_i686.clone(),
            defines: defines.iter().map(|d| d.to_string()).collect(),
        };
        let code = interface.generate().unwrap_or_else(|e| panic!("mig: {e}"));
        std::fs::write(out.join(format!("{module}.rs")), code).expect("OUT_DIR is writable");
    };
    for (module, defs, defines) in GNUMACH_INTERFACES {
        generate(module, include_x86_64.join(defs), include_i686.join(defs), defines);
    }
    let project_defs = manifest.join("../defs");
    for (module, defs) in PROJECT_INTERFACES {
        generate(module, project_defs.join(defs), project_defs.join(defs), &[]);
    }
    constants(&include_x86_64, &include_i686, &out);
}

/// The headers the constants come from.
const HEADERS: &str = "#include <mach/kern_return.h>\n\
                       #include <mach/message.h>\n\
                       #include <mach/mig_errors.h>\n\
                       #include <mach/notify.h>\n\
                       #include <mach/port.h>\n\
                       #include <mach/task_special_ports.h>\n\
                       #include <mach/vm_prot.h>\n\
                       #include <mach/vm_wire.h>\n\
                       #include <mach/machine/thread_status.h>\n\
                       #include <device/device_types.h>\n";

/// The project's flush flavor: GNU Mach's `DEV_FLUSH_CACHE`, which older headers lack.
const DEV_FLUSH_CACHE: u32 = 2;

/// bindgen over gnumach's headers in `include` for `clang_target`, keeping the constants
/// `vars` and the C types `types`.
fn bind(include: &Path, clang_target: &str, vars: &str, types: &str) -> String {
    bindgen::Builder::default()
        .header_contents("gnumach.h", HEADERS)
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg(format!("--target={clang_target}"))
        .use_core()
        .derive_default(true)
        .allowlist_var(vars)
        .allowlist_type(types)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen over gnumach headers in {}: {e}", include.display()))
        .to_string()
}

/// `KERN_*`, `MACH_*`, `MIG_*`, `D_*`, `DEV_*`, `TASK_*`, `VM_*` from gnumach's headers (the
/// amd64 ones; the values are the same for i386); the target ABI's `struct i386_thread_state`
/// with `i386_THREAD_STATE` (the runtime starts threads with it); and `DEV_FLUSH_CACHE`:
/// defined here when the header predates it, and checked equal to the project's value in
/// every header that has it.
fn constants(include_x86_64: &Path, include_i686: &Path, out: &Path) {
    let mut text = bind(include_x86_64, "x86_64-unknown-linux-gnu", "(KERN|MACH|MIG|D|DEV|TASK|VM)_.*", "");
    let i686 = bind(include_i686, "i686-unknown-linux-gnu", "DEV_FLUSH_CACHE", "");
    let expected = format!("pub const DEV_FLUSH_CACHE: u32 = {DEV_FLUSH_CACHE};");
    let mut in_headers = None;
    for (header, bound) in [(include_x86_64, &text), (include_i686, &i686)] {
        if bound.contains("pub const DEV_FLUSH_CACHE:") {
            assert!(
                bound.contains(&expected),
                "DEV_FLUSH_CACHE in {} is not {DEV_FLUSH_CACHE}: the project's flush flavor would be wrong",
                header.display()
            );
            in_headers = Some(DEV_FLUSH_CACHE);
        }
    }
    // For tests comparing other crates' copies with a header's value, not with the fallback.
    text.push_str(&format!(
        "/// `DEV_FLUSH_CACHE` as a gnumach header in the sysroot defines it (`None`: no header has it).\n\
         pub const DEV_FLUSH_CACHE_IN_HEADERS: Option<u32> = {in_headers:?};\n"
    ));
    if !text.contains(&expected) {
        text.push_str(&format!(
            "/// `device_set_status` flavor: write the device's cache to stable storage (GNU Mach 2026;\n\
             /// defined by the project because this header predates it).\n{expected}\n"
        ));
    }
    // The thread state differs between the ABIs: bind the one of the target being built.
    text.push_str(&if env::var("CARGO_CFG_TARGET_POINTER_WIDTH").as_deref() == Ok("32") {
        bind(include_i686, "i686-unknown-linux-gnu", "i386_THREAD_STATE", "i386_thread_state")
    } else {
        bind(include_x86_64, "x86_64-unknown-linux-gnu", "i386_THREAD_STATE", "i386_thread_state")
    });
    std::fs::write(out.join("constants.rs"), text).expect("OUT_DIR is writable");
}
