//! x86_64 GNU Mach system calls for freestanding tasks.
//!
//! `syscall` with the negative trap number in rax, arguments in rdi, rsi, rdx, r10, r8, r9;
//! the kernel reads arguments 7 and up from the user stack at rsp+8 (one slot skipped as if a
//! return address were there). The result is in rax; rcx and r11 are clobbered.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

mod number {
    pub const MACH_MSG: i64 = -25;
    pub const MACH_REPLY_PORT: i64 = -26;
    pub const MACH_THREAD_SELF: i64 = -27;
    pub const MACH_TASK_SELF: i64 = -28;
    pub const MACH_HOST_SELF: i64 = -29;
    pub const SWTCH_PRI: i64 = -59;
    pub const THREAD_SWITCH: i64 = -61;
    pub const VM_ALLOCATE: i64 = -65;
    pub const VM_DEALLOCATE: i64 = -66;
    pub const PORT_ALLOCATE: i64 = -72;
    pub const PORT_DEALLOCATE: i64 = -73;
    pub const PORT_INSERT_RIGHT: i64 = -74;
    pub const PORT_ALLOCATE_NAME: i64 = -75;
}

#[inline(always)]
fn trap0(number: i64) -> u64 {
    let result: u64;
    // SAFETY: a Mach trap without arguments touches no user memory.
    unsafe {
        asm!("syscall", inlateout("rax") number => result,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    result
}

/// A trap of up to six register arguments.
///
/// # Safety
/// Pointer arguments must be valid for what the trap reads or writes through them.
#[inline(always)]
unsafe fn trap(number: i64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> u64 {
    let result: u64;
    // SAFETY: the caller guarantees the pointer arguments (see above).
    unsafe {
        asm!("syscall", inlateout("rax") number => result,
             in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    result
}

/// `mach_msg_trap`.
///
/// # Safety
/// `msg` must be 8-aligned and valid for `max(send_size, rcv_size)` bytes, and out-of-line
/// descriptors in a sent message must point at memory the kernel may read (and deallocate,
/// when their deallocate bit is set).
pub unsafe fn mach_msg(msg: *mut u8, option: u32, send_size: u32, rcv_size: u32, rcv_name: u32,
                       timeout: u32, notify: u32) -> i32 {
    let result: u64;
    // SAFETY: the caller guarantees the buffer; the seventh argument sits at rsp+8 while the
    // trap runs and both pushed slots are popped before the stack is used again.
    unsafe {
        asm!("push {notify}", "push 0", "syscall", "add rsp, 16",
             notify = in(reg) u64::from(notify),
             inlateout("rax") number::MACH_MSG => result,
             in("rdi") msg, in("rsi") u64::from(option), in("rdx") u64::from(send_size),
             in("r10") u64::from(rcv_size), in("r8") u64::from(rcv_name), in("r9") u64::from(timeout),
             lateout("rcx") _, lateout("r11") _);
    }
    result as i32
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

fn cached(slot: &AtomicU32, number: i64) -> u32 {
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
    unsafe { trap(number::SWTCH_PRI, priority as u64, 0, 0, 0, 0, 0) != 0 }
}

pub fn thread_switch(thread: u32, option: i32, time_ms: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { trap(number::THREAD_SWITCH, thread.into(), option as u64, time_ms.into(), 0, 0, 0) as i32 }
}

pub fn vm_allocate(task: u32, address: &mut usize, size: usize, anywhere: bool) -> i32 {
    // SAFETY: `address` is a valid, writable usize for the duration of the trap.
    unsafe {
        trap(number::VM_ALLOCATE, task.into(), address as *mut usize as u64, size as u64,
             anywhere.into(), 0, 0) as i32
    }
}

/// # Safety
/// Nothing may use the range afterwards: it is unmapped.
pub unsafe fn vm_deallocate(task: u32, address: usize, size: usize) -> i32 {
    // SAFETY: the caller gives up the range.
    unsafe { trap(number::VM_DEALLOCATE, task.into(), address as u64, size as u64, 0, 0, 0) as i32 }
}

pub fn port_allocate(task: u32, right: u32, name: &mut u32) -> i32 {
    // SAFETY: `name` is a valid, writable u32 for the duration of the trap.
    unsafe {
        trap(number::PORT_ALLOCATE, task.into(), right.into(), name as *mut u32 as u64, 0, 0, 0) as i32
    }
}

pub fn port_deallocate(task: u32, name: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { trap(number::PORT_DEALLOCATE, task.into(), name.into(), 0, 0, 0, 0) as i32 }
}

pub fn port_insert_right(task: u32, name: u32, right: u32, right_type: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe {
        trap(number::PORT_INSERT_RIGHT, task.into(), name.into(), right.into(), right_type.into(), 0, 0) as i32
    }
}

pub fn port_allocate_name(task: u32, right: u32, name: u32) -> i32 {
    // SAFETY: no pointer arguments.
    unsafe { trap(number::PORT_ALLOCATE_NAME, task.into(), right.into(), name.into(), 0, 0, 0) as i32 }
}

pub use crate::rt::stack::{discard_thread_reply_port, thread_reply_port};
