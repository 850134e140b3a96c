//! The simulated kernel's RPC side: task ports are received by a kernel task, and a call is served
//! in the thread that sent it, as the kernel task, through the **generated** `mach_port` and `mach` demuxes, so the runtime's kernel calls
//! (and tests of the generated stubs) take the same path as on GNU Mach.

use super::kernel::{as_task, with_state, TaskId};
use crate::interfaces::{mach, mach_port};
use crate::kern::{check, Error, Result, KERN_INVALID_ARGUMENT, KERN_INVALID_TASK};
use crate::mig_rt::ReplyPort;
use crate::msg::{Disposition, Header};
use crate::ool::OolMemory;
use crate::constants::MACH_NOTIFY_NO_SENDERS;
use crate::mig_rt::PortArg;
use crate::port::{PortName, SendOnceRight};
use alloc::vec::Vec;

/// The requests for one task port.
struct KernelCalls {
    target: TaskId,
}

/// Serve the calls queued on task ports (members of `set`, in the kernel task's space), in the
/// calling thread as the kernel task: the thread that sent one, as on GNU Mach.
pub(super) fn serve_queued(kernel: TaskId, set: u32) {
    let mut demux = |request: &[u8], reply: &mut [u8]| {
        let Some(header) = Header::read(request) else { return Disposition::NoReply };
        let target = with_state(|state| state.task_of_port_name(header.local));
        let mut calls = KernelCalls { target: target.unwrap_or(0) };
        let handled = if (mach_port::BASE..mach_port::BASE + 100).contains(&header.id) {
            mach_port::demux(&mut calls, request, reply)
        } else if (crate::interfaces::device::BASE..crate::interfaces::device::BASE + 100).contains(&header.id) {
            super::irq::demux(request, reply)
        } else {
            mach::demux(&mut calls, request, reply)
        };
        handled.disposition()
    };
    as_task(kernel, || crate::msg::serve_queued(PortName::new(set), &mut demux));
}

impl KernelCalls {
    fn on_target(&self, f: impl FnOnce(&mut super::kernel::State, TaskId) -> i32) -> Result<()> {
        if self.target == 0 {
            return Err(Error::from_const(KERN_INVALID_TASK));
        }
        check(with_state(|state| f(state, self.target)))
    }
}

impl mach_port::Server for KernelCalls {
    fn mach_port_names(&mut self, _reply_to: ReplyPort<'_>, _task: PortName) -> Result<(OolMemory, OolMemory)> {
        let entries = with_state(|state| state.names(self.target));
        let names: Vec<u8> = entries.iter().flat_map(|(name, _)| name.to_le_bytes()).collect();
        let types: Vec<u8> = entries.iter().flat_map(|(_, kind)| kind.to_le_bytes()).collect();
        Ok((OolMemory::copy_from(&names)?, OolMemory::copy_from(&types)?))
    }

    fn mach_port_destroy(&mut self, _reply_to: ReplyPort<'_>, _task: PortName, name: PortName) -> Result<()> {
        self.on_target(|state, task| state.port_destroy(task, name.raw()))
    }

    fn mach_port_mod_refs(&mut self, _reply_to: ReplyPort<'_>, _task: PortName, name: PortName, right: u32, delta: i32) -> Result<()> {
        self.on_target(|state, task| state.port_mod_refs(task, name.raw(), right, delta))
    }

    fn mach_port_request_notification(&mut self, _reply_to: ReplyPort<'_>, _task: PortName, name: PortName, id: i32, sync: u32, notify: SendOnceRight) -> Result<PortArg> {
        if id != MACH_NOTIFY_NO_SENDERS as i32 || self.target == 0 {
            return Err(Error::from_const(KERN_INVALID_ARGUMENT)); // the only one simulated
        }
        let caller = super::kernel::current();
        let previous = with_state(|state| state.request_no_senders(self.target, name.raw(), sync, caller, notify.into_name().raw()))?;
        // No previous request: a null send-once right.
        Ok(PortArg::move_send_once(SendOnceRight::from_name(PortName::new(previous.unwrap_or(0)))))
    }

