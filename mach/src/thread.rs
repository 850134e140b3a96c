//! Threads of the calling task.
//!
//! Freestanding: `thread_create`, a runtime stack (see `stack.rs`), the new thread's register
//! state from `thread_get_state` with the instruction and user stack pointers (and on x86_64 the
//! first argument) replaced at their offsets in gnumach's `struct i386_thread_state` of the
//! target's ABI (bindgen), `thread_set_state`,
//! `thread_resume`. On the host, a thread of the simulated task.

use crate::kern::Result;
use alloc::boxed::Box;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Run `f` on a new thread of this task. The thread ends when `f` returns.
pub fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<()> {
    start(Box::new(f))
}

#[cfg(not(any(target_os = "none", target_os = "hurd")))]
fn start(job: Job) -> Result<()> {
    drop(crate::sim::Task::current().spawn(job));
    Ok(())
}

#[cfg(target_os = "none")]
fn start(job: Job) -> Result<()> {
    use crate::constants::{i386_thread_state, i386_THREAD_STATE};
    use crate::interfaces::mach;
    use crate::kern::{Error, MIG_ARRAY_TOO_LARGE};
    use crate::port::PortName;
    use crate::stack;

    const STATE_WORDS: usize = core::mem::size_of::<i386_thread_state>() / 4;
    let task = PortName::new(crate::sys::mach_task_self());
    let thread = mach::thread_create(task)?;
    let base = stack::allocate()?;
    if let Err(error) = crate::rt::guard_stack(base) {
        let _ = mach::thread_terminate(thread.name());
        stack::deallocate(base);
        return Err(error);
    }
    let state = mach::thread_get_state(thread.name(), i386_THREAD_STATE as i32, STATE_WORDS as u32)
        .and_then(|words| match words.as_slice() {
            words if words.len() == STATE_WORDS => Ok(words.to_vec()),
            _ => Err(Error::from_const(MIG_ARRAY_TOO_LARGE)), // not the state this runtime was built for
        });
    let mut state = match state {
        Ok(state) => state,
        Err(error) => {
            let _ = mach::thread_terminate(thread.name());
            stack::deallocate(base);
            return Err(error);
        }
    };
    let job = Box::into_raw(Box::new(job));
    set_entry(&mut state, stack::top(base), job);
    let started = mach::thread_set_state(thread.name(), i386_THREAD_STATE as i32, &state)
        .and_then(|()| mach::thread_resume(thread.name()));
    if let Err(error) = started {
        // SAFETY: the thread never ran, so the job was not taken.
        drop(unsafe { Box::from_raw(job) });
        let _ = mach::thread_terminate(thread.name());
        stack::deallocate(base);
        return Err(error);
    }
    Ok(())
}

/// Point a new thread's state at `thread_entry(job)` on the stack whose top is `top`, as if it
/// had been called: rsp + 8 16-aligned at entry, `job` in rdi.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
fn set_entry(state: &mut [u32], top: usize, job: *mut Job) {
    use crate::constants::i386_thread_state as State;
    use core::mem::offset_of;
    set_register(state, offset_of!(State, rip), thread_entry as *const () as usize as u64);
    set_register(state, offset_of!(State, ursp), (top - 8) as u64);
    set_register(state, offset_of!(State, rdi), job as u64);
}

/// Store a 64-bit register at byte `offset` of a thread state given as 32-bit words.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
fn set_register(state: &mut [u32], offset: usize, value: u64) {
    let at = offset / 4;
    state[at] = value as u32;
    state[at + 1] = (value >> 32) as u32;
}

/// Point a new thread's state at `thread_entry(job)` on the stack whose top is `top`, as if it
/// had been called (cdecl): `job` on the stack at a 16-aligned address, the return address slot
/// below it.
#[cfg(all(target_os = "none", target_arch = "x86"))]
fn set_entry(state: &mut [u32], top: usize, job: *mut Job) {
    use crate::constants::i386_thread_state as State;
    use core::mem::offset_of;
    let argument = top - 16;
    // SAFETY: the stack was just allocated for the new thread, which has not run: nothing else
    // uses its top words.
    unsafe { (argument as *mut usize).write(job as usize) };
    state[offset_of!(State, eip) / 4] = thread_entry as *const () as usize as u32;
    state[offset_of!(State, uesp) / 4] = (argument - 4) as u32;
}

/// A new thread's first function: run the job, then end the thread.
#[cfg(target_os = "none")]
extern "C" fn thread_entry(job: *mut Job) -> ! {
    // SAFETY: `start` passed ownership of the boxed job to this thread.
    let job = unsafe { Box::from_raw(job) };
    job();
    exit_thread()
}

/// Ends the calling thread and gives back what it holds — its stack, its reply port and the name
/// of its own thread port — with the one call GNU Mach has for it: a thread can neither unmap the
/// stack it runs on nor release the name it terminates itself through.
#[cfg(target_os = "none")]
fn exit_thread() -> ! {
    use crate::port::PortName;
    use crate::stack;
    let task = PortName::new(crate::sys::mach_task_self());
    let me = PortName::new(crate::sys::mach_thread_self());
    let reply = crate::reply_port();
    let base = stack::current_base();
    // `as _`: the ABI's vm_address_t and vm_size_t, as wide as usize.
    let _ = crate::interfaces::gnumach::thread_terminate_release(me, task, me, reply, base as _, stack::STACK_SIZE as _);
    // Not reached: the kernel ends the thread inside the call.
    loop {
        crate::sys::swtch_pri(0);
    }
}

#[cfg(all(test, not(any(target_os = "none", target_os = "hurd"))))]
mod tests {
    use super::*;
    use crate::msg::{header_bits, receive, send, Header, MsgBuf, HEADER_SIZE};
    use crate::port::ReceiveRight;

    #[test]
    fn a_spawned_thread_runs_in_the_same_task_and_uses_its_names() {
        let port = ReceiveRight::new().unwrap();
        let right = port.make_send().unwrap();
        let name = right.into_name(); // moved to the new thread, which sends with it
        spawn(move || {
            let mut buf = MsgBuf::<64>::new();
            const MOVE_SEND: u32 = 17;
            let header = Header { bits: header_bits(MOVE_SEND, 0), size: HEADER_SIZE as u32, remote: name, id: 42, ..Header::default() };
            buf.set_header(&header);
            send(buf.as_bytes_mut(), HEADER_SIZE, None).unwrap();
        })
        .unwrap();
        let mut buf = MsgBuf::<64>::new();
        let message = receive(buf.as_bytes_mut(), port.name(), Some(5000)).unwrap();
        assert_eq!(Header::read(message).unwrap().id, 42);
    }
}
