//! The trap functions, with the same signatures as the real backends, over the simulation.

use super::kernel::{self, with_state};
use crate::kern::{KERN_INVALID_ARGUMENT, KERN_INVALID_TASK, KERN_NO_SPACE, KERN_SUCCESS, MACH_SEND_MSG_TOO_SMALL};
use crate::sys::{MACH_RCV_LARGE, MACH_RCV_MSG, MACH_RCV_TIMEOUT, MACH_SEND_MSG};
use std::cell::Cell;
use std::time::Duration;

/// `mach_msg` over the simulated kernel.
///
/// # Safety
/// `msg` must be valid for `max(send_size, rcv_size)` bytes, and out-of-line descriptors of a
/// sent message must point at readable memory of the stated length.
pub unsafe fn mach_msg(msg: *mut u8, option: u32, send_size: u32, rcv_size: u32, rcv_name: u32,
                       timeout: u32, _notify: u32) -> i32 {
    let task = kernel::current();
    if option & MACH_SEND_MSG != 0 {
        if msg.is_null() {
            return MACH_SEND_MSG_TOO_SMALL;
        }
        // SAFETY: the caller guarantees `send_size` readable bytes at `msg`.
        let bytes = unsafe { core::slice::from_raw_parts(msg, send_size as usize) };
        let remote = super::layout::read_u32(bytes, super::layout::OFFSET_REMOTE).unwrap_or(0);
        let (code, kernel_call) = with_state(|state| {
            let kernel = state.kernel_receiving(task, remote);
            (state.send(task, bytes), kernel)
        });
        if code != KERN_SUCCESS {
            return code;
        }
        if let Some((kernel, set)) = kernel_call {
            super::kernel_calls::serve_queued(kernel, set);
        }
    }
    if option & MACH_RCV_MSG != 0 {
        // SAFETY: the caller guarantees `rcv_size` writable bytes at `msg`.
        let buf = unsafe { core::slice::from_raw_parts_mut(msg, rcv_size as usize) };
        let wait = (option & MACH_RCV_TIMEOUT != 0).then(|| Duration::from_millis(timeout.into()));
        return kernel::receive(task, rcv_name, buf, option & MACH_RCV_LARGE != 0, wait);
    }
    KERN_SUCCESS
}

pub fn mach_reply_port() -> u32 {
    let task = kernel::current();
    with_state(|state| state.reply_port(task))
}

/// The task's own port, as glibc's cached `__mach_task_self_` (no new reference per call).
pub fn mach_task_self() -> u32 {
    let task = kernel::current();
    with_state(|state| state.self_port_name(task))
}

/// The simulation has no host or thread ports.
pub fn mach_host_self() -> u32 {
    0
}

pub fn mach_thread_self() -> u32 {
    0
}

pub fn swtch_pri(_priority: i32) -> bool {
    std::thread::yield_now();
    true
}

pub fn thread_switch(_thread: u32, _option: i32, time_ms: u32) -> i32 {
    std::thread::sleep(Duration::from_millis(time_ms.into()));
    KERN_SUCCESS
}

/// Run `f` on the task a task-port name of the caller denotes.
fn on_task(task: u32, f: impl FnOnce(&mut kernel::State, u64) -> i32) -> i32 {
    let caller = kernel::current();
    with_state(|state| match state.task_of(caller, task) {
        Some(target) => f(state, target),
        None => KERN_INVALID_TASK,
    })
}

pub fn vm_allocate(task: u32, address: &mut usize, size: usize, anywhere: bool) -> i32 {
    if !anywhere {
        return KERN_NO_SPACE; // fixed placement is not simulated
    }
    if size == 0 {
        return KERN_INVALID_ARGUMENT;
    }
    on_task(task, |state, target| {
        *address = state.allocate_region(target, size);
        KERN_SUCCESS
    })
}

/// # Safety
/// Nothing may use the range afterwards: it is freed.
pub unsafe fn vm_deallocate(task: u32, address: usize, size: usize) -> i32 {
    on_task(task, |state, target| state.deallocate_region(target, address, size))
}

pub fn port_allocate(task: u32, right: u32, name: &mut u32) -> i32 {
    on_task(task, |state, target| match state.port_allocate(target, right, None) {
        Ok(new) => {
            *name = new;
            KERN_SUCCESS
        }
        Err(error) => error.code(),
    })
}

pub fn port_deallocate(task: u32, name: u32) -> i32 {
    on_task(task, |state, target| state.port_deallocate(target, name))
}

pub fn port_insert_right(task: u32, name: u32, right: u32, right_type: u32) -> i32 {
    on_task(task, |state, target| state.port_insert_right(target, name, right, right_type))
}

pub fn port_allocate_name(task: u32, right: u32, name: u32) -> i32 {
    on_task(task, |state, target| match state.port_allocate(target, right, Some(name)) {
        Ok(_) => KERN_SUCCESS,
        Err(error) => error.code(),
    })
}

std::thread_local! {
    static REPLY_PORT: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's reply port, allocated on first use.
pub fn thread_reply_port() -> u32 {
    REPLY_PORT.with(|slot| {
        if slot.get() == 0 {
            slot.set(mach_reply_port());
        }
        slot.get()
    })
}

/// Destroy the calling thread's reply port (a late reply may be queued on it).
pub fn discard_thread_reply_port() {
    let name = REPLY_PORT.with(|slot| slot.replace(0));
    if name != 0 {
        let task = kernel::current();
        with_state(|state| state.port_mod_refs(task, name, crate::sys::MACH_PORT_RIGHT_RECEIVE, -1));
    }
}
