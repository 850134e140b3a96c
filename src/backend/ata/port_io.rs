//! The only `in`/`out` instructions in the crate: a legacy IDE channel's registers, its PCI
//! controller's bus master and PCI configuration space through x86 port I/O, and the time-stamp
//! counter the driver's deadlines use.

use core::arch::asm;

use alloc::boxed::Box;
use alloc::sync::Arc;
use mach::interfaces::mach_i386;
use mach::kern::{Error, Result, KERN_FAILURE};
use mach::port::{PortName, SendRight};

use super::irq_line::IrqLine;
use mach::irq::IrqDevice;
use super::dma::{self, Ahead, BusMaster, BusMasterDma, Contiguous, DirectMemory, DmaEngine, KernelMemory};
use super::pci::{self, ConfigSpace, Function};
use super::pci_arbiter::ArbiterConfig;
use super::registers::{Reg, Registers};
use super::units::{attach_names, disks_on, Units};
use super::{AtaBackend, Channel, Clock, Timeouts, TransferMode};
use alloc::vec::Vec;
use crate::backend::flush_mode::{FlushMode, WithFlushMode};

/// The two legacy IDE channels of a PC, at their fixed I/O ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdeChannel {
    /// Command block at 0x1F0–0x1F7, device control / alternate status at 0x3F6.
    #[default]
    Primary,
    /// Command block at 0x170–0x177, device control / alternate status at 0x376.
    Secondary,
}

impl IdeChannel {
    /// The word `--ide-channel` takes.
    pub fn name(self) -> &'static str {
        match self {
            IdeChannel::Primary => "primary",
            IdeChannel::Secondary => "secondary",
        }
    }

    pub const fn command_block(self) -> u16 {
        match self {
            IdeChannel::Primary => 0x1F0,
            IdeChannel::Secondary => 0x170,
        }
    }

    pub const fn control(self) -> u16 {
        match self {
            IdeChannel::Primary => 0x3F6,
            IdeChannel::Secondary => 0x376,
        }
    }

    /// Both channels, in the order their disks attach.
    pub const ALL: [IdeChannel; 2] = [IdeChannel::Primary, IdeChannel::Secondary];
}

/// One channel's registers. Exists only where the task may touch those ports.
pub struct LegacyPorts {
    channel: IdeChannel,
    _command_block: PortAccess,
    _control: PortAccess,
}

/// Asks GNU Mach, through a device master, for `channel`'s I/O ports and enables them for this
/// task until the registers drop. The caller must be the channel's only driver.
pub fn enable_channel(device_master: PortName, channel: IdeChannel) -> Result<LegacyPorts> {
    let (block, control) = (channel.command_block(), channel.control());
    Ok(LegacyPorts {
        channel,
        _command_block: PortAccess::enable(device_master, block, block + 7)?,
        _control: PortAccess::enable(device_master, control, control)?,
    })
}

/// I/O ports `from..=to` enabled for this task (`i386_io_perm_create`, `i386_io_perm_modify`)
/// while this lives, disabled when it drops: a task keeps only the ports it still drives. GNU
/// Mach copies a task's I/O bitmap, up to its highest enabled port, into the TSS at every switch
/// to the task: with the bus master's ports near 0xC000 that made every RPC to the server about
/// 10 µs longer (a 6 KiB copy, measured under TCG), so the PCI configuration ports go once the
/// controller is set up, and every port once a controller drives by memory-mapped registers.
/// Ranges that overlap share the bitmap's bits: disabling one disables the other's ports too
/// (the bench does so on purpose while it times a server), and a driver whose ports are
/// disabled faults at its next access, touching nothing.
pub struct PortAccess {
    permission: SendRight,
}

impl PortAccess {
    pub fn enable(device_master: PortName, from: u16, to: u16) -> Result<PortAccess> {
        // The interface's `io_port_t` is 16 bits, signed in its binding: the bits go as they are.
        let permission = mach_i386::i386_io_perm_create(device_master, from as i16, to as i16)?;
        mach_i386::i386_io_perm_modify(task_self(), permission.name(), true)?;
        Ok(PortAccess { permission })
    }

    /// Enables or disables the ports again (e.g. for a while a task does not drive them).
    pub fn allow(&self, enabled: bool) -> Result<()> {
        mach_i386::i386_io_perm_modify(task_self(), self.permission.name(), enabled)
    }
}

impl Drop for PortAccess {
    fn drop(&mut self) {
        if let Err(error) = self.allow(false) {
            log::warn!("ata: I/O ports kept: {error:?}");
        }
    }
}

fn task_self() -> PortName {
    PortName::new(mach::sys::mach_task_self())
}

