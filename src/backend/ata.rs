//! A native driver for the legacy IDE/ATA controller (the one QEMU's `-M pc` emulates), run
//! from user space: polling PIO on the primary channel (ports 0x1F0–0x1F7, 0x3F6), `wd0` the
//! master and `wd1` the slave. The command logic is generic over the register file, so host
//! tests drive it against a simulated drive; only [`port_io`] touches real ports.

pub mod ahci;
mod channel;
pub mod dma;
mod identify;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub mod irq_line;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub mod native;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub mod pci;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub mod pci_arbiter;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub mod port_io;
pub mod units;
mod registers;
#[cfg(test)]
mod sim;

use alloc::sync::Arc;
use core::fmt;
use mach::ool::OolMemory;
use mach::sync::Mutex;

use dma::{DirectMemory, Pages, Wired, DMA_LIMIT};

pub use channel::{Channel, Drive, Timeouts, Transfer};
pub use identify::Identity;
pub use registers::{Reg, Registers, SECTOR};

use super::{Backend, Disk, Geometry};
use crate::device::{Access, Error, D_INVALID_RECNUM, D_IO_ERROR, D_NO_SUCH_DEVICE};

/// A monotonic tick counter for command deadlines.
pub trait Clock {
    fn now(&self) -> u64;
}

/// Why an ATA command did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtaError {
    /// Nothing answers at that position.
    NoDrive,
    /// A packet (ATAPI) device: not a disk this driver speaks to.
    NotAta,
    /// The drive stayed busy past the deadline.
    Timeout { command: u8, status: u8 },
    /// The drive ended the command with ERR or DF.
    Failed { command: u8, status: u8, error: u8 },
    /// The drive's data request did not match the command (DRQ missing or left over).
    Protocol { command: u8, status: u8 },
    /// The bus master reported an error moving the command's data.
    Dma { command: u8, status: u8 },
    /// The AHCI host bus adapter reported an error moving the command's data or FIS (its port's
    /// interrupt status, PxIS).
    HostBus { command: u8, interrupt_status: u32 },
    /// Past the end of the drive or of what its addressing reaches.
    OutOfRange { lba: u64, sectors: u64 },
    /// A drive this driver cannot use.
    Unsupported(&'static str),
}

impl fmt::Display for AtaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AtaError::NoDrive => f.write_str("no drive"),
            AtaError::NotAta => f.write_str("packet device, not an ATA disk"),
            AtaError::Timeout { command, status } => {
                write!(f, "command {command:#04x} timed out (status {status:#04x})")
            }
            AtaError::Failed { command, status, error } => {
                write!(f, "command {command:#04x} failed: status {status:#04x}, error {error:#04x}")?;
                for (bit, name) in ERROR_BITS {
                    if error & bit != 0 {
                        write!(f, " {name}")?;
                    }
                }
                Ok(())
            }
            AtaError::Protocol { command, status } => {
                write!(f, "command {command:#04x}: unexpected data request state (status {status:#04x})")
            }
            AtaError::Dma { command, status } => {
                write!(f, "command {command:#04x}: bus-master DMA error (bus-master status {status:#04x})")
            }
            AtaError::HostBus { command, interrupt_status } => {
                write!(f, "command {command:#04x}: AHCI host bus adapter error (port interrupt status {interrupt_status:#010x})")
            }
            AtaError::OutOfRange { lba, sectors } => write!(f, "{sectors} sectors at {lba} out of range"),
            AtaError::Unsupported(what) => write!(f, "unsupported drive: {what}"),
        }
    }
}

const ERROR_BITS: [(u8, &str); 8] = [
    (registers::error::AMNF, "AMNF"),
    (registers::error::TK0NF, "TK0NF"),
    (registers::error::ABRT, "ABRT"),
    (registers::error::MCR, "MCR"),
    (registers::error::IDNF, "IDNF"),
    (registers::error::MC, "MC"),
    (registers::error::UNC, "UNC"),
    (registers::error::ICRC, "ICRC"),
];

