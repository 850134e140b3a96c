//! The boot hand-off, as the Hurd's boot servers do it (libmachdev's role in the C rumpdisk):
//! the server started before the root filesystem makes itself that filesystem's bootstrap
//! port, resumes it, and answers on that port for the rest of the boot:
//!
//! 1. `fsys_getpriv`: host-priv, **its own master port as the device master** (so the
//!    filesystem's `device_open("wd0")` lands here and every other name is forwarded to the
//!    kernel) and its own task port (the filesystem makes that task its child in proc);
//! 2. `fsys_startup`: keeps the filesystem's control port and passes the call up its own
//!    bootstrap port when a server started it too ([`server`]);
//! 3. `fsys_init`: passes it up likewise, joins the running system — sits on
//!    `/dev/rumpdisk`, registers as an essential task and asks for the shutdown notice
//!    ([`joining`]), whose `startup_dosync` flushes every open disk ([`shutdown`]) — and only
//!    then answers, as upstream does (the filesystem's own shutdown notice comes after ours,
//!    so startup tells it first).
//!
//! The same port is the control port of `/dev/rumpdisk` afterwards (`fsys_getroot` gives the
//! master port, as the translator role's does).

pub mod joining;
pub mod lookup;
pub mod server;
pub mod shutdown;

pub use server::{BootServer, SpawnThread, Upstream};

use mach::constants::TASK_BOOTSTRAP_PORT;
use mach::interfaces::mach as kernel;
use mach::kern::Result;
use mach::port::{PortName, ReceiveRight, SendRight};

/// Makes `bootstrap` the bootstrap port of `next_task` and resumes that task: its first request
/// (`fsys_getpriv`) arrives there, so whoever answers must be serving the port.
pub fn start_next(next_task: PortName, bootstrap: &ReceiveRight) -> Result<()> {
    let send = bootstrap.make_send()?;
    // The kernel keeps its own reference to the special port; ours goes with `send`.
    kernel::task_set_special_port(next_task, TASK_BOOTSTRAP_PORT as i32, send.name())?;
    drop::<SendRight>(send);
    kernel::task_resume(next_task)
}

/// The calling task's bootstrap port, if it has one: a boot server that started this one (a
/// pci-arbiter, say), or the parent filesystem of a translator.
pub fn own_bootstrap_port() -> Option<SendRight> {
    let task = PortName::new(mach::sys::mach_task_self());
    let port = kernel::task_get_special_port(task, TASK_BOOTSTRAP_PORT as i32).ok()?;
    port.name().is_valid().then_some(port)
}

#[cfg(test)]
mod tests;
