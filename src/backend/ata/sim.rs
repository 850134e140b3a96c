//! A simulated legacy ATA channel for host tests: register semantics of a real drive (48-bit
//! "previous value" registers, BSY before results, DRQ per sector or per READ/WRITE MULTIPLE
//! block, data moved only while DRQ is up and exactly one block at a time), a volatile write
//! cache that only FLUSH CACHE makes durable, and injectable faults. Its bus master reads a PRD
//! table from simulated physical memory and moves a DMA command's data when started, failing
//! as a controller would on a table that does not describe the command's data exactly. With a
//! line of a simulated machine (`mach::sim::irq`), a drive whose interrupt is on (nIEN
//! clear) raises it as each command ends, BSY already clear.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use mach::irq::Interrupt;
use mach::ool::{OolMemory, PAGE_SIZE};
use mach::sim::irq::Machine;

use super::identify::tests::{identify_data, transfer_modes};
use super::dma::{bm, BusMaster, DirectMemory, DmaMemory, Wired};
use super::channel::Line;
use super::registers::{command, control, error, status, Reg, Registers, SECTOR};
use super::Clock;

/// Sparse sector contents: absent sectors read as zeros.
pub type Sectors = BTreeMap<u64, [u8; SECTOR]>;

/// A drive on the simulated channel.
pub struct SimDrive {
    pub sectors: u64,
    pub lba48: bool,
    pub flush_ext: bool,
    /// A packet (ATAPI) device: aborts IDENTIFY DEVICE and shows its signature.
    pub packet: bool,
    /// IDENTIFY's limit for SET MULTIPLE MODE (0: no multiple mode).
    pub multiple_max: u8,
    /// Sectors per data request of READ/WRITE MULTIPLE (0: not set).
    pub multiple: u8,
    /// IDENTIFY shows DMA support.
    pub dma: bool,
    /// What reads see.
    pub data: Sectors,
    /// What FLUSH CACHE made durable.
    pub durable: Sectors,
    pub faults: Faults,
}

impl SimDrive {
    pub fn new(sectors: u64, lba48: bool) -> SimDrive {
        SimDrive {
            sectors,
            lba48,
            flush_ext: lba48,
            packet: false,
            multiple_max: 16,
            multiple: 0,
            dma: true,
            data: Sectors::new(),
            durable: Sectors::new(),
            faults: Faults::default(),
        }
    }

    pub fn sector(&self, lba: u64) -> [u8; SECTOR] {
        self.data.get(&lba).copied().unwrap_or([0; SECTOR])
    }
}

/// Injected misbehaviour.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    /// This opcode ends with ERR/ABRT.
    pub abort: Option<u8>,
    /// This opcode fails with ERR/UNC when it reaches the given sector of its command.
    pub media_error_at: Option<(u8, usize)>,
    /// The drive never leaves BSY.
    pub stuck_busy: bool,
    /// This opcode ends with DF (device fault).
    pub device_fault: Option<u8>,
    /// The bus master fails every transfer on the bus (its ERROR bit; the drive aborts).
    pub bus_error: bool,
    /// DMA commands are accepted and never move data (the drive stays busy).
    pub stalled_dma: bool,
    /// After this opcode the drive stays busy for that many status reads.
    pub busy_for: Option<(u8, u32)>,
    /// Commands end without the drive's interrupt reaching the line.
    pub lost_interrupt: bool,
}

enum State {
    Idle,
    /// Sectors the host reads, `block` per data request; `next` is the index of the next sector
    /// in the command.
    DataIn { opcode: u8, buf: Vec<u8>, block: usize, next: usize },
    DataOut { opcode: u8, lba: u64, sectors: usize, block: usize, next: usize },
    /// A DMA command waiting for the bus master to start; the drive is busy meanwhile.
    Dma { opcode: u8, lba: u64, sectors: usize, to_memory: bool },
}

