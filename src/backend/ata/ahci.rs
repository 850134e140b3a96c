//! A native driver for an AHCI SATA controller (`-device ahci` in QEMU, the usual controller of
//! current machines), run from user space: the first implemented port with a device drives
//! `wd0`, as the Hurd's rumpdisk (NetBSD's `ahcisata` under `wd`) names it. Commands go through
//! slot 0 of the port's command list, one at a time (no NCQ), READ/WRITE DMA EXT and FLUSH CACHE
//! EXT as on the IDE path (IDENTIFY parsing, opcodes, the bounce buffer's memory and the range
//! checks are shared with it). A command ends when PxCI clears (PxIS shows errors): the port
//! waits for the HBA's interrupt when it has a [`Line`] (GNU Mach's `irq` device, the line from
//! PCI configuration space), and polls otherwise.
//! The register file is behind [`Hba`], so host tests drive the logic against a simulated HBA;
//! only [`mmio`] touches the real registers.

mod command;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub mod mmio;
#[cfg(test)]
mod sim;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{fence, Ordering};
use mach::ool::OolMemory;
use mach::sync::Mutex;

use super::channel::{check_range, fault_in, Line};
use super::dma::{DirectMemory, DmaMemory, Pages, Target, DMA_LIMIT};
use super::registers::command as opcode;
use super::{read_straight, write_straight, AtaError, Clock, Identity, Stopped, Timeouts, SECTOR};
use crate::backend::{Backend, Disk, Geometry};
use crate::device::{Access, Error, D_NO_SUCH_DEVICE};
use command::Command;

/// An HBA's memory-mapped registers (ABAR, PCI BAR5), a 32-bit register at a byte offset.
pub trait Hba {
    fn read(&mut self, offset: u32) -> u32;
    fn write(&mut self, offset: u32, value: u32);
}

/// Generic host control registers and port registers (AHCI 1.3.1, section 3).
pub mod reg {
    pub const CAP: u32 = 0x00;
    pub const GHC: u32 = 0x04;
    /// The HBA's interrupt status: one bit per port with an enabled interrupt pending.
    pub const HBA_IS: u32 = 0x08;
    pub const PI: u32 = 0x0C;
    /// Port `n`'s register `offset`.
    pub const fn port(n: u32, offset: u32) -> u32 {
        0x100 + 0x80 * n + offset
    }
    pub const CLB: u32 = 0x00;
    pub const CLBU: u32 = 0x04;
    pub const FB: u32 = 0x08;
    pub const FBU: u32 = 0x0C;
    pub const IS: u32 = 0x10;
    pub const IE: u32 = 0x14;
    pub const CMD: u32 = 0x18;
    pub const TFD: u32 = 0x20;
    pub const SIG: u32 = 0x24;
    pub const SSTS: u32 = 0x28;
    pub const SERR: u32 = 0x30;
    pub const CI: u32 = 0x38;
    /// Bytes of ABAR the driver maps: one page (QEMU's whole BAR), the generic registers and
    /// ports 0–29. Ports 30 and 31 would reach into the next page, which may not be this
    /// device's (or may be RAM, which GNU Mach's `mem` device refuses to map).
    pub const ABAR_BYTES: usize = 0x1000;
    /// Ports whose registers lie in [`ABAR_BYTES`].
    pub const PORTS: u32 = (ABAR_BYTES as u32 - 0x100) / 0x80;
}

/// Register bits.
pub mod bits {
    /// CAP: 64-bit addresses in the command list, FIS area and PRDs.
    pub const CAP_S64A: u32 = 1 << 31;
    /// GHC: AHCI mode (not the legacy interface).
    pub const GHC_AE: u32 = 1 << 31;
    /// GHC: the HBA raises its interrupt.
    pub const GHC_IE: u32 = 1 << 1;
    /// PxIS/PxIE: a command's end (device-to-host register, PIO setup, DMA setup and set
    /// device bits FISes).
    pub const IS_DONE: u32 = 0xF;
    pub const CMD_ST: u32 = 1 << 0;
    pub const CMD_SUD: u32 = 1 << 1;
    pub const CMD_POD: u32 = 1 << 2;
    pub const CMD_FRE: u32 = 1 << 4;
    pub const CMD_FR: u32 = 1 << 14;
    pub const CMD_CR: u32 = 1 << 15;
    /// PxIS: the device ended a command with ERR (or DF) in its status.
    pub const IS_TFES: u32 = 1 << 30;
    /// PxIS: every error the HBA reports (host bus fatal and data errors, interface errors,
    /// overflow, incorrect port multiplier status, and TFES).
    pub const IS_ERRORS: u32 = 0x3D80_0000 | IS_TFES;
    /// PxTFD's status byte: busy, data request, error.
    pub const TFD_BSY: u32 = 0x80;
    pub const TFD_DRQ: u32 = 0x08;
    pub const TFD_ERR: u32 = 0x01;
    /// PxSSTS.DET: a device present and communication established.
    pub const DET_PRESENT: u32 = 3;
    /// PxSIG of an ATAPI device.
    pub const SIG_ATAPI: u32 = 0xEB14_0101;
}

/// The port's memory for commands, two pages: the command list (1 KiB aligned), the
/// received-FIS area (256-byte aligned) and slot 0's command table (128-byte aligned) with its
/// PRDT, which has room for a 1 MiB request in pages scattered one by one, starting anywhere in
/// the first (257 entries; 344 fit).
pub const COMMAND_MEMORY_BYTES: usize = 8192;
const LIST: usize = 0;
const RECEIVED_FIS: usize = 0x400;
const TABLE: usize = 0x800;
/// PRDT entries that fit in the memory after the command table's header.
const MAX_PRDS: usize = (COMMAND_MEMORY_BYTES - TABLE - command::PRDT_OFFSET) / command::PRD_BYTES;

/// One AHCI port driven through slot 0, with its command memory and bounce buffer (both
/// physically contiguous, allocated once and kept for the port's life: no request allocates).
pub struct AhciPort<H, C, M> {
    hba: H,
    clock: C,
    timeouts: Timeouts,
    port: u32,
    memory: M,
    buffer: M,
    /// Physical addresses the HBA reaches: all with CAP.S64A, else below 4 GiB.
    reach: u64,
    /// The HBA's interrupt line, when commands complete by interrupt.
    line: Option<Box<dyn Line + Send>>,
}

impl<H: Hba, C: Clock, M: DmaMemory> AhciPort<H, C, M> {
    /// Puts the HBA in AHCI mode, takes its first implemented port (of the first
    /// [`reg::PORTS`]) with a device present, points
    /// the port at `memory` and starts it. Refuses memory the HBA cannot use (above 4 GiB without
    /// 64-bit addressing, misaligned, too small) and a bounce buffer its PRDT cannot describe.
    pub fn start(mut hba: H, clock: C, timeouts: Timeouts, memory: M, buffer: M) -> Result<Self, AtaError> {
        let implemented = hba.read(reg::PI);
        let port = (0..reg::PORTS)
            .filter(|&n| implemented & 1 << n != 0)
            .find(|&n| hba.read(reg::port(n, reg::SSTS)) & 0xF == bits::DET_PRESENT)
            .ok_or(AtaError::NoDrive)?;
        Self::start_on(hba, port, clock, timeouts, memory, buffer)
    }

