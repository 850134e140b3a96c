//! A simulated AHCI host bus adapter for host tests: the generic and port registers with their
//! write-1-to-clear bits and ST/CR, FRE/FR handshakes, simulated physical memory, and one port
//! with a disk whose volatile write cache only FLUSH CACHE makes durable. Writing PxCI runs slot
//! 0's command at once: the simulator reads the command header, FIS and PRDT from memory and
//! refuses (panics, failing the test) what a real HBA would misread: a FIS that is not a
//! register FIS, a PRD entry at an odd address, of an odd byte count or over 4 MiB, a PRDT that
//! does not cover the command's data exactly, a write without the header's W bit, a slot issued
//! again while it is still set (after an error the port must be stopped, which clears it).

use mach::sim::irq::Machine;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec;
use std::vec::Vec;

use super::super::dma::DmaMemory;
use super::super::identify::tests::identify_data;
use super::super::registers::command;
use super::super::sim::SimPhysical;
use super::super::SECTOR;
use super::{bits, reg, Hba};

/// Injectable faults.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// This command ends with ERR and this error register (TFES in PxIS).
    pub failing: Option<(u8, u8)>,
    /// Commands are accepted and never complete (PxCI stays set).
    pub stalled: bool,
    /// A host bus data error (HBDS) instead of completing.
    pub bus_error: bool,
    /// The HBA reports fewer bytes moved than the command asked.
    pub short: bool,
    /// The port never stops: clearing ST leaves CR and the issued slot set.
    pub stuck: bool,
    /// Commands end without the HBA's interrupt reaching the line.
    pub lost_interrupt: bool,
}

pub struct SimState {
    pub registers: BTreeMap<u32, u32>,
    pub memory: BTreeMap<u64, Vec<u8>>,
    pub port: u32,
    pub sectors: u64,
    pub lba48: bool,
    pub data: BTreeMap<u64, [u8; SECTOR]>,
    pub durable: BTreeMap<u64, [u8; SECTOR]>,
    pub faults: Faults,
    /// Every command run, with its PRD entries' byte counts.
    pub commands: Vec<(u8, Vec<u64>)>,
    /// The machine and line the HBA's interrupt goes to.
    line: Option<(Machine, u32)>,
}

/// The HBA; clones share it.
#[derive(Clone)]
pub struct SimHba(Arc<Mutex<SimState>>);

impl SimHba {
    /// An HBA with `ports` implemented, 64-bit addressing as `s64a` says, and a disk of
    /// `sectors` on port `port`.
    pub fn new(ports: u32, port: u32, sectors: u64, lba48: bool, s64a: bool) -> SimHba {
        let mut registers = BTreeMap::new();
        registers.insert(reg::CAP, if s64a { bits::CAP_S64A } else { 0 } | (ports - 1));
        registers.insert(reg::PI, (1u32 << ports) - 1);
        registers.insert(reg::port(port, reg::SSTS), 0x113);
        registers.insert(reg::port(port, reg::SIG), 0x101);
        registers.insert(reg::port(port, reg::TFD), 0x50);
        SimHba(Arc::new(Mutex::new(SimState {
            registers,
            memory: BTreeMap::new(),
            port,
            sectors,
            lba48,
            data: BTreeMap::new(),
            durable: BTreeMap::new(),
            faults: Faults::default(),
            commands: Vec::new(),
            line: None,
        })))
    }

    /// The HBA with its interrupt wired to `line` of `machine`.
    pub fn with_line(self, machine: &Machine, line: u32) -> SimHba {
        self.state().line = Some((machine.clone(), line));
        self
    }

    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.0.lock().unwrap()
    }

    /// `len` bytes of simulated physical memory at `physical`.
    pub fn memory(&self, physical: u64, len: usize) -> SimMemory {
        self.state().memory.insert(physical, vec![0; len]);
        SimMemory { sim: self.clone(), physical, len }
    }
}

impl SimState {
    fn get(&self, offset: u32) -> u32 {
        self.registers.get(&offset).copied().unwrap_or(0)
    }

    fn port_reg(&self, offset: u32) -> u32 {
        self.get(reg::port(self.port, offset))
    }

    fn set_port_reg(&mut self, offset: u32, value: u32) {
        self.registers.insert(reg::port(self.port, offset), value);
    }

    /// The memory bytes at `physical..physical + len` (inside one allocation).
    fn bytes(&mut self, physical: u64, len: usize) -> &mut [u8] {
        let (&base, block) = self.memory.range_mut(..=physical).next_back().expect("physical address in simulated memory");
        let at = (physical - base) as usize;
        assert!(at + len <= block.len(), "{len} bytes at {physical:#x} past simulated memory");
        &mut block[at..at + len]
    }