/// The channel's state, shared between the driver's register file and the test.
pub struct SimState {
    pub drives: [Option<SimDrive>; 2],
    /// Every opcode written to the command register, in order.
    pub commands: Vec<u8>,
    selected: usize,
    /// Task-file registers: `[current, previous]` for the 48-bit ones.
    count: [u8; 2],
    lba: [[u8; 2]; 3],
    device: u8,
    status: u8,
    error: u8,
    /// Status reads left that show BSY (a drive takes a moment after every step).
    busy_reads: u32,
    state: State,
    /// Physical memory by base address.
    memory: BTreeMap<u64, Vec<u8>>,
    /// Bus-master registers.
    bm_command: u8,
    bm_status: u8,
    bm_table: u32,
    /// The device control register (nIEN).
    control: u8,
    /// The machine and line the drive's interrupt goes to.
    line: Option<(Machine, u32)>,
}

/// Registers over a shared [`SimState`].
#[derive(Clone)]
pub struct SimChannel(pub Arc<Mutex<SimState>>);

impl SimChannel {
    pub fn new(master: Option<SimDrive>, slave: Option<SimDrive>) -> SimChannel {
        SimChannel(Arc::new(Mutex::new(SimState {
            drives: [master, slave],
            commands: Vec::new(),
            selected: 0,
            count: [0; 2],
            lba: [[0; 2]; 3],
            device: 0,
            status: status::DRDY,
            error: 0,
            busy_reads: 0,
            state: State::Idle,
            memory: BTreeMap::new(),
            bm_command: 0,
            bm_status: 0,
            bm_table: 0,
            control: control::NIEN,
            line: None,
        })))
    }

    /// The channel with its drives' interrupt wired to `line` of `machine`.
    pub fn with_line(self, machine: &Machine, line: u32) -> SimChannel {
        self.state().line = Some((machine.clone(), line));
        self
    }

    /// `len` bytes of simulated physical memory at `physical`, for the bus master.
    pub fn memory(&self, physical: u64, len: usize) -> SimMemory {
        let mut s = self.state();
        let overlaps = s.memory.iter().any(|(&base, region)| base < physical + len as u64 && physical < base + region.len() as u64);
        assert!(!overlaps, "simulated memory regions overlap");
        s.memory.insert(physical, std::vec![0; len]);
        SimMemory { sim: self.clone(), physical, len }
    }

    /// The simulated physical memory registered at `physical`.
    pub fn memory_at(&self, physical: u64) -> SimMemory {
        let len = self.state().memory[&physical].len();
        SimMemory { sim: self.clone(), physical, len }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.lock().unwrap()
    }
}

/// Busy status reads after each command and each sector.
const BUSY_READS: u32 = 3;

impl SimState {
    fn drive(&mut self) -> Option<&mut SimDrive> {
        self.drives[self.selected].as_mut()
    }

    fn status(&mut self) -> u8 {
        let Some(drive) = self.drives[self.selected].as_ref() else { return 0 };
        if drive.faults.stuck_busy {
            return status::BSY;
        }
        if matches!(self.state, State::Dma { .. }) {
            return status::BSY;
        }
        if self.busy_reads > 0 {
            self.busy_reads -= 1;
            return status::BSY;
        }
        self.status
    }

    /// The command ends: with the drive's interrupt on, at once (BSY clear) and raising it.
    fn end(&mut self, status_bits: u8, error_bits: u8) {
        self.state = State::Idle;
        self.status = status::DRDY | status_bits;
        self.error = error_bits;
        if self.control & control::NIEN == 0 {
            self.busy_reads = 0;
            let lost = self.drives[self.selected].as_ref().is_some_and(|drive| drive.faults.lost_interrupt);
            if let Some((machine, line)) = self.line.as_ref().filter(|_| !lost) {
                machine.raise(*line);
            }
        }
    }

    fn lba48(&self) -> u64 {
        let byte = |reg: usize, half: usize| u64::from(self.lba[reg][half]);
        byte(0, 0) | byte(1, 0) << 8 | byte(2, 0) << 16 | byte(0, 1) << 24 | byte(1, 1) << 32 | byte(2, 1) << 40
    }

    fn lba28(&self) -> u64 {
        u64::from(self.lba[0][0]) | u64::from(self.lba[1][0]) << 8 | u64::from(self.lba[2][0]) << 16 | u64::from(self.device & 0x0F) << 24
    }

