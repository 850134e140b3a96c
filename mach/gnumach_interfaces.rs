// The gnumach interfaces generated into `mach::interfaces` — and checked against GNU MIG by
// `tests/gnu_mig` — as (module, .defs path under the ABI's include directory, cpp definitions).
// Included by `build.rs` and by the tests, so both always name the same files.
const GNUMACH_INTERFACES: &[(&str, &str, &[&str])] = &[
    // device_open_new (2806) is compiled in only on request; the server must answer it.
    ("device", "device/device.defs", &["DEVICE_ENABLE_DEVICE_OPEN_NEW"]),
    ("device_request", "device/device_request.defs", &[]),
    ("device_reply", "device/device_reply.defs", &[]),
    ("mach", "mach/mach.defs", &[]),
    ("mach_port", "mach/mach_port.defs", &[]),
    ("mach_host", "mach/mach_host.defs", &[]),
    ("gnumach", "mach/gnumach.defs", &[]),
    // `mach/machine` links to the ABI's own folder (x86_64 or i386) in each sysroot.
    ("mach_i386", "mach/machine/mach_i386.defs", &[]),
    ("notify", "mach/notify.defs", &[]),
    // What the kernel sends a task's exception port when one of its threads faults.
    ("exc", "mach/exc.defs", &[]),
];