/// PCI configuration space as this task reaches it: through the pci-arbiter when one serves
/// `device_master` (Debian's boot line starts the boot disk server from the arbiter), else at
/// the ports, which no other task uses while this one runs before any arbiter.
pub enum PciConfig {
    Arbiter(ArbiterConfig),
    Ports(PciConfigPorts),
}

impl PciConfig {
    pub fn open(device_master: PortName) -> Result<PciConfig> {
        Ok(match ArbiterConfig::open(device_master)? {
            Some(arbiter) => {
                log::info!("pci: configuration space through the pci-arbiter");
                PciConfig::Arbiter(arbiter)
            }
            None => PciConfig::Ports(PciConfigPorts::enable(device_master)?),
        })
    }
}

impl ConfigSpace for PciConfig {
    fn read(&mut self, function: Function, offset: u8) -> u32 {
        match self {
            PciConfig::Arbiter(arbiter) => arbiter.read(function, offset),
            PciConfig::Ports(ports) => ports.read(function, offset),
        }
    }

    fn write(&mut self, function: Function, offset: u8, value: u32) {
        match self {
            PciConfig::Arbiter(arbiter) => arbiter.write(function, offset, value),
            PciConfig::Ports(ports) => ports.write(function, offset, value),
        }
    }
}

/// PCI configuration mechanism #1: the address at 0xCF8, the data at 0xCFC. Used only where no
/// arbiter runs: GNU Mach lets several tasks hold these ports, and two tasks' address and data
/// cycles would interleave. Given back when dropped, once the controller is set up.
pub struct PciConfigPorts {
    _access: PortAccess,
}

const CONFIG_ADDRESS: u16 = 0xCF8;
const CONFIG_DATA: u16 = 0xCFC;

impl PciConfigPorts {
    pub fn enable(device_master: PortName) -> Result<PciConfigPorts> {
        Ok(PciConfigPorts { _access: PortAccess::enable(device_master, CONFIG_ADDRESS, CONFIG_DATA + 3)? })
    }

    fn select(function: Function, offset: u8) {
        let address = 0x8000_0000
            | u32::from(function.bus) << 16
            | u32::from(function.device & 0x1F) << 11
            | u32::from(function.function & 0x7) << 8
            | u32::from(offset & 0xFC);
        // SAFETY: a `PciConfigPorts` holds the permission for 0xCF8–0xCFF.
        unsafe { outl(CONFIG_ADDRESS, address) }
    }
}

impl ConfigSpace for PciConfigPorts {
    fn read(&mut self, function: Function, offset: u8) -> u32 {
        Self::select(function, offset);
        // SAFETY: as in `select`.
        unsafe { inl(CONFIG_DATA) }
    }

    fn write(&mut self, function: Function, offset: u8, value: u32) {
        Self::select(function, offset);
        // SAFETY: as in `select`.
        unsafe { outl(CONFIG_DATA, value) }
    }
}

/// A channel's bus-master registers at their I/O ports.
pub struct BusMasterRegisters {
    base: u16,
    _access: PortAccess,
}

impl BusMasterRegisters {
    /// Enables the 8 ports from `base` for this task.
    pub fn enable(device_master: PortName, base: u16) -> Result<BusMasterRegisters> {
        Ok(BusMasterRegisters { base, _access: PortAccess::enable(device_master, base, base + 7)? })
    }
}

impl BusMaster for BusMasterRegisters {
    fn command(&mut self, value: u8) {
        // SAFETY: a `BusMasterRegisters` holds the permission for its 8 ports.
        unsafe { outb(self.base, value) }
    }

    fn status(&mut self) -> u8 {
        // SAFETY: as in `command`.
        unsafe { inb(self.base + 2) }
    }

    fn set_status(&mut self, value: u8) {
        // SAFETY: as in `command`.
        unsafe { outb(self.base + 2, value) }
    }

    fn set_table(&mut self, physical: u32) {
        // SAFETY: as in `command`.
        unsafe { outl(self.base + 4, physical) }
    }
}

/// What a channel's PCI bus master is set up with: configuration space, opened once for the
/// whole scan, and `host_priv` for the DMA memory. Only the boot disk server has both.
pub struct BusMasterSetup<'a> {
    pub config: &'a mut PciConfig,
    pub host_priv: PortName,
}

/// The bus master of `channel`'s PCI IDE controller, with a PRD table and a bounce buffer from
/// `vm_allocate_contiguous` (through `host_priv`); `Ok(None)` when PCI has none.
fn bus_master_dma(device_master: PortName, setup: &mut BusMasterSetup<'_>, channel: IdeChannel) -> Result<Option<Box<dyn DmaEngine + Send>>> {
    let Some(found) = pci::find_bus_master(setup.config, channel) else { return Ok(None) };
    pci::enable_bus_master(setup.config, found.function);
    let registers = BusMasterRegisters::enable(device_master, found.base)?;
    let table = Contiguous::allocate(setup.host_priv, dma::TABLE_BYTES)?;
    let buffer = Contiguous::allocate(setup.host_priv, dma::BOUNCE_BYTES)?;
    let engine = BusMasterDma::new(registers, table, buffer).map_err(|error| {
        log::error!("ata: {channel:?} channel: the bus master cannot use its memory: {error}");
        Error::from_const(KERN_FAILURE)
    })?;
    log::info!("ata: {channel:?} channel: bus master at {:#06x} ({:?})", found.base, found.function);
    Ok(Some(Box::new(engine)))
}

