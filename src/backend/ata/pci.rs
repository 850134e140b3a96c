//! Finding the PCI IDE controller behind a legacy IDE channel, and its bus master: a scan of PCI
//! configuration space for a mass-storage IDE function (class 01, subclass 01) that has a bus
//! master (programming interface bit 7) and runs the channel in compatibility mode (at the
//! legacy ports, not a native-mode BAR). Its BAR4 holds the bus master's I/O ports: 8 per
//! channel, the primary first.

use super::port_io::IdeChannel;

/// A PCI function's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Function {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

/// PCI configuration space, read and written a 32-bit register at a time.
pub trait ConfigSpace {
    fn read(&mut self, function: Function, offset: u8) -> u32;
    fn write(&mut self, function: Function, offset: u8, value: u32);
}

/// Configuration registers this module reads.
mod reg {
    pub const VENDOR_DEVICE: u8 = 0x00;
    pub const COMMAND_STATUS: u8 = 0x04;
    pub const CLASS: u8 = 0x08;
    pub const HEADER_TYPE: u8 = 0x0C;
    pub const BAR4: u8 = 0x20;
    pub const BAR5: u8 = 0x24;
    /// Interrupt line (bits 0–7, as the firmware routed the pin) and pin (bits 8–15).
    pub const INTERRUPT: u8 = 0x3C;
}

/// Command register bits: decode I/O ports, decode memory, master the bus.
const IO_SPACE: u32 = 0x1;
const MEMORY_SPACE: u32 = 0x2;
const BUS_MASTER: u32 = 0x4;

/// The bus-master ports of a legacy channel's controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusMasterPorts {
    pub function: Function,
    /// The channel's 8 bus-master registers start here.
    pub base: u16,
}