    /// The implemented ports (of the first [`reg::PORTS`]) with an ATA disk present (a packet
    /// device's signature is no disk), in order: where NetBSD attaches `wd` units.
    pub fn disk_ports(hba: &mut H) -> alloc::vec::Vec<u32> {
        let implemented = hba.read(reg::PI);
        (0..reg::PORTS)
            .filter(|&n| implemented & 1 << n != 0)
            .filter(|&n| hba.read(reg::port(n, reg::SSTS)) & 0xF == bits::DET_PRESENT && hba.read(reg::port(n, reg::SIG)) != bits::SIG_ATAPI)
            .collect()
    }

    /// As [`AhciPort::start`], on port `port`.
    pub fn start_on(mut hba: H, port: u32, clock: C, timeouts: Timeouts, mut memory: M, buffer: M) -> Result<Self, AtaError> {
        let ghc = hba.read(reg::GHC);
        hba.write(reg::GHC, ghc | bits::GHC_AE);
        let reach = if hba.read(reg::CAP) & bits::CAP_S64A != 0 { u64::MAX } else { DMA_LIMIT };
        let reachable = |m: &M| m.physical().checked_add(m.size() as u64).is_some_and(|end| end <= reach);
        if !reachable(&memory) || !reachable(&buffer) {
            return Err(AtaError::Unsupported("AHCI memory above 4 GiB without 64-bit addressing"));
        }
        if !memory.physical().is_multiple_of(1024) || memory.size() < COMMAND_MEMORY_BYTES {
            return Err(AtaError::Unsupported("AHCI command memory not 1 KiB aligned or too small"));
        }
        if !command::describable(buffer.physical(), buffer.size()) || command::regions(buffer.physical(), buffer.size()).count() > MAX_PRDS {
            return Err(AtaError::Unsupported("a bounce buffer the PRDT cannot describe"));
        }
        if hba.read(reg::PI) & 1 << port == 0 || hba.read(reg::port(port, reg::SSTS)) & 0xF != bits::DET_PRESENT {
            return Err(AtaError::NoDrive);
        }
        memory.copy_in(0, &[0; COMMAND_MEMORY_BYTES]);
        let mut this = AhciPort { hba, clock, timeouts, port, memory, buffer, reach, line: None };
        this.stop()?;
        this.point_at_memory();
        this.set(reg::IE, 0);
        this.run_port();
        Ok(this)
    }

    /// The port whose commands complete by the HBA's interrupt on `line` (the HBA's only port
    /// in use: a line shared by ports would be taken by one port's wait for another's end).
    pub fn with_line(mut self, line: Box<dyn Line + Send>) -> Self {
        self.set(reg::IE, bits::IS_DONE | bits::IS_ERRORS);
        let ghc = self.hba.read(reg::GHC);
        self.hba.write(reg::GHC, ghc | bits::GHC_IE);
        AhciPort { line: Some(line), ..self }
    }

    /// The port's number on the HBA.
    pub fn number(&self) -> u32 {
        self.port
    }

    /// Physical addresses the HBA reaches (all of them with 64-bit addressing).
    pub fn reach(&self) -> u64 {
        self.reach
    }

    /// IDENTIFY DEVICE: `NotAta` for a packet device (its signature says so).
    pub fn identify(&mut self) -> Result<Identity, AtaError> {
        if self.get(reg::SIG) == bits::SIG_ATAPI {
            return Err(AtaError::NotAta);
        }
        self.command(Command::plain(opcode::IDENTIFY_DEVICE), (Target::Bounce, SECTOR), false, self.timeouts.command, || ())?;
        let mut data = [0; SECTOR];
        self.buffer.copy_out(0, &mut data);
        Identity::parse(&data)
    }

    /// READ DMA (EXT) of whole sectors from `lba` into `buf`, in pieces of at most the bounce
    /// buffer.
    pub fn read(&mut self, id: &Identity, lba: u64, buf: &mut [u8]) -> Result<(), AtaError> {
        check_range(id, lba, buf.len())?;
        let code = if id.lba48 { opcode::READ_DMA_EXT } else { opcode::READ_DMA };
        let piece = self.piece(id);
        for (i, part) in buf.chunks_mut(piece).enumerate() {
            let at = lba + (i * piece / SECTOR) as u64;
            // While the HBA reads, take the page faults the copy out would take.
            let target = (Target::Bounce, part.len());
            self.command(data_command(code, at, part.len(), id.lba48), target, false, self.timeouts.command, || fault_in(part))?;
            self.buffer.copy_out(0, part);
        }
        Ok(())
    }

    /// WRITE DMA (EXT) of whole sectors from `data` at `lba`; returns once the device reports
    /// the last piece accepted without error.
    pub fn write(&mut self, id: &Identity, lba: u64, data: &[u8]) -> Result<(), AtaError> {
        check_range(id, lba, data.len())?;
        let code = if id.lba48 { opcode::WRITE_DMA_EXT } else { opcode::WRITE_DMA };
        let piece = self.piece(id);
        for (i, part) in data.chunks(piece).enumerate() {
            let at = lba + (i * piece / SECTOR) as u64;
            self.buffer.copy_in(0, part);
            self.command(data_command(code, at, part.len(), id.lba48), (Target::Bounce, part.len()), true, self.timeouts.command, || ())?;
        }
        Ok(())
    }

    /// READ DMA (EXT) of `bytes` from `lba` straight into `pages` (which hold at least that
    /// much), in pieces of at most what one command and the PRDT reach; runs `meanwhile` while
    /// the device moves the first piece.
    pub fn read_direct(&mut self, id: &Identity, lba: u64, bytes: usize, pages: Pages<'_>, meanwhile: impl FnOnce()) -> Result<(), AtaError> {
        let code = if id.lba48 { opcode::READ_DMA_EXT } else { opcode::READ_DMA };
        self.direct(id, (code, false), lba, bytes, pages, meanwhile)
    }

    /// WRITE DMA (EXT) of `bytes` at `lba` straight from `pages`, as [`AhciPort::read_direct`];
    /// returns once the device reports the last piece accepted without error.
    pub fn write_direct(&mut self, id: &Identity, lba: u64, bytes: usize, pages: Pages<'_>) -> Result<(), AtaError> {
        let code = if id.lba48 { opcode::WRITE_DMA_EXT } else { opcode::WRITE_DMA };
        self.direct(id, (code, true), lba, bytes, pages, || ())
    }