    fn execute(&mut self, opcode: u8) {
        assert!(self.bm_command & bm::START == 0, "a command issued with the bus master running");
        self.commands.push(opcode);
        self.busy_reads = BUSY_READS;
        let Some(drive) = self.drive() else { return };
        let faults = drive.faults;
        let lba48_drive = drive.lba48;
        if let Some((_, reads)) = faults.busy_for.filter(|&(busy_opcode, _)| busy_opcode == opcode) {
            self.busy_reads = reads;
        }
        if faults.abort == Some(opcode) {
            return self.end(status::ERR, error::ABRT);
        }
        if faults.device_fault == Some(opcode) {
            return self.end(status::DF | status::ERR, 0);
        }
        let ext = matches!(
            opcode,
            command::READ_SECTORS_EXT
                | command::WRITE_SECTORS_EXT
                | command::READ_MULTIPLE_EXT
                | command::WRITE_MULTIPLE_EXT
                | command::READ_DMA_EXT
                | command::WRITE_DMA_EXT
                | command::FLUSH_CACHE_EXT
        );
        if ext && !lba48_drive {
            return self.end(status::ERR, error::ABRT);
        }
        let (lba, sectors) = if ext {
            let count = usize::from(self.count[0]) | usize::from(self.count[1]) << 8;
            (self.lba48(), if count == 0 { 65536 } else { count })
        } else {
            (self.lba28(), if self.count[0] == 0 { 256 } else { usize::from(self.count[0]) })
        };
        let drive = self.drives[self.selected].as_mut().expect("selected drive present");
        let in_range = lba.checked_add(sectors as u64).is_some_and(|end| end <= drive.sectors);
        let multiple_command = matches!(
            opcode,
            command::READ_MULTIPLE | command::READ_MULTIPLE_EXT | command::WRITE_MULTIPLE | command::WRITE_MULTIPLE_EXT
        );
        // READ/WRITE MULTIPLE before a successful SET MULTIPLE MODE is aborted.
        let block = if multiple_command { usize::from(drive.multiple) } else { 1 };
        match opcode {
            _ if block == 0 => self.end(status::ERR, error::ABRT),
            command::SET_MULTIPLE_MODE => {
                let count = self.count[0];
                let valid = count == 0 || (count.is_power_of_two() && count <= drive.multiple_max);
                if valid {
                    drive.multiple = count;
                    self.end(0, 0);
                } else {
                    self.end(status::ERR, error::ABRT);
                }
            }
            command::IDENTIFY_DEVICE if drive.packet => {
                self.lba[1][0] = 0x14;
                self.lba[2][0] = 0xEB;
                self.end(status::ERR, error::ABRT);
            }
            command::IDENTIFY_DEVICE => {
                let data = identify_data(drive.sectors, drive.lba48, true, drive.flush_ext);
                let data = transfer_modes(data, drive.multiple_max, drive.dma);
                self.state = State::DataIn { opcode, buf: data.to_vec(), block: 1, next: 0 };
                self.status = status::DRDY | status::DRQ;
            }
            command::READ_SECTORS | command::READ_SECTORS_EXT | command::READ_MULTIPLE | command::READ_MULTIPLE_EXT if in_range => {
                let buf = (lba..lba + sectors as u64).flat_map(|n| drive.sector(n)).collect();
                self.state = State::DataIn { opcode, buf, block, next: 0 };
                self.status = status::DRDY | status::DRQ;
                self.fail_if_media_error(opcode, 0..block.min(sectors));
            }
            command::WRITE_SECTORS | command::WRITE_SECTORS_EXT | command::WRITE_MULTIPLE | command::WRITE_MULTIPLE_EXT if in_range => {
                self.state = State::DataOut { opcode, lba, sectors, block, next: 0 };
                self.status = status::DRDY | status::DRQ;
                self.fail_if_media_error(opcode, 0..block.min(sectors));
            }
            command::READ_DMA | command::READ_DMA_EXT | command::WRITE_DMA | command::WRITE_DMA_EXT if in_range && drive.dma => {
                let to_memory = matches!(opcode, command::READ_DMA | command::READ_DMA_EXT);
                self.state = State::Dma { opcode, lba, sectors, to_memory };
            }
            command::FLUSH_CACHE | command::FLUSH_CACHE_EXT => {
                drive.durable = drive.data.clone();
                self.end(0, 0);
            }
            command::READ_SECTORS
            | command::READ_SECTORS_EXT
            | command::READ_MULTIPLE
            | command::READ_MULTIPLE_EXT
            | command::WRITE_SECTORS
            | command::WRITE_SECTORS_EXT
            | command::WRITE_MULTIPLE
            | command::WRITE_MULTIPLE_EXT
            | command::READ_DMA
            | command::READ_DMA_EXT
            | command::WRITE_DMA
            | command::WRITE_DMA_EXT
                if !in_range =>
            {
                self.end(status::ERR, error::IDNF)
            }
            _ => self.end(status::ERR, error::ABRT),
        }
    }

