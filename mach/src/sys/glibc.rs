//! GNU/Hurd: the Mach calls glibc exports (its traps and its fast-path RPC wrappers).
//! Compile-checked here; no Hurd libc is available to link against.

use core::ffi::c_int;

extern "C" {
    #[link_name = "mach_msg"]
    fn glibc_mach_msg(msg: *mut u8, option: c_int, send_size: u32, rcv_size: u32, rcv_name: u32,
                      timeout: u32, notify: u32) -> c_int;
    #[link_name = "mach_reply_port"]
    fn glibc_mach_reply_port() -> u32;
    static __mach_task_self_: u32;
    #[link_name = "mach_host_self"]
    fn glibc_mach_host_self() -> u32;
    #[link_name = "mach_thread_self"]
    fn glibc_mach_thread_self() -> u32;
    #[link_name = "swtch_pri"]
    fn glibc_swtch_pri(priority: c_int) -> c_int;
    #[link_name = "thread_switch"]
    fn glibc_thread_switch(thread: u32, option: c_int, time_ms: u32) -> c_int;
    #[link_name = "vm_allocate"]
    fn glibc_vm_allocate(task: u32, address: *mut usize, size: usize, anywhere: c_int) -> c_int;
    #[link_name = "vm_deallocate"]
    fn glibc_vm_deallocate(task: u32, address: usize, size: usize) -> c_int;
    #[link_name = "mach_port_allocate"]
    fn glibc_port_allocate(task: u32, right: u32, name: *mut u32) -> c_int;
    #[link_name = "mach_port_deallocate"]
    fn glibc_port_deallocate(task: u32, name: u32) -> c_int;
    #[link_name = "mach_port_insert_right"]
    fn glibc_port_insert_right(task: u32, name: u32, right: u32, right_type: u32) -> c_int;
    #[link_name = "mach_port_allocate_name"]
    fn glibc_port_allocate_name(task: u32, right: u32, name: u32) -> c_int;
    #[link_name = "__mig_get_reply_port"]
    fn glibc_mig_get_reply_port() -> u32;
    #[link_name = "__mig_dealloc_reply_port"]
    fn glibc_mig_dealloc_reply_port(port: u32);
    #[link_name = "getauth"]
    fn glibc_getauth() -> u32;
    #[link_name = "get_privileged_ports"]
    fn glibc_get_privileged_ports(host_priv: *mut u32, device_master: *mut u32) -> c_int;
    #[link_name = "mach_port_mod_refs"]
    fn glibc_port_mod_refs(task: u32, name: u32, right: u32, delta: c_int) -> c_int;
    /// What `get_privileged_ports` hands out when set (`hurd/privports.c`).
    static mut _hurd_host_priv: u32;
    static mut _hurd_device_master: u32;
}

/// # Safety
/// As the freestanding `mach_msg`: `msg` valid for both sizes, out-of-line descriptors valid.
pub unsafe fn mach_msg(msg: *mut u8, option: u32, send_size: u32, rcv_size: u32, rcv_name: u32,
                       timeout: u32, notify: u32) -> i32 {
    // SAFETY: the caller guarantees the buffer and descriptors.
    unsafe { glibc_mach_msg(msg, option as c_int, send_size, rcv_size, rcv_name, timeout, notify) }
}

pub fn mach_reply_port() -> u32 {
    // SAFETY: a trap without arguments.
    unsafe { glibc_mach_reply_port() }
}

pub fn mach_task_self() -> u32 {
    // SAFETY: glibc sets the cached task port before any user code runs and never changes it.
    unsafe { __mach_task_self_ }
}

pub fn mach_host_self() -> u32 {
    // SAFETY: a trap without arguments.
    unsafe { glibc_mach_host_self() }
}

pub fn mach_thread_self() -> u32 {
    // SAFETY: a trap without arguments.
    unsafe { glibc_mach_thread_self() }
}

pub fn swtch_pri(priority: i32) -> bool {
    // SAFETY: no pointer arguments.
    unsafe { glibc_swtch_pri(priority) != 0 }
}

pub fn thread_switch(thread: u32, option: i32, time_ms: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { glibc_thread_switch(thread, option, time_ms) }
}

pub fn vm_allocate(task: u32, address: &mut usize, size: usize, anywhere: bool) -> i32 {
    // SAFETY: `address` is valid and writable for the call.
    unsafe { glibc_vm_allocate(task, address, size, anywhere.into()) }
}

/// # Safety
/// Nothing may use the range afterwards: it is unmapped.
pub unsafe fn vm_deallocate(task: u32, address: usize, size: usize) -> i32 {
    // SAFETY: the caller gives up the range.
    unsafe { glibc_vm_deallocate(task, address, size) }
}

pub fn port_allocate(task: u32, right: u32, name: &mut u32) -> i32 {
    // SAFETY: `name` is valid and writable for the call.
    unsafe { glibc_port_allocate(task, right, name) }
}

pub fn port_deallocate(task: u32, name: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { glibc_port_deallocate(task, name) }
}

pub fn port_insert_right(task: u32, name: u32, right: u32, right_type: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { glibc_port_insert_right(task, name, right, right_type) }
}

pub fn port_allocate_name(task: u32, right: u32, name: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { glibc_port_allocate_name(task, right, name) }
}

/// The calling thread's reply port, kept by glibc in thread-local storage.
pub fn thread_reply_port() -> u32 {
    // SAFETY: glibc's per-thread reply port; allocates one on first use.
    unsafe { glibc_mig_get_reply_port() }
}

/// Destroy the calling thread's reply port (a late reply may be queued on it).
pub fn discard_thread_reply_port() {
    // SAFETY: hands glibc back the port it gave out for this thread.
    unsafe { glibc_mig_dealloc_reply_port(glibc_mig_get_reply_port()) }
}

/// The Hurd's `get_privileged_ports`: send rights to the host-priv port and the device master,
/// for a privileged task (from the proc server, or the boot-time ports glibc was started with).
/// Returns an errno value, 0 on success.
pub fn get_privileged_ports(host_priv: &mut u32, device_master: &mut u32) -> i32 {
    // SAFETY: both pointers are valid and writable for the call; glibc stores one name in each.
    unsafe { glibc_get_privileged_ports(host_priv, device_master) }
}

/// Hands glibc the privileged ports a boot server was given, as upstream's boot servers set
/// `_hurd_host_priv` and `_hurd_device_master`: code that calls `get_privileged_ports` — the
/// rump kernel's `ioperm`, libpciaccess, the `irq` device's open — has no proc server to ask
/// before the system runs. glibc gets a user reference of its own to each; a port glibc already
/// holds stays. Returns a `kern_return_t`. Call it before any other thread runs.
pub fn give_privileged_ports(host_priv: u32, device_master: u32) -> i32 {
    // SAFETY: no other thread runs yet (the caller's promise), so nothing reads or writes
    // glibc's two variables meanwhile; they hold port names, which any value is.
    unsafe {
        for (held, given) in [(&raw mut _hurd_host_priv, host_priv), (&raw mut _hurd_device_master, device_master)] {
            if *held != 0 {
                continue;
            }
            match glibc_port_mod_refs(__mach_task_self_, given, crate::sys::MACH_PORT_RIGHT_SEND, 1) {
                0 => *held = given,
                error => return error,
            }
        }
    }
    0
}

/// The Hurd's `getauth`: a send right of the caller's own to the process's auth server.
pub fn getauth() -> u32 {
    // SAFETY: no arguments; glibc returns a new reference to its cached auth port.
    unsafe { glibc_getauth() }
}
