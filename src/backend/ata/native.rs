//! The native driver as rumpdisk.static runs it: the legacy IDE channel, or the disk of an AHCI
//! controller, chosen once at start by `--ata-transfer`: `ahci` asks for the AHCI controller;
//! `auto` takes the IDE channel when its master answers, and otherwise the first AHCI
//! controller's disk if there is one; every other mode is the IDE channel's.

use alloc::sync::Arc;
use mach::kern::{Error, Result, KERN_FAILURE};
use mach::ool::OolMemory;
use mach::port::PortName;

use super::ahci::mmio::MappedHba;
use super::ahci::{self, AhciBackend, AhciDisk, AhciPort};
use super::dma::{self, Ahead, Contiguous, KernelMemory};
use super::pci;
use super::port_io::{self, IdeChannel, LegacyPorts, PciConfigPorts, Tsc};
use super::{AtaBackend, AtaDisk, TransferMode};
use crate::backend::flush_mode::{FlushMode, WithFlushMode};
use crate::backend::{Backend, Disk, Geometry};
use crate::device::{self, Access, D_NO_SUCH_DEVICE};

type Ide = AtaBackend<LegacyPorts, Tsc>;
type Ahci = AhciBackend<MappedHba, Tsc, Contiguous>;

/// The controller the native driver drives.
pub enum NativeBackend {
    Ide(Ide),
    Ahci(Ahci),
}

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
/// and allocate DMA memory through `host_priv`): see the module's comment for the choice, and
/// [`port_io::native_backend`] for the IDE channel's transfer modes and `--flush`.
pub fn native_backend(
    device_master: PortName,
    host_priv: PortName,
    channel: IdeChannel,
    flush: FlushMode,
    transfer: TransferMode,
) -> Result<WithFlushMode<NativeBackend>> {
    if transfer == TransferMode::Ahci {
        let ahci = ahci_backend(device_master, host_priv)?.ok_or_else(|| {
            log::error!("ahci: --ata-transfer=ahci: no AHCI controller with a disk");
            Error::from_const(KERN_FAILURE)
        })?;
        return Ok(with_flush_mode(NativeBackend::Ahci(ahci), flush));
    }
    let ide = port_io::native_backend(device_master, channel, flush, transfer, Some(host_priv))?;
    if transfer == TransferMode::Auto {
        let master = channel.drive_names()[0];
        let absent = matches!(ide.backend.open(master, Access { read: true, write: false }), Err(D_NO_SUCH_DEVICE));
        if absent {
            match ahci_backend(device_master, host_priv) {
                Ok(Some(ahci)) => {
                    log::info!("ata: no drive on the {channel:?} IDE channel: the AHCI controller's disk");
                    return Ok(WithFlushMode::new(NativeBackend::Ahci(ahci), ide.mode()));
                }
                Ok(None) => {}
                Err(error) => log::info!("ahci: the controller cannot be set up ({error:?}): the IDE channel"),
            }
        }
    }
    let mode = ide.mode();
    Ok(WithFlushMode::new(NativeBackend::Ide(ide.backend), mode))
}

fn with_flush_mode(backend: NativeBackend, flush: FlushMode) -> WithFlushMode<NativeBackend> {
    if flush != FlushMode::Device {
        log::warn!("rumpdisk: --flush={flush}: DEV_FLUSH_CACHE does not always flush (for tests only)");
    }
    WithFlushMode::new(backend, flush)
}

/// The first AHCI controller on PCI, its registers mapped, memory space and bus mastering on,
/// its first port with a disk started with command memory and a bounce buffer from
/// `vm_allocate_contiguous` (below 4 GiB: the port refuses more only without 64-bit
/// addressing, and QEMU's has it, but 32-bit memory suits every HBA), and out-of-line requests'
/// own pages from the kernel as the IDE path's. `Ok(None)` when PCI has
/// no such controller or no port has a disk.
fn ahci_backend(device_master: PortName, host_priv: PortName) -> Result<Option<Ahci>> {
    let mut config = PciConfigPorts::enable(device_master)?;
    let Some(found) = pci::find_ahci(&mut config) else { return Ok(None) };
    pci::enable_memory_bus_master(&mut config, found.function);
    let hba = MappedHba::map(device_master, found.abar)?;
    let memory = Contiguous::allocate(host_priv, ahci::COMMAND_MEMORY_BYTES)?;
    let buffer = Contiguous::allocate(host_priv, dma::BOUNCE_BYTES)?;
    match AhciPort::start(hba, Tsc, port_io::TIMEOUTS, memory, buffer) {
        Ok(port) => {
            log::info!("ahci: controller {:?}, ABAR {:#x}: port {}", found.function, found.abar, port.number());
            let backend = AhciBackend::new(port, IdeChannel::Primary.drive_names()[0]);
            Ok(Some(backend.with_direct_memory(Arc::new(Ahead::new(KernelMemory::new(host_priv))))))
        }
        Err(super::AtaError::NoDrive) => Ok(None),
        Err(error) => {
            log::error!("ahci: controller {:?}: {error}", found.function);
            Err(Error::from_const(KERN_FAILURE))
        }
    }
}
