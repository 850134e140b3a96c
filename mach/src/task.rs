//! Kernel calls on the task's own port name space that have no fast trap, and the operations of
//! owned rights that are such calls: releasing a receive right or a port set, moving a port in or
//! out of a set, asking for a no-senders notice. They are messages built by the generated
//! `mach_port` stubs, which move owned rights themselves: so they sit here, above the stubs,
//! rather than in `port.rs` below them.

use crate::interfaces::mach_port;
use crate::kern::Result;
use crate::port::{release_on_drop, PortName, PortSet, ReceiveRight};
use crate::sys;

fn task_self() -> PortName {
    PortName::new(sys::mach_task_self())
}

/// `mach_port_mod_refs` on the calling task.
fn port_mod_refs(name: PortName, right: u32, delta: i32) -> Result<()> {
    mach_port::mach_port_mod_refs(task_self(), name, right, delta)
}

/// `mach_port_move_member` on the calling task (`set` null: out of any set).
fn port_move_member(member: PortName, set: PortName) -> Result<()> {
    mach_port::mach_port_move_member(task_self(), member, set)
}

/// `mach_port_request_notification(MACH_NOTIFY_NO_SENDERS)` on the calling task's receive right
/// `port`, the notification sent to `port` itself (as libports asks for it) once no send right
/// exists and at least `sync` were made. A request it replaces is dropped.
fn request_no_senders(port: PortName, sync: u32) -> Result<()> {
    let id = crate::constants::MACH_NOTIFY_NO_SENDERS as i32;
    let notify = crate::mig_rt::PortArg::make_send_once(port);
    mach_port::mach_port_request_notification(task_self(), port, id, sync, notify).map(drop)
}

fn release_receive(name: PortName) -> Result<()> {
    port_mod_refs(name, sys::MACH_PORT_RIGHT_RECEIVE, -1)
}

fn release_port_set(name: PortName) -> Result<()> {
    port_mod_refs(name, sys::MACH_PORT_RIGHT_PORT_SET, -1)
}

release_on_drop!(ReceiveRight, release_receive);
release_on_drop!(PortSet, release_port_set);

impl ReceiveRight {
    /// Asks for a `MACH_NOTIFY_NO_SENDERS` message on this port once no send right to it is
    /// left and at least `sync` were made (the make-send count it carries tells a stale
    /// notification from a real one). Replaces an earlier request.
    pub fn request_no_senders(&self, sync: u32) -> Result<()> {
        request_no_senders(self.name(), sync)
    }

    /// Whether a no-senders notice carrying make-send count `mscount` is stale, `sends_made`
    /// send rights having been made from this port: one was made after the kernel sent it, so a
    /// client holds it. The notice is then asked for again.
    pub fn no_senders_is_stale(&self, mscount: u32, sends_made: u32) -> bool {
        if mscount >= sends_made {
            return false;
        }
        if let Err(error) = self.request_no_senders(sends_made) {
            log::warn!("no-senders notification refused again: {error:?}");
        }
        true
    }
}

impl PortSet {
    /// Receive `member`'s messages through this set.
    pub fn insert(&self, member: &ReceiveRight) -> Result<()> {
        port_move_member(member.name(), self.name())
    }

    /// Take `member` out of whatever set it is in.
    pub fn remove(&self, member: &ReceiveRight) -> Result<()> {
        port_move_member(member.name(), PortName::NULL)
    }
}
