//! Simulated machines with an `irq` device, as GNU Mach's (`device/ds_routines.c`,
//! `device/intr.c`) to the driver: `device_open("irq")` on a machine's device master gives the
//! device; `device_intr_register(irq, line, 0, port)` takes a line for a port (flags other than
//! 0, a line out of range or a port registered twice are refused as the kernel refuses them);
//! each interrupt sends the port a `device_intr_notify` and masks the line until
//! `device_intr_ack` with that port (`D_INVALID_OPERATION` with no notification outstanding,
//! `KERN_INVALID_ARGUMENT` from a port never registered). An interrupt on a masked line is
//! latched, one at most, and delivered at the ack that unmasks it (an 8259's request
//! register), or lost on a machine made with [`Machine::losing_masked_edges`] (an I/O APIC's
//! edge-triggered input). A registration whose port died is dropped at its next interrupt.
//!
//! Each [`Machine`] has its own device master and lines, so tests running side by side in one
//! process do not share interrupts; the device ports are the kernel task's, served in the
//! sending thread as the task ports are.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::vec::Vec;

use super::kernel::{as_task, kernel_task, with_state, Task};
use crate::constants::{D_INVALID_OPERATION, D_NO_MEMORY, D_NO_SUCH_DEVICE};
use crate::interfaces::{device, device_intr_notify};
use crate::kern::{Error, Result, KERN_INVALID_ARGUMENT};
use crate::mig_rt::{self as rt, PortArg};
use crate::port::{PortName, SendRight};
use crate::sys::MACH_PORT_RIGHT_RECEIVE;

/// Lines a machine has (GNU Mach's `NINTR` with an I/O APIC).
pub const LINES: u32 = 24;

/// One port's claim on a line.
struct Registration {
    line: u32,
    /// The kernel task's send right to the port.
    port: SendRight,
    /// Notifications sent and not yet acknowledged.
    unacked: u32,
}

#[derive(Default)]
struct Lines {
    registrations: Vec<Registration>,
    /// Lines that fired while masked.
    latched: Vec<u32>,
    /// An interrupt on a masked line is lost, not latched.
    losing: bool,
    delivered: u64,
}

/// A simulated machine: a device master whose `irq` device delivers the interrupts a test (or
/// a simulated device) raises.
#[derive(Clone)]
pub struct Machine {
    lines: Arc<Mutex<Lines>>,
    /// The kernel task's receive rights: the device master and the `irq` device.
    master: u32,
    irq: u32,
}