    fn read64(&mut self, physical: u64) -> u64 {
        u64::from_le_bytes(self.bytes(physical, 8).try_into().unwrap())
    }

    fn read32(&mut self, physical: u64) -> u32 {
        u32::from_le_bytes(self.bytes(physical, 4).try_into().unwrap())
    }

    fn running(&self) -> bool {
        self.port_reg(reg::CMD) & bits::CMD_ST != 0
    }

    /// Whether slot 0 is issued and not done.
    pub fn issued(&self) -> bool {
        self.port_reg(reg::CI) & 1 != 0
    }

    /// Lets a command held by [`Faults::stalled`] go on: it ends now, as a slow drive's would.
    pub fn release_stalled(&mut self) {
        self.faults.stalled = false;
        if self.issued() {
            self.run_slot_0();
        }
    }

    /// Runs slot 0's command, then raises the HBA's interrupt for what it signalled, if enabled
    /// (GHC.IE and PxIE), on the line of [`SimHba::with_line`].
    fn run_slot_0(&mut self) {
        self.execute_slot_0();
        if self.get(reg::GHC) & bits::GHC_IE != 0 && self.port_reg(reg::IS) & self.port_reg(reg::IE) != 0 {
            let pending = self.get(reg::HBA_IS) | 1 << self.port;
            self.registers.insert(reg::HBA_IS, pending);
            if let Some((machine, line)) = self.line.as_ref().filter(|_| !self.faults.lost_interrupt) {
                machine.raise(*line);
            }
        }
    }

    /// Runs slot 0's command as an HBA and drive would.
    fn execute_slot_0(&mut self) {
        let s64a = self.get(reg::CAP) & bits::CAP_S64A != 0;
        let list = u64::from(self.port_reg(reg::CLB)) | u64::from(self.port_reg(reg::CLBU)) << 32;
        assert!(s64a || list >> 32 == 0, "a 64-bit command list on a 32-bit HBA");
        assert_eq!(list % 1024, 0, "command list not 1 KiB aligned");
        let dw0 = self.read32(list);
        assert_eq!(dw0 & 0x1F, 5, "command FIS length (dwords)");
        let write = dw0 & 1 << 6 != 0;
        let entries = (dw0 >> 16) as usize;
        let table = self.read64(list + 8);
        assert_eq!(table % 128, 0, "command table not 128-byte aligned");
        let fis: [u8; 20] = self.bytes(table, 20).try_into().unwrap();
        assert_eq!(fis[..2], [0x27, 0x80], "a host-to-device register FIS with a command");
        let mut prds = Vec::new();
        for i in 0..entries {
            let entry = table + 0x80 + 16 * i as u64;
            let address = self.read64(entry);
            let dw3 = self.read32(entry + 12);
            let bytes = u64::from(dw3 & 0x3F_FFFF) + 1;
            assert_eq!(address % 2, 0, "PRD at an odd address");
            assert_eq!(bytes % 2, 0, "PRD of an odd byte count");
            assert!(bytes <= 4 << 20, "PRD over 4 MiB");
            assert!(s64a || address >> 32 == 0, "a 64-bit PRD on a 32-bit HBA");
            prds.push((address, bytes));
        }
        let opcode = fis[2];
        self.commands.push((opcode, prds.iter().map(|p| p.1).collect()));
        let lba48 = matches!(opcode, command::READ_DMA_EXT | command::WRITE_DMA_EXT);
        let lba = if lba48 {
            u64::from_le_bytes([fis[4], fis[5], fis[6], fis[8], fis[9], fis[10], 0, 0])
        } else {
            u64::from_le_bytes([fis[4], fis[5], fis[6], fis[7] & 0x0F, 0, 0, 0, 0])
        };
        let raw_count = u32::from(u16::from_le_bytes([fis[12], if lba48 { fis[13] } else { 0 }]));
        let count = if raw_count == 0 { if lba48 { 65536 } else { 256 } } else { raw_count } as u64;
        if self.faults.stalled {
            return;
        }
        if self.faults.bus_error {
            self.set_port_reg(reg::IS, self.port_reg(reg::IS) | 1 << 28);
            return;
        }
        if let Some((failing, error)) = self.faults.failing {
            if failing == opcode {
                self.set_port_reg(reg::TFD, u32::from(error) << 8 | 0x51);
                self.set_port_reg(reg::IS, self.port_reg(reg::IS) | bits::IS_TFES);
                return;
            }
        }
        let total: u64 = prds.iter().map(|p| p.1).sum();
        let mut moved = total;
        match opcode {
            command::IDENTIFY_DEVICE => {
                assert!(!write && total == SECTOR as u64, "IDENTIFY's PRDT must cover 512 bytes");
                let data = identify_data(self.sectors, self.lba48, true, self.lba48);
                self.scatter(&prds, &data);
            }
            command::READ_DMA_EXT | command::READ_DMA | command::WRITE_DMA_EXT | command::WRITE_DMA => {
                let is_write = matches!(opcode, command::WRITE_DMA_EXT | command::WRITE_DMA);
                assert_eq!(write, is_write, "the header's W bit must match the command");
                assert_eq!(total, count * SECTOR as u64, "the PRDT must cover the command's sectors exactly");
                assert!(lba + count <= self.sectors, "past the disk's end");
                if is_write {
                    let data = self.gather(&prds);
                    for (i, sector) in data.chunks(SECTOR).enumerate() {
                        self.data.insert(lba + i as u64, sector.try_into().unwrap());
                    }
                } else {
                    let data: Vec<u8> = (lba..lba + count).flat_map(|s| self.data.get(&s).copied().unwrap_or([0; SECTOR])).collect();
                    self.scatter(&prds, &data);
                }
            }
            command::FLUSH_CACHE_EXT | command::FLUSH_CACHE => {
                assert_eq!(entries, 0, "FLUSH moves no data");
                self.durable = self.data.clone();
            }
            other => panic!("unexpected command {other:#04x}"),
        }
        if self.faults.short {
            moved -= SECTOR as u64;
        }
        let dw1 = list + 4;
        self.bytes(dw1, 4).copy_from_slice(&(moved as u32).to_le_bytes());
        self.set_port_reg(reg::TFD, 0x50);
        self.set_port_reg(reg::CI, 0);
        self.set_port_reg(reg::IS, self.port_reg(reg::IS) | 1);
    }

