//! GNU Mach system calls for freestanding tasks, over the target's trap instruction
//! ([`x86_64`]: `syscall`; [`x86`]: the i386 call gate).

use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
use x86::{trap0, trap4, trap7};
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64::{trap0, trap4, trap7};

mod number {
    pub const MACH_MSG: isize = -25;
    pub const MACH_REPLY_PORT: isize = -26;
    pub const MACH_THREAD_SELF: isize = -27;
    pub const MACH_TASK_SELF: isize = -28;
    pub const MACH_HOST_SELF: isize = -29;
    pub const SWTCH_PRI: isize = -59;
    pub const THREAD_SWITCH: isize = -61;
    pub const VM_ALLOCATE: isize = -65;
    pub const VM_DEALLOCATE: isize = -66;
    pub const PORT_ALLOCATE: isize = -72;
    pub const PORT_DEALLOCATE: isize = -73;
    pub const PORT_INSERT_RIGHT: isize = -74;
    pub const PORT_ALLOCATE_NAME: isize = -75;
}

/// `mach_msg_trap`.
///
/// # Safety
/// `msg` must be 8-aligned and valid for `max(send_size, rcv_size)` bytes, and out-of-line
/// descriptors in a sent message must point at memory the kernel may read (and deallocate,
/// when their deallocate bit is set).
pub unsafe fn mach_msg(msg: *mut u8, option: u32, send_size: u32, rcv_size: u32, rcv_name: u32,
                       timeout: u32, notify: u32) -> i32 {
    // SAFETY: the caller guarantees the buffer.
    unsafe {
        trap7(number::MACH_MSG, [msg as usize, option as usize, send_size as usize, rcv_size as usize,
                                 rcv_name as usize, timeout as usize, notify as usize]) as i32
    }
}

pub fn mach_reply_port() -> u32 {
    trap0(number::MACH_REPLY_PORT) as u32
}

/// The task's own port. The trap adds a user reference on every call, so the name is fetched
/// once and cached (as glibc's `__mach_task_self_`).
pub fn mach_task_self() -> u32 {
    static TASK_SELF: AtomicU32 = AtomicU32::new(0);
    cached(&TASK_SELF, number::MACH_TASK_SELF)
}

/// The host port, cached like [`mach_task_self`].
pub fn mach_host_self() -> u32 {
    static HOST_SELF: AtomicU32 = AtomicU32::new(0);
    cached(&HOST_SELF, number::MACH_HOST_SELF)
}

fn cached(slot: &AtomicU32, number: isize) -> u32 {
    match slot.load(Ordering::Relaxed) {
        0 => {
            let name = trap0(number) as u32;
            slot.store(name, Ordering::Relaxed);
            name
        }
        name => name,
    }
}

/// A send right to the calling thread (a new user reference each call: release it).
pub fn mach_thread_self() -> u32 {
    trap0(number::MACH_THREAD_SELF) as u32
}

/// Yield the processor, dropping to `priority` meanwhile; true if other threads may be runnable.
pub fn swtch_pri(priority: i32) -> bool {
    // SAFETY: no pointer arguments.
    unsafe { trap4(number::SWTCH_PRI, [priority as usize, 0, 0, 0]) != 0 }
}

pub fn thread_switch(thread: u32, option: i32, time_ms: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { trap4(number::THREAD_SWITCH, [thread as usize, option as usize, time_ms as usize, 0]) as i32 }
}

pub fn vm_allocate(task: u32, address: &mut usize, size: usize, anywhere: bool) -> i32 {
    // SAFETY: `address` is a valid, writable usize for the duration of the trap.
    unsafe {
        trap4(number::VM_ALLOCATE, [task as usize, address as *mut usize as usize, size, anywhere.into()]) as i32
    }
}

/// # Safety
/// Nothing may use the range afterwards: it is unmapped.
pub unsafe fn vm_deallocate(task: u32, address: usize, size: usize) -> i32 {
    // SAFETY: the caller gives up the range.
    unsafe { trap4(number::VM_DEALLOCATE, [task as usize, address, size, 0]) as i32 }
}

pub fn port_allocate(task: u32, right: u32, name: &mut u32) -> i32 {
    // SAFETY: `name` is a valid, writable u32 for the duration of the trap.
    unsafe {
        trap4(number::PORT_ALLOCATE, [task as usize, right as usize, name as *mut u32 as usize, 0]) as i32
    }
}

pub fn port_deallocate(task: u32, name: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { trap4(number::PORT_DEALLOCATE, [task as usize, name as usize, 0, 0]) as i32 }
}

pub fn port_insert_right(task: u32, name: u32, right: u32, right_type: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe {
        trap4(number::PORT_INSERT_RIGHT, [task as usize, name as usize, right as usize, right_type as usize]) as i32
    }
}

pub fn port_allocate_name(task: u32, right: u32, name: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { trap4(number::PORT_ALLOCATE_NAME, [task as usize, right as usize, name as usize, 0]) as i32 }
}