    fn direct(&mut self, id: &Identity, (code, write): (u8, bool), lba: u64, bytes: usize, pages: Pages<'_>, meanwhile: impl FnOnce()) -> Result<(), AtaError> {
        let mut meanwhile = Some(meanwhile);
        check_range(id, lba, bytes)?;
        if pages.bytes() < bytes {
            return Err(AtaError::Unsupported("DMA pages smaller than the request"));
        }
        let piece = (command::max_sectors(id.lba48) * SECTOR).min(Pages::reach_of(MAX_PRDS));
        for start in (0..bytes).step_by(piece) {
            let len = piece.min(bytes - start);
            let at = lba + (start / SECTOR) as u64;
            let target = (Target::Pages(pages.part(start, len)), len);
            self.command(data_command(code, at, len, id.lba48), target, write, self.timeouts.command, || meanwhile.take().map_or((), |run| run()))?;
        }
        Ok(())
    }

    /// Whether the HBA no longer touches the memory of slot 0's last command: the slot is not
    /// issued, or the port's command engine has stopped (after a failure the port is stopped;
    /// a port that never confirmed it leaves both set).
    pub fn settled(&mut self) -> bool {
        self.get(reg::CI) & 1 == 0 || self.get(reg::CMD) & bits::CMD_CR == 0
    }

    /// FLUSH CACHE EXT on 48-bit drives that have it, FLUSH CACHE otherwise.
    pub fn flush(&mut self, id: &Identity) -> Result<(), AtaError> {
        let code = if id.lba48 && id.flush_cache_ext { opcode::FLUSH_CACHE_EXT } else { opcode::FLUSH_CACHE };
        self.command(Command::plain(code), (Target::Bounce, 0), false, self.timeouts.flush, || ())
    }

    /// Bytes one command moves at most: the bounce buffer, and what the count field reaches.
    fn piece(&self, id: &Identity) -> usize {
        let capacity = self.buffer.size() / SECTOR * SECTOR;
        capacity.min(command::max_sectors(id.lba48) * SECTOR)
    }

