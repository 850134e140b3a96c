//! Threads of the calling task.
//!
//! Freestanding: `thread_create`, a runtime stack (see `rt::stack`), the new thread's register
//! state from `thread_get_state` with rip, the user stack pointer and the first argument
//! replaced, `thread_set_state`, `thread_resume`. On the host, a thread of the simulated task.

use crate::kern::Result;
use alloc::boxed::Box;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Run `f` on a new thread of this task. The thread ends when `f` returns.
pub fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<()> {
    start(Box::new(f))
}

#[cfg(not(any(target_os = "none", target_os = "hurd")))]
fn start(job: Job) -> Result<()> {
    drop(crate::sys::sim::Task::current().spawn(job));
    Ok(())
}

#[cfg(target_os = "none")]
fn start(job: Job) -> Result<()> {
    use crate::interfaces::constants::{i386_thread_state, i386_THREAD_STATE};
    use crate::interfaces::mach;
    use crate::port::PortName;
    use crate::rt::stack;

    const STATE_WORDS: usize = core::mem::size_of::<i386_thread_state>() / 4;
    let task = PortName::new(crate::sys::mach_task_self());
    let thread = mach::thread_create(task)?;
    let base = stack::allocate()?;
    let words = match mach::thread_get_state(thread.name(), i386_THREAD_STATE as i32, STATE_WORDS as u32) {
        Ok(words) => words,
        Err(error) => {
            stack::deallocate(base);
            return Err(error);
        }
    };
    let mut state = state_from_words(words.as_slice());
    let job = Box::into_raw(Box::new(job));
    state.rip = thread_entry as *const () as usize as u64;
    // As if `thread_entry` had been called: rsp + 8 is 16-aligned at entry.
    state.ursp = (stack::top(base) - 8) as u64;
    state.rdi = job as u64;
    let started = mach::thread_set_state(thread.name(), i386_THREAD_STATE as i32, &state_words(&state))
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

#[cfg(target_os = "none")]
fn state_from_words(words: &[u32]) -> crate::interfaces::constants::i386_thread_state {
    let mut state = crate::interfaces::constants::i386_thread_state::default();
    let size = core::mem::size_of_val(&state).min(words.len() * 4);
    // SAFETY: i386_thread_state is plain integers (any bit pattern valid); at most its size is written.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr().cast::<u8>(), &mut state as *mut _ as *mut u8, size) };
    state
}

#[cfg(target_os = "none")]
fn state_words(state: &crate::interfaces::constants::i386_thread_state) -> alloc::vec::Vec<u32> {
    let words = core::mem::size_of_val(state) / 4;
    // SAFETY: reads the plain-integer struct as the 32-bit words thread_set_state takes.
    unsafe { core::slice::from_raw_parts(state as *const _ as *const u32, words) }.to_vec()
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
    use crate::rt::stack;
    let task = PortName::new(crate::sys::mach_task_self());
    let me = PortName::new(crate::sys::mach_thread_self());
    let reply = crate::reply_port();
    let base = stack::current_base();
    let _ = crate::interfaces::gnumach::thread_terminate_release(me, task, me, reply, base as u64, stack::STACK_SIZE as u64);
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
