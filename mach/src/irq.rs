//! Device interrupts in user space, through GNU Mach's `irq` device: `device_open("irq")` on
//! the kernel's device master, `device_intr_register(irq, line, 0, port)` for each line a
//! driver takes, then one `device_intr_notify` message (`defs/device_intr_notify.defs`) on the
//! port each time the line fires. The kernel masks the line at each interrupt until the task
//! answers `device_intr_ack`, so a driver acknowledges every notification it receives, once
//! it has read whatever clears its device's interrupt (or a level-triggered line fires again at
//! once). There is no call to unregister: the kernel drops a registration whose port died, so
//! an [`Interrupt`] gives its line back by dropping its receive right.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::constants::{D_READ, D_WRITE};
use crate::interfaces::{device, device_intr_notify};
use crate::kern::{Error, Result, MACH_RCV_TIMED_OUT, MIG_BAD_ARGUMENTS};
use crate::mig_rt::PortArg;
use crate::msg::{self, MsgBuf};
use crate::port::{PortName, ReceiveRight, SendRight};

/// The kernel's `irq` device.
pub struct IrqDevice {
    device: SendRight,
}

impl IrqDevice {
    /// Opens `irq` through `device_master` (the kernel's: a kernel without the device answers
    /// `D_NO_SUCH_DEVICE`).
    pub fn open(device_master: PortName) -> Result<IrqDevice> {
        let device = device::device_open(device_master, D_READ | D_WRITE, b"irq")?;
        Ok(IrqDevice { device })
    }

    /// Takes interrupt `line` (an ISA IRQ, or the GSI of a PCI device's pin): its interrupts
    /// come as notifications to a port of the returned [`Interrupt`].
    pub fn register(&self, line: u32) -> Result<Interrupt> {
        let id = i32::try_from(line).map_err(|_| Error::from_const(MIG_BAD_ARGUMENTS))?;
        let port = ReceiveRight::new()?;
        device::device_intr_register(self.device.name(), id, 0, PortArg::make_send(port.name()))?;
        Ok(Interrupt { device: self.device.try_clone()?, port, line, taken: AtomicU64::new(0) })
    }
}

/// One interrupt line a task took: wait for its notifications, acknowledge each.
pub struct Interrupt {
    device: SendRight,
    port: ReceiveRight,
    line: u32,
    taken: AtomicU64,
}

/// Bytes a notification takes on either ABI, with room to spare for a wrong one.
const NOTIFICATION_BUF: usize = 128;

impl Interrupt {
    pub fn line(&self) -> u32 {
        self.line
    }

    /// Notifications received so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout_ms` for the line's next notification (one that came before the
    /// call is queued on the port and taken at once): `Ok(true)` when one came, which must then
    /// be acknowledged; `Ok(false)` when the time ran out. A message that is not this line's
    /// notification is an error (`MIG_BAD_ARGUMENTS`), released unread.
    pub fn wait(&self, timeout_ms: u32) -> Result<bool> {
        let mut buf = MsgBuf::<NOTIFICATION_BUF>::new();
        let message = match msg::receive(buf.as_bytes_mut(), self.port.name(), Some(timeout_ms)) {
            Ok(message) => message,
            Err(error) if error.code() == MACH_RCV_TIMED_OUT => return Ok(false),
            Err(error) => return Err(error),
        };
        match device_intr_notify::device_intr_notify::request::decode(message) {
            Ok(notification) if notification.id == self.line as i32 => {
                self.taken.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            _ => {
                msg::destroy_body(message);
                Err(Error::from_const(MIG_BAD_ARGUMENTS))
            }
        }
    }

    /// Unmasks the line after a notification (`device_intr_ack`; the kernel refuses one with
    /// no notification outstanding, `D_INVALID_OPERATION`).
    pub fn ack(&self) -> Result<()> {
        device::device_intr_ack(self.device.name(), PortArg::make_send(self.port.name()))
    }
}