    /// Issues `cmd` in slot 0 over the first `bytes` of its target, runs `meanwhile`, and polls
    /// until the HBA clears the slot or reports an error. After any failure the port is
    /// restarted, so the next command starts clean.
    fn command(&mut self, cmd: Command, target: (Target<'_>, usize), write: bool, timeout: u64, meanwhile: impl FnOnce()) -> Result<(), AtaError> {
        let result = self.issue_and_wait(cmd, target, write, timeout, meanwhile);
        if result.is_err() {
            if let Err(error) = self.recover() {
                log::warn!("ahci: port {}: restart after a failed command: {error}", self.port);
            }
        }
        result
    }

    fn issue_and_wait(&mut self, cmd: Command, (target, bytes): (Target<'_>, usize), write: bool, timeout: u64, meanwhile: impl FnOnce()) -> Result<(), AtaError> {
        self.claim()?;
        self.wait_idle(cmd.opcode)?;
        let table = self.memory.physical() + TABLE as u64;
        let entries = match target {
            Target::Bounce => self.describe(command::regions(self.buffer.physical(), bytes))?,
            Target::Pages(pages) => self.describe(pages.runs(bytes).flat_map(|(start, len)| command::regions(start, len as usize)))?,
        };
        self.memory.copy_in(TABLE, &cmd.fis());
        self.memory.copy_in(LIST, &command::header(table, entries, write));
        self.set(reg::IS, !0);
        // The bounce buffer's and command memory's stores before the HBA reads them.
        fence(Ordering::SeqCst);
        self.set(reg::CI, 1);
        meanwhile();
        let start = self.clock.now();
        loop {
            let left = timeout.saturating_sub(self.clock.now().wrapping_sub(start));
            let interrupt_status = self.interrupt_status(cmd.opcode, left)?;
            if interrupt_status & bits::IS_ERRORS != 0 {
                let tfd = self.get(reg::TFD);
                if interrupt_status & bits::IS_TFES != 0 {
                    return Err(AtaError::Failed { command: cmd.opcode, status: tfd as u8, error: (tfd >> 8) as u8 });
                }
                return Err(AtaError::HostBus { command: cmd.opcode, interrupt_status });
            }
            if self.get(reg::CI) & 1 == 0 {
                break;
            }
            if self.clock.now().wrapping_sub(start) > timeout {
                return Err(AtaError::Timeout { command: cmd.opcode, status: self.get(reg::TFD) as u8 });
            }
            core::hint::spin_loop();
        }
        // The bounce buffer's loads after the HBA wrote it.
        fence(Ordering::SeqCst);
        let tfd = self.get(reg::TFD);
        if tfd & bits::TFD_ERR != 0 {
            return Err(AtaError::Failed { command: cmd.opcode, status: tfd as u8, error: (tfd >> 8) as u8 });
        }
        let mut header = [0; command::HEADER_BYTES];
        self.memory.copy_out(LIST, &mut header);
        let moved = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if moved as usize != bytes {
            return Err(AtaError::Protocol { command: cmd.opcode, status: tfd as u8 });
        }
        Ok(())
    }

    /// Without a line, PxIS as it stands. With one, waits up to `ticks` for the HBA's next
    /// interrupt (none in time is a timeout: it was lost) and returns the PxIS bits it
    /// signalled, cleared — PxIS, then the HBA's bit for the port, as the PCI line is
    /// level-triggered — before it is acknowledged. One that signalled nothing of this command's
    /// (spurious) gives bits the caller finds no end in, and it waits again; after the ack the
    /// caller looks at PxCI, which an end the masked line did not signal shows.
    fn interrupt_status(&mut self, opcode: u8, ticks: u64) -> Result<u32, AtaError> {
        if self.line.is_none() {
            return Ok(self.get(reg::IS));
        }
        let came = ticks > 0 && self.line.as_deref_mut().is_some_and(|line| line.wait(ticks));
        if !came {
            return Err(AtaError::Timeout { command: opcode, status: self.get(reg::TFD) as u8 });
        }
        let interrupt_status = self.get(reg::IS);
        self.set(reg::IS, interrupt_status);
        self.hba.write(reg::HBA_IS, 1 << self.port);
        if let Some(line) = self.line.as_deref_mut() {
            line.ack();
        }
        Ok(interrupt_status)
    }

    /// Writes the PRDT entries for `regions`; returns how many, refusing more than the table
    /// holds (before anything is issued).
    fn describe(&mut self, regions: impl Iterator<Item = (u64, u64)>) -> Result<usize, AtaError> {
        let mut entries = 0;
        for region in regions {
            if entries == MAX_PRDS {
                return Err(AtaError::Unsupported("more PRDT entries than the command table holds"));
            }
            self.memory.copy_in(TABLE + command::PRDT_OFFSET + entries * command::PRD_BYTES, &command::prd_entry(region));
            entries += 1;
        }
        Ok(entries)
    }

    /// Points the port back at this driver's memory if another driver re-pointed it since (the
    /// bench links a second driver into a client, which takes turns with the server's; as on
    /// the IDE path, where each command sets its PRD table). One register read when it did not.
    fn claim(&mut self) -> Result<(), AtaError> {
        let list = self.memory.physical() + LIST as u64;
        if self.get(reg::CLB) == list as u32 && self.get(reg::CLBU) == (list >> 32) as u32 {
            return Ok(());
        }
        self.stop()?;
        self.point_at_memory();
        self.run_port();
        Ok(())
    }

    /// The command list and received-FIS area in this driver's memory (the port stopped).
    fn point_at_memory(&mut self) {
        let list = self.memory.physical() + LIST as u64;
        let fis = self.memory.physical() + RECEIVED_FIS as u64;
        self.set(reg::CLB, list as u32);
        self.set(reg::CLBU, (list >> 32) as u32);
        self.set(reg::FB, fis as u32);
        self.set(reg::FBU, (fis >> 32) as u32);
    }

    /// Waits until the device is neither busy nor asking for data (a command may be issued).
    fn wait_idle(&mut self, code: u8) -> Result<(), AtaError> {
        let start = self.clock.now();
        loop {
            let tfd = self.get(reg::TFD);
            if tfd & (bits::TFD_BSY | bits::TFD_DRQ) == 0 {
                return Ok(());
            }
            if self.clock.now().wrapping_sub(start) > self.timeouts.command {
                return Err(AtaError::Timeout { command: code, status: tfd as u8 });
            }
            core::hint::spin_loop();
        }
    }

    /// Stops the port (clearing ST drops any command in flight), clears its errors, starts it.
    fn recover(&mut self) -> Result<(), AtaError> {
        self.stop()?;
        self.run_port();
        Ok(())
    }

    /// Clears ST and FRE and waits for the HBA to confirm (CR and FR clear).
    fn stop(&mut self) -> Result<(), AtaError> {
        let cmd = self.get(reg::CMD);
        self.set(reg::CMD, cmd & !bits::CMD_ST);
        self.wait_clear(bits::CMD_CR)?;
        let cmd = self.get(reg::CMD);
        self.set(reg::CMD, cmd & !bits::CMD_FRE);
        self.wait_clear(bits::CMD_FR)
    }

    /// Clears the port's error and interrupt bits, then starts FIS reception and command
    /// processing, in that order.
    fn run_port(&mut self) {
        self.set(reg::SERR, !0);
        self.set(reg::IS, !0);
        let cmd = self.get(reg::CMD) | bits::CMD_SUD | bits::CMD_POD | bits::CMD_FRE;
        self.set(reg::CMD, cmd);
        self.set(reg::CMD, cmd | bits::CMD_ST);
    }

    fn wait_clear(&mut self, bit: u32) -> Result<(), AtaError> {
        let start = self.clock.now();
        while self.get(reg::CMD) & bit != 0 {
            if self.clock.now().wrapping_sub(start) > self.timeouts.command {
                return Err(AtaError::Timeout { command: 0, status: self.get(reg::TFD) as u8 });
            }
            core::hint::spin_loop();
        }
        Ok(())
    }

    /// The port's register `offset`.
    fn get(&mut self, offset: u32) -> u32 {
        self.hba.read(reg::port(self.port, offset))
    }

    fn set(&mut self, offset: u32, value: u32) {
        self.hba.write(reg::port(self.port, offset), value)
    }
}

fn data_command(opcode: u8, lba: u64, bytes: usize, lba48: bool) -> Command {
    Command { opcode, lba, count: (bytes / SECTOR) as u32, lba48 }
}

/// The port's disk under `name` (`wd0`).
pub struct AhciBackend<H, C, M> {
    port: Arc<Mutex<AhciPort<H, C, M>>>,
    name: &'static [u8],
    /// Where out-of-line requests get memory the HBA moves data to and from directly.
    direct: Option<Arc<dyn DirectMemory>>,
}

impl<H, C, M> AhciBackend<H, C, M> {
    pub fn new(port: AhciPort<H, C, M>, name: &'static [u8]) -> Self {
        AhciBackend { port: Arc::new(Mutex::new(port)), name, direct: None }
    }

    /// Out-of-line reads fill reply memory from `direct`, and large writes go from their
    /// received pages, without a copy.
    pub fn with_direct_memory(self, direct: Arc<dyn DirectMemory>) -> Self {
        AhciBackend { direct: Some(direct), ..self }
    }
}

impl<H: Hba + Send, C: Clock + Send, M: DmaMemory + Send> Backend for AhciBackend<H, C, M> {
    type Disk = AhciDisk<H, C, M>;

    fn open(&self, name: &[u8], _access: Access) -> Result<Self::Disk, Error> {
        if name != self.name {
            return Err(D_NO_SUCH_DEVICE);
        }
        let identity = self.port.lock().identify().inspect_err(|error| {
            log::warn!("ahci: {}: IDENTIFY: {error}", super::display_name(name));
        })?;
        let geometry = Geometry::new(SECTOR as u32, identity.sectors).ok_or(D_NO_SUCH_DEVICE)?;
        log::info!(
            "ahci: {}: {:?}, {} sectors, lba48 {}, write cache {}, flush {:#04x}, port {}",
            super::display_name(name),
            identity.model,
            identity.sectors,
            identity.lba48,
            identity.write_cache_enabled,
            if identity.lba48 && identity.flush_cache_ext { opcode::FLUSH_CACHE_EXT } else { opcode::FLUSH_CACHE },
            self.port.lock().number(),
        );
        Ok(AhciDisk { port: self.port.clone(), identity, geometry, direct: self.direct.clone() })
    }
}

/// An identified disk; requests take the port in turn.
pub struct AhciDisk<H, C, M> {
    port: Arc<Mutex<AhciPort<H, C, M>>>,
    identity: Identity,
    geometry: Geometry,
    direct: Option<Arc<dyn DirectMemory>>,
}

impl<H, C, M> AhciDisk<H, C, M> {
    fn report(&self, what: &str, result: Result<(), AtaError>) -> Result<(), Error> {
        result.map_err(|error| {
            log::warn!("ahci: {what}: {error}");
            Error::from(error)
        })
    }
}

impl<H: Hba, C: Clock, M: DmaMemory> AhciDisk<H, C, M> {
    /// Runs a transfer over a request's own pages; on failure, says whether the port confirmed
    /// it stopped (the lock held throughout, so no other command comes between).
    fn straight(&self, what: &str, transfer: impl FnOnce(&mut AhciPort<H, C, M>) -> Result<(), AtaError>) -> Result<(), Stopped> {
        let mut port = self.port.lock();
        let result = transfer(&mut port);
        let settled = port.settled();
        self.report(what, result).map_err(|error| if settled { Stopped::Yes(error) } else { Stopped::Unconfirmed(error) })
    }

    fn reach(&self) -> u64 {
        self.port.lock().reach()
    }
}

impl<H: Hba + Send, C: Clock + Send, M: DmaMemory + Send> Disk for AhciDisk<H, C, M> {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        let result = self.port.lock().read(&self.identity, record, buf);
        self.report("read", result)
    }

    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        let result = self.port.lock().write(&self.identity, record, data);
        self.report("write", result)
    }