/// Deadlines for a real (or emulated) drive, in TSC ticks: long, since an emulator may stall.
pub const TIMEOUTS: Timeouts = Timeouts { command: 10 * Tsc::TICKS_PER_SECOND, flush: 30 * Tsc::TICKS_PER_SECOND };

impl Registers for LegacyPorts {
    fn read(&mut self, reg: Reg) -> u8 {
        // SAFETY: a `LegacyPorts` holds the permission for its command block.
        unsafe { inb(self.channel.command_block() + reg as u16) }
    }

    fn write(&mut self, reg: Reg, value: u8) {
        // SAFETY: as in `read`.
        unsafe { outb(self.channel.command_block() + reg as u16, value) }
    }

    fn alt_status(&mut self) -> u8 {
        // SAFETY: a `LegacyPorts` holds the permission for its control port.
        unsafe { inb(self.channel.control()) }
    }

    fn set_control(&mut self, value: u8) {
        // SAFETY: as in `alt_status`.
        unsafe { outb(self.channel.control(), value) }
    }

    fn read_block(&mut self, block: &mut [u8]) {
        let data = self.channel.command_block();
        let words = block.len() / 2;
        // SAFETY: the data register is in the permitted block; `rep insw` stores `words` 16-bit
        // words, no more than the exclusively borrowed buffer holds (x86 allows any alignment).
        unsafe {
            asm!("rep insw", in("dx") data, inout("di") block.as_mut_ptr() => _,
                 inout("cx") words => _, options(nostack, preserves_flags));
        }
    }

    fn write_block(&mut self, block: &[u8]) {
        let data = self.channel.command_block();
        let words = block.len() / 2;
        // SAFETY: as in `read_block`; `rep outsw` only reads `words` words of the buffer.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            asm!("rep outsw", in("dx") data, inout("rsi") block.as_ptr() => _,
                 inout("rcx") words => _, options(nostack, preserves_flags, readonly));
        }
        // SAFETY: as above; LLVM reserves esi on i686, so it is saved and restored by hand.
        #[cfg(target_arch = "x86")]
        unsafe {
            asm!("xchg {source}, esi", "rep outsw", "mov esi, {source}",
                 source = inout(reg) block.as_ptr() => _, in("dx") data,
                 inout("ecx") words => _, options(nostack, preserves_flags, readonly));
        }
    }
}

/// # Safety
/// The task must have permission for `port`.
unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller guarantees the permission; `in` touches no memory.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// The task must have permission for `port`.
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the permission; `out` touches no memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// # Safety
/// The task must have permission for the 4 ports from `port`.
unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: the caller guarantees the permission; `in` touches no memory.
    unsafe { asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// The task must have permission for the 4 ports from `port`.
unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller guarantees the permission; `out` touches no memory.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) };
}

/// The time-stamp counter. Under QEMU's TCG it runs at the host's TSC rate; GNU Mach's
/// `host_get_time` ran about twice too fast there, so deadlines use this instead.
pub struct Tsc;

impl Tsc {
    /// Ticks per second assumed when turning seconds into deadlines: a nominal 3 GHz. On a
    /// slower counter a deadline lasts proportionally longer, never shorter than meant below it.
    pub const TICKS_PER_SECOND: u64 = 3_000_000_000;
}

impl Clock for Tsc {
    fn now(&self) -> u64 {
        let (low, high): (u32, u32);
        // SAFETY: `rdtsc` only reads the counter into edx:eax; user mode may run it (CR4.TSD
        // is clear on GNU Mach).
        unsafe { asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags)) };
        u64::from(high) << 32 | u64::from(low)
    }
}

/// A legacy IDE channel whose ports this task holds, probed: which of its positions (master,
/// slave) have an ATA disk (IDENTIFY answered; a packet device is none).
pub struct Probed {
    pub channel: IdeChannel,
    ata: Channel<LegacyPorts, Tsc>,
    pub disks: [bool; 2],
}

/// Takes `channel`'s I/O ports through `device_master` and asks each position for IDENTIFY.
pub fn probe_channel(device_master: PortName, channel: IdeChannel) -> Result<Probed> {
    let mut ata = Channel::new(enable_channel(device_master, channel)?, Tsc, TIMEOUTS);
    let disks = disks_on(&mut ata);
    Ok(Probed { channel, ata, disks })
}