    /// Whether a DMA command waits for its data, the bus master started.
    pub fn dma_running(&self) -> bool {
        matches!(self.state, State::Dma { .. }) && self.engine_running()
    }

    /// Lets a transfer held by [`Faults::stalled_dma`] go on: it ends now, as a slow drive's
    /// would, with its interrupt.
    pub fn release_stalled_dma(&mut self) {
        if let Some(drive) = self.drives[self.selected].as_mut() {
            drive.faults.stalled_dma = false;
        }
        if self.dma_running() {
            self.run_dma();
        }
    }

    /// Whether the bus master's START bit is set.
    pub fn engine_running(&self) -> bool {
        self.bm_command & bm::START != 0
    }

    /// The bus master was started: runs the pending DMA command through the PRD table, as far as
    /// the data go or a fault stops it, then stops (ACTIVE clear, INTERRUPT set).
    fn run_dma(&mut self) {
        self.bm_status |= bm::ACTIVE;
        let State::Dma { opcode, lba, sectors, to_memory } = self.state else { return };
        let faults = self.drives[self.selected].as_ref().map(|d| d.faults).unwrap_or_default();
        if faults.stalled_dma {
            return; // the drive never asks for the data: the engine stays active
        }
        let regions = match self.prd_regions() {
            Ok(regions) if regions.iter().map(|r| r.1).sum::<usize>() == sectors * SECTOR => regions,
            // A table that does not describe the data exactly: undefined on real hardware.
            _ => return self.end_dma(bm::ERROR, status::ERR, error::ABRT),
        };
        if faults.bus_error || (self.bm_command & bm::TO_MEMORY != 0) != to_memory {
            return self.end_dma(bm::ERROR, status::ERR, error::ABRT);
        }
        let failing = faults.media_error_at.filter(|(op, _)| *op == opcode).map(|(_, sector)| sector);
        let moved = failing.unwrap_or(sectors).min(sectors);
        let mut bytes = std::vec![0; moved * SECTOR];
        let drive = self.drives[self.selected].as_mut().expect("selected drive");
        if to_memory {
            bytes = (lba..lba + moved as u64).flat_map(|n| drive.sector(n)).collect();
        }
        let mut offset = 0;
        for (address, len) in regions {
            let len = len.min(bytes.len() - offset);
            let (base, region) = self.memory.range_mut(..=address).next_back().expect("checked by prd_regions");
            let at = (address - base) as usize;
            if to_memory {
                region[at..at + len].copy_from_slice(&bytes[offset..offset + len]);
            } else {
                bytes[offset..offset + len].copy_from_slice(&region[at..at + len]);
            }
            offset += len;
        }
        if !to_memory {
            let drive = self.drives[self.selected].as_mut().expect("selected drive");
            for (i, sector) in bytes.chunks_exact(SECTOR).enumerate() {
                drive.data.insert(lba + i as u64, sector.try_into().expect("whole sectors"));
            }
        }
        match failing {
            Some(_) => self.end_dma(0, status::ERR, error::UNC),
            None => self.end_dma(0, 0, 0),
        }
    }

    fn end_dma(&mut self, bm_bits: u8, status_bits: u8, error_bits: u8) {
        self.bm_status = (self.bm_status & !bm::ACTIVE) | bm::INTERRUPT | bm_bits;
        self.busy_reads = BUSY_READS;
        self.end(status_bits, error_bits);
    }

