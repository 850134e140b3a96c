//! The simulated kernel's RPC side: task ports are received by a kernel task whose thread serves
//! them through the **generated** `mach_port` and `mach` demuxes, so the runtime's kernel calls
//! (and tests of the generated stubs) take the same path as on GNU Mach.

use super::kernel::{with_state, TaskId};
use crate::interfaces::{mach, mach_port};
use crate::kern::{check, Error, Result, KERN_INVALID_ARGUMENT, KERN_INVALID_TASK};
use crate::mig_rt::ReplyPort;
use crate::msg::{serve, Disposition, Header};
use crate::ool::OolMemory;
use crate::port::PortName;
use alloc::vec::Vec;

/// The requests for one task port.
struct KernelCalls {
    target: TaskId,
}

/// Serve every task port (members of `set`, in the kernel task's space); runs forever.
pub(super) fn run(set: PortName) {
    let mut demux = |request: &[u8], reply: &mut [u8]| {
        let Some(header) = Header::read(request) else { return Disposition::NoReply };
        let target = with_state(|state| state.task_of_port_name(header.local));
        let mut calls = KernelCalls { target: target.unwrap_or(0) };
        let handled = if (mach_port::BASE..mach_port::BASE + 100).contains(&header.id) {
            mach_port::demux(&mut calls, request, reply)
        } else {
            mach::demux(&mut calls, request, reply)
        };
        handled.disposition()
    };
    let error = serve(set, &mut demux);
    panic!("simulated kernel stopped serving: {error:?}");
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