impl From<AtaError> for Error {
    fn from(error: AtaError) -> Error {
        match error {
            AtaError::NoDrive | AtaError::NotAta | AtaError::Unsupported(_) => D_NO_SUCH_DEVICE,
            AtaError::OutOfRange { .. } => D_INVALID_RECNUM,
            AtaError::Timeout { .. }
            | AtaError::Failed { .. }
            | AtaError::Protocol { .. }
            | AtaError::Dma { .. }
            | AtaError::HostBus { .. } => D_IO_ERROR,
        }
    }
}

/// How data moves between memory and the drives, as `--ata-transfer=MODE` asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransferMode {
    /// The fastest the drive and controller offer.
    #[default]
    Auto,
    /// One sector per data request (READ/WRITE SECTORS).
    Pio,
    /// A block of sectors per data request (READ/WRITE MULTIPLE), single sectors on a drive
    /// without it.
    Multiple,
    /// Bus-master DMA (READ/WRITE DMA); an error where the channel or drive has none.
    Dma,
    /// The first AHCI controller's disk instead of the IDE channel (see `native`).
    Ahci,
}

impl TransferMode {
    /// The spellings `parse` accepts, for messages.
    pub const NAMES: &'static str = "auto, pio, multiple, dma or ahci";

    /// Each mode's word, as the option spells it.
    const WORDS: [(TransferMode, &'static str); 5] = [
        (TransferMode::Auto, "auto"),
        (TransferMode::Pio, "pio"),
        (TransferMode::Multiple, "multiple"),
        (TransferMode::Dma, "dma"),
        (TransferMode::Ahci, "ahci"),
    ];

    pub fn parse(word: &[u8]) -> Option<TransferMode> {
        Self::WORDS.iter().find(|(_, name)| name.as_bytes() == word).map(|&(mode, _)| mode)
    }

    /// The word `parse` takes.
    pub fn name(self) -> &'static str {
        Self::WORDS.iter().find(|&&(mode, _)| mode == self).map_or("auto", |&(_, name)| name)
    }
}

/// How a command's end is awaited, as `--completion=MODE` asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Completion {
    /// By the controller's interrupt, through the kernel's `irq` device, where the kernel has
    /// one and the line can be had; by polling elsewhere (each case said on the log).
    #[default]
    Interrupt,
    /// By polling the controller's status, the interrupt line left alone: the processor spins
    /// for as long as the drive works (kept to show what interrupts save, `cargo xtask bench
    /// slow`).
    Poll,
}

impl Completion {
    /// The spellings `parse` accepts, for messages.
    pub const NAMES: &'static str = "interrupt or poll";

    pub fn parse(word: &[u8]) -> Option<Completion> {
        match word {
            b"interrupt" => Some(Completion::Interrupt),
            b"poll" => Some(Completion::Poll),
            _ => None,
        }
    }

    /// The word `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            Completion::Interrupt => "interrupt",
            Completion::Poll => "poll",
        }
    }
}

/// One channel's drives, master and slave, under their names (`wd0` and `wd1` on the primary
/// channel).
pub struct AtaBackend<R, C> {
    channel: Arc<Mutex<Channel<R, C>>>,
    /// The master's and the slave's names (none for a position without a disk).
    names: [Option<&'static [u8]>; 2],
    mode: TransferMode,
    /// Where DMA reads get reply memory the device fills directly, if the channel has DMA.
    direct: Option<Arc<dyn DirectMemory>>,
}

impl<R: Registers, C: Clock> AtaBackend<R, C> {
    /// The channel's drives as `wd0` and `wd1`, moving data as `mode` asks.
    pub fn new(channel: Channel<R, C>, mode: TransferMode) -> Self {
        Self::named(channel, [Some(b"wd0"), Some(b"wd1")], mode)
    }

    /// The channel's master and slave drives under `names` (see [`units::attach_names`]).
    pub fn named(channel: Channel<R, C>, names: [Option<&'static [u8]>; 2], mode: TransferMode) -> Self {
        AtaBackend { channel: Arc::new(Mutex::new(channel)), names, mode, direct: None }
    }

    /// DMA reads of whole records fill reply memory from `direct` without a copy.
    pub fn with_direct_memory(self, direct: Arc<dyn DirectMemory>) -> Self {
        AtaBackend { direct: Some(direct), ..self }
    }
}

impl<R: Registers + Send, C: Clock + Send> Backend for AtaBackend<R, C> {
    type Disk = AtaDisk<R, C>;

