//! Kernel calls on the task's own port name space that have no fast trap.

use crate::interfaces::mach_port;
use crate::kern::Result;
use crate::port::PortName;
use crate::sys;

fn task_self() -> PortName {
    PortName::new(sys::mach_task_self())
}

/// `mach_port_mod_refs` on the calling task.
pub(crate) fn port_mod_refs(name: PortName, right: u32, delta: i32) -> Result<()> {
    mach_port::mach_port_mod_refs(task_self(), name, right, delta)
}

/// `mach_port_move_member` on the calling task (`set` null: out of any set).
pub(crate) fn port_move_member(member: PortName, set: PortName) -> Result<()> {
    mach_port::mach_port_move_member(task_self(), member, set)
}

/// `mach_port_request_notification(MACH_NOTIFY_NO_SENDERS)` on the calling task's receive right
/// `port`, the notification sent to `port` itself (as libports asks for it) once no send right
/// exists and at least `sync` were made. A request it replaces is dropped.
pub(crate) fn request_no_senders(port: PortName, sync: u32) -> Result<()> {
    let id = crate::constants::MACH_NOTIFY_NO_SENDERS as i32;
    let notify = crate::mig_rt::PortArg::make_send_once(port);
    mach_port::mach_port_request_notification(task_self(), port, id, sync, notify).map(drop)
}
