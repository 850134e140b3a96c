//! The kernel and device interfaces (and the Hurd interfaces of the project's `defs/`),
//! generated at build time from gnumach's .defs files by the
//! project's MIG (`mig/`), for both ABIs: each module has `x86_64` and `i686` submodules and
//! re-exports the one being built. Per routine: `<routine>::request::{encode, decode}`,
//! `<routine>::reply::{encode, decode}`, a client function, and per interface a `Server` trait
//! and its `demux`.

/// A device record number as the target's ABI carries it (`recnum_t`: `rpc_long_natural_t`, as wide as
/// a pointer).
#[cfg(target_pointer_width = "64")]
pub type RecNum = u64;
/// A device record number as the target's ABI carries it (`recnum_t`: `rpc_long_natural_t`, as wide as
/// a pointer).
#[cfg(target_pointer_width = "32")]
pub type RecNum = u32;

macro_rules! interfaces {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        // Routines take and return what their .defs lists, however many values that is.
        #[allow(clippy::too_many_arguments, clippy::type_complexity)]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".rs"));
        }
    )*};
}

interfaces! {
    /// `device/device.defs` (subsystem 2800): the device interface.
    device;
    /// `device/device_request.defs` (2800): the one-way request half of the device interface.
    device_request;
    /// `device/device_reply.defs` (2900): the asynchronous reply half.
    device_reply;
    /// `mach/mach.defs` (2000): tasks, threads, virtual memory.
    mach;
    /// `mach/mach_port.defs` (3200): port rights.
    mach_port;
    /// `mach/mach_host.defs` (2600): the host.
    mach_host;
    /// `mach/gnumach.defs` (4200): GNU Mach's additions.
    gnumach;
    /// `mach/machine/mach_i386.defs` (3800): I/O port access; per-ABI variants of the header.
    mach_i386;
    /// `mach/notify.defs` (64): port notifications.
    notify;
    /// `mach/exc.defs` (2400): exception messages, e.g. a thread's fault.
    exc;
    /// The project's `defs/fsys.defs` (22000): the Hurd's `fsys_startup`, `fsys_getroot`,
    /// `fsys_goaway`, `fsys_getpriv`, `fsys_init` and the options (translator role and boot
    /// hand-off).
    fsys;
    /// The project's `defs/startup_notify.defs` (29500): the Hurd's `startup_dosync`.
    startup_notify;
    /// The project's `defs/fs.defs` (20000): the Hurd's `dir_lookup`, `file_set_translator`
    /// and what a translator's node answers (`file_check_access`, `file_getcontrol`,
    /// `file_get_fs_options`).
    fs;
    /// The project's `defs/io.defs` (21000): the Hurd's `io_stat`, `io_get_openmodes`,
    /// `io_restrict_auth` and `io_duplicate`.
    io;
    /// The project's `defs/startup.defs` (29000): the Hurd's `startup_essential_task` and
    /// `startup_request_notification`.
    startup;
    /// The project's `defs/process.defs` (24000): the Hurd's `proc_mark_exec` and
    /// `proc_task2proc`.
    process;
    /// The project's `defs/mach_port_ktype.defs` (3223): GNU Mach's `mach_port_set_ktype`,
    /// which the amd64 headers the stubs come from predate.
    mach_port_ktype;
    /// The project's `defs/auth.defs` (25000): the Hurd's `auth_server_authenticate`
    /// (`io_reauthenticate` on the translator's node).
    auth;
    /// The project's `defs/pci.defs` (39000): the Hurd's `pci_conf_read` and `pci_conf_write`
    /// (PCI configuration space through the pci-arbiter).
    pci;
    /// The project's `defs/device_intr_notify.defs` (100): the message GNU Mach sends a port
    /// registered with `device_intr_register` when its interrupt line fires.
    device_intr_notify;
}

#[cfg(test)]
mod tests;
