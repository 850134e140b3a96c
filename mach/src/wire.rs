//! Keeping a disk server out of the pager's way, as the Hurd's rumpdisk does: a server that
//! drives the disk the default pager swaps to must not wait for its own pages to come back from
//! that disk. Each call needs the host-priv port.

use crate::constants::VM_WIRE_ALL;
use crate::interfaces::{gnumach, mach_host, mach_port_ktype};
use crate::kern::Result;
use crate::port::{PortName, SendRight};
use crate::sys;

/// `MACH_PORT_KTYPE_USER_DEVICE` (`mach/port.h` of GNU Mach since late 2025; the amd64 headers
/// the constants come from predate it).
pub const MACH_PORT_KTYPE_USER_DEVICE: u32 = 28;

/// Wires every page of the calling task, those mapped now and those mapped later
/// (`vm_wire_all(VM_WIRE_ALL)`): none is ever paged out, so none is ever waited for.
pub fn wire_task(host_priv: PortName) -> Result<()> {
    gnumach::vm_wire_all(host_priv, PortName::new(sys::mach_task_self()), VM_WIRE_ALL as i32)
}

/// Makes the calling thread VM-privileged (`thread_wire`): it may take pages from the kernel's
/// reserve when memory is short, as the kernel's own paging threads do, so serving the pager's
/// writes never waits for free memory that only those writes would bring.
pub fn wire_this_thread(host_priv: PortName) -> Result<()> {
    // `mach_thread_self` gives a reference of our own: released when `thread` drops.
    let thread = SendRight::from_name(PortName::new(sys::mach_thread_self()));
    mach_host::thread_wire(host_priv, thread.name(), true)
}

/// Gives the receive right `port` the kernel type `MACH_PORT_KTYPE_USER_DEVICE`: messages to it
/// carry out-of-line data as page lists, which keep the sender's pages in memory until the
/// server has them (otherwise the kernel maps them, and they may be paged out meanwhile). A
/// kernel older than the call answers `MIG_BAD_ID`.
pub fn mark_user_device(host_priv: PortName, port: PortName) -> Result<()> {
    let task = PortName::new(sys::mach_task_self());
    mach_port_ktype::set_ktype(host_priv, task, port, sys::MACH_PORT_RIGHT_RECEIVE, MACH_PORT_KTYPE_USER_DEVICE)
}
