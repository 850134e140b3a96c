//! What every test task shares: reporting results on the console the way the VM harness reads
//! them (`test NAME ... ok` / `test NAME ... FAILED: why`, then GNU Mach's test end markers).
#![no_std]

extern crate alloc;

use alloc::string::String;
use mach::constants::{MACH_MSG_TYPE_MAKE_SEND, TASK_BOOTSTRAP_PORT};
use mach::interfaces::{fsys, mach as kernel, mach_host, mach_port};
use mach::mig_rt::Right;
use mach::port::{PortName, SendRight};

/// The privileged ports a boot server hands its next task.
pub struct Privileges {
    pub host_priv: SendRight,
    /// The starting server's own master port (rumpdisk.static's), which forwards other names.
    pub device_master: SendRight,
    /// The starting server's own task (the Hurd's `fstask`), never this one.
    pub fs_task: SendRight,
}

/// Asks the server that started this task (its bootstrap port) for the privileged ports, as the
/// Hurd's boot servers' next tasks do (`fsys_getpriv`).
pub fn privileges_from_bootstrap() -> mach::kern::Result<Privileges> {
    let task = PortName::new(mach::sys::mach_task_self());
    let bootstrap = kernel::task_get_special_port(task, TASK_BOOTSTRAP_PORT as i32)?;
    let (host_priv, device_master, fs_task) = fsys::fsys_getpriv(bootstrap.name())?;
    Ok(Privileges { host_priv, device_master, fs_task })
}

/// The outcome of one test: `Err` carries the reason.
pub type Outcome = Result<(), String>;

/// A send right to the port a peer task allocated under the agreed `name`, once it exists
/// (`mach_port_extract_right` on the peer's task port, which the boot script hands out).
pub fn connect_to_peer(peer_task: PortName, name: u32) -> Result<PortName, String> {
    for _ in 0..10_000 {
        match mach_port::mach_port_extract_right(peer_task, PortName::new(name), MACH_MSG_TYPE_MAKE_SEND) {
            Ok(Right::Send(right)) => return Ok(right.into_name()),
            Ok(other) => return Err(alloc::format!("extracted {other:?}, not a send right")),
            // Not allocated yet: let the peer run.
            Err(_) => {
                mach::sys::swtch_pri(0);
            }
        }
    }
    Err("the peer never allocated its port".into())
}

/// Counts and prints test results, and ends the VM run.
pub struct Suite {
    host_priv: PortName,
    failed: usize,
}

impl Suite {
    /// Starts a suite that will reboot through `host_priv` (QEMU runs with `-no-reboot`, so the
    /// VM exits). Panics end the run with the failure marker.
    pub fn new(host_priv: PortName) -> Suite {
        // Only the freestanding runtime has a panic handler of its own (the host's is std's).
        #[cfg(target_os = "none")]
        mach::report_panics_to(host_priv);
        Suite { host_priv, failed: 0 }
    }

    /// Runs one named test and prints its result line.
    pub fn run(&mut self, name: &str, test: impl FnOnce() -> Outcome) {
        match test() {
            Ok(()) => log::info!("test {name} ... ok"),
            Err(why) => {
                self.failed += 1;
                log::info!("test {name} ... FAILED: {why}");
            }
        }
    }

    /// Prints the end marker for the results so far and reboots.
    pub fn finish(self) -> ! {
        if self.failed == 0 {
            log::info!("gnumach-test-success-and-reboot");
        } else {
            log::info!("gnumach-test-failure");
        }
        let _ = mach_host::host_reboot(self.host_priv, 0);
        panic!("host_reboot returned");
    }
}

/// `Err` with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(alloc::format!($($why)+));
        }
    };
}

/// Turns any displayable error into a test failure with context.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T, String>;
}

impl<T, E: core::fmt::Debug> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, String> {
        self.map_err(|e| alloc::format!("{what}: {e:?}"))
    }
}
