//! The native driver as rumpdisk.static runs it: the legacy IDE channels and the ports of the
//! first AHCI controller, each disk named as NetBSD attaches it under the Hurd's rumpdisk
//! (`wd` units in attach order: IDE channels, master then slave, then AHCI ports; see
//! [`super::units`]). `--ata-transfer=ahci` drives the AHCI controller alone; every other mode
//! drives the IDE channels `--ide-channel` names, and in `auto` the AHCI controller's disks too.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use mach::irq::IrqDevice;
use mach::kern::{Error, Result, KERN_FAILURE};
use mach::ool::OolMemory;
use mach::port::PortName;

use super::ahci::mmio::MappedHba;
use super::ahci::{self, AhciBackend, AhciDisk, AhciPort};
use super::dma::{self, Ahead, Contiguous, KernelMemory};
use super::irq_line::IrqLine;
use super::pci;
use super::port_io::{self, BusMasterSetup, IdeChannel, LegacyPorts, PciConfig, Tsc};
use super::units::{attach_names, Units};
use super::{AtaBackend, AtaDisk, Completion, TransferMode};
use crate::backend::flush_mode::{FlushMode, WithFlushMode};
use crate::backend::{Backend, Disk, Geometry};
use crate::device::{self, Access};

type Ide = AtaBackend<LegacyPorts, Tsc>;
type Ahci = AhciBackend<MappedHba, Tsc, Contiguous>;

/// One channel or port the native driver drives.
pub enum NativeBackend {
    Ide(Ide),
    Ahci(Ahci),
}

/// Every channel and port the native driver drives.
pub type NativeUnits = Units<NativeBackend>;

/// A disk of either controller.
pub enum NativeDisk {
    Ide(AtaDisk<LegacyPorts, Tsc>),
    Ahci(AhciDisk<MappedHba, Tsc, Contiguous>),
}

impl Backend for NativeBackend {
    type Disk = NativeDisk;

    fn open(&self, name: &[u8], access: Access) -> core::result::Result<NativeDisk, device::Error> {
        match self {
            NativeBackend::Ide(ide) => ide.open(name, access).map(NativeDisk::Ide),
            NativeBackend::Ahci(ahci) => ahci.open(name, access).map(NativeDisk::Ahci),
        }
    }
}

