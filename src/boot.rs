//! The boot hand-off, as the Hurd's boot servers do it: the server that was started first makes
//! itself the next task's bootstrap port, resumes that task, and answers its `fsys_getpriv` with
//! the host-priv port and **its own master port as the device master** — so the next task's
//! `device_open("wd0")` lands here and every other name is forwarded to the kernel.

use mach::interfaces::constants::TASK_BOOTSTRAP_PORT;
use mach::interfaces::fsys;
use mach::interfaces::mach as kernel;
use mach::kern::{Error, Result};
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::port::{PortName, ReceiveRight, SendRight};

/// What `fsys_getpriv` hands out.
#[derive(Clone, Copy, Debug)]
pub struct Privileges {
    pub host_priv: PortName,
    /// The receive right the device server serves `device_open` on.
    pub device_master: PortName,
    pub next_task: PortName,
}

impl fsys::Server for Privileges {
    fn fsys_getpriv(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName) -> Result<(PortArg, PortArg, PortArg)> {
        Ok((
            PortArg::copy_send(self.host_priv),
            PortArg::make_send(self.device_master),
            PortArg::copy_send(self.next_task),
        ))
    }
}

impl Privileges {
    /// Answers one request that arrived on the bootstrap port.
    pub fn demux(mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        fsys::demux(&mut self, request, reply).disposition()
    }
}

/// Makes a bootstrap port for `privileges.next_task`, resumes that task, and answers its
/// bootstrap requests until the port dies. Run it on a thread of its own.
pub fn hand_off(privileges: Privileges) -> Error {
    let started = ReceiveRight::new().and_then(|bootstrap| start_next(privileges.next_task, &bootstrap).map(|()| bootstrap));
    match started {
        Ok(bootstrap) => msg::serve(bootstrap.name(), &mut |request: &[u8], reply: &mut [u8]| privileges.demux(request, reply)),
        Err(error) => error,
    }
}

/// Makes `bootstrap` the bootstrap port of `next_task` and resumes that task: its first request
/// (`fsys_getpriv`) arrives there, so whoever answers (see [`Privileges::demux`]) must be serving
/// the port.
pub fn start_next(next_task: PortName, bootstrap: &ReceiveRight) -> Result<()> {
    let send = bootstrap.make_send()?;
    // The kernel keeps its own reference to the special port; ours goes with `send`.
    kernel::task_set_special_port(next_task, TASK_BOOTSTRAP_PORT as i32, send.name())?;
    drop::<SendRight>(send);
    kernel::task_resume(next_task)
}