    fn open(&self, name: &[u8], _access: Access) -> Result<AtaDisk<R, C>, Error> {
        let drive = match self.names.iter().position(|n| *n == Some(name)) {
            Some(0) => Drive::Master,
            Some(_) => Drive::Slave,
            None => return Err(D_NO_SUCH_DEVICE),
        };
        let (identity, transfer) = {
            let mut channel = self.channel.lock();
            let identity = channel.identify(drive).inspect_err(|error| {
                log::warn!("ata: {}: IDENTIFY: {error}", display_name(name));
            })?;
            let transfer = channel.set_up(drive, &identity, self.mode).inspect_err(|error| {
                log::warn!("ata: {}: setting up {:?} transfers: {error}", display_name(name), self.mode);
            })?;
            (identity, transfer)
        };
        let geometry = Geometry::new(SECTOR as u32, identity.sectors).ok_or(D_NO_SUCH_DEVICE)?;
        log::info!(
            "ata: {}: {:?}, {} sectors, lba48 {}, write cache {}, flush {:#04x}, transfer {transfer:?}",
            display_name(name),
            identity.model,
            identity.sectors,
            identity.lba48,
            identity.write_cache_enabled,
            if identity.lba48 && identity.flush_cache_ext { 0xEA } else { 0xE7 },
        );
        let direct = self.direct.clone().filter(|_| transfer == Transfer::Dma);
        Ok(AtaDisk { channel: self.channel.clone(), drive, identity, transfer, geometry, direct })
    }
}

fn display_name(name: &[u8]) -> &str {
    core::str::from_utf8(name).unwrap_or("?")
}

/// Writes at least this long go straight from their pages: wiring them costs three kernel
/// calls, which copying a smaller write into the bounce buffer beats (measured under TCG:
/// 4–64 KiB writes 20–45 % slower wired, 256 KiB even, 1 MiB 4–10× faster).
pub const DIRECT_WRITE_MIN: usize = 256 << 10;

/// How a transfer over a request's own pages failed: whether the controller is known to have
/// stopped touching them.
pub enum Stopped {
    /// Stopped: the memory may be released.
    Yes(Error),
    /// It did not confirm it stopped (an AHCI port that never cleared PxCMD.CR): the memory is
    /// never released nor sent, as the controller may still write it.
    Unconfirmed(Error),
}

/// The one rule of a DMA read out of line: straight into fresh reply memory when `direct` gives
/// wired pages below `reach` for it (`transfer` fills them, and runs its second argument while
/// the device moves the data: the next read's memory is made then), otherwise through the
/// disk's bounce buffer into zero-filled memory ([`read_into_fresh`](super::read_into_fresh)).
/// Memory a failed read touched is released, never sent.
pub fn read_straight<D: Disk + ?Sized>(
    disk: &D,
    direct: Option<&dyn DirectMemory>,
    reach: u64,
    record: u64,
    len: usize,
    transfer: impl FnOnce(Pages<'_>, &dyn Fn()) -> Result<(), Stopped>,
) -> Result<OolMemory, Error> {
    let Some(direct) = direct else { return super::read_into_fresh(disk, record, len) };
    let Some(wired) = direct.fresh(len) else { return super::read_into_fresh(disk, record, len) };
    let Some(pages) = Pages::below(reach, &wired.pages, wired.offset) else { return super::read_into_fresh(disk, record, len) };
    match transfer(pages, &|| direct.prepare(len)) {
        Ok(()) => Ok(direct.filled(wired)),
        Err(stopped) => Err(settle(wired, stopped)),
    }
}

/// The one rule of a DMA write out of line: a write of [`DIRECT_WRITE_MIN`] or more goes
/// straight from its received pages (`transfer` of the pages and the length) when `direct` can
/// wire them in place below `reach`; otherwise through the disk's bounce buffer.
pub fn write_straight<D: Disk + ?Sized>(
    disk: &D,
    direct: Option<&dyn DirectMemory>,
    reach: u64,
    record: u64,
    data: OolMemory,
    transfer: impl FnOnce(Pages<'_>, usize) -> Result<(), Stopped>,
) -> Result<(), Error> {
    let Some(direct) = direct.filter(|_| data.len() >= DIRECT_WRITE_MIN) else { return disk.write(record, data.as_slice()) };
    let wired = match direct.pin(data) {
        Ok(wired) => wired,
        Err(data) => return disk.write(record, data.as_slice()),
    };
    let Some(pages) = Pages::below(reach, &wired.pages, wired.offset) else { return disk.write(record, wired.memory.as_slice()) };
    let len = wired.memory.len();
    transfer(pages, len).map_err(|stopped| settle(wired, stopped))
}

/// Releases the memory of a failed transfer unless the controller may still reach it.
fn settle(wired: Wired, stopped: Stopped) -> Error {
    match stopped {
        Stopped::Yes(error) => error,
        Stopped::Unconfirmed(error) => {
            log::error!("dma: the controller did not stop: {} bytes of request memory kept from reuse", wired.memory.len());
            core::mem::forget(wired);
            error
        }
    }
}

/// An identified drive; requests take the channel in turn.
pub struct AtaDisk<R, C> {
    channel: Arc<Mutex<Channel<R, C>>>,
    drive: Drive,
    identity: Identity,
    transfer: Transfer,
    geometry: Geometry,
    /// Reply memory for DMA reads, when the drive moves data by DMA.
    direct: Option<Arc<dyn DirectMemory>>,
}

impl<R, C> AtaDisk<R, C> {
    fn report(&self, what: &str, result: Result<(), AtaError>) -> Result<(), Error> {
        result.map_err(|error| {
            log::warn!("ata: {:?}: {what}: {error}", self.drive);
            Error::from(error)
        })
    }
}

impl<R: Registers + Send, C: Clock + Send> Disk for AtaDisk<R, C> {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        let result = self.channel.lock().read(self.drive, &self.identity, self.transfer, record, buf);
        self.report("read", result)
    }

    /// [`read_straight`]: the bus master's PRDs reach below 4 GiB; stopping it is one register
    /// write, so it is stopped whatever happened.
    fn read_out_of_line(&self, record: u64, len: usize) -> Result<OolMemory, Error> {
        read_straight(self, self.direct.as_deref(), DMA_LIMIT, record, len, |pages, meanwhile| {
            let result = self.channel.lock().read_direct(self.drive, &self.identity, record, len, pages, meanwhile);
            self.report("read", result).map_err(Stopped::Yes)
        })
    }

    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        let result = self.channel.lock().write(self.drive, &self.identity, self.transfer, record, data);
        self.report("write", result)
    }

    /// [`write_straight`], as [`AtaDisk::read_out_of_line`].
    fn write_out_of_line(&self, record: u64, data: OolMemory) -> Result<(), Error> {
        write_straight(self, self.direct.as_deref(), DMA_LIMIT, record, data, |pages, len| {
            let result = self.channel.lock().write_direct(self.drive, &self.identity, record, len, pages);
            self.report("write", result).map_err(Stopped::Yes)
        })
    }

    fn flush(&self) -> Result<(), Error> {
        let result = self.channel.lock().flush(self.drive, &self.identity);
        self.report("flush", result)
    }
}

#[cfg(test)]
mod tests {
    use super::sim::{Faults, SimChannel, SimDrive, StepClock};
    use super::*;
    use crate::device::mode::{READ, WRITE};
    use crate::flush::Waiter;
    use crate::server::{Opened, Server};
    use std::vec;