/// Every machine made, by the kernel task's names of its ports.
fn machines() -> MutexGuard<'static, Vec<Machine>> {
    static MACHINES: OnceLock<Mutex<Vec<Machine>>> = OnceLock::new();
    MACHINES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Machine {
    pub fn new() -> Machine {
        let (kernel, set) = kernel_task();
        let port = || {
            with_state(|state| {
                let name = state.port_allocate(kernel, MACH_PORT_RIGHT_RECEIVE, None).expect("kernel space has room");
                assert_eq!(state.port_move_member(kernel, name, set), 0, "kernel port set");
                name
            })
        };
        let machine = Machine { lines: Arc::default(), master: port(), irq: port() };
        machines().push(machine.clone());
        machine
    }

    /// A machine whose masked lines lose the interrupts that come meanwhile.
    pub fn losing_masked_edges() -> Machine {
        let machine = Machine::new();
        machine.lock().losing = true;
        machine
    }

    /// A send right to the machine's device master, in the calling task.
    pub fn device_master(&self) -> PortName {
        let (kernel, _) = kernel_task();
        Task(kernel).extract_send_right(PortName::new(self.master)).expect("the kernel holds the master's receive right")
    }

    /// A device asserts `line` (an edge).
    pub fn raise(&self, line: u32) {
        let mut lines = self.lock();
        if lines.masked(line) {
            if !lines.losing && !lines.latched.contains(&line) {
                lines.latched.push(line);
            }
            return;
        }
        lines.deliver(line);
    }

    /// Notifications on `line` not yet acknowledged (the line is masked while any is).
    pub fn unacked(&self, line: u32) -> u32 {
        self.lock().registrations.iter().filter(|r| r.line == line).map(|r| r.unacked).sum()
    }

    /// Notifications sent so far, every line.
    pub fn delivered(&self) -> u64 {
        self.lock().delivered
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Machine {
    fn default() -> Machine {
        Machine::new()
    }
}

impl Lines {
    fn masked(&self, line: u32) -> bool {
        self.registrations.iter().any(|r| r.line == line && r.unacked > 0)
    }

    /// Sends each of `line`'s ports a notification, as the kernel task; drops the ports that
    /// died.
    fn deliver(&mut self, line: u32) {
        let (kernel, _) = kernel_task();
        let mut delivered = 0;
        self.registrations.retain_mut(|registration| {
            if registration.line != line {
                return true;
            }
            let sent = as_task(kernel, || device_intr_notify::device_intr_notify(registration.port.name(), line as i32));
            if sent.is_ok() {
                registration.unacked += 1;
                delivered += 1;
            }
            sent.is_ok()
        });
        self.delivered += delivered;
    }
}

/// Serves a device request that arrived on a machine's port (in the kernel task).
pub(super) fn demux(request: &[u8], reply: &mut [u8]) -> rt::Demuxed {
    let local = crate::msg::Header::read(request).map_or(0, |header| header.local.raw());
    let machine = machines().iter().find(|m| m.master == local || m.irq == local).cloned();
    let Some(machine) = machine else {
        let mut unknown = NoDevice;
        return device::demux(&mut unknown, request, reply);
    };
    device::demux(&mut Served { machine }, request, reply)
}

/// A device's `D_*` code (bound as unsigned from the header) as an error.
fn device_error(code: u32) -> Error {
    Error::from_const(code as i32)
}

/// A device request on a port of no machine: answered as the kernel answers a dead device.
struct NoDevice;

impl device::Server for NoDevice {}

struct Served {
    machine: Machine,
}

impl Served {
    /// `D_NO_SUCH_DEVICE` unless `device` is the machine's `irq` device (the master is no
    /// device: the kernel's MIG finds none behind it).
    fn irq(&self, device: PortName) -> Result<()> {
        if device.raw() == self.machine.irq {
            Ok(())
        } else {
            Err(device_error(D_NO_SUCH_DEVICE))
        }
    }
}

impl device::Server for Served {
    fn device_open(&mut self, _reply_to: rt::ReplyPort<'_>, master_port: PortName, _mode: u32, name: &[u8]) -> Result<PortArg> {
        if master_port.raw() != self.machine.master {
            return Err(device_error(D_INVALID_OPERATION));
        }
        match name {
            b"irq" => Ok(PortArg::make_send(PortName::new(self.machine.irq))),
            _ => Err(device_error(D_NO_SUCH_DEVICE)),
        }
    }

    fn device_intr_register(&mut self, _reply_to: rt::ReplyPort<'_>, device: PortName, id: i32, flags: i32, receive_port: SendRight) -> Result<()> {
        self.irq(device)?;
        let line = u32::try_from(id).ok().filter(|&line| line < LINES);
        let Some(line) = line.filter(|_| flags == 0) else {
            return Err(device_error(D_INVALID_OPERATION));
        };
        let mut lines = self.machine.lock();
        if lines.registrations.iter().any(|r| r.port.name() == receive_port.name()) {
            return Err(device_error(D_NO_MEMORY));
        }
        lines.registrations.push(Registration { line, port: receive_port, unacked: 0 });
        Ok(())
    }

    fn device_intr_ack(&mut self, _reply_to: rt::ReplyPort<'_>, device: PortName, receive_port: SendRight) -> Result<()> {
        self.irq(device)?;
        let mut lines = self.machine.lock();
        let registration = lines.registrations.iter_mut().find(|r| r.port.name() == receive_port.name());
        let Some(registration) = registration else { return Err(Error::from_const(KERN_INVALID_ARGUMENT)) };
        if registration.unacked == 0 {
            return Err(device_error(D_INVALID_OPERATION));
        }
        registration.unacked -= 1;
        let line = registration.line;
        if !lines.masked(line) {
            if let Some(at) = lines.latched.iter().position(|&l| l == line) {
                lines.latched.remove(at);
                lines.deliver(line);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::IrqDevice;

    #[test]
    fn an_interrupt_is_notified_once_and_masks_the_line_until_acknowledged() {
        let machine = Machine::new();
        let irq = IrqDevice::open(machine.device_master()).unwrap();
        let line = irq.register(14).unwrap();
        assert!(!line.wait(0).unwrap(), "nothing raised yet");
        machine.raise(14);
        machine.raise(14);
        machine.raise(14);
        assert!(line.wait(0).unwrap());
        assert!(!line.wait(0).unwrap(), "the masked line latched one interrupt, sent at the ack");
        line.ack().unwrap();
        assert!(line.wait(0).unwrap(), "the latched interrupt");
        line.ack().unwrap();
        assert!(!line.wait(0).unwrap());
        assert_eq!((line.taken(), machine.unacked(14), machine.delivered()), (2, 0, 2));
        assert_eq!(line.ack().unwrap_err().code(), D_INVALID_OPERATION as i32, "no notification outstanding");
    }

    #[test]
    fn other_lines_and_machines_are_not_notified() {
        let (one, two) = (Machine::new(), Machine::new());
        let first = IrqDevice::open(one.device_master()).unwrap().register(14).unwrap();
        let other_line = IrqDevice::open(one.device_master()).unwrap().register(15).unwrap();
        let other_machine = IrqDevice::open(two.device_master()).unwrap().register(14).unwrap();
        one.raise(14);
        assert!(first.wait(0).unwrap());
        assert!(!other_line.wait(0).unwrap());
        assert!(!other_machine.wait(0).unwrap());
    }

    #[test]
    fn bad_registrations_are_refused_as_the_kernel_refuses_them() {
        let machine = Machine::new();
        let master = machine.device_master();
        assert_eq!(IrqDevice::open(master).unwrap().register(LINES).err().map(|e| e.code()), Some(D_INVALID_OPERATION as i32));
        let refused = device::device_open(master, 0, b"disk").err().map(|e| e.code());
        assert_eq!(refused, Some(D_NO_SUCH_DEVICE as i32));
        let port = crate::port::ReceiveRight::new().unwrap();
        let flags = device::device_intr_register(device_of(master), 14, 1, PortArg::make_send(port.name()));
        assert_eq!(flags.err().map(|e| e.code()), Some(D_INVALID_OPERATION as i32));
        let on_master = device::device_intr_register(master, 14, 0, PortArg::make_send(port.name()));
        assert_eq!(on_master.err().map(|e| e.code()), Some(D_NO_SUCH_DEVICE as i32));
        let device = device_of(master);
        device::device_intr_register(device, 14, 0, PortArg::make_send(port.name())).unwrap();
        let twice = device::device_intr_register(device, 15, 0, PortArg::make_send(port.name()));
        assert_eq!(twice.err().map(|e| e.code()), Some(D_NO_MEMORY as i32));
        let stranger = crate::port::ReceiveRight::new().unwrap();
        let ack = device::device_intr_ack(device, PortArg::make_send(stranger.name()));
        assert_eq!(ack.err().map(|e| e.code()), Some(KERN_INVALID_ARGUMENT));
    }

    /// A registration whose port died is dropped at its line's next interrupt, which leaves
    /// the line unmasked for the others.
    #[test]
    fn a_dead_port_gives_its_line_back() {
        let machine = Machine::new();
        let irq = IrqDevice::open(machine.device_master()).unwrap();
        let dying = irq.register(9).unwrap();
        let staying = irq.register(9).unwrap();
        drop(dying);
        machine.raise(9);
        assert!(staying.wait(0).unwrap());
        staying.ack().unwrap();
        assert_eq!(machine.unacked(9), 0);
    }

    fn device_of(master: PortName) -> PortName {
        device::device_open(master, 0, b"irq").unwrap().into_name()
    }
}