    fn mach_port_move_member(&mut self, _reply_to: ReplyPort<'_>, _task: PortName, member: PortName, after: PortName) -> Result<()> {
        self.on_target(|state, task| state.port_move_member(task, member.raw(), after.raw()))
    }
}

impl mach::Server for KernelCalls {
    fn task_terminate(&mut self, _reply_to: ReplyPort<'_>, _target_task: PortName) -> Result<()> {
        self.on_target(|state, task| {
            state.terminate(task);
            0
        })
    }

    fn vm_allocate(&mut self, _reply_to: ReplyPort<'_>, _target_task: PortName, _address: u64, size: u64, anywhere: bool) -> Result<u64> {
        if !anywhere || size == 0 {
            return Err(Error::from_const(KERN_INVALID_ARGUMENT));
        }
        let size = usize::try_from(size).map_err(|_| Error::from_const(KERN_INVALID_ARGUMENT))?;
        let mut address = 0;
        self.on_target(|state, task| {
            address = state.allocate_region(task, size);
            0
        })?;
        Ok(address as u64)
    }

    fn vm_deallocate(&mut self, _reply_to: ReplyPort<'_>, _target_task: PortName, address: u64, size: u64) -> Result<()> {
        self.on_target(|state, task| state.deallocate_region(task, address as usize, size as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kern::MIG_BAD_ID;
    use crate::port::ReceiveRight;
    use crate::sim::Task;

    fn task_self() -> PortName {
        PortName::new(crate::sys::mach_task_self())
    }

    fn names() -> Vec<(u32, u32)> {
        let (names, types) = mach_port::mach_port_names(task_self()).unwrap();
        let words = |m: &OolMemory| -> Vec<u32> {
            m.as_slice().chunks_exact(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect()
        };
        words(&names).into_iter().zip(words(&types)).collect()
    }

    #[test]
    fn mach_port_names_through_the_generated_stub_lists_the_task_s_rights() {
        crate::reply_port();
        let before = names();
        assert_eq!(before.len(), Task::current().stats().names);
        let port = ReceiveRight::new().unwrap();
        let after = names();
        const MACH_PORT_TYPE_RECEIVE: u32 = 1 << 17;
        assert_eq!(after.len(), before.len() + 1);
        assert!(after.contains(&(port.name().raw(), MACH_PORT_TYPE_RECEIVE)));
        drop(port);
        assert_eq!(names(), before);
    }

    #[test]
    fn vm_allocate_and_vm_deallocate_rpcs_account_their_region() {
        let task = Task::current();
        let before = task.stats();
        let address = mach::vm_allocate(task_self(), 0, 3 * 4096, true).unwrap();
        assert_eq!(task.stats().region_bytes, before.region_bytes + 3 * 4096);
        mach::vm_deallocate(task_self(), address, 3 * 4096).unwrap();
        assert_eq!(task.stats().region_bytes, before.region_bytes);
        let refused = mach::vm_deallocate(task_self(), address, 4096).unwrap_err();
        assert_eq!(refused.code(), crate::kern::KERN_INVALID_ADDRESS);
    }

    #[test]
    fn no_senders_is_notified_when_the_last_send_right_goes_with_the_make_send_count() {
        use crate::interfaces::notify;
        let port = ReceiveRight::new().unwrap();
        let first = port.make_send().unwrap();
        port.request_no_senders(1).unwrap();
        let second = port.make_send().unwrap(); // same name: one more user reference
        let other_task = Task::new();
        other_task.insert_send_right(port.name()).unwrap();
        drop(first);
        drop(second);
        let mut buf: crate::msg::MsgBuf = crate::msg::MsgBuf::new();
        let pending = crate::msg::receive(buf.as_bytes_mut(), port.name(), Some(0));
        assert!(pending.is_err(), "another task still holds a send right");
        other_task.terminate();
        let message = crate::msg::receive(buf.as_bytes_mut(), port.name(), Some(5000)).unwrap();
        let request = notify::mach_notify_no_senders::request::decode(message).unwrap();
        assert_eq!(request.mscount, 2, "two send rights were made (the other task's was copied)");
    }

    #[test]
    fn routines_the_simulation_does_not_serve_answer_mig_bad_id() {
        assert_eq!(mach::task_suspend(task_self()).unwrap_err().code(), MIG_BAD_ID);
    }
}