/// The first IDE controller with a bus master that drives `channel` at its legacy ports, its bus
/// master's I/O ports assigned (BAR4 an I/O BAR, not zero). The scan stops there: under an
/// emulator every configuration access is slow, and a PC's IDE controller is on bus 0.
pub fn find_bus_master(config: &mut impl ConfigSpace, channel: IdeChannel) -> Option<BusMasterPorts> {
    let native_bit = match channel {
        IdeChannel::Primary => 0x01,
        IdeChannel::Secondary => 0x04,
    };
    for bus in 0..=255u8 {
        for device in 0..32u8 {
            let first = Function { bus, device, function: 0 };
            if !present(config, first) {
                continue;
            }
            let multi = config.read(first, reg::HEADER_TYPE) & 0x0080_0000 != 0;
            for function in 0..if multi { 8 } else { 1 } {
                let function = Function { bus, device, function };
                if let Some(found) = bus_master_of(config, function, channel, native_bit) {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// `function`'s bus-master ports for `channel`, if it is a compatibility-mode IDE controller
/// with a bus master.
fn bus_master_of(config: &mut impl ConfigSpace, function: Function, channel: IdeChannel, native_bit: u8) -> Option<BusMasterPorts> {
    if !present(config, function) {
        return None;
    }
    let class = config.read(function, reg::CLASS);
    let (base_class, subclass, interface) = ((class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8);
    if (base_class, subclass) != (0x01, 0x01) || interface & 0x80 == 0 || interface & native_bit != 0 {
        return None;
    }
    let bar = config.read(function, reg::BAR4);
    let base = (bar & 0xFFFC) as u16;
    if bar & 1 == 0 || base == 0 {
        return None;
    }
    let offset = if channel == IdeChannel::Primary { 0 } else { 8 };
    Some(BusMasterPorts { function, base: base + offset })
}

/// Lets `function` decode its I/O ports and master the bus.
pub fn enable_bus_master(config: &mut impl ConfigSpace, function: Function) {
    enable(config, function, IO_SPACE | BUS_MASTER);
}

/// Lets `function` decode its memory BARs and master the bus (an AHCI controller).
pub fn enable_memory_bus_master(config: &mut impl ConfigSpace, function: Function) {
    enable(config, function, MEMORY_SPACE | BUS_MASTER);
}

/// Sets `bits` in `function`'s command register. The status half of the register is written as
/// zeros, which clears none of its write-1-to-clear bits.
fn enable(config: &mut impl ConfigSpace, function: Function, bits: u32) {
    let command = config.read(function, reg::COMMAND_STATUS) & 0xFFFF;
    config.write(function, reg::COMMAND_STATUS, command | bits);
}

/// The interrupt line the firmware routed `function`'s pin to (its ISA IRQ, which GNU Mach's
/// `irq` device numbers alike); `None` for a function without a pin or a pin not routed
/// (0xFF).
pub fn interrupt_line(config: &mut impl ConfigSpace, function: Function) -> Option<u32> {
    let word = config.read(function, reg::INTERRUPT);
    let (line, pin) = (word & 0xFF, (word >> 8) & 0xFF);
    (pin != 0 && line != 0xFF).then_some(line)
}

/// An AHCI controller: its place and ABAR, the physical address of its registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AhciController {
    pub function: Function,
    pub abar: u64,
}

/// The first AHCI controller (class 01, subclass 06, programming interface 01) on bus 0 with its
/// ABAR (BAR5, a memory BAR) assigned. Bus 0 only: a chipset's SATA controller is there, and
/// under an emulator a scan of every bus costs thousands of slow configuration accesses.
pub fn find_ahci(config: &mut impl ConfigSpace) -> Option<AhciController> {
    for device in 0..32u8 {
        let first = Function { bus: 0, device, function: 0 };
        if !present(config, first) {
            continue;
        }
        let multi = config.read(first, reg::HEADER_TYPE) & 0x0080_0000 != 0;
        for function in 0..if multi { 8 } else { 1 } {
            let function = Function { bus: 0, device, function };
            if !present(config, function) || config.read(function, reg::CLASS) >> 8 != 0x01_06_01 {
                continue;
            }
            let bar = config.read(function, reg::BAR5);
            // A memory BAR (bit 0 clear), 32-bit (type 0): AHCI's ABAR is a 32-bit BAR.
            let abar = u64::from(bar & 0xFFFF_F000);
            if bar & 0x7 == 0 && abar != 0 {
                return Some(AhciController { function, abar });
            }
        }
    }
    None
}

/// A function is present when its vendor is not all ones (the bus's answer for nothing).
fn present(config: &mut impl ConfigSpace, function: Function) -> bool {
    config.read(function, reg::VENDOR_DEVICE) & 0xFFFF != 0xFFFF
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Configuration space with some functions; absent ones read as all ones. Counts reads.
    #[derive(Default)]
    struct SimConfig(BTreeMap<(Function, u8), u32>, usize);

    impl ConfigSpace for SimConfig {
        fn read(&mut self, function: Function, offset: u8) -> u32 {
            self.1 += 1;
            let present = self.0.contains_key(&(function, reg::VENDOR_DEVICE));
            self.0.get(&(function, offset)).copied().unwrap_or(if present { 0 } else { !0 })
        }

        fn write(&mut self, function: Function, offset: u8, value: u32) {
            self.0.insert((function, offset), value);
        }
    }

    const HOST_BRIDGE: Function = Function { bus: 0, device: 0, function: 0 };
    const ISA_BRIDGE: Function = Function { bus: 0, device: 1, function: 0 };
    const PIIX3_IDE: Function = Function { bus: 0, device: 1, function: 1 };

    /// QEMU's `-M pc`: a host bridge, and the PIIX3 (ISA bridge, IDE at function 1) as one
    /// multi-function device; the IDE function in compatibility mode with a bus master at 0xC040.
    fn qemu_pc(ide_interface: u8, bar4: u32) -> SimConfig {
        let mut config = SimConfig::default();
        config.write(HOST_BRIDGE, reg::VENDOR_DEVICE, 0x1237_8086);
        config.write(HOST_BRIDGE, reg::CLASS, 0x0600_0000);
        config.write(ISA_BRIDGE, reg::VENDOR_DEVICE, 0x7000_8086);
        config.write(ISA_BRIDGE, reg::CLASS, 0x0601_0000);
        config.write(ISA_BRIDGE, reg::HEADER_TYPE, 0x0080_0000);
        config.write(PIIX3_IDE, reg::VENDOR_DEVICE, 0x7010_8086);
        config.write(PIIX3_IDE, reg::CLASS, 0x0101_0000 | u32::from(ide_interface) << 8);
        config.write(PIIX3_IDE, reg::BAR4, bar4);
        config.write(PIIX3_IDE, reg::COMMAND_STATUS, 0x0280_0001);
        config
    }

    #[test]
    fn finds_the_piix_bus_master_of_each_legacy_channel() {
        let mut config = qemu_pc(0x80, 0xC041);
        assert_eq!(find_bus_master(&mut config, IdeChannel::Primary), Some(BusMasterPorts { function: PIIX3_IDE, base: 0xC040 }));
        assert_eq!(find_bus_master(&mut config, IdeChannel::Secondary), Some(BusMasterPorts { function: PIIX3_IDE, base: 0xC048 }));
        // The scan stops at the controller (each access is slow under an emulator).
        let mut config = qemu_pc(0x80, 0xC041);
        find_bus_master(&mut config, IdeChannel::Primary);
        assert!(config.1 < 16, "{} configuration reads", config.1);
    }

    #[test]
    fn no_bus_master_without_the_capability_an_io_bar_or_compatibility_mode() {
        assert_eq!(find_bus_master(&mut qemu_pc(0x00, 0xC041), IdeChannel::Primary), None, "no bus master");
        assert_eq!(find_bus_master(&mut qemu_pc(0x80, 0x0000), IdeChannel::Primary), None, "BAR4 unassigned");
        assert_eq!(find_bus_master(&mut qemu_pc(0x80, 0xC040), IdeChannel::Primary), None, "a memory BAR");
        // The primary channel in native mode is not at the legacy ports; the secondary still is.
        let mut native_primary = qemu_pc(0x81, 0xC041);
        assert_eq!(find_bus_master(&mut native_primary, IdeChannel::Primary), None);
        assert!(find_bus_master(&mut native_primary, IdeChannel::Secondary).is_some());
        assert_eq!(find_bus_master(&mut SimConfig::default(), IdeChannel::Primary), None, "no PCI at all");
    }

    /// QEMU's `-device ahci` (ICH9 AHCI) beside the PIIX3 on `-M pc`.
    #[test]
    fn finds_an_ahci_controller_and_its_abar() {
        let ahci = Function { bus: 0, device: 4, function: 0 };
        let mut config = qemu_pc(0x80, 0xC041);
        assert_eq!(find_ahci(&mut config), None, "the PIIX IDE is not AHCI");
        config.write(ahci, reg::VENDOR_DEVICE, 0x2922_8086);
        config.write(ahci, reg::CLASS, 0x0106_0102);
        config.write(ahci, reg::BAR5, 0xFEBF_1000);
        assert_eq!(find_ahci(&mut config), Some(AhciController { function: ahci, abar: 0xFEBF_1000 }));
        config.write(ahci, reg::BAR5, 0);
        assert_eq!(find_ahci(&mut config), None, "ABAR unassigned");
        config.write(ahci, reg::BAR5, 0xC001);
        assert_eq!(find_ahci(&mut config), None, "an I/O BAR");
        config.write(ahci, reg::BAR5, 0xFEBF_1000);
        config.write(ahci, reg::CLASS, 0x0106_0002);
        assert_eq!(find_ahci(&mut config), None, "a SATA controller in IDE mode, not AHCI");
        enable_memory_bus_master(&mut config, PIIX3_IDE);
        assert_eq!(config.read(PIIX3_IDE, reg::COMMAND_STATUS), 0x0000_0007);
    }

    #[test]
    fn enabling_sets_io_and_bus_master_and_clears_no_status_bit() {
        let mut config = qemu_pc(0x80, 0xC041);
        enable_bus_master(&mut config, PIIX3_IDE);
        assert_eq!(config.read(PIIX3_IDE, reg::COMMAND_STATUS), 0x0000_0005);
    }
}
