//! The per-thread reply port (as glibc's `mig_get_reply_port`).

use crate::port::PortName;
#[cfg(target_os = "none")]
use crate::stack::{discard_thread_reply_port, thread_reply_port};
#[cfg(not(target_os = "none"))]
use crate::sys::{discard_thread_reply_port, thread_reply_port};

/// The calling thread's reply port: a receive right the runtime keeps for the thread's RPCs.
/// Callers name it in requests (with `MAKE_SEND_ONCE`) but never release it.
pub fn reply_port() -> PortName {
    PortName::new(thread_reply_port())
}

/// Destroy the thread's reply port after a failed receive, so a late reply cannot be taken for
/// the answer to a later request; the next [`reply_port`] call makes a new one.
pub(crate) fn discard() {
    discard_thread_reply_port();
}
