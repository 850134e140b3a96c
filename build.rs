//! Links the Hurd build of rumpdisk with the `rump` feature against the rump kernel libraries,
//! as the C rumpdisk is.
//!
//! The driver libraries register themselves through constructors and nothing refers to their
//! symbols, so they are linked with `--no-as-needed` or the linker would drop them. Other builds
//! link nothing: the host tests bring a stand-in for the rump symbols, and the freestanding build
//! drives the disk with the project's own ATA backend.

/// The Hurd's rump disk stack, core libraries first.
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
    "rumpdev_scsipi",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only the Hurd build with the `rump` feature drives disks through the rump kernel.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("hurd") || std::env::var_os("CARGO_FEATURE_RUMP").is_none() {
        return;
    }
    // librumpvfs refers to the FIFO file system's vnode operations, which Debian ships only in
    // the static `rumpvfs_nofifofs_pic` archive: taken whole, as upstream's Makefile does.
    println!("cargo:rustc-link-arg-bins=-Wl,--whole-archive");
    println!("cargo:rustc-link-arg-bins=-lrumpvfs_nofifofs_pic");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-whole-archive");
    // The static boot server (`crt-static`) takes the rump kernel's `_pic` archives whole, as
    // upstream's `rumpdisk.static` does: nothing refers to the drivers' constructors.
    let static_build = std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    let (open, close, suffix) = if static_build {
        ("-Wl,--whole-archive", "-Wl,--no-whole-archive", "_pic")
    } else {
        ("-Wl,--no-as-needed", "-Wl,--as-needed", "")
    };
    println!("cargo:rustc-link-arg-bins={open}");
    for library in RUMP_LIBRARIES {
        println!("cargo:rustc-link-arg-bins=-l{library}{suffix}");
    }
    println!("cargo:rustc-link-arg-bins={close}");
    // What upstream's Makefile adds beside them: rumpdev_pci reaches the PCI bus through
    // libpciaccess (which loads its back ends with libdl), and libpciaccess reads the
    // compressed PCI ID list with zlib.
    for library in SYSTEM_LIBRARIES {
        println!("cargo:rustc-link-arg-bins=-l{library}");
    }
}

/// The system libraries upstream's rumpdisk links after the rump ones (`LDLIBS`; pthread
/// comes with Rust's std).
const SYSTEM_LIBRARIES: &[&str] = &["pciaccess", "dl", "z"];