/// The native driver on a probed channel, its disks under `names` (see
/// [`super::units::attach_names`]), moving data as `transfer` asks. DMA needs `host_priv` (for
/// DMA memory) and PCI configuration space (through the arbiter, or at the ports before any
/// arbiter runs): the boot disk server passes it, others `None`. Without a bus master `auto`
/// moves data by PIO; `dma` is then an error. With `irq`, DMA commands and flushes complete by
/// the channel's interrupt (by polling when its line cannot be had, which is logged).
pub fn finish_channel(
    device_master: PortName,
    probed: Probed,
    names: [Option<&'static [u8]>; 2],
    transfer: TransferMode,
    bus_master: Option<&mut BusMasterSetup<'_>>,
    irq: Option<&IrqDevice>,
) -> Result<AtaBackend<LegacyPorts, Tsc>> {
    let Probed { channel, ata: mut ata_channel, .. } = probed;
    match irq.map(|irq| IrqLine::take(irq, channel.irq(), alloc::format!("ata: {channel:?} channel"))) {
        Some(Ok(line)) => {
            log::info!("ata: {channel:?} channel: commands complete by interrupt (IRQ {})", channel.irq());
            ata_channel = ata_channel.with_line(Box::new(line));
        }
        Some(Err(error)) => log::warn!("ata: {channel:?} channel: IRQ {} cannot be had ({error:?}): polling", channel.irq()),
        None => {}
    }
    let boot_server = bus_master.is_some();
    let engine = match (transfer, bus_master) {
        (TransferMode::Auto | TransferMode::Dma, Some(setup)) => {
            bus_master_dma(device_master, setup, channel).map(|engine| engine.map(|engine| (engine, setup.host_priv)))
        }
        _ => Ok(None),
    };
    let mut direct = None;
    match engine {
        Ok(Some((engine, host_priv))) => {
            ata_channel = ata_channel.with_dma(engine);
            direct = Some(Arc::new(Ahead::new(KernelMemory::new(host_priv))) as Arc<dyn DirectMemory>);
        }
        Ok(None) if transfer == TransferMode::Dma && !boot_server => {
            log::error!("ata: --ata-transfer=dma: only the boot disk server (rumpdisk.static) drives a bus master");
            return Err(Error::from_const(KERN_FAILURE));
        }
        Ok(None) if transfer == TransferMode::Dma => {
            log::error!("ata: --ata-transfer=dma: no PCI IDE bus master drives the {channel:?} channel");
            return Err(Error::from_const(KERN_FAILURE));
        }
        Err(error) if transfer == TransferMode::Dma => {
            log::error!("ata: --ata-transfer=dma: the bus master cannot be set up: {error:?}");
            return Err(error);
        }
        Ok(None) if transfer == TransferMode::Auto && boot_server => log::info!("ata: {channel:?} channel: no PCI IDE bus master: PIO"),
        Err(error) => log::info!("ata: {channel:?} channel: the bus master cannot be set up ({error:?}): PIO"),
        Ok(None) => {}
    }
    let mut ata = AtaBackend::named(ata_channel, names, transfer);
    if let Some(direct) = direct {
        ata = ata.with_direct_memory(direct);
    }
    Ok(ata)
}

/// The native driver on the legacy IDE `channels` as the Hurd binary runs it: each channel
/// probed, the channels without a disk let go (their ports too), the disks named in attach
/// order (`wd0` the first found, as NetBSD under the Hurd's rumpdisk names them), and the
/// `--flush` mode (anything but [`FlushMode::Device`] is for tests only and says so on the log).
pub fn native_backend(
    device_master: PortName,
    channels: &[IdeChannel],
    flush: FlushMode,
    transfer: TransferMode,
) -> Result<WithFlushMode<Units<AtaBackend<LegacyPorts, Tsc>>>> {
    if transfer == TransferMode::Ahci {
        log::error!("ata: --ata-transfer=ahci: only the boot disk server (rumpdisk.static) drives an AHCI controller");
        return Err(Error::from_const(KERN_FAILURE));
    }
    let probed = channels.iter().map(|&channel| probe_channel(device_master, channel)).collect::<Result<Vec<_>>>()?;
    let names = attach_names(probed.iter().flat_map(|p| p.disks));
    let mut units = Vec::new();
    for (probed, names) in probed.into_iter().zip(names.chunks_exact(2)) {
        if probed.disks.contains(&true) {
            units.push(finish_channel(device_master, probed, [names[0], names[1]], transfer, None, None)?);
        }
    }
    if flush != FlushMode::Device {
        log::warn!("rumpdisk: --flush={flush}: DEV_FLUSH_CACHE does not always flush (for tests only)");
    }
    Ok(WithFlushMode::new(Units(units), flush))
}
