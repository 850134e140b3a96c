//! The client against a stand-in arbiter (the real one runs in the Hurd scenarios): its tree of
//! QEMU's `-M pc` functions, configuration registers in a table, and a count of lookups.

use super::*;
use crate::backend::ata::pci::{self as scan, BusMasterPorts};
use crate::backend::ata::port_io::IdeChannel;
use crate::errno::hurd_errno;
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::ool::OolMemory;
use mach::port::{PortSet, ReceiveRight};
use mach::sync::Mutex;
use mach::sim::Task;

const PIIX3_IDE: Function = Function { bus: 0, device: 1, function: 1 };

/// What an entry of the arbiter's tree is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entry {
    Root,
    Bus(u8),
    Device(u8, u8),
    Config(Function),
}

/// Configuration registers by (function, offset); the functions present are those with a
/// vendor register.
type Registers = BTreeMap<(Function, u8), u32>;

struct Arbiter {
    master: ReceiveRight,
    /// Every port the arbiter made, with what it names: entries are made on lookup.
    entries: Vec<(ReceiveRight, Entry)>,
    set: PortSet,
    registers: Arc<Mutex<Registers>>,
    lookups: Arc<Mutex<usize>>,
}

impl Arbiter {
    fn entry(&self, port: PortName) -> Option<Entry> {
        self.entries.iter().find(|(right, _)| right.name() == port).map(|&(_, entry)| entry)
    }

    fn make(&mut self, entry: Entry) -> Result<PortArg> {
        let right = ReceiveRight::new()?;
        let name = right.name();
        self.set.insert(&right)?;
        self.entries.push((right, entry));
        Ok(PortArg::make_send(name))
    }

    fn functions(&self) -> BTreeSet<Function> {
        self.registers.lock().keys().filter(|(_, offset)| *offset == 0).map(|&(function, _)| function).collect()
    }
}

const ENOENT: mach::kern::Error = hurd_errno(2);

impl device::Server for Arbiter {
    fn device_open(&mut self, _reply: rt::ReplyPort<'_>, master: PortName, _mode: u32, name: &[u8]) -> Result<PortArg> {
        match name {
            b"pci" if master == self.master.name() => self.make(Entry::Root),
            _ => Err(D_NO_SUCH_DEVICE),
        }
    }
}

impl fs::Server for Arbiter {
    fn dir_lookup(&mut self, _reply: rt::ReplyPort<'_>, dir: PortName, name: &[u8], flags: i32, _mode: u32) -> Result<(u32, &[u8], PortArg)> {
        *self.lookups.lock() += 1;
        let name = core::str::from_utf8(name).map_err(|_| ENOENT)?;
        let functions = self.functions();
        let found = match (self.entry(dir), name.split('/').collect::<Vec<_>>().as_slice()) {
            (Some(Entry::Root), ["0000", bus]) => two_hex_digits(bus).filter(|&bus| functions.iter().any(|f| f.bus == bus)).map(Entry::Bus),
            (Some(Entry::Bus(bus)), [device]) => {
                two_hex_digits(device).filter(|&device| functions.iter().any(|f| (f.bus, f.device) == (bus, device))).map(|device| Entry::Device(bus, device))
            }
            (Some(Entry::Device(bus, device)), [function, "config"]) if flags == open::READ | open::WRITE => function
                .parse()
                .ok()
                .map(|function| Function { bus, device, function })
                .filter(|function| functions.contains(function))
                .map(Entry::Config),
            _ => None,
        };
        let port = self.make(found.ok_or(ENOENT)?)?;
        Ok((FS_RETRY_NORMAL, b"", port))
    }
}

/// The arbiter names buses and devices with two lower-case hexadecimal digits.
fn two_hex_digits(name: &str) -> Option<u8> {
    let digits = name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    digits.then(|| u8::from_str_radix(name, 16).ok()).flatten()
}

impl pci::Server for Arbiter {
    fn pci_conf_read(&mut self, _reply: rt::ReplyPort<'_>, master: PortName, reg: i32, amount: u64) -> Result<OolMemory> {
        let Some(Entry::Config(function)) = self.entry(master) else { return Err(hurd_errno(22)) };
        let value = self.registers.lock().get(&(function, reg as u8)).copied().unwrap_or(0);
        OolMemory::copy_from(&value.to_le_bytes()[..amount as usize])
    }

    fn pci_conf_write(&mut self, _reply: rt::ReplyPort<'_>, master: PortName, reg: i32, data: OolMemory) -> Result<u64> {
        let Some(Entry::Config(function)) = self.entry(master) else { return Err(hurd_errno(22)) };
        let value = u32::from_le_bytes(data.as_slice().try_into().map_err(|_| hurd_errno(22))?);
        self.registers.lock().insert((function, reg as u8), value);
        Ok(4)
    }
}