    /// The PRD table's regions `(physical address, bytes)`; an error for an entry that crosses
    /// a 64 KiB boundary or lies outside memory, or a table without an end.
    fn prd_regions(&self) -> Result<Vec<(u64, usize)>, ()> {
        let mut regions = Vec::new();
        let mut entry_at = u64::from(self.bm_table);
        loop {
            let mut entry = [0u8; 8];
            self.read_memory(entry_at, &mut entry)?;
            let address = u64::from(u32::from_le_bytes(entry[..4].try_into().unwrap()));
            let count = match u16::from_le_bytes([entry[4], entry[5]]) {
                0 => 1 << 16,
                n => usize::from(n),
            };
            if address >> 16 != (address + count as u64 - 1) >> 16 {
                return Err(());
            }
            self.read_memory(address, &mut std::vec![0; count])?;
            regions.push((address, count));
            if u16::from_le_bytes([entry[6], entry[7]]) & 0x8000 != 0 {
                return Ok(regions);
            }
            entry_at += 8;
            if regions.len() > 8192 {
                return Err(());
            }
        }
    }

    fn read_memory(&self, address: u64, buf: &mut [u8]) -> Result<(), ()> {
        let (base, region) = self.memory.range(..=address).next_back().ok_or(())?;
        let at = (address - base) as usize;
        let bytes = region.get(at..at + buf.len()).ok_or(())?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    /// Ends the command with UNC if the injected media error lies in the data request's `block`
    /// of sectors.
    fn fail_if_media_error(&mut self, opcode: u8, block: Range<usize>) {
        let faults = self.drives[self.selected].as_ref().map(|d| d.faults).unwrap_or_default();
        if faults.media_error_at.is_some_and(|(op, sector)| op == opcode && block.contains(&sector)) {
            self.end(status::ERR, error::UNC);
        }
    }

    /// Checks that the host moves data only as a drive allows: while DRQ is up and the drive is
    /// not busy, exactly the data request's block.
    fn check_data_request(&self, bytes: usize, block: usize, next: usize, sectors: usize) {
        assert!(self.status & status::DRQ != 0, "data moved without DRQ");
        assert!(self.busy_reads == 0, "data moved while the drive is busy");
        let expected = block.min(sectors - next) * SECTOR;
        assert_eq!(bytes, expected, "a data request moves one block of {block} sectors");
    }
}

impl Registers for SimChannel {
    fn read(&mut self, reg: Reg) -> u8 {
        let mut s = self.state();
        match reg {
            Reg::ErrorFeatures => s.error,
            Reg::SectorCount => s.count[0],
            Reg::LbaLow => s.lba[0][0],
            // After an aborted IDENTIFY, a packet device shows its signature here.
            Reg::LbaMid => s.lba[1][0],
            Reg::LbaHigh => s.lba[2][0],
            Reg::Device => s.device,
            Reg::StatusCommand => s.status(),
        }
    }

    fn write(&mut self, reg: Reg, value: u8) {
        let mut s = self.state();
        let shift = |pair: &mut [u8; 2]| *pair = [value, pair[0]];
        match reg {
            Reg::ErrorFeatures => {}
            Reg::SectorCount => shift(&mut s.count),
            Reg::LbaLow => shift(&mut s.lba[0]),
            Reg::LbaMid => shift(&mut s.lba[1]),
            Reg::LbaHigh => shift(&mut s.lba[2]),
            Reg::Device => {
                s.device = value;
                s.selected = usize::from(value & 0x10 != 0);
            }
            Reg::StatusCommand => s.execute(value),
        }
    }

    fn alt_status(&mut self) -> u8 {
        self.state().status()
    }

    fn set_control(&mut self, value: u8) {
        self.state().control = value;
        if value & control::SRST != 0 {
            let mut s = self.state();
            s.end(0, 0);
            s.busy_reads = BUSY_READS;
        }
    }

