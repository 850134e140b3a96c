//! Links the Hurd build of rumpdisk with the `rump` feature against the rump kernel libraries,
//! as the C rumpdisk is.
//!
//! The driver libraries register themselves through constructors and nothing refers to their
//! symbols, so they are linked with `--no-as-needed` or the linker would drop them. Other builds
//! link nothing: the host tests bring a stand-in for the rump symbols, and the freestanding build
//! drives the disk with the project's own ATA backend.

/// The Hurd's rump disk stack, core libraries first: the driver libraries, each taken whole.
const RUMP_LIBRARIES: &[&str] = &[
    "rump",
    "rumpuser",
    "rumpvfs",
    "rumpdev",
    "rumpdev_disk",
    "rumpdev_pci",
    "rumpdev_ata",
    "rumpdev_piixide",
    "rumpdev_ahcisata",
];

/// SCSI (upstream's `RUMPEXTRA`), which the ATA library's ATAPI code calls: never taken whole,
/// as its `cd` is the ATA library's too.
const RUMP_EXTRA: &str = "rumpdev_scsipi";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only the Hurd build with the `rump` feature drives disks through the rump kernel.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("hurd") || std::env::var_os("CARGO_FEATURE_RUMP").is_none() {
        return;
    }
    let static_build = std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    if static_build {
        println!("cargo:rustc-link-arg-bins=-Wl,-Bstatic");
    }
    // librumpvfs refers to the FIFO file system's vnode operations, which Debian ships only in
    // the static `rumpvfs_nofifofs_pic` archive: taken whole, as upstream's Makefile does.
    println!("cargo:rustc-link-arg-bins=-Wl,--whole-archive");
    println!("cargo:rustc-link-arg-bins=-lrumpvfs_nofifofs_pic");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-whole-archive");
    // The static boot server (`crt-static`) takes the rump kernel's `_pic` archives, as
    // upstream's `rumpdisk.static` does, and only archives (rustc's own arguments end in
    // `-Bdynamic`, which would take a shared library from the sysroot). The dynamic translator
    // keeps the shared libraries it names even though nothing refers to them.
    let (open, close, suffix) = if static_build {
        ("-Wl,--whole-archive", "-Wl,--no-whole-archive", "_pic")
    } else {
        ("-Wl,--no-as-needed", "-Wl,--as-needed", "")
    };
    println!("cargo:rustc-link-arg-bins={open}");
    for library in RUMP_LIBRARIES {
        println!("cargo:rustc-link-arg-bins=-l{library}{suffix}");
    }
    // The dynamic link keeps it with the others; the static link scans it after them, so it
    // gives only what the ATA library leaves undefined.
    if static_build {
        println!("cargo:rustc-link-arg-bins={close}");
        println!("cargo:rustc-link-arg-bins=-l{RUMP_EXTRA}{suffix}");
    } else {
        println!("cargo:rustc-link-arg-bins=-l{RUMP_EXTRA}");
        println!("cargo:rustc-link-arg-bins={close}");
    }
    // What upstream's Makefile adds beside them: rumpdev_pci reaches the PCI bus through
    // libpciaccess (which loads its back ends with libdl), and libpciaccess reads the
    // compressed PCI ID list with zlib.
    for library in SYSTEM_LIBRARIES {
        println!("cargo:rustc-link-arg-bins=-l{library}");
    }
    // rustc names libc before these arguments: a static link scans it again after them, with
    // the Hurd's RPC stubs and GCC's support routines it calls.
    if static_build {
        for arg in ["-Wl,--start-group", "-lc", "-lmachuser", "-lhurduser", "-lgcc", "-lgcc_eh", "-Wl,--end-group"] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// The system libraries upstream's rumpdisk links after the rump ones (`LDLIBS`; pthread
/// comes with Rust's std).
const SYSTEM_LIBRARIES: &[&str] = &["pciaccess", "dl", "z"];
