//! The VM tests' supervisor: holds the exception port of the tasks it watches, so a task that
//! faults becomes a named test failure instead of a silent hang (GNU Mach prints nothing when a
//! user task faults; the thread just stops).
//!
//! Boot words: `${host-port} ${device-port} watch=${a-task} [watch2=${b-task}] resume=N`. It sets
//! itself as every watched task's exception port, resumes the first `resume` of them (the others
//! are started by those, e.g. rumpdisk.static's next task), then waits: an exception message is
//! reported as `test NAME ... FAILED: …` with GNU Mach's failure marker, and the VM is rebooted.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use mach::args::Args;
use mach::constants::TASK_EXCEPTION_PORT;
use mach::interfaces::{exc, mach as kernel, mach_host};
use mach::kern::Result;
use mach::mig_rt as rt;
use mach::port::{PortName, ReceiveRight, SendRight};

mach::task_main!(main);

const WATCH_KEYS: [&str; 3] = ["watch", "watch2", "watch3"];

fn main(args: Args<'static>) -> i32 {
    let (Ok(host_priv), Ok(master)) = (args.port(1), args.port(2)) else {
        return 1;
    };
    if mach::console::init_log(master, log::LevelFilter::Info).is_err() {
        return 2;
    }
    let watched: Vec<PortName> = WATCH_KEYS.iter().filter_map(|key| args.port_value(key).ok()).collect();
    let resume = args.value("resume").and_then(|v| core::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(watched.len());
    match watch(&watched, resume) {
        Ok(port) => {
            let mut reporter = Reporter { host_priv };
            let error = mach::msg::serve(port.name(), &mut |request: &[u8], reply: &mut [u8]| {
                exc::demux(&mut reporter, request, reply).disposition()
            });
            log::error!("supervisor: exception port failed: {error:?}");
        }
        Err(error) => log::error!("supervisor: cannot watch the test tasks: {error:?}"),
    }
    fail(host_priv, "supervisor", "the supervisor could not do its job")
}

/// Becomes the exception port of every task in `tasks`, then resumes the first `resume`.
fn watch(tasks: &[PortName], resume: usize) -> Result<ReceiveRight> {
    let port = ReceiveRight::new()?;
    let send = port.make_send()?;
    for &task in tasks {
        kernel::task_set_special_port(task, TASK_EXCEPTION_PORT as i32, send.name())?;
    }
    for &task in tasks.iter().take(resume) {
        kernel::task_resume(task)?;
    }
    Ok(port)
}

/// An exception's subcode as the target's ABI carries it (`long_integer_t`, pointer-wide).
#[cfg(target_pointer_width = "64")]
type Subcode = i64;
/// An exception's subcode as the target's ABI carries it (`long_integer_t`, pointer-wide).
#[cfg(target_pointer_width = "32")]
type Subcode = i32;

struct Reporter {
    host_priv: PortName,
}

impl exc::Server for Reporter {
    fn exception_raise(
        &mut self,
        _reply: rt::ReplyPort<'_>,
        _port: PortName,
        _thread: SendRight,
        task: SendRight,
        exception: i32,
        code: i32,
        subcode: Subcode,
    ) -> Result<()> {
        let why = alloc::format!("task {} faulted: exception {exception}, code {code:#x}, subcode {subcode:#x}", task.name().raw());
        fail(self.host_priv, "no_task_faults", &why)
    }
}

/// Reports a failed test and ends the VM run.
fn fail(host_priv: PortName, test: &str, why: &str) -> ! {
    log::info!("test {test} ... FAILED: {why}");
    log::info!("gnumach-test-failure");
    let _ = mach_host::host_reboot(host_priv, 0);
    panic!("host_reboot returned");
}
