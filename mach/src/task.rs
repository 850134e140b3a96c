//! Kernel calls on the task's own port name space that have no fast trap.

use crate::kern::{self, Result};
use crate::port::PortName;

/// `mach_port_mod_refs` on the calling task.
pub(crate) fn port_mod_refs(name: PortName, right: u32, delta: i32) -> Result<()> {
    #[cfg(not(any(target_os = "none", target_os = "hurd")))]
    {
        let task = crate::sys::sim::current_task_id();
        kern::check(crate::sys::sim::with_kernel(|k| k.port_mod_refs(task, name.raw(), right, delta)))
    }
}

/// `mach_port_move_member` on the calling task (`set` null: out of any set).
pub(crate) fn port_move_member(member: PortName, set: PortName) -> Result<()> {
    #[cfg(not(any(target_os = "none", target_os = "hurd")))]
    {
        let task = crate::sys::sim::current_task_id();
        kern::check(crate::sys::sim::with_kernel(|k| k.port_move_member(task, member.raw(), set.raw())))
    }
}