    fn scatter(&mut self, prds: &[(u64, u64)], data: &[u8]) {
        let mut at = 0;
        for &(address, bytes) in prds {
            self.bytes(address, bytes as usize).copy_from_slice(&data[at..at + bytes as usize]);
            at += bytes as usize;
        }
    }

    fn gather(&mut self, prds: &[(u64, u64)]) -> Vec<u8> {
        prds.iter().flat_map(|&(address, bytes)| self.bytes(address, bytes as usize).to_vec()).collect()
    }
}

impl Hba for SimHba {
    fn read(&mut self, offset: u32) -> u32 {
        self.state().get(offset)
    }

    fn write(&mut self, offset: u32, value: u32) {
        let mut state = self.state();
        let port = state.port;
        let port_offset = offset.checked_sub(reg::port(port, 0)).filter(|&o| o < 0x80);
        if offset == reg::HBA_IS {
            let old = state.get(offset);
            state.registers.insert(offset, old & !value);
            return;
        }
        match port_offset {
            Some(reg::IS) | Some(reg::SERR) => {
                let old = state.get(offset);
                state.registers.insert(offset, old & !value);
            }
            Some(reg::CMD) => {
                // The HBA confirms at once: CR follows ST, FR follows FRE; clearing ST drops
                // the commands in flight.
                let running = state.get(offset) & bits::CMD_CR;
                let mut cmd = value & !(bits::CMD_CR | bits::CMD_FR);
                if cmd & bits::CMD_ST != 0 {
                    assert!(cmd & bits::CMD_FRE != 0, "ST set before FRE");
                    cmd |= bits::CMD_CR;
                } else if state.faults.stuck {
                    cmd |= running;
                } else {
                    state.set_port_reg(reg::CI, 0);
                }
                if cmd & bits::CMD_FRE != 0 {
                    cmd |= bits::CMD_FR;
                }
                state.registers.insert(offset, cmd);
            }
            Some(reg::CI) => {
                assert!(state.running(), "a command issued with the port stopped");
                assert!(state.get(reg::GHC) & bits::GHC_AE != 0, "a command issued outside AHCI mode");
                assert!(state.get(offset) & value == 0, "a slot issued again before it completed (the port was not restarted)");
                let issued = state.get(offset) | value;
                state.registers.insert(offset, issued);
                if value & 1 != 0 {
                    state.run_slot_0();
                }
            }
            _ => {
                state.registers.insert(offset, value);
            }
        }
    }
}

impl SimPhysical for SimHba {
    fn place(&self, physical: u64, len: usize, data: &[u8]) {
        self.memory(physical, len).copy_in(0, data);
    }

    fn read(&self, physical: u64, buf: &mut [u8]) {
        buf.copy_from_slice(self.state().bytes(physical, buf.len()));
    }
}

/// Simulated physical memory.
pub struct SimMemory {
    sim: SimHba,
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
        self.sim.state().bytes(self.physical + offset as u64, data.len()).copy_from_slice(data);
    }

    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(self.sim.state().bytes(self.physical + offset as u64, buf.len()));
    }
}