    fn read_block(&mut self, data: &mut [u8]) {
        let mut s = self.state();
        let State::DataIn { opcode, buf, block, next } = &s.state else { panic!("data read without a data-in command") };
        let (opcode, block, next, sectors) = (*opcode, *block, *next, buf.len() / SECTOR);
        s.check_data_request(data.len(), block, next, sectors);
        let State::DataIn { buf, next: next_field, .. } = &mut s.state else { unreachable!() };
        data.copy_from_slice(&buf[next * SECTOR..][..data.len()]);
        let next = next + data.len() / SECTOR;
        *next_field = next;
        s.busy_reads = BUSY_READS;
        if next == sectors {
            s.end(0, 0);
        } else {
            s.fail_if_media_error(opcode, next..next + block);
        }
    }

    fn write_block(&mut self, data: &[u8]) {
        let mut s = self.state();
        let State::DataOut { opcode, lba, sectors, block, next } = s.state else { panic!("data written without a data-out command") };
        s.check_data_request(data.len(), block, next, sectors);
        let selected = s.selected;
        let drive = s.drives[selected].as_mut().expect("selected drive");
        for (i, sector) in data.chunks_exact(SECTOR).enumerate() {
            drive.data.insert(lba + (next + i) as u64, sector.try_into().expect("whole sectors"));
        }
        let next = next + data.len() / SECTOR;
        s.busy_reads = BUSY_READS;
        if next == sectors {
            s.end(0, 0);
        } else {
            s.state = State::DataOut { opcode, lba, sectors, block, next };
            s.fail_if_media_error(opcode, next..next + block);
        }
    }
}

/// The simulated channel's bus master.
pub struct SimBusMaster(pub SimChannel);

impl BusMaster for SimBusMaster {
    fn command(&mut self, value: u8) {
        let mut s = self.0.state();
        let starting = value & bm::START != 0 && s.bm_command & bm::START == 0;
        s.bm_command = value;
        if starting {
            s.run_dma();
        }
    }

    fn status(&mut self) -> u8 {
        self.0.state().bm_status
    }

    fn set_status(&mut self, value: u8) {
        let mut s = self.0.state();
        s.bm_status &= !(value & (bm::ERROR | bm::INTERRUPT));
    }

    fn set_table(&mut self, physical: u32) {
        self.0.state().bm_table = physical;
    }
}

/// A region of the simulated physical memory.
pub struct SimMemory {
    sim: SimChannel,
    physical: u64,
    len: usize,
}

impl DmaMemory for SimMemory {
    fn physical(&self) -> u64 {
        self.physical
    }

    fn size(&self) -> usize {
        self.len
    }

    fn copy_in(&mut self, offset: usize, data: &[u8]) {
        self.sim.state().memory.get_mut(&self.physical).expect("allocated")[offset..offset + data.len()].copy_from_slice(data);
    }

    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.sim.state().memory[&self.physical][offset..offset + buf.len()]);
    }
}

/// Simulated physical memory a simulated controller moves data in and out of (the IDE channel's
/// bus master, the AHCI HBA).
pub trait SimPhysical: Send + Sync {
    /// Registers `len` bytes at `physical`, `data` at their start and zeros after.
    fn place(&self, physical: u64, len: usize, data: &[u8]);
    /// Copies out the bytes at `physical`.
    fn read(&self, physical: u64, buf: &mut [u8]);
}

impl SimPhysical for SimChannel {
    fn place(&self, physical: u64, len: usize, data: &[u8]) {
        self.memory(physical, len).copy_in(0, data);
    }

    fn read(&self, physical: u64, buf: &mut [u8]) {
        let state = self.state();
        let (base, region) = state.memory.range(..=physical).next_back().expect("simulated memory");
        let at = (physical - base) as usize;
        buf.copy_from_slice(&region[at..at + buf.len()]);
    }
}

/// Direct memory over the simulated physical memory: the pages of each request come in runs of
/// [`SimDirectMemory::run`] (three unless set) physically consecutive pages with a page's gap
/// between runs, the first run across a
/// 64 KiB boundary. What the device wrote reaches the task's memory in [`DirectMemory::filled`]
/// (on a machine they are the same bytes).
pub struct SimDirectMemory<P = SimChannel> {
    sim: P,
    /// Where the next request's pages start.
    next: Mutex<u64>,
    /// Pin no write's pages (as when the kernel refuses to wire them).
    pub refuse_pins: bool,
    /// Where in its first page a pinned write's data start (the sender's offset in the page).
    pub pin_offset: usize,
    /// Requests given pages, fresh and pinned (shared, to count through a wrapper).
    pub given: Arc<Mutex<usize>>,
    /// Physically consecutive pages in one run.
    pub run: usize,
}