    /// Direct memory that counts the writes it is asked to pin, and pins none.
    struct Pins(core::sync::atomic::AtomicUsize);

    impl DirectMemory for Pins {
        fn fresh(&self, _len: usize) -> Option<dma::Wired> {
            None
        }
        fn prepare(&self, _len: usize) {}
        fn filled(&self, wired: dma::Wired) -> OolMemory {
            wired.memory
        }
        fn pin(&self, data: OolMemory) -> Result<dma::Wired, OolMemory> {
            self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            Err(data)
        }
    }

    /// Writes of 256 KiB or more go straight from their pages (docs/design.md), stated as a
    /// number: a sector below, exactly 256 KiB, a sector above.
    #[test]
    fn writes_of_256_kib_or_more_go_straight_from_their_pages() {
        use crate::backend::memory::MemoryBackend;
        use crate::backend::{Backend, Geometry};
        let mut backend = MemoryBackend::default();
        let memory = backend.add(b"wd0", Geometry::new(512, 1024).unwrap()).unwrap();
        let disk = backend.open(b"wd0", crate::device::Access::from_mode(3)).unwrap();
        for (len, straight) in [((256 << 10) - 512, 0), (256 << 10, 1), ((256 << 10) + 512, 1)] {
            let pins = Pins(Default::default());
            let mut data = OolMemory::new(len).unwrap();
            data.as_mut_slice().fill(len as u8 ^ 0x5a);
            let written = write_straight(&disk, Some(&pins), u64::MAX, 0, data, |_, _| unreachable!("nothing was pinned"));
            assert_eq!(written, Ok(()), "{len} bytes");
            assert_eq!(pins.0.load(core::sync::atomic::Ordering::Relaxed), straight, "{len} bytes: pinned");
            assert!(memory.contents()[..len].iter().all(|&b| b == len as u8 ^ 0x5a), "{len} bytes written through the bounce path");
        }
    }

