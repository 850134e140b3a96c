//! Thread stacks and the per-thread block, which holds the thread's reply port (so this sits
//! below `reply.rs` and the messages; the guard page above the block is an RPC, set by `rt`).
//!
//! Every thread of a freestanding task (the first one included: `_start` switches to such a
//! stack) runs on a stack of [`STACK_SIZE`] bytes aligned to its size, whose lowest bytes hold
//! the thread's [`ThreadBlock`], followed by a guard page. The block is found from the stack
//! pointer alone, so no thread register (fs/gs base) is needed.

use crate::kern::{self, Result};
use crate::port::{PortName, ReceiveRight};
use crate::sys;
use core::sync::atomic::{AtomicU32, Ordering};

/// Bytes of stack per thread (a power of two; pages are only touched as the stack grows).
pub const STACK_SIZE: usize = 1 << 20;

/// What the runtime keeps per thread.
pub struct ThreadBlock {
    reply_port: AtomicU32,
}

/// Bytes at the base holding the thread block; the page after it is the guard page.
pub(crate) const BLOCK_PAGE: usize = 4096;

/// Allocate an aligned stack with a fresh thread block; returns its base address. Only traps:
/// it runs before any thread block exists. `rt::guard_stack` then protects it.
pub fn allocate() -> Result<usize> {
    let task = sys::mach_task_self();
    let mut address = 0;
    kern::check(sys::vm_allocate(task, &mut address, 2 * STACK_SIZE, true))?;
    let base = address.next_multiple_of(STACK_SIZE);
    let head = base - address;
    let tail = STACK_SIZE - head;
    // SAFETY: both ranges are parts of the region just allocated that the stack does not use.
    unsafe {
        if head > 0 {
            sys::vm_deallocate(task, address, head);
        }
        if tail > 0 {
            sys::vm_deallocate(task, base + STACK_SIZE, tail);
        }
    }
    // The memory is zero-filled: a zero reply port means "none yet".
    Ok(base)
}

/// Give a stack back (for a thread that never ran on it).
pub fn deallocate(base: usize) {
    // SAFETY: the caller owns the stack and no thread runs on it.
    unsafe { sys::vm_deallocate(sys::mach_task_self(), base, STACK_SIZE) };
}

/// The initial stack pointer for a stack: its top, 16-aligned.
pub fn top(base: usize) -> usize {
    base + STACK_SIZE
}

/// The base of the stack the calling thread runs on.
pub fn current_base() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer only.
    #[cfg(target_arch = "x86_64")]
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    // SAFETY: as above.
    #[cfg(target_arch = "x86")]
    unsafe { core::arch::asm!("mov {}, esp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp & !(STACK_SIZE - 1)
}

fn current_block() -> &'static ThreadBlock {
    let base = current_base();
    // SAFETY: every thread runs on a runtime stack (see the module docs), whose zero-filled
    // first bytes are this thread's block and stay mapped while the thread runs.
    unsafe { &*(base as *const ThreadBlock) }
}

/// The calling thread's reply port, made on first use.
pub fn thread_reply_port() -> u32 {
    let block = current_block();
    match block.reply_port.load(Ordering::Relaxed) {
        0 => {
            let port = sys::mach_reply_port();
            block.reply_port.store(port, Ordering::Relaxed);
            port
        }
        port => port,
    }
}

/// Destroy the calling thread's reply port (a late reply may be queued on it).
pub fn discard_thread_reply_port() {
    let port = current_block().reply_port.swap(0, Ordering::Relaxed);
    if port != 0 {
        drop(ReceiveRight::from_name(PortName::new(port)));
    }
}