    fn flush(&self) -> Result<(), Error> {
        let result = self.port.lock().flush(&self.identity);
        self.report("flush", result)
    }

    /// [`read_straight`], below what the HBA reaches.
    fn read_out_of_line(&self, record: u64, len: usize) -> Result<OolMemory, Error> {
        read_straight(self, self.direct.as_deref(), self.reach(), record, len, |pages, meanwhile| {
            self.straight("read", |port| port.read_direct(&self.identity, record, len, pages, meanwhile))
        })
    }

    /// [`write_straight`], below what the HBA reaches.
    fn write_out_of_line(&self, record: u64, data: OolMemory) -> Result<(), Error> {
        write_straight(self, self.direct.as_deref(), self.reach(), record, data, |pages, len| {
            self.straight("write", |port| port.write_direct(&self.identity, record, len, pages))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sim::{Faults, SimHba, SimMemory};
    use super::*;
    use crate::backend::ata::registers::error;
    use crate::backend::ata::sim::StepClock;
    use crate::device::{D_INVALID_RECNUM, D_IO_ERROR};
    use std::vec;
    use std::vec::Vec;

    type Port = AhciPort<SimHba, StepClock, SimMemory>;
    const TIMEOUTS: Timeouts = Timeouts { command: 1000, flush: 1000 };

    /// A started port: a disk of `sectors` on port 2 of four, command memory at 0x8_0000, a
    /// bounce buffer of `buffer` bytes at 0x10_0000.
    fn port(sectors: u64, lba48: bool, buffer: usize) -> (Port, SimHba) {
        let sim = SimHba::new(4, 2, sectors, lba48, false);
        let port = AhciPort::start(sim.clone(), StepClock::new(1), TIMEOUTS, sim.memory(0x8_0000, COMMAND_MEMORY_BYTES), sim.memory(0x10_0000, buffer)).unwrap();
        (port, sim)
    }

    fn pattern(sectors: usize, seed: u8) -> Vec<u8> {
        (0..sectors * SECTOR).map(|i| (i / SECTOR) as u8 ^ i as u8 ^ seed).collect()
    }

    /// Completion by the HBA's interrupt, as on the IDE channel (`channel.rs`'s tests).
    mod interrupts {
        use super::*;
        use crate::backend::ata::sim::SimLine;
        use mach::irq::IrqDevice;
        use mach::sim::irq::Machine;
        use std::time::{Duration, Instant};

        const LINE: u32 = 11;

        fn irq_port() -> (Port, SimHba, Identity, Machine) {
            let machine = Machine::new();
            let (port, sim) = port(1024, true, 64 * SECTOR);
            let sim = sim.with_line(&machine, LINE);
            let line = IrqDevice::open(machine.device_master()).unwrap().register(LINE).unwrap();
            let mut port = port.with_line(Box::new(SimLine(line)));
            let id = port.identify().unwrap();
            (port, sim, id, machine)
        }

        /// Every command (IDENTIFY too) ends at its interrupt, which comes before the driver
        /// waits (the simulated HBA runs the command as it is issued); each is acknowledged,
        /// its PxIS and HBA bits cleared first.
        #[test]
        fn commands_end_at_their_interrupt_even_one_that_came_before_the_wait() {
            let (mut port, sim, id, machine) = irq_port();
            let data = pattern(100, 3);
            port.write(&id, 10, &data).unwrap();
            port.flush(&id).unwrap();
            let mut read = vec![0; data.len()];
            port.read(&id, 10, &mut read).unwrap();
            assert!(read == data);
            // IDENTIFY, two writes and two reads through the 64-sector buffer, the flush.
            assert_eq!((machine.delivered(), machine.unacked(LINE)), (6, 0));
            let state = sim.state();
            assert_eq!((state.registers[&reg::HBA_IS], state.registers[&reg::port(2, reg::IS)]), (0, 0));
        }

        #[test]
        fn a_lost_interrupt_is_a_timeout_and_an_error_never_a_hang() {
            let (mut port, sim, id, _) = irq_port();
            sim.state().faults = Faults { lost_interrupt: true, ..Faults::default() };
            let started = Instant::now();
            let read = port.read(&id, 0, &mut [0; 8 * SECTOR]);
            assert!(matches!(read, Err(AtaError::Timeout { command: command_opcode::READ_DMA_EXT, .. })), "{read:?}");
            assert!(started.elapsed() < Duration::from_secs(10));
            sim.state().faults = Faults::default();
            port.write(&id, 0, &pattern(8, 1)).unwrap();
        }

        #[test]
        fn a_spurious_interrupt_is_acknowledged_and_ignored() {
            let (mut port, sim, id, machine) = irq_port();
            port.write(&id, 0, &pattern(8, 2)).unwrap();
            sim.state().faults = Faults { stalled: true, ..Faults::default() };
            let before = machine.delivered();
            machine.raise(LINE);
            let reader_id = id.clone();
            let reader = mach::sim::Task::current().spawn(move || {
                let mut read = [0; 8 * SECTOR];
                let done = port.read(&reader_id, 0, &mut read);
                (port, done.map(|()| read))
            });
            while !sim.state().issued() && !reader.is_finished() {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(20));
            sim.state().release_stalled();
            let (_, read) = reader.join().unwrap();
            assert!(read.expect("the spurious interrupt ended the read")[..] == pattern(8, 2)[..]);
            assert_eq!((machine.delivered() - before, machine.unacked(LINE)), (2, 0));
        }
    }

    /// Bring-up: AHCI mode on, the first port with a device chosen, its memory set, running.
    #[test]
    fn start_takes_the_first_port_with_a_device_and_runs_it() {
        let (port, sim) = port(1 << 20, true, 1 << 20);
        assert_eq!(port.number(), 2);
        let state = sim.state();
        assert!(state.registers[&reg::GHC] & bits::GHC_AE != 0);
        assert_eq!(state.registers[&reg::port(2, reg::CLB)], 0x8_0000);
        assert_eq!(state.registers[&reg::port(2, reg::FB)], 0x8_0400);
        let cmd = state.registers[&reg::port(2, reg::CMD)];
        assert_eq!(cmd & (bits::CMD_ST | bits::CMD_FRE), bits::CMD_ST | bits::CMD_FRE);
        let empty = SimHba::new(4, 0, 64, true, false);
        empty.state().registers.insert(reg::port(0, reg::SSTS), 0);
        let none = AhciPort::start(empty.clone(), StepClock::new(1), TIMEOUTS, empty.memory(0, COMMAND_MEMORY_BYTES), empty.memory(0x1_0000, 4096));
        assert!(matches!(none, Err(AtaError::NoDrive)));
        // Port 30's registers lie past the mapped page: not looked at.
        let far = SimHba::new(31, 30, 64, true, false);
        let beyond = AhciPort::start(far.clone(), StepClock::new(1), TIMEOUTS, far.memory(0, COMMAND_MEMORY_BYTES), far.memory(0x1_0000, 4096));
        assert!(matches!(beyond, Err(AtaError::NoDrive)));
    }

    /// The ports NetBSD attaches `wd` units to: implemented, a device present, no packet
    /// device; every one of them can be started.
    #[test]
    fn every_port_with_a_disk_is_found_in_order() {
        let sim = SimHba::new(4, 0, 64, true, true);
        sim.state().registers.insert(reg::port(1, reg::SSTS), 0x113);
        sim.state().registers.insert(reg::port(1, reg::SIG), bits::SIG_ATAPI);
        sim.state().registers.insert(reg::port(3, reg::SSTS), 0x113);
        sim.state().registers.insert(reg::port(5, reg::SSTS), 0x113); // not implemented
        assert_eq!(AhciPort::<SimHba, StepClock, SimMemory>::disk_ports(&mut sim.clone()), [0, 3]);
        let port = AhciPort::start_on(sim.clone(), 3, StepClock::new(1), TIMEOUTS, sim.memory(0, COMMAND_MEMORY_BYTES), sim.memory(0x1_0000, 4096));
        assert_eq!(port.map(|port| port.number()).ok(), Some(3));
        let empty = AhciPort::start_on(sim.clone(), 2, StepClock::new(1), TIMEOUTS, sim.memory(0x2_0000, COMMAND_MEMORY_BYTES), sim.memory(0x3_0000, 4096));
        assert!(matches!(empty, Err(AtaError::NoDrive)));
    }

    /// Memory the HBA cannot use is refused before any command.
    #[test]
    fn memory_the_hba_cannot_use_is_refused() {
        let start = |s64a, memory: u64, buffer: u64, len| {
            let sim = SimHba::new(1, 0, 64, true, s64a);
            AhciPort::start(sim.clone(), StepClock::new(1), TIMEOUTS, sim.memory(memory, COMMAND_MEMORY_BYTES), sim.memory(buffer, len)).err()
        };
        assert_eq!(start(false, 0x1_0000_0000, 0x2000_0000, 4096), Some(AtaError::Unsupported("AHCI memory above 4 GiB without 64-bit addressing")));
        assert_eq!(start(false, 0x1000, 0xFFFF_F000, 8192), Some(AtaError::Unsupported("AHCI memory above 4 GiB without 64-bit addressing")));
        assert!(start(true, 0x1_0000_0000, 0x2_0000_0000, 4096).is_none(), "64-bit addressing reaches it");
        assert_eq!(start(false, 0x1200, 0x10_0000, 4096), Some(AtaError::Unsupported("AHCI command memory not 1 KiB aligned or too small")));
        assert_eq!(start(false, 0x1000, 0x10_0001, 4096), Some(AtaError::Unsupported("a bounce buffer the PRDT cannot describe")));
        assert_eq!(start(false, 0x1000, 0x10_0000, 511), Some(AtaError::Unsupported("a bounce buffer the PRDT cannot describe")));
    }

    #[test]
    fn identify_reads_the_geometry_and_a_packet_device_is_refused() {
        let (mut port, sim) = port(12345, true, 4096);
        let id = port.identify().unwrap();
        assert_eq!((id.sectors, id.lba48), (12345, true));
        assert_eq!(sim.state().commands, [(command_opcode::IDENTIFY_DEVICE, vec![512])]);
        sim.state().registers.insert(reg::port(2, reg::SIG), bits::SIG_ATAPI);
        assert_eq!(port.identify(), Err(AtaError::NotAta));
    }

    use super::super::registers::command as command_opcode;

    /// Writes land in the cache, reads see them, only FLUSH CACHE EXT makes them durable; a
    /// request larger than the bounce buffer goes in pieces, each its own command.
    #[test]
    fn data_round_trips_and_a_flush_makes_it_durable() {
        let (mut port, sim) = port(4096, true, 8 * SECTOR);
        let id = port.identify().unwrap();
        let data = pattern(20, 7);
        port.write(&id, 100, &data).unwrap();
        assert!(sim.state().durable.is_empty());
        let mut read = vec![0; data.len()];
        port.read(&id, 100, &mut read).unwrap();
        assert!(read == data);
        port.flush(&id).unwrap();
        assert!(sim.state().durable[&119][..] == data[19 * SECTOR..]);
        let commands: Vec<u8> = sim.state().commands.iter().map(|c| c.0).collect();
        use command_opcode::*;
        assert_eq!(commands, [IDENTIFY_DEVICE, WRITE_DMA_EXT, WRITE_DMA_EXT, WRITE_DMA_EXT, READ_DMA_EXT, READ_DMA_EXT, READ_DMA_EXT, FLUSH_CACHE_EXT]);
    }

    /// A bounce buffer over 4 MiB: one command, its data over several PRD entries.
    #[test]
    fn a_transfer_goes_over_several_prd_entries() {
        let (mut port, sim) = port(1 << 16, true, 9 << 20);
        let id = port.identify().unwrap();
        let data = pattern((9 << 20) / SECTOR, 3);
        port.write(&id, 0, &data).unwrap();
        let mut read = vec![0; data.len()];
        port.read(&id, 0, &mut read).unwrap();
        assert!(read == data);
        let last = sim.state().commands.last().cloned().unwrap();
        assert_eq!(last, (command_opcode::READ_DMA_EXT, vec![4 << 20, 4 << 20, 1 << 20]));
    }

    /// A 28-bit drive: READ/WRITE DMA, at most 256 sectors a command, FLUSH CACHE.
    #[test]
    fn a_28_bit_drive_gets_28_bit_commands() {
        let (mut port, sim) = port(1 << 24, false, 1 << 20);
        let id = port.identify().unwrap();
        let data = pattern(300, 9);
        port.write(&id, 0x0AB_CDEF, &data).unwrap();
        let mut read = vec![0; data.len()];
        port.read(&id, 0x0AB_CDEF, &mut read).unwrap();
        assert!(read == data);
        port.flush(&id).unwrap();
        let commands: Vec<(u8, u64)> = sim.state().commands.iter().map(|c| (c.0, c.1.iter().sum())).collect();
        use command_opcode::*;
        assert_eq!(commands[1..], [(WRITE_DMA, 256 * 512), (WRITE_DMA, 44 * 512), (READ_DMA, 256 * 512), (READ_DMA, 44 * 512), (FLUSH_CACHE, 0)]);
    }

    /// A device error (TFES, PxTFD.ERR), a host bus error, a short transfer and a device that
    /// never completes: each an error (so `D_IO_ERROR`) within the deadline, and the port usable
    /// again.
    #[test]
    fn errors_fail_the_request_and_the_port_recovers() {
        for (faults, expect) in [
            (Faults { failing: Some((command_opcode::READ_DMA_EXT, error::UNC)), ..Faults::default() }, "Failed"),
            (Faults { bus_error: true, ..Faults::default() }, "HostBus"),
            (Faults { short: true, ..Faults::default() }, "Protocol"),
            (Faults { stalled: true, ..Faults::default() }, "Timeout"),
        ] {
            let (mut port, sim) = port(64, true, 8 * SECTOR);
            let id = port.identify().unwrap();
            sim.state().faults = faults;
            let failed = port.read(&id, 0, &mut [0; 8 * SECTOR]).unwrap_err();
            assert!(alloc::format!("{failed:?}").starts_with(expect), "{failed:?}");
            assert_eq!(Error::from(failed), D_IO_ERROR);
            if let AtaError::Failed { status, error, .. } = failed {
                assert_eq!((status & 1, error), (1, error::UNC), "ERR and the error register from PxTFD");
            }
            sim.state().faults = Faults::default();
            port.write(&id, 0, &pattern(8, 1)).unwrap();
        }
    }

    /// Two drivers on one port (the bench's direct driver beside the server's) taking turns:
    /// each command runs from its own driver's command list.
    #[test]
    fn two_drivers_take_turns_on_one_port() {
        let (mut first, sim) = port(4096, true, 8 * SECTOR);
        let id = first.identify().unwrap();
        let mut second = AhciPort::start(sim.clone(), StepClock::new(1), TIMEOUTS, sim.memory(0x9_0000, COMMAND_MEMORY_BYTES), sim.memory(0x20_0000, 8 * SECTOR)).unwrap();
        for round in 0..3u8 {
            first.write(&id, 0, &pattern(2, round)).unwrap();
            second.write(&id, 8, &pattern(2, !round)).unwrap();
            let (mut a, mut b) = (vec![0; 2 * SECTOR], vec![0; 2 * SECTOR]);
            second.read(&id, 0, &mut a).unwrap();
            first.read(&id, 8, &mut b).unwrap();
            assert!(a == pattern(2, round) && b == pattern(2, !round), "round {round}");
        }
    }

    #[test]
    fn a_failed_flush_is_an_error() {
        let (mut port, sim) = port(64, true, 4096);
        let id = port.identify().unwrap();
        port.write(&id, 1, &pattern(1, 2)).unwrap();
        sim.state().faults = Faults { failing: Some((command_opcode::FLUSH_CACHE_EXT, error::ABRT)), ..Faults::default() };
        assert!(matches!(port.flush(&id), Err(AtaError::Failed { error: error::ABRT, .. })));
        assert!(sim.state().durable.is_empty(), "nothing durable from a failed flush");
    }

    #[test]
    fn requests_past_the_end_issue_no_command() {
        let (mut port, sim) = port(64, true, 4096);
        let id = port.identify().unwrap();
        assert_eq!(port.read(&id, 60, &mut [0; 8 * SECTOR]), Err(AtaError::OutOfRange { lba: 60, sectors: 8 }));
        assert_eq!(Error::from(AtaError::OutOfRange { lba: 60, sectors: 8 }), D_INVALID_RECNUM);
        assert_eq!(sim.state().commands.len(), 1, "IDENTIFY only");
    }

    /// The backend serves `wd0` through the same server, flushes on DEV_FLUSH_CACHE and
    /// answers a failed flush with `D_IO_ERROR`.
    #[test]
    fn the_server_serves_and_flushes_an_ahci_disk() {
        use crate::device::flavor::DEV_FLUSH_CACHE;
        use crate::device::mode::{READ, WRITE};
        use crate::flush::Waiter;
        use crate::server::{Opened, Server};
        struct Answer<'a>(&'a core::cell::Cell<Option<Result<(), Error>>>);
        impl Waiter for Answer<'_> {
            fn answer(self, result: Result<(), Error>) {
                self.0.set(Some(result));
            }
        }
        let (port, sim) = port(4096, true, 1 << 20);
        let backend = AhciBackend::new(port, b"wd0");
        let rw = Access { read: true, write: true };
        assert_eq!(backend.open(b"wd1", rw).err(), Some(D_NO_SUCH_DEVICE));
        let server = Server::new(backend);
        let Opened::Local { device, .. } = server.open(b"wd0", READ | WRITE) else { panic!("wd0") };
        assert_eq!(server.write(device, 10, &[0x5A; 1024]), Ok(1024));
        let answer = core::cell::Cell::new(None);
        server.set_status(device, DEV_FLUSH_CACHE, Answer(&answer));
        server.start_gathered_flushes();
        assert_eq!(answer.take(), Some(Ok(())));
        assert_eq!(sim.state().durable[&11], [0x5A; SECTOR]);
        sim.state().faults = Faults { failing: Some((command_opcode::FLUSH_CACHE_EXT, error::ABRT)), ..Faults::default() };
        // A write since the last flush: the next request reaches the drive.
        assert_eq!(server.write(device, 12, &[0xA5; 512]), Ok(512));
        server.set_status(device, DEV_FLUSH_CACHE, Answer(&answer));
        server.start_gathered_flushes();
        assert_eq!(answer.take(), Some(Err(D_IO_ERROR)));
        assert_eq!(server.read(device, 10, 512, |n| Ok(vec![0; n])), Ok(vec![0x5A; 512]));
    }

    /// Out-of-line requests over the server, the port's memory at 0x8_0000 and its bounce
    /// buffer (1 MiB) at 0x10_0000, request pages from `direct`.
    mod direct {
        use super::super::super::sim::SimDirectMemory;
        use super::super::super::DIRECT_WRITE_MIN;
        use super::*;
        use crate::device::mode::{READ, WRITE};
        use crate::server::{DeviceId, Opened, Server};
        use mach::sim::Task;

        /// No flush is asked for here.
        struct NoFlushes;
        impl crate::flush::Waiter for NoFlushes {
            fn answer(self, _: Result<(), Error>) {}
        }

        type SimServer = Server<AhciBackend<SimHba, StepClock, SimMemory>, NoFlushes>;

        fn direct_server<M: DirectMemory + 'static>(s64a: bool, direct: impl FnOnce(SimHba) -> M) -> (SimServer, DeviceId, SimHba, Arc<M>) {
            let sim = SimHba::new(4, 2, 1 << 16, true, s64a);
            let port = AhciPort::start(sim.clone(), StepClock::new(1), TIMEOUTS, sim.memory(0x8_0000, COMMAND_MEMORY_BYTES), sim.memory(0x10_0000, 1 << 20)).unwrap();
            let direct = Arc::new(direct(sim.clone()));
            let server = Server::new(AhciBackend::new(port, b"wd0").with_direct_memory(direct.clone()));
            let Opened::Local { device } = server.open(b"wd0", READ | WRITE) else { panic!("wd0") };
            (server, device, sim, direct)
        }

        /// Pages one by one, none next to another: the worst case for the PRDT.
        fn scattered(sim: SimHba, first_boundary: u64) -> SimDirectMemory<SimHba> {
            let mut direct = SimDirectMemory::new(sim, first_boundary);
            direct.run = 1;
            direct
        }

        /// The PRD byte counts of the last command.
        fn last_prds(sim: &SimHba) -> Vec<u64> {
            sim.state().commands.last().map(|c| c.1.clone()).unwrap_or_default()
        }

        /// A 1 MiB write from received pages scattered one by one, its data starting inside the
        /// first page, goes in one command of 257 PRDT entries, and a 1 MiB read into fresh
        /// scattered pages in one of 256; neither touches the bounce buffer. Nothing is left
        /// allocated.
        #[test]
        fn out_of_line_requests_move_straight_between_the_hba_and_scattered_pages() {
            let task = Task::current();
            let before = task.stats();
            let (server, device, sim, direct) = direct_server(false, |sim| {
                let mut direct = scattered(sim, 0x100_0000);
                direct.pin_offset = 0x820;
                direct
            });
            let data = pattern(2048, 5);
            assert_eq!(server.write_out_of_line(device, 100, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_eq!(last_prds(&sim).len(), 257);
            assert_eq!(sim.state().commands.len(), 2, "IDENTIFY and one write");
            let stored: Vec<u8> = (100..100 + 2048).flat_map(|n| sim.state().data[&n]).collect();
            assert!(stored == data);
            let read = server.read_out_of_line(device, 100, data.len() as u64).unwrap();
            assert!(read.as_slice() == data);
            assert_eq!(last_prds(&sim), [4096; 256]);
            assert_eq!(*direct.given.lock().unwrap(), 2, "both requests took direct pages");
            // A shorter write is copied: cheaper than wiring its pages.
            let short = &data[..DIRECT_WRITE_MIN - SECTOR];
            assert_eq!(server.write_out_of_line(device, 9000, OolMemory::copy_from(short).unwrap()), Ok(short.len()));
            assert_eq!(last_prds(&sim), [short.len() as u64]);
            assert_eq!(*direct.given.lock().unwrap(), 2);
            drop((read, server));
            assert_eq!(task.stats(), before);
        }

        /// A read makes the next one's memory while the HBA moves its data: the next read of
        /// that length takes it, one allocation a read.
        #[test]
        fn reads_take_the_memory_made_during_the_read_before() {
            let task = Task::current();
            let before = task.stats();
            let mut given = None;
            let (server, device, _, _) = direct_server(false, |sim| {
                let memory = SimDirectMemory::new(sim, 0x100_0000);
                given = Some(memory.given.clone());
                super::super::super::dma::Ahead::new(memory)
            });
            let given = given.unwrap();
            let data = pattern(16, 6);
            assert_eq!(server.write(device, 0, &data), Ok(data.len()));
            for reads in 1..=3 {
                assert_eq!(server.read_out_of_line(device, 0, data.len() as u64).map(|read| read.as_slice() == data), Ok(true));
                assert_eq!(*given.lock().unwrap(), reads + 1, "after {reads} reads");
            }
            drop(server);
            assert_eq!(task.stats(), before);
        }

        /// Pages above 4 GiB go through the bounce buffer on an HBA without 64-bit addressing
        /// (the simulator refuses a 64-bit PRD there) and straight on one with it; a write whose
        /// pages cannot be wired goes through the bounce buffer.
        #[test]
        fn pages_the_hba_cannot_reach_go_through_the_bounce_buffer() {
            let task = Task::current();
            let before = task.stats();
            let data = pattern(1024, 9);
            for (s64a, straight) in [(false, false), (true, true)] {
                let (server, device, sim, _) = direct_server(s64a, |sim| SimDirectMemory::new(sim, 0x1_0001_0000));
                assert_eq!(server.write_out_of_line(device, 50, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
                assert_eq!(last_prds(&sim).len() > 1, straight, "S64A {s64a}");
                let read = server.read_out_of_line(device, 50, data.len() as u64).unwrap();
                assert!(read.as_slice() == data);
                assert_eq!(last_prds(&sim).len() > 1, straight, "S64A {s64a}");
            }
            let (server, device, sim, direct) = direct_server(false, |sim| {
                let mut direct = SimDirectMemory::new(sim, 0x100_0000);
                direct.refuse_pins = true;
                direct
            });
            assert_eq!(server.write_out_of_line(device, 1000, OolMemory::copy_from(&data).unwrap()), Ok(data.len()));
            assert_eq!(last_prds(&sim), [data.len() as u64]);
            assert_eq!(*direct.given.lock().unwrap(), 0);
            assert_eq!(server.read(device, 1000, data.len() as u64, |n| Ok(vec![0; n])), Ok(data));
            drop(server);
            assert_eq!(task.stats(), before);
        }

        /// A read the device fails is `D_IO_ERROR`: the fresh memory it partly filled is
        /// released, never sent, and the port serves the next request.
        #[test]
        fn a_failed_direct_read_is_an_error_and_its_memory_is_released() {
            let task = Task::current();
            let before = task.stats();
            let (server, device, sim, direct) = direct_server(false, |sim| scattered(sim, 0x100_0000));
            sim.state().faults = Faults { failing: Some((command_opcode::READ_DMA_EXT, error::UNC)), ..Faults::default() };
            assert_eq!(server.read_out_of_line(device, 0, 1 << 20).err(), Some(D_IO_ERROR));
            assert_eq!(*direct.given.lock().unwrap(), 1);
            assert_eq!(task.stats(), before, "the failed read's memory released at once");
            sim.state().faults = Faults::default();
            assert_eq!(server.read_out_of_line(device, 0, 4096).map(|read| read.len()), Ok(4096));
            drop(server);
            assert_eq!(task.stats(), before);
        }

        /// A port that never confirms it stopped after a failed read may still write the
        /// memory: it is kept (one region left allocated), never released nor sent.
        #[test]
        fn memory_of_a_port_that_does_not_stop_is_never_released() {
            let task = Task::current();
            let before = task.stats();
            let (server, device, sim, _) = direct_server(false, |sim| scattered(sim, 0x100_0000));
            sim.state().faults = Faults { failing: Some((command_opcode::READ_DMA_EXT, error::UNC)), stuck: true, ..Faults::default() };
            assert_eq!(server.read_out_of_line(device, 0, 1 << 16).err(), Some(D_IO_ERROR));
            drop(server);
            assert_eq!(task.stats().regions, before.regions + 1);
        }
    }
}