    struct Answer<'a>(&'a core::cell::Cell<Option<Result<(), Error>>>);
    impl Waiter for Answer<'_> {
        fn answer(self, result: Result<(), Error>) {
            self.0.set(Some(result));
        }
    }

    fn backend(master: SimDrive) -> (AtaBackend<SimChannel, StepClock>, SimChannel) {
        let sim = SimChannel::new(Some(master), None);
        let timeouts = Timeouts { command: 1000, flush: 1000 };
        (AtaBackend::new(Channel::new(sim.clone(), StepClock::new(1), timeouts), TransferMode::Auto), sim)
    }

    #[test]
    fn wd0_is_the_master_and_other_names_are_not_ours() {
        let (backend, _) = backend(SimDrive::new(4096, true));
        let rw = Access { read: true, write: true };
        assert_eq!(backend.open(b"wd0", rw).map(|disk| disk.geometry()).ok(), Geometry::new(512, 4096));
        assert_eq!(backend.open(b"wd1", rw).err(), Some(D_NO_SUCH_DEVICE), "no slave");
        assert_eq!(backend.open(b"console", rw).err(), Some(D_NO_SUCH_DEVICE));
        assert_eq!(backend.open(b"wd00", rw).err(), Some(D_NO_SUCH_DEVICE));
    }

    /// The secondary channel's master is `wd2`, as the Hurd's rumpdisk names it.
    #[test]
    fn a_secondary_channel_serves_wd2_and_not_the_primary_names() {
        let sim = SimChannel::new(Some(SimDrive::new(4096, true)), None);
        let timeouts = Timeouts { command: 1000, flush: 1000 };
        let channel = Channel::new(sim, StepClock::new(1), timeouts);
        let backend = AtaBackend::named(channel, [Some(b"wd2"), Some(b"wd3")], TransferMode::Auto);
        let rw = Access { read: true, write: true };
        assert_eq!(backend.open(b"wd2", rw).map(|disk| disk.geometry()).ok(), Geometry::new(512, 4096));
        assert_eq!(backend.open(b"wd0", rw).err(), Some(D_NO_SUCH_DEVICE));
        assert_eq!(backend.open(b"wd3", rw).err(), Some(D_NO_SUCH_DEVICE), "no slave");
    }