impl msg::Demux for Arbiter {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        let demuxed = match fs::demux(self, request, reply) {
            rt::Demuxed::UnknownId(_) => pci::demux(self, request, reply),
            demuxed => demuxed,
        };
        match demuxed {
            rt::Demuxed::UnknownId(_) => device::demux(self, request, reply).disposition(),
            demuxed => demuxed.disposition(),
        }
    }
}

/// QEMU's `-M pc`: the host bridge, and the PIIX3's ISA bridge and IDE function (compatibility
/// mode, a bus master at 0xC040); served on a thread. Returns the master port, the registers and
/// the lookup count.
fn qemu_pc_arbiter() -> (SendRight, Arc<Mutex<Registers>>, Arc<Mutex<usize>>) {
    let mut registers = Registers::new();
    for (function, vendor, class) in [
        (Function { bus: 0, device: 0, function: 0 }, 0x1237_8086, 0x0600_0000),
        (Function { bus: 0, device: 1, function: 0 }, 0x7000_8086, 0x0601_0000),
        (PIIX3_IDE, 0x7010_8086, 0x0101_8000),
    ] {
        registers.insert((function, 0x00), vendor);
        registers.insert((function, 0x08), class);
    }
    registers.insert((Function { bus: 0, device: 1, function: 0 }, 0x0C), 0x0080_0000);
    registers.insert((PIIX3_IDE, 0x20), 0xC041);
    registers.insert((PIIX3_IDE, 0x04), 0x0280_0001);
    let registers = Arc::new(Mutex::new(registers));
    let lookups = Arc::new(Mutex::new(0));
    let master = ReceiveRight::new().unwrap();
    let master_send = master.make_send().unwrap();
    let set = PortSet::new().unwrap();
    set.insert(&master).unwrap();
    let mut arbiter = Arbiter { master, entries: Vec::new(), set, registers: registers.clone(), lookups: lookups.clone() };
    Task::current().spawn(move || {
        let set = arbiter.set.name();
        msg::serve(set, &mut arbiter)
    });
    (master_send, registers, lookups)
}

#[test]
fn the_bus_master_is_found_and_enabled_through_the_arbiter() {
    let (master, registers, lookups) = qemu_pc_arbiter();
    let mut config = ArbiterConfig::open(master.name()).unwrap().expect("the arbiter serves pci");
    let found = scan::find_bus_master(&mut config, IdeChannel::Secondary);
    assert_eq!(found, Some(BusMasterPorts { function: PIIX3_IDE, base: 0xC048 }));
    scan::enable_bus_master(&mut config, PIIX3_IDE);
    assert_eq!(registers.lock().get(&(PIIX3_IDE, 0x04)), Some(&0x0000_0005), "I/O space and bus master on");
    // Absent devices cost a lookup each, their functions none.
    assert!(*lookups.lock() <= 6, "{} lookups", *lookups.lock());
}

#[test]
fn absent_functions_read_as_all_ones_and_a_scan_of_every_bus_stays_cheap() {
    let (master, _, lookups) = qemu_pc_arbiter();
    let mut config = ArbiterConfig::open(master.name()).unwrap().unwrap();
    assert_eq!(config.read(Function { bus: 0, device: 5, function: 0 }, 0), !0, "no such device");
    assert_eq!(config.read(Function { bus: 0, device: 1, function: 3 }, 0), !0, "no such function");
    assert_eq!(config.read(Function { bus: 7, device: 0, function: 0 }, 0), !0, "no such bus");
    // No AHCI controller: the whole of bus 0 is scanned, one lookup per absent device.
    assert_eq!(scan::find_ahci(&mut config), None);
    let before = *lookups.lock();
    config.read(Function { bus: 7, device: 1, function: 0 }, 0);
    config.read(Function { bus: 0, device: 5, function: 0 }, 0);
    assert_eq!(*lookups.lock(), before, "absent buses and devices are remembered");
    // One per bus and device asked for, one per function of a device that is there (the PIIX3
    // has eight to try): no lookup per absent device's functions, nor per register.
    assert!(before <= 2 + 32 + 1 + 8, "{before} lookups");
}

/// The kernel's device master: no `pci` device.
struct Kernel;

impl device::Server for Kernel {
    fn device_open(&mut self, _reply: rt::ReplyPort<'_>, _master: PortName, _mode: u32, _name: &[u8]) -> Result<PortArg> {
        Err(D_NO_SUCH_DEVICE)
    }
}

impl msg::Demux for Kernel {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        device::demux(self, request, reply).disposition()
    }
}

#[test]
fn the_kernels_device_master_has_no_arbiter() {
    let master = ReceiveRight::new().unwrap();
    let master_send = master.make_send().unwrap();
    let set = PortSet::new().unwrap();
    set.insert(&master).unwrap();
    Task::current().spawn(move || {
        let _master = master;
        msg::serve(set.name(), &mut Kernel)
    });
    assert!(matches!(ArbiterConfig::open(master_send.name()), Ok(None)));
}