impl Disk for NativeDisk {
    fn geometry(&self) -> Geometry {
        match self {
            NativeDisk::Ide(disk) => disk.geometry(),
            NativeDisk::Ahci(disk) => disk.geometry(),
        }
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> core::result::Result<(), device::Error> {
        match self {
            NativeDisk::Ide(disk) => disk.read(record, buf),
            NativeDisk::Ahci(disk) => disk.read(record, buf),
        }
    }

    fn read_out_of_line(&self, record: u64, len: usize) -> core::result::Result<OolMemory, device::Error> {
        match self {
            NativeDisk::Ide(disk) => disk.read_out_of_line(record, len),
            NativeDisk::Ahci(disk) => disk.read_out_of_line(record, len),
        }
    }

    fn write(&self, record: u64, data: &[u8]) -> core::result::Result<(), device::Error> {
        match self {
            NativeDisk::Ide(disk) => disk.write(record, data),
            NativeDisk::Ahci(disk) => disk.write(record, data),
        }
    }

    fn write_out_of_line(&self, record: u64, data: OolMemory) -> core::result::Result<(), device::Error> {
        match self {
            NativeDisk::Ide(disk) => disk.write_out_of_line(record, data),
            NativeDisk::Ahci(disk) => disk.write_out_of_line(record, data),
        }
    }

    fn flush(&self) -> core::result::Result<(), device::Error> {
        match self {
            NativeDisk::Ide(disk) => disk.flush(),
            NativeDisk::Ahci(disk) => disk.flush(),
        }
    }
}

/// The native driver as the boot disk server runs it (it alone may touch PCI configuration space
/// and allocate DMA memory through `host_priv`): see the module's comment for what it drives,
/// and [`port_io::finish_channel`] for the IDE channels' transfer modes. Channels and ports
/// without a disk are let go. `completion` decides whether commands end by interrupt where the
/// kernel allows it, or by polling everywhere.
pub fn native_backend(
    device_master: PortName,
    host_priv: PortName,
    channels: &[IdeChannel],
    flush: FlushMode,
    transfer: TransferMode,
    completion: Completion,
) -> Result<WithFlushMode<NativeUnits>> {
    let ide = if transfer == TransferMode::Ahci { &[][..] } else { channels };
    let probed = ide.iter().map(|&channel| port_io::probe_channel(device_master, channel)).collect::<Result<Vec<_>>>()?;
    let irq = match completion {
        Completion::Interrupt => irq_device(device_master),
        // No irq device: no channel or port takes a line, so every one polls, IDE and AHCI alike.
        Completion::Poll => {
            log::info!("ata: --completion=poll: commands complete by polling");
            None
        }
    };
    // Opened once for the whole scan (an arbiter's is a device_open and lookups), and let go
    // with it: PIO alone needs no PCI, and `auto` falls back to it without.
    let mut config = match transfer {
        TransferMode::Pio | TransferMode::Multiple => None,
        TransferMode::Dma | TransferMode::Ahci => Some(PciConfig::open(device_master)?),
        TransferMode::Auto => PciConfig::open(device_master)
            .inspect_err(|error| log::info!("pci: no configuration space ({error:?}): IDE channels by PIO only"))
            .ok(),
    };
    let ahci = match (transfer, config.as_mut()) {
        (TransferMode::Ahci, Some(config)) => {
            let ahci = ahci_ports(device_master, host_priv, config, irq.as_ref())?;
            if ahci.is_empty() {
                log::error!("ahci: --ata-transfer=ahci: no AHCI controller with a disk");
                return Err(Error::from_const(KERN_FAILURE));
            }
            ahci
        }
        (TransferMode::Auto, Some(config)) => ahci_ports(device_master, host_priv, config, irq.as_ref()).unwrap_or_else(|error| {
            log::info!("ahci: the controller cannot be set up ({error:?}): IDE only");
            Vec::new()
        }),
        _ => Vec::new(),
    };
    let names = attach_names(probed.iter().flat_map(|p| p.disks).chain(ahci.iter().map(|_| true)));
    let (ide_names, ahci_names) = names.split_at(probed.len() * 2);
    let mut units = Vec::new();
    for (probed, names) in probed.into_iter().zip(ide_names.chunks_exact(2)) {
        if probed.disks.contains(&true) {
            let mut bus_master = config.as_mut().map(|config| BusMasterSetup { config, host_priv });
            let channel = port_io::finish_channel(device_master, probed, [names[0], names[1]], transfer, bus_master.as_mut(), irq.as_ref())?;
            units.push(NativeBackend::Ide(channel));
        }
    }
    for (port, name) in ahci.into_iter().zip(ahci_names) {
        let Some(name) = *name else { continue };
        log::info!("ahci: port {} is {}", port.number(), super::display_name(name));
        let backend = AhciBackend::new(port, name);
        units.push(NativeBackend::Ahci(backend.with_direct_memory(Arc::new(Ahead::new(KernelMemory::new(host_priv))))));
    }
    if flush != FlushMode::Device {
        log::warn!("rumpdisk: --flush={flush}: DEV_FLUSH_CACHE does not always flush (for tests only)");
    }
    Ok(WithFlushMode::new(Units(units), flush))
}

/// The kernel's `irq` device; `None`, said once, when the kernel has none: the IDE channels and
/// AHCI ports then poll for every command's end.
fn irq_device(device_master: PortName) -> Option<IrqDevice> {
    IrqDevice::open(device_master)
        .inspect_err(|error| log::info!("ata: no irq device ({error:?}): commands complete by polling"))
        .ok()
}

/// The first AHCI controller on PCI, its registers mapped (once per port), memory space and bus
/// mastering on, and each of its ports with a disk started with command memory and a bounce
/// buffer from `vm_allocate_contiguous` (below 4 GiB: the port refuses more only without
/// 64-bit addressing, and QEMU's has it, but 32-bit memory suits every HBA). Empty when PCI has
/// no such controller or no port has a disk. With `irq`, a controller with one disk port takes
/// its PCI line and completes commands by interrupt; several ports poll (one port's wait would
/// take the shared line's notifications of another's ends), as does a controller without a
/// routed line.
fn ahci_ports(
    device_master: PortName,
    host_priv: PortName,
    config: &mut PciConfig,
    irq: Option<&IrqDevice>,
) -> Result<Vec<AhciPort<MappedHba, Tsc, Contiguous>>> {
    let Some(found) = pci::find_ahci(config) else { return Ok(Vec::new()) };
    pci::enable_memory_bus_master(config, found.function);
    let disk_ports = AhciPort::<MappedHba, Tsc, Contiguous>::disk_ports(&mut MappedHba::map(device_master, found.abar)?);
    let line = pci::interrupt_line(config, found.function);
    let lone = disk_ports.len() == 1;
    match (irq.is_some(), line) {
        (true, None) => log::info!("ahci: controller {:?}: no interrupt line routed: polling", found.function),
        (true, Some(line)) if !lone => log::info!("ahci: {} disk ports share IRQ {line}: polling", disk_ports.len()),
        _ => {}
    }
    let mut ports = Vec::new();
    for number in disk_ports {
        let hba = MappedHba::map(device_master, found.abar)?;
        let memory = Contiguous::allocate(host_priv, ahci::COMMAND_MEMORY_BYTES)?;
        let buffer = Contiguous::allocate(host_priv, dma::BOUNCE_BYTES)?;
        match AhciPort::start_on(hba, number, Tsc, port_io::TIMEOUTS, memory, buffer) {
            Ok(mut port) => {
                log::info!("ahci: controller {:?}, ABAR {:#x}: port {}", found.function, found.abar, port.number());
                if let (Some(irq), Some(line), true) = (irq, line, lone) {
                    match IrqLine::take(irq, line, alloc::format!("ahci: port {number}")) {
                        Ok(taken) => {
                            log::info!("ahci: port {number}: commands complete by interrupt (IRQ {line})");
                            port = port.with_line(Box::new(taken));
                        }
                        Err(error) => log::warn!("ahci: port {number}: IRQ {line} cannot be had ({error:?}): polling"),
                    }
                }
                ports.push(port);
            }
            Err(error) => {
                log::error!("ahci: controller {:?}, port {number}: {error}", found.function);
                return Err(Error::from_const(KERN_FAILURE));
            }
        }
    }
    Ok(ports)
}