    #[test]
    fn the_server_flushes_an_ata_drive_and_reports_a_failed_flush() {
        let (backend, sim) = backend(SimDrive::new(4096, true));
        let server = Server::new(backend);
        let Opened::Local { device, .. } = server.open(b"wd0", READ | WRITE) else { panic!("wd0") };
        assert_eq!(server.write(device, 10, &[0x5A; 1024]), Ok(1024));
        let answer = core::cell::Cell::new(None);
        server.set_status(device, crate::device::flavor::DEV_FLUSH_CACHE, Answer(&answer));
        server.start_gathered_flushes();
        assert_eq!(answer.take(), Some(Ok(())));
        assert_eq!(sim.state().drives[0].as_ref().unwrap().durable[&11], [0x5A; SECTOR]);
        sim.state().drives[0].as_mut().unwrap().faults = Faults { abort: Some(registers::command::FLUSH_CACHE_EXT), ..Faults::default() };
        // A write since the last flush: the next request reaches the drive.
        assert_eq!(server.write(device, 12, &[0xA5; 512]), Ok(512));
        server.set_status(device, crate::device::flavor::DEV_FLUSH_CACHE, Answer(&answer));
        server.start_gathered_flushes();
        assert_eq!(answer.take(), Some(Err(D_IO_ERROR)));
        assert_eq!(server.read(device, 10, 512, |n| Ok(vec![0; n])), Ok(vec![0x5A; 512]));
    }

    /// A 3 TiB drive (sparse in the simulator): its size does not fit `device_get_status`'s
    /// word, so both size flavors are refused rather than clamped to 1 TiB; its records past
    /// 2³¹ are still read and written (LBA48, 64-bit record numbers).
    #[test]
    fn a_3_tib_drive_is_refused_its_size_but_served_past_2_to_the_31() {
        let sectors = 3u64 << 31; // 3 TiB of 512-byte sectors
        let (backend, _sim) = backend(SimDrive::new(sectors, true));
        let server = Server::<_, Answer<'_>>::new(backend);
        let Opened::Local { device, .. } = server.open(b"wd0", READ | WRITE) else { panic!("wd0") };
        assert_eq!(server.get_status(device, crate::device::flavor::DEV_GET_RECORDS, 2), Err(crate::device::D_INVALID_SIZE));
        assert_eq!(server.get_status(device, crate::device::flavor::DEV_GET_SIZE, 2), Err(crate::device::D_INVALID_SIZE));
        let far = sectors - 8;
        assert_eq!(server.write(device, far, &[0xA5; 1024]), Ok(1024));
        assert_eq!(server.read(device, far, 1024, |n| Ok(vec![0; n])), Ok(vec![0xA5; 1024]));
    }

    mod direct {
        use super::super::dma::{self, Ahead, BusMasterDma, TABLE_BYTES};
        use super::super::sim::{SimBusMaster, SimDirectMemory};
        use super::*;
        use crate::server::DeviceId;
        use alloc::boxed::Box;
        use mach::sim::Task;
        use std::vec::Vec;

        /// Where the bounce buffer (1 MiB) is.
        const BOUNCE: u64 = 0x10_0000;

        /// A DMA channel with `drive` as its master and its direct memory from `direct`.
        type SimServer = Server<AtaBackend<SimChannel, StepClock>, Answer<'static>>;

        fn dma_server<M: DirectMemory + 'static>(drive: SimDrive, direct: impl FnOnce(SimChannel) -> M) -> (SimServer, DeviceId, SimChannel, Arc<M>) {
            let sim = SimChannel::new(Some(drive), None);
            let engine = BusMasterDma::new(SimBusMaster(sim.clone()), sim.memory(0x1000, TABLE_BYTES), sim.memory(BOUNCE, 1 << 20)).unwrap();
            let timeouts = Timeouts { command: 1000, flush: 1000 };
            let channel = Channel::new(sim.clone(), StepClock::new(1), timeouts).with_dma(Box::new(engine));
            let direct = Arc::new(direct(sim.clone()));
            let backend = AtaBackend::new(channel, TransferMode::Auto).with_direct_memory(direct.clone());
            let server = Server::new(backend);
            let Opened::Local { device } = server.open(b"wd0", READ | WRITE) else { panic!("wd0") };
            (server, device, sim, direct)
        }

