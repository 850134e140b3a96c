// The project's own interfaces, in the workspace's `defs/`, generated into `mach::interfaces`
// — and checked against GNU MIG by `tests/gnu_mig` — as (module, file under `defs/`).
// Included by `build.rs` and by the tests, so both always name the same files.
const PROJECT_INTERFACES: &[(&str, &str)] = &[
    ("fsys", "fsys.defs"),
    ("startup_notify", "startup_notify.defs"),
    ("fs", "fs.defs"),
    ("io", "io.defs"),
    ("startup", "startup.defs"),
    ("process", "process.defs"),
    ("mach_port_ktype", "mach_port_ktype.defs"),
    ("auth", "auth.defs"),
    ("pci", "pci.defs"),
    ("device_intr_notify", "device_intr_notify.defs"),
];
