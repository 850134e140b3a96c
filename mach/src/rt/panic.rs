//! The panic handler: log the message and location on the console, then end the task — or,
//! for a test task, print the failure marker the VM harness looks for and reboot.

use crate::port::PortName;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The line GNU Mach's own tests print on failure; the harness turns it into a failed test.
pub const FAILURE_MARKER: &str = "gnumach-test-failure";

/// The host-priv port to reboot with after a panic (0: just end the task).
static REBOOT_WITH: AtomicU32 = AtomicU32::new(0);
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Make a panic end the whole VM run: print [`FAILURE_MARKER`], then `host_reboot` with
/// `host_priv` (QEMU runs with `-no-reboot`, so it exits).
pub fn report_panics_to(host_priv: PortName) {
    REBOOT_WITH.store(host_priv.raw(), Ordering::Relaxed);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        match info.location() {
            Some(at) => log::error!("panic at {}:{}: {}", at.file(), at.line(), info.message()),
            None => log::error!("panic: {}", info.message()),
        }
        let host_priv = REBOOT_WITH.load(Ordering::Relaxed);
        if host_priv != 0 {
            log::error!("{FAILURE_MARKER}");
            let _ = crate::interfaces::mach_host::host_reboot(PortName::new(host_priv), 0);
        }
    }
    super::start::end_task()
}
