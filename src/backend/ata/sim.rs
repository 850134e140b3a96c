//! A simulated legacy ATA channel for host tests: register semantics of a real drive (48-bit
//! "previous value" registers, BSY before results, DRQ per sector or per READ/WRITE MULTIPLE
//! block, data moved only while DRQ is up and exactly one block at a time), a volatile write
//! cache that only FLUSH CACHE makes durable, and injectable faults.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use super::identify::tests::{identify_data, transfer_modes};
use super::registers::{command, error, status, Reg, Registers, SECTOR};
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
}

enum State {
    Idle,
    /// Sectors the host reads, `block` per data request; `next` is the index of the next sector
    /// in the command.
    DataIn { opcode: u8, buf: Vec<u8>, block: usize, next: usize },
    DataOut { opcode: u8, lba: u64, sectors: usize, block: usize, next: usize },
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
        })))
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
        if self.busy_reads > 0 {
            self.busy_reads -= 1;
            return status::BSY;
        }
        self.status
    }

    fn end(&mut self, status_bits: u8, error_bits: u8) {
        self.state = State::Idle;
        self.status = status::DRDY | status_bits;
        self.error = error_bits;
    }

    fn lba48(&self) -> u64 {
        let byte = |reg: usize, half: usize| u64::from(self.lba[reg][half]);
        byte(0, 0) | byte(1, 0) << 8 | byte(2, 0) << 16 | byte(0, 1) << 24 | byte(1, 1) << 32 | byte(2, 1) << 40
    }

    fn lba28(&self) -> u64 {
        u64::from(self.lba[0][0]) | u64::from(self.lba[1][0]) << 8 | u64::from(self.lba[2][0]) << 16 | u64::from(self.device & 0x0F) << 24
    }

    fn execute(&mut self, opcode: u8) {
        self.commands.push(opcode);
        self.busy_reads = BUSY_READS;
        let Some(drive) = self.drive() else { return };
        let faults = drive.faults;
        let lba48_drive = drive.lba48;
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
            | command::WRITE_MULTIPLE_EXT => self.end(status::ERR, error::IDNF),
            _ => self.end(status::ERR, error::ABRT),
        }
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
        if value & super::registers::control::SRST != 0 {
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