impl<P: SimPhysical> SimDirectMemory<P> {
    /// Pages from 2 pages below the 64 KiB boundary at `first_boundary` on.
    pub fn new(sim: P, first_boundary: u64) -> SimDirectMemory<P> {
        let next = Mutex::new(first_boundary - 2 * PAGE_SIZE as u64);
        SimDirectMemory { sim, next, refuse_pins: false, pin_offset: 0, given: Arc::new(Mutex::new(0)), run: 3 }
    }

    /// Pages for `len` bytes holding `data` from `offset` in the first, registered with the
    /// simulated bus master.
    fn pages(&self, offset: usize, len: usize, data: &[u8]) -> Vec<u64> {
        let count = (offset + len).div_ceil(PAGE_SIZE);
        let mut placed = std::vec![0; offset];
        placed.extend_from_slice(data);
        let data = &placed[..];
        let mut next = self.next.lock().unwrap();
        let mut pages = Vec::new();
        while pages.len() < count {
            let run = self.run.min(count - pages.len());
            let start = *next;
            let rest = data.get(pages.len() * PAGE_SIZE..).unwrap_or_default();
            self.sim.place(start, run * PAGE_SIZE, &rest[..rest.len().min(run * PAGE_SIZE)]);
            pages.extend((0..run as u64).map(|i| start + i * PAGE_SIZE as u64));
            *next = start + (run as u64 + 1) * PAGE_SIZE as u64;
        }
        *self.given.lock().unwrap() += 1;
        pages
    }
}

impl<P: SimPhysical> DirectMemory for SimDirectMemory<P> {
    fn fresh(&self, len: usize) -> Option<Wired> {
        let memory = OolMemory::new(len).ok()?;
        Some(Wired { memory, pages: self.pages(0, len, &[]), offset: 0 })
    }

    fn prepare(&self, _len: usize) {}

    fn filled(&self, mut wired: Wired) -> OolMemory {
        for (chunk, &page) in wired.memory.as_mut_slice().chunks_mut(PAGE_SIZE).zip(&wired.pages) {
            self.sim.read(page, chunk);
        }
        wired.memory
    }

    fn pin(&self, data: OolMemory) -> Result<Wired, OolMemory> {
        if self.refuse_pins {
            return Err(data);
        }
        let pages = self.pages(self.pin_offset, data.len(), data.as_slice());
        Ok(Wired { memory: data, pages, offset: self.pin_offset })
    }
}

/// A simulated machine's line as a channel waits on it: a tick of the test's clock is taken
/// for a millisecond, up to 100 ms a wait, so that a lost interrupt ends a test quickly.
pub struct SimLine(pub Interrupt);

impl Line for SimLine {
    fn wait(&mut self, ticks: u64) -> bool {
        self.0.wait(ticks.min(100) as u32).unwrap_or(false)
    }

    fn ack(&mut self) {
        self.0.ack().expect("acknowledged once per interrupt");
    }
}

/// A line that runs `before` at its first ack, just before acknowledging: what a device does
/// then happens while the line is still masked.
pub struct BeforeFirstAck<F> {
    pub line: SimLine,
    pub before: Option<F>,
}

impl<F: FnOnce()> Line for BeforeFirstAck<F> {
    fn wait(&mut self, ticks: u64) -> bool {
        self.line.wait(ticks)
    }

    fn ack(&mut self) {
        if let Some(before) = self.before.take() {
            before();
        }
        self.line.ack();
    }
}

/// A clock that moves `step` ticks every time it is read.
pub struct StepClock {
    now: Cell<u64>,
    step: u64,
}

impl StepClock {
    pub fn new(step: u64) -> StepClock {
        StepClock { now: Cell::new(0), step }
    }
}

impl Clock for StepClock {
    fn now(&self) -> u64 {
        self.now.set(self.now.get() + self.step);
        self.now.get()
    }
}