        fn pattern(bytes: usize, seed: u8) -> Vec<u8> {
            (0..bytes).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed)).collect()
        }

        /// The address of the first PRD of the last DMA command.
        fn first_prd(sim: &SimChannel) -> u64 {
            let mut entry = [0; 4];
            super::super::dma::DmaMemory::copy_out(&sim.memory_at(0x1000), 0, &mut entry);
            u64::from(u32::from_le_bytes(entry))
        }

        /// Out-of-line writes go from their received pages and reads into fresh pages, both
        /// scattered across 64 KiB boundaries, without the bounce buffer; a 28-bit drive's
        /// request is split at 256 sectors, its data starting inside their first page. Nothing
        /// is left allocated.
        #[test]
        fn out_of_line_requests_move_straight_between_the_drive_and_scattered_pages() {
            let task = Task::current();
            let before = task.stats();
            let (server, device, sim, direct) = dma_server(SimDrive::new(4096, true), |sim| SimDirectMemory::new(sim, 0x100_0000));
            let data = pattern(DIRECT_WRITE_MIN + 9 * SECTOR, 3);
            let sectors = (data.len() / SECTOR) as u64;
            assert_eq!(server.write_out_of_line(device, 100, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_ne!(first_prd(&sim), BOUNCE);
            let stored: Vec<u8> = (100..100 + sectors).flat_map(|n| sim.state().drives[0].as_ref().unwrap().sector(n)).collect();
            assert_eq!(stored, data);
            let read = server.read_out_of_line(device, 100, data.len() as u64).unwrap();
            assert_eq!(read.as_slice(), data);
            assert_ne!(first_prd(&sim), BOUNCE);
            assert_eq!(*direct.given.lock().unwrap(), 2, "both requests took direct pages");
            // A shorter write is copied: cheaper than wiring its pages.
            let short = &data[..DIRECT_WRITE_MIN - SECTOR];
            assert_eq!(server.write_out_of_line(device, 3000, OolMemory::copy_from(short).unwrap()), Ok(short.len()));
            assert_eq!(first_prd(&sim), BOUNCE);
            assert_eq!(*direct.given.lock().unwrap(), 2);
            drop((read, server));
            assert_eq!(task.stats(), before);

            let (server, device, sim, _) = dma_server(SimDrive::new(4096, false), |sim| {
                let mut direct = SimDirectMemory::new(sim, 0x100_0000);
                direct.pin_offset = 0x820; // received data start inside their first page
                direct
            });
            let data = pattern(600 * SECTOR, 5);
            assert_eq!(server.write_out_of_line(device, 7, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_eq!(server.read_out_of_line(device, 7, data.len() as u64).map(|read| read.as_slice() == data), Ok(true));
            let commands = sim.state().commands.clone();
            let count = |opcode| commands.iter().filter(|&&c| c == opcode).count();
            assert_eq!((count(registers::command::WRITE_DMA), count(registers::command::READ_DMA)), (3, 3));
        }

        /// Each read makes the next one's memory while the drive moves its data: a read of the
        /// same length takes it (one allocation a read after the first, not two); a read of
        /// another length gets memory of its own, and the spare is replaced meanwhile; nothing
        /// is kept when the server goes, and the data are the disk's every time.
        #[test]
        fn reads_take_the_memory_made_during_the_read_before() {
            let task = Task::current();
            let before = task.stats();
            let mut given = None;
            let (server, device, _, _) = dma_server(SimDrive::new(4096, true), |sim| {
                let memory = SimDirectMemory::new(sim, 0x100_0000);
                given = Some(memory.given.clone());
                Ahead::new(memory)
            });
            let given = given.unwrap();
            let data = pattern(16 * 4096, 4);
            assert_eq!(server.write(device, 0, &data), Ok(data.len()));
            let read = |bytes: usize| server.read_out_of_line(device, 0, bytes as u64).map(|read| read.as_slice() == &data[..bytes]);
            assert_eq!(read(8192), Ok(true));
            assert_eq!(*given.lock().unwrap(), 2, "its own memory, and the next read's");
            assert_eq!(read(8192), Ok(true));
            assert_eq!(read(8192), Ok(true));
            assert_eq!(*given.lock().unwrap(), 4, "one allocation a read");
            assert_eq!(read(4096), Ok(true));
            assert_eq!(*given.lock().unwrap(), 6, "another length: its own memory");
            assert_eq!(read(4096), Ok(true));
            assert_eq!(*given.lock().unwrap(), 7);
            let long = server.read_out_of_line(device, 0, (dma::AHEAD_MAX + 4096) as u64);
            assert_eq!(long.map(|read| read.as_slice()[..data.len()] == data), Ok(true));
            assert_eq!(*given.lock().unwrap(), 8, "nothing made ahead for a read that long");
            assert_eq!(read(4096), Ok(true));
            assert_eq!(*given.lock().unwrap(), 9, "the spare made for 4 KiB was kept");
            drop(server);
            assert_eq!(task.stats(), before);
        }

        /// A write past what the PRD table reaches, from pages scattered one by one with its
        /// data starting inside the first: each command's pages fit the table (a part not
        /// page-aligned touches one page more than its length).
        #[test]
        fn a_write_over_more_pages_than_the_table_holds_goes_in_commands_that_fit_it() {
            let (server, device, sim, _) = dma_server(SimDrive::new(1 << 14, true), |sim| {
                let mut direct = SimDirectMemory::new(sim, 0x100_0000);
                direct.run = 1;
                direct.pin_offset = 0x820;
                direct
            });
            let data = pattern((2 << 20) + 8192, 7);
            assert_eq!(server.write_out_of_line(device, 0, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_eq!(server.read(device, 0, data.len() as u64, |n| Ok(vec![0; n])), Ok(data));
            let commands = sim.state().commands.clone();
            assert_eq!(commands.iter().filter(|&&c| c == registers::command::WRITE_DMA_EXT).count(), 2);
        }

        /// A read the drive fails is an error: the fresh memory it partly filled is released,
        /// never handed to a reply.
        #[test]
        fn a_failed_direct_read_is_an_error_and_its_memory_is_released() {
            let task = Task::current();
            let before = task.stats();
            let mut drive = SimDrive::new(4096, true);
            drive.faults = Faults { media_error_at: Some((registers::command::READ_DMA_EXT, 9)), ..Faults::default() };
            let (server, device, _, direct) = dma_server(drive, |sim| SimDirectMemory::new(sim, 0x100_0000));
            assert_eq!(server.read_out_of_line(device, 0, 16 * 4096).err(), Some(D_IO_ERROR));
            assert_eq!(*direct.given.lock().unwrap(), 1);
            drop(server);
            assert_eq!(task.stats(), before);
        }

        /// Pages at or above 4 GiB, and a write whose pages cannot be wired, go through the
        /// bounce buffer, with the same data.
        #[test]
        fn pages_the_controller_cannot_reach_go_through_the_bounce_buffer() {
            let task = Task::current();
            let before = task.stats();
            let above = |sim| SimDirectMemory::new(sim, 0x1_0001_0000);
            let (server, device, sim, _) = dma_server(SimDrive::new(4096, true), above);
            let data = pattern(DIRECT_WRITE_MIN, 9);
            assert_eq!(server.write_out_of_line(device, 50, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_eq!(first_prd(&sim), BOUNCE);
            assert_eq!(server.read_out_of_line(device, 50, data.len() as u64).map(|read| read.as_slice() == data), Ok(true));
            assert_eq!(first_prd(&sim), BOUNCE);
            let refusing = |sim| {
                let mut direct = SimDirectMemory::new(sim, 0x100_0000);
                direct.refuse_pins = true;
                direct
            };
            let (server, device, sim, _) = dma_server(SimDrive::new(4096, true), refusing);
            assert_eq!(server.write_out_of_line(device, 1000, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_eq!(first_prd(&sim), BOUNCE);
            assert_eq!(server.read(device, 1000, data.len() as u64, |n| Ok(vec![0; n])), Ok(data));
            drop(server);
            assert_eq!(task.stats(), before);
        }
    }

    #[test]
    fn errors_name_their_cause() {
        let failed = AtaError::Failed { command: 0xEA, status: 0x41, error: 0x04 };
        assert_eq!(alloc::format!("{failed}"), "command 0xea failed: status 0x41, error 0x04 ABRT");
        assert_eq!(Error::from(failed), D_IO_ERROR);
        assert_eq!(Error::from(AtaError::OutOfRange { lba: 1, sectors: 1 }), D_INVALID_RECNUM);
    }
}
