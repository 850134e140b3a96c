//! The command protocol on one channel: select, issue, move data one data request (a sector,
//! or a READ/WRITE MULTIPLE block) at a time, check the status after every step. PIO polls with
//! the drive's interrupt off (`nIEN`); DMA commands and cache flushes wait for the channel's
//! interrupt when it has a [`Line`] (the drive's interrupt on for just that command), and poll
//! otherwise. Every wait has a deadline; after any failure the channel is reset so the next
//! command starts clean.

use alloc::boxed::Box;
use core::ops::Range;

use super::dma::{bm, Direction, DmaEngine, Engine, Pages, Target, MAX_PAGES};
use super::identify::Identity;
use super::registers::{self, command, control, status, Reg, Registers, SECTOR};
use super::{AtaError, Clock, TransferMode};

/// Master or slave on the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    Master,
    Slave,
}

/// How a drive's data commands move sectors, settled by [`Channel::set_up`] when it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// One sector per data request: READ/WRITE SECTORS (EXT).
    Pio,
    /// Up to this many sectors per data request: READ/WRITE MULTIPLE (EXT).
    Multiple(u8),
    /// The channel's bus master moves the data: READ/WRITE DMA (EXT).
    Dma,
}

/// Deadlines in clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// For the drive to leave BSY during selection and data transfer.
    pub command: u64,
    /// For a cache flush, which may write back the whole cache.
    pub flush: u64,
}

/// A channel's interrupt line as the driver waits on it: GNU Mach's `irq` device in the server,
/// a simulated machine's in tests.
pub trait Line {
    /// Waits for the line's next interrupt for at most `ticks` of the channel's clock: true
    /// when one came (acknowledge it with [`Line::ack`] once its cause is cleared), false when
    /// the time ran out or the wait failed.
    fn wait(&mut self, ticks: u64) -> bool;
    /// Unmasks the line after an interrupt.
    fn ack(&mut self);
}

/// Sectors one command moves at most.
const MAX_SECTORS_LBA48: usize = 65536;
const MAX_SECTORS_LBA28: usize = 256;
/// First sector 28-bit commands cannot reach.
const LBA28_LIMIT: u64 = 1 << 28;

/// A channel, the clock its deadlines run on, and its bus master if it has one.
pub struct Channel<R, C> {
    regs: R,
    clock: C,
    timeouts: Timeouts,
    dma: Engine,
    line: Option<Box<dyn Line + Send>>,
}

impl<R: Registers, C: Clock> Channel<R, C> {
    pub fn new(mut regs: R, clock: C, timeouts: Timeouts) -> Self {
        regs.set_control(control::NIEN);
        Channel { regs, clock, timeouts, dma: None, line: None }
    }

    /// The channel whose DMA commands and flushes complete by interrupt on `line`.
    pub fn with_line(self, line: Box<dyn Line + Send>) -> Self {
        Channel { line: Some(line), ..self }
    }

    /// The channel with `engine` as its bus master, for [`Transfer::Dma`].
    pub fn with_dma(self, engine: Box<dyn DmaEngine + Send>) -> Self {
        Channel { dma: Some(engine), ..self }
    }

    /// IDENTIFY DEVICE: `NoDrive` for an empty position, `NotAta` for packet devices.
    pub fn identify(&mut self, drive: Drive) -> Result<Identity, AtaError> {
        self.recovering(|channel| {
            channel.select(drive, 0)?;
            channel.regs.write(Reg::StatusCommand, command::IDENTIFY_DEVICE);
            channel.delay_400ns();
            let status = channel.wait_not_busy(command::IDENTIFY_DEVICE, channel.timeouts.command)?;
            if status & status::ERR != 0 {
                // Packet devices abort IDENTIFY DEVICE and leave their signature.
                let signature = (channel.regs.read(Reg::LbaMid), channel.regs.read(Reg::LbaHigh));
                if signature == (0x14, 0xEB) {
                    return Err(AtaError::NotAta);
                }
            }
            channel.wait_for_data(command::IDENTIFY_DEVICE)?;
            let mut data = [0; SECTOR];
            channel.regs.read_block(&mut data);
            channel.finish(command::IDENTIFY_DEVICE, channel.timeouts.command)?;
            Identity::parse(&data)
        })
    }

    /// Sets the drive up for `wanted`: DMA when asked, or by default when the channel has a bus
    /// master and the drive does DMA; otherwise SET MULTIPLE MODE with the largest block (a power
    /// of two) IDENTIFY allows, or one sector per data request. A drive without multiple mode, or
    /// one that rejects it, gets single-sector PIO; DMA asked of a channel or drive without it,
    /// and other failures, are errors.
    pub fn set_up(&mut self, drive: Drive, id: &Identity, wanted: TransferMode) -> Result<Transfer, AtaError> {
        let can_dma = self.dma.is_some() && id.dma;
        match wanted {
            TransferMode::Dma if self.dma.is_none() => return Err(AtaError::Unsupported("no bus master for DMA")),
            TransferMode::Dma if !id.dma => return Err(AtaError::Unsupported("a drive without DMA")),
            TransferMode::Dma => return Ok(Transfer::Dma),
            TransferMode::Auto if can_dma => return Ok(Transfer::Dma),
            TransferMode::Pio => return Ok(Transfer::Pio),
            TransferMode::Ahci => return Err(AtaError::Unsupported("AHCI asked of an IDE channel")),
            TransferMode::Auto | TransferMode::Multiple => {}
        }
        if id.multiple_max == 0 {
            return Ok(Transfer::Pio);
        }
        // SET MULTIPLE MODE takes a power of two up to the drive's limit.
        let block = 1u8 << (7 - id.multiple_max.leading_zeros());
        let set = self.recovering(|channel| {
            channel.select(drive, 0)?;
            channel.regs.write(Reg::SectorCount, block);
            channel.regs.write(Reg::StatusCommand, command::SET_MULTIPLE_MODE);
            channel.delay_400ns();
            channel.finish(command::SET_MULTIPLE_MODE, channel.timeouts.command)
        });
        match set {
            Ok(()) => Ok(Transfer::Multiple(block)),
            Err(AtaError::Failed { error, .. }) if error & registers::error::ABRT != 0 => {
                log::warn!("ata: {drive:?}: SET MULTIPLE MODE {block} refused: one sector per data request");
                Ok(Transfer::Pio)
            }
            Err(error) => Err(error),
        }
    }

    /// Reads whole sectors from `lba` into `buf` (a multiple of 512 bytes, any alignment).
    pub fn read(&mut self, drive: Drive, id: &Identity, transfer: Transfer, lba: u64, buf: &mut [u8]) -> Result<(), AtaError> {
        let (opcode, block) = match transfer {
            Transfer::Pio => (if id.lba48 { command::READ_SECTORS_EXT } else { command::READ_SECTORS }, 1),
            Transfer::Multiple(block) => (if id.lba48 { command::READ_MULTIPLE_EXT } else { command::READ_MULTIPLE }, block.into()),
            Transfer::Dma => return self.dma_read(drive, id, lba, buf),
        };
        self.pio(drive, id, (opcode, block), lba, buf.len(), |channel, sectors| {
            if sectors.start == 0 {
                // The drive is now fetching the first block: meanwhile, take the page faults
                // of fresh memory (a reply's out-of-line pages) that the data moves would take.
                fault_in(buf);
            }
            channel.wait_for_data(opcode)?;
            channel.regs.read_block(&mut buf[sectors.start * SECTOR..sectors.end * SECTOR]);
            Ok(())
        })
    }

    /// Writes whole sectors from `data` at `lba`. Returns only when the drive reports the last
    /// sector accepted without error.
    pub fn write(&mut self, drive: Drive, id: &Identity, transfer: Transfer, lba: u64, data: &[u8]) -> Result<(), AtaError> {
        let (opcode, block) = match transfer {
            Transfer::Pio => (if id.lba48 { command::WRITE_SECTORS_EXT } else { command::WRITE_SECTORS }, 1),
            Transfer::Multiple(block) => (if id.lba48 { command::WRITE_MULTIPLE_EXT } else { command::WRITE_MULTIPLE }, block.into()),
            Transfer::Dma => return self.dma_write(drive, id, lba, data),
        };
        self.pio(drive, id, (opcode, block), lba, data.len(), |channel, sectors| {
            channel.wait_for_data(opcode)?;
            channel.regs.write_block(&data[sectors.start * SECTOR..sectors.end * SECTOR]);
            Ok(())
        })
    }

    /// FLUSH CACHE EXT (0xEA) on 48-bit drives that have it, FLUSH CACHE (0xE7) otherwise.
    pub fn flush(&mut self, drive: Drive, id: &Identity) -> Result<(), AtaError> {
        let opcode = if id.lba48 && id.flush_cache_ext { command::FLUSH_CACHE_EXT } else { command::FLUSH_CACHE };
        self.recovering(|channel| {
            channel.select(drive, 0)?;
            channel.interrupting(|channel| {
                channel.regs.write(Reg::StatusCommand, opcode);
                channel.delay_400ns();
                if channel.line.is_some() {
                    let status = channel.wait_for_interrupt(opcode, channel.timeouts.flush, Self::not_busy)?;
                    return channel.finished(opcode, status);
                }
                channel.finish(opcode, channel.timeouts.flush)
            })
        })
    }

    /// A PIO data command `(opcode, sectors per data request)` over `bytes` from `lba`, split
    /// into as few commands as the addressing allows; `move_block(channel, sectors)` moves one
    /// data request's block, the request's sectors `sectors` (at most `block` of them).
    fn pio(
        &mut self,
        drive: Drive,
        id: &Identity,
        (opcode, block): (u8, usize),
        lba: u64,
        bytes: usize,
        mut move_block: impl FnMut(&mut Self, Range<usize>) -> Result<(), AtaError>,
    ) -> Result<(), AtaError> {
        self.recovering(|channel| {
            check_range(id, lba, bytes)?;
            let sectors = bytes / SECTOR;
            let per_command = if id.lba48 { MAX_SECTORS_LBA48 } else { MAX_SECTORS_LBA28 };
            let mut done = 0;
            while done < sectors {
                let count = per_command.min(sectors - done);
                channel.issue(drive, id, opcode, lba + done as u64, count)?;
                let end = done + count;
                for first in (done..end).step_by(block) {
                    move_block(channel, first..end.min(first + block))?;
                }
                channel.finish(opcode, channel.timeouts.command)?;
                done = end;
            }
            Ok(())
        })
    }

    /// READ DMA (EXT) into `buf`, in pieces of at most the bounce buffer.
    fn dma_read(&mut self, drive: Drive, id: &Identity, lba: u64, buf: &mut [u8]) -> Result<(), AtaError> {
        let opcode = if id.lba48 { command::READ_DMA_EXT } else { command::READ_DMA };
        self.recovering(|channel| {
            check_range(id, lba, buf.len())?;
            let piece = channel.dma_piece(id)?;
            for (i, part) in buf.chunks_mut(piece).enumerate() {
                let at = lba + (i * piece / SECTOR) as u64;
                // While the drive fetches, take the page faults the copy out would take.
                channel.dma_command(drive, id, opcode, at, part.len(), (Target::Bounce, Direction::ToMemory), || fault_in(part))?;
                channel.engine()?.store(part);
            }
            Ok(())
        })
    }

    /// WRITE DMA (EXT) of `data`, in pieces of at most the bounce buffer. Returns only when the
    /// drive reports the last piece accepted without error.
    fn dma_write(&mut self, drive: Drive, id: &Identity, lba: u64, data: &[u8]) -> Result<(), AtaError> {
        let opcode = if id.lba48 { command::WRITE_DMA_EXT } else { command::WRITE_DMA };
        self.recovering(|channel| {
            check_range(id, lba, data.len())?;
            let piece = channel.dma_piece(id)?;
            for (i, part) in data.chunks(piece).enumerate() {
                channel.engine()?.load(part);
                let at = lba + (i * piece / SECTOR) as u64;
                channel.dma_command(drive, id, opcode, at, part.len(), (Target::Bounce, Direction::FromMemory), || ())?;
            }
            Ok(())
        })
    }

    /// READ DMA (EXT) of `bytes` from `lba` straight into `pages` (which hold at least that
    /// much), in pieces of at most what one command and the PRD table reach; runs `meanwhile`
    /// while the drive moves the first piece.
    pub fn read_direct(&mut self, drive: Drive, id: &Identity, lba: u64, bytes: usize, pages: Pages<'_>, meanwhile: impl FnOnce()) -> Result<(), AtaError> {
        let opcode = if id.lba48 { command::READ_DMA_EXT } else { command::READ_DMA };
        self.direct(drive, id, (opcode, Direction::ToMemory), lba, bytes, pages, meanwhile)
    }

    /// WRITE DMA (EXT) of `bytes` at `lba` straight from `pages`, as [`Channel::read_direct`].
    /// Returns only when the drive reports the last piece accepted without error.
    pub fn write_direct(&mut self, drive: Drive, id: &Identity, lba: u64, bytes: usize, pages: Pages<'_>) -> Result<(), AtaError> {
        let opcode = if id.lba48 { command::WRITE_DMA_EXT } else { command::WRITE_DMA };
        self.direct(drive, id, (opcode, Direction::FromMemory), lba, bytes, pages, || ())
    }

    #[allow(clippy::too_many_arguments)]
    fn direct(&mut self, drive: Drive, id: &Identity, (opcode, direction): (u8, Direction), lba: u64, bytes: usize, pages: Pages<'_>, meanwhile: impl FnOnce()) -> Result<(), AtaError> {
        let mut meanwhile = Some(meanwhile);
        self.recovering(|channel| {
            check_range(id, lba, bytes)?;
            if pages.bytes() < bytes {
                return Err(AtaError::Unsupported("DMA pages smaller than the request"));
            }
            channel.engine()?;
            let per_command = if id.lba48 { MAX_SECTORS_LBA48 } else { MAX_SECTORS_LBA28 };
            let piece = (per_command * SECTOR).min(Pages::reach_of(MAX_PAGES));
            for start in (0..bytes).step_by(piece) {
                let len = piece.min(bytes - start);
                let at = lba + (start / SECTOR) as u64;
                let target = Target::Pages(pages.part(start, len));
                channel.dma_command(drive, id, opcode, at, len, (target, direction), || meanwhile.take().map_or((), |run| run()))?;
            }
            Ok(())
        })
    }

    fn engine(&mut self) -> Result<&mut (dyn DmaEngine + Send + 'static), AtaError> {
        self.dma.as_deref_mut().ok_or(AtaError::Unsupported("no bus master for DMA"))
    }

    /// Bytes one DMA command moves at most: the bounce buffer, and what the addressing reaches.
    fn dma_piece(&mut self, id: &Identity) -> Result<usize, AtaError> {
        let per_command = if id.lba48 { MAX_SECTORS_LBA48 } else { MAX_SECTORS_LBA28 };
        Ok(self.engine()?.capacity().min(per_command * SECTOR))
    }

    /// One DMA command over the first `bytes` of its target: program the engine, issue, start,
    /// run `meanwhile`, wait for the engine to stop, then check the drive. The engine is stopped
    /// on every path once started, so the device never touches the memory after this returns.
    #[allow(clippy::too_many_arguments)]
    fn dma_command(
        &mut self,
        drive: Drive,
        id: &Identity,
        opcode: u8,
        lba: u64,
        bytes: usize,
        (target, direction): (Target<'_>, Direction),
        meanwhile: impl FnOnce(),
    ) -> Result<(), AtaError> {
        self.engine()?.prepare(target, bytes, direction);
        let waited = self.interrupting(|channel| {
            channel.issue(drive, id, opcode, lba, bytes / SECTOR)?;
            channel.engine()?.start(direction);
            meanwhile();
            if channel.line.is_some() {
                return channel.wait_for_interrupt(opcode, channel.timeouts.command, Self::dma_stopped).map(drop);
            }
            channel.wait_for_dma(opcode)
        });
        let engine_status = self.engine()?.stop();
        waited?;
        if engine_status & bm::ERROR != 0 {
            return Err(AtaError::Dma { command: opcode, status: engine_status });
        }
        self.finish(opcode, self.timeouts.command)
    }

    /// Polls until [`Self::dma_stopped`] finds the command ended.
    fn wait_for_dma(&mut self, opcode: u8) -> Result<(), AtaError> {
        self.engine()?;
        let start = self.clock.now();
        while self.dma_stopped().is_none() {
            if self.clock.now().wrapping_sub(start) > self.timeouts.command {
                return Err(AtaError::Timeout { command: opcode, status: self.regs.alt_status() });
            }
            core::hint::spin_loop();
        }
        Ok(())
    }

    /// With a line, runs `command` with the drive's interrupt on (nIEN clear), and off again
    /// after; without one, just runs it.
    fn interrupting<T>(&mut self, command: impl FnOnce(&mut Self) -> Result<T, AtaError>) -> Result<T, AtaError> {
        if self.line.is_none() {
            return command(self);
        }
        self.regs.set_control(0);
        let result = command(self);
        self.regs.set_control(control::NIEN);
        result
    }

    /// Waits for the line until `done` finds the command ended (`Some(status)`), for at most
    /// `timeout` ticks. Each interrupt is acknowledged once `done` has looked (reading the
    /// status register clears the drive's interrupt, so a level-triggered line does not fire
    /// again at once). One that finds the command still running — an earlier command's, or
    /// another device's on a shared line — is ignored, after one more look once the line is
    /// unmasked: the masked line may have missed this command's. No interrupt in time is a
    /// timeout, whatever the drive shows: the interrupt was lost.
    fn wait_for_interrupt(&mut self, opcode: u8, timeout: u64, done: fn(&mut Self) -> Option<u8>) -> Result<u8, AtaError> {
        let start = self.clock.now();
        loop {
            let left = timeout.saturating_sub(self.clock.now().wrapping_sub(start));
            let came = left > 0 && self.line.as_deref_mut().is_some_and(|line| line.wait(left));
            if !came {
                return Err(AtaError::Timeout { command: opcode, status: self.regs.alt_status() });
            }
            let ended = done(self);
            if let Some(line) = self.line.as_deref_mut() {
                line.ack();
            }
            if let Some(status) = ended.or_else(|| done(self)) {
                return Ok(status);
            }
        }
    }

    /// The drive's status once BSY is clear (read from the status register: that clears its
    /// interrupt).
    fn not_busy(&mut self) -> Option<u8> {
        (self.regs.alt_status() & status::BSY == 0).then(|| self.regs.read(Reg::StatusCommand))
    }

    /// The drive's status once the engine stopped (done, or a bus error) or the drive ended the
    /// command with an error while the engine still waits for data.
    fn dma_stopped(&mut self) -> Option<u8> {
        let engine_status = self.engine().map_or(0, |engine| engine.status());
        let stopped = engine_status & bm::ACTIVE == 0 || engine_status & bm::ERROR != 0;
        let status = self.regs.alt_status();
        let failed = status & status::BSY == 0 && status & (status::ERR | status::DF) != 0;
        (stopped || failed).then(|| self.regs.read(Reg::StatusCommand))
    }

    /// Runs `command`; on failure resets the channel before returning the error.
    fn recovering<T>(&mut self, command: impl FnOnce(&mut Self) -> Result<T, AtaError>) -> Result<T, AtaError> {
        let result = command(self);
        if matches!(result, Err(AtaError::Timeout { .. } | AtaError::Failed { .. } | AtaError::Protocol { .. } | AtaError::Dma { .. })) {
            self.reset();
        }
        result
    }

    /// Selects `drive` with the top LBA bits of a 28-bit command, once the channel is idle.
    fn select(&mut self, drive: Drive, lba28_top: u8) -> Result<(), AtaError> {
        let drive_bit = match drive {
            Drive::Master => 0,
            Drive::Slave => 0x10,
        };
        self.regs.write(Reg::Device, 0xE0 | drive_bit | (lba28_top & 0x0F));
        self.delay_400ns();
        if self.regs.alt_status() == 0xFF {
            return Err(AtaError::NoDrive); // floating bus: nothing on the channel
        }
        // An absent drive reads as all zeros: never ready.
        let status = self.wait_not_busy(0, self.timeouts.command)?;
        if status & status::DRDY == 0 {
            return Err(AtaError::NoDrive);
        }
        Ok(())
    }

    /// Loads the task-file registers for `count` sectors at `lba` and writes the opcode.
    fn issue(&mut self, drive: Drive, id: &Identity, opcode: u8, lba: u64, count: usize) -> Result<(), AtaError> {
        if id.lba48 {
            self.select(drive, 0)?;
            // High-order bytes first: the drive keeps the previous write of each register.
            let count = count as u16; // 65536 is encoded as 0
            self.regs.write(Reg::SectorCount, (count >> 8) as u8);
            self.regs.write(Reg::LbaLow, (lba >> 24) as u8);
            self.regs.write(Reg::LbaMid, (lba >> 32) as u8);
            self.regs.write(Reg::LbaHigh, (lba >> 40) as u8);
            self.regs.write(Reg::SectorCount, count as u8);
        } else {
            self.select(drive, (lba >> 24) as u8)?;
            self.regs.write(Reg::SectorCount, count as u8); // 256 is encoded as 0
        }
        self.regs.write(Reg::LbaLow, lba as u8);
        self.regs.write(Reg::LbaMid, (lba >> 8) as u8);
        self.regs.write(Reg::LbaHigh, (lba >> 16) as u8);
        self.regs.write(Reg::StatusCommand, opcode);
        self.delay_400ns();
        Ok(())
    }

    /// Waits until the drive asks for (or offers) the next sector.
    fn wait_for_data(&mut self, opcode: u8) -> Result<(), AtaError> {
        let status = self.wait_not_busy(opcode, self.timeouts.command)?;
        self.check(opcode, status)?;
        if status & status::DRQ == 0 {
            return Err(AtaError::Protocol { command: opcode, status });
        }
        Ok(())
    }

    /// Waits for the end of a command and checks it ended cleanly with no data left over.
    fn finish(&mut self, opcode: u8, timeout: u64) -> Result<(), AtaError> {
        self.delay_400ns();
        let status = self.wait_not_busy(opcode, timeout)?;
        self.finished(opcode, status)
    }

    /// Checks the status a command ended with: no error, no data left over.
    fn finished(&mut self, opcode: u8, status: u8) -> Result<(), AtaError> {
        self.check(opcode, status)?;
        if status & status::DRQ != 0 {
            return Err(AtaError::Protocol { command: opcode, status });
        }
        Ok(())
    }

    fn check(&mut self, opcode: u8, status: u8) -> Result<(), AtaError> {
        if status & (status::ERR | status::DF) != 0 {
            let error = self.regs.read(Reg::ErrorFeatures);
            return Err(AtaError::Failed { command: opcode, status, error });
        }
        Ok(())
    }

    /// Polls until BSY clears; returns the status (read from the status register, which also
    /// acknowledges the drive).
    fn wait_not_busy(&mut self, opcode: u8, timeout: u64) -> Result<u8, AtaError> {
        let start = self.clock.now();
        loop {
            let status = self.regs.alt_status();
            if status & status::BSY == 0 {
                return Ok(self.regs.read(Reg::StatusCommand));
            }
            if self.clock.now().wrapping_sub(start) > timeout {
                return Err(AtaError::Timeout { command: opcode, status });
            }
            core::hint::spin_loop();
        }
    }

    /// The 400 ns the drive needs before its status is valid: four alternate-status reads.
    fn delay_400ns(&mut self) {
        for _ in 0..4 {
            self.regs.alt_status();
        }
    }

    /// Software reset (SRST) of both drives, back to polling mode.
    fn reset(&mut self) {
        self.regs.set_control(control::NIEN | control::SRST);
        self.delay_400ns();
        self.regs.set_control(control::NIEN);
        self.delay_400ns();
        // A drive that stays busy shows up as a timeout on the next command.
        let _ = self.wait_not_busy(0, self.timeouts.command);
    }
}

/// Writes every page `buf` spans once (its contents are about to be overwritten).
pub(super) fn fault_in(buf: &mut [u8]) {
    for byte in buf.iter_mut().step_by(mach::ool::PAGE_SIZE) {
        *byte = 0;
    }
    if let Some(last) = buf.last_mut() {
        *last = 0;
    }
}

/// Refuses transfers past the drive's end or beyond what its addressing can reach.
pub(super) fn check_range(id: &Identity, lba: u64, bytes: usize) -> Result<(), AtaError> {
    let sectors = (bytes / SECTOR) as u64;
    let end = lba.checked_add(sectors);
    let limit = if id.lba48 { id.sectors } else { id.sectors.min(LBA28_LIMIT) };
    match end {
        Some(end) if end <= limit && bytes.is_multiple_of(SECTOR) => Ok(()),
        _ => Err(AtaError::OutOfRange { lba, sectors }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::{Faults, SimChannel, SimDrive, StepClock};
    use super::*;
    use crate::backend::ata::TransferMode;
    use crate::backend::ata::registers::error;
    use std::vec;
    use std::vec::Vec;

    const TIMEOUTS: Timeouts = Timeouts { command: 1000, flush: 5000 };

    fn channel(master: SimDrive) -> (Channel<SimChannel, StepClock>, SimChannel) {
        let sim = SimChannel::new(Some(master), None);
        (Channel::new(sim.clone(), StepClock::new(1), TIMEOUTS), sim)
    }

    fn pattern(sectors: usize, seed: u8) -> Vec<u8> {
        (0..sectors * SECTOR).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn identify_finds_the_master_and_no_slave() {
        let (mut channel, _) = channel(SimDrive::new(2048, true));
        let id = channel.identify(Drive::Master).unwrap();
        assert_eq!((id.sectors, id.lba48, id.flush_cache_ext), (2048, true, true));
        assert_eq!(channel.identify(Drive::Slave), Err(AtaError::NoDrive));
    }

    #[test]
    fn packet_devices_are_not_disks() {
        let mut cdrom = SimDrive::new(100, false);
        cdrom.packet = true;
        let (mut channel, _) = channel(cdrom);
        assert_eq!(channel.identify(Drive::Master), Err(AtaError::NotAta));
    }

    #[test]
    fn lba48_writes_read_back_through_ext_commands_from_unaligned_buffers() {
        let (mut channel, sim) = channel(SimDrive::new(1 << 40, true));
        let id = channel.identify(Drive::Master).unwrap();
        let lba = (1 << 40) - 8; // needs all 48 address bits
        let mut backing = vec![0u8; 8 * SECTOR + 1];
        backing[1..].copy_from_slice(&pattern(8, 5));
        channel.write(Drive::Master, &id, Transfer::Pio, lba, &backing[1..]).unwrap();
        let mut read = vec![0u8; 8 * SECTOR + 3];
        channel.read(Drive::Master, &id, Transfer::Pio, lba, &mut read[3..]).unwrap();
        assert!(read[3..] == backing[1..]);
        assert_eq!(sim.state().drives[0].as_ref().unwrap().sector(lba + 7)[..], backing[1 + 7 * SECTOR..]);
        assert_eq!(sim.state().commands, [command::IDENTIFY_DEVICE, command::WRITE_SECTORS_EXT, command::READ_SECTORS_EXT]);
    }

    #[test]
    fn lba28_drives_use_28_bit_commands_split_at_256_sectors() {
        let (mut channel, sim) = channel(SimDrive::new(1 << 27, false));
        let id = channel.identify(Drive::Master).unwrap();
        let lba = (1 << 27) - 300; // top address bits go through the device register
        let data = pattern(300, 9);
        channel.write(Drive::Master, &id, Transfer::Pio, lba, &data).unwrap();
        let mut read = vec![0; data.len()];
        channel.read(Drive::Master, &id, Transfer::Pio, lba, &mut read).unwrap();
        assert!(read == data);
        channel.flush(Drive::Master, &id).unwrap();
        let expected = [
            command::IDENTIFY_DEVICE,
            command::WRITE_SECTORS,
            command::WRITE_SECTORS,
            command::READ_SECTORS,
            command::READ_SECTORS,
            command::FLUSH_CACHE,
        ];
        assert_eq!(sim.state().commands, expected);
    }

    #[test]
    fn lba48_commands_carry_up_to_65536_sectors() {
        let (mut channel, sim) = channel(SimDrive::new(1 << 20, true));
        let id = channel.identify(Drive::Master).unwrap();
        let mut buf = vec![0; (65536 + 1) * SECTOR];
        channel.read(Drive::Master, &id, Transfer::Pio, 0, &mut buf).unwrap();
        let commands = sim.state().commands.clone();
        assert_eq!(commands, [command::IDENTIFY_DEVICE, command::READ_SECTORS_EXT, command::READ_SECTORS_EXT]);
    }

    #[test]
    fn flush_makes_writes_durable_with_flush_cache_ext() {
        let (mut channel, sim) = channel(SimDrive::new(64, true));
        let id = channel.identify(Drive::Master).unwrap();
        channel.write(Drive::Master, &id, Transfer::Pio, 3, &pattern(1, 1)).unwrap();
        assert!(sim.state().drives[0].as_ref().unwrap().durable.is_empty());
        channel.flush(Drive::Master, &id).unwrap();
        assert_eq!(sim.state().commands.last(), Some(&command::FLUSH_CACHE_EXT));
        assert_eq!(sim.state().drives[0].as_ref().unwrap().durable[&3][..], pattern(1, 1)[..]);
    }

    #[test]
    fn a_48_bit_drive_without_flush_ext_gets_flush_cache() {
        let mut drive = SimDrive::new(64, true);
        drive.flush_ext = false;
        let (mut channel, sim) = channel(drive);
        let id = channel.identify(Drive::Master).unwrap();
        channel.flush(Drive::Master, &id).unwrap();
        assert_eq!(sim.state().commands.last(), Some(&command::FLUSH_CACHE));
    }

    fn with_faults(faults: Faults) -> (Channel<SimChannel, StepClock>, SimChannel, Identity) {
        let (mut channel, sim) = channel(SimDrive::new(64, true));
        let id = channel.identify(Drive::Master).unwrap();
        sim.state().drives[0].as_mut().unwrap().faults = faults;
        (channel, sim, id)
    }

    #[test]
    fn a_failed_flush_is_an_error_and_the_channel_recovers() {
        let (mut channel, sim, id) = with_faults(Faults { abort: Some(command::FLUSH_CACHE_EXT), ..Faults::default() });
        channel.write(Drive::Master, &id, Transfer::Pio, 0, &pattern(1, 2)).unwrap();
        let failed = channel.flush(Drive::Master, &id);
        assert!(matches!(failed, Err(AtaError::Failed { command: 0xEA, error: error::ABRT, .. })), "{failed:?}");
        assert!(sim.state().drives[0].as_ref().unwrap().durable.is_empty());
        sim.state().drives[0].as_mut().unwrap().faults = Faults::default();
        channel.flush(Drive::Master, &id).unwrap();
        assert_eq!(sim.state().drives[0].as_ref().unwrap().durable.len(), 1);
    }

    #[test]
    fn media_errors_in_the_middle_of_a_transfer_fail_the_request() {
        let (mut channel, _, id) = with_faults(Faults { media_error_at: Some((command::WRITE_SECTORS_EXT, 2)), ..Faults::default() });
        let failed = channel.write(Drive::Master, &id, Transfer::Pio, 0, &pattern(4, 3));
        assert!(matches!(failed, Err(AtaError::Failed { error: error::UNC, .. })), "{failed:?}");
        let (mut channel, _, id) = with_faults(Faults { media_error_at: Some((command::READ_SECTORS_EXT, 1)), ..Faults::default() });
        let failed = channel.read(Drive::Master, &id, Transfer::Pio, 0, &mut [0; 4 * SECTOR]);
        assert!(matches!(failed, Err(AtaError::Failed { error: error::UNC, .. })), "{failed:?}");
    }

    #[test]
    fn device_faults_and_stuck_drives_are_errors() {
        let (mut channel, _, id) = with_faults(Faults { device_fault: Some(command::WRITE_SECTORS_EXT), ..Faults::default() });
        let failed = channel.write(Drive::Master, &id, Transfer::Pio, 0, &pattern(1, 0));
        assert!(matches!(failed, Err(AtaError::Failed { status, .. }) if status & status::DF != 0), "{failed:?}");
        let (mut channel, _, id) = with_faults(Faults { stuck_busy: true, ..Faults::default() });
        let failed = channel.flush(Drive::Master, &id);
        assert!(matches!(failed, Err(AtaError::Timeout { .. })), "{failed:?}");
    }

    /// A clock that moves one second of the TSC at each reading, readable from outside.
    #[derive(Clone, Default)]
    struct Seconds(std::rc::Rc<core::cell::Cell<u64>>);

    impl Clock for Seconds {
        fn now(&self) -> u64 {
            self.0.set(self.0.get() + super::super::port_io::Tsc::TICKS_PER_SECOND);
            self.0.get()
        }
    }

    /// The deadlines of a real drive (docs/design.md: a command 10 s, a flush 30 s: never a
    /// hang), stated as numbers and met at each edge on a clock reading one second later each
    /// time. A flush's drive is read eight times before the wait (two 400 ns delays), then once
    /// a poll: busy for 8 + s reads is busy through the poll s seconds into the wait, so busy
    /// 29 and 30 s succeed and 31 s times out. A drive stuck busy before a command is given up
    /// at the first poll past 10 s of the wait to select it (one more reading starts the wait),
    /// and again by the reset that follows a timeout: twice 12 readings.
    #[test]
    fn a_drive_gets_10_s_for_a_command_and_30_s_for_a_flush() {
        use super::super::port_io::{Tsc, TIMEOUTS};
        assert_eq!((TIMEOUTS.command / Tsc::TICKS_PER_SECOND, TIMEOUTS.flush / Tsc::TICKS_PER_SECOND), (10, 30));
        let start = |faults| {
            let sim = SimChannel::new(Some(SimDrive::new(64, true)), None);
            let clock = Seconds::default();
            let mut channel = Channel::new(sim.clone(), clock.clone(), TIMEOUTS);
            let id = channel.identify(Drive::Master).unwrap();
            sim.state().drives[0].as_mut().unwrap().faults = faults;
            (channel, clock.clone(), clock.0.get(), id)
        };
        for (busy, times_out) in [(29, false), (30, false), (31, true)] {
            let (mut channel, clock, before, id) = start(Faults { busy_for: Some((command::FLUSH_CACHE_EXT, 8 + busy)), ..Faults::default() });
            let done = channel.flush(Drive::Master, &id);
            let waited = (clock.0.get() - before) / Tsc::TICKS_PER_SECOND;
            assert_eq!(matches!(done, Err(AtaError::Timeout { .. })), times_out, "flush busy {busy} s: {done:?} after {waited} s");
        }
        let (mut channel, clock, before, id) = start(Faults { stuck_busy: true, ..Faults::default() });
        let done = channel.write(Drive::Master, &id, Transfer::Pio, 0, &pattern(1, 1));
        assert!(matches!(done, Err(AtaError::Timeout { .. })), "{done:?}");
        assert_eq!((clock.0.get() - before) / Tsc::TICKS_PER_SECOND, 2 * (1 + 11), "given up at the first poll past 10 s, twice");
    }

    #[test]
    fn requests_past_the_end_issue_no_command() {
        let (mut channel, sim, id) = with_faults(Faults::default());
        assert_eq!(channel.read(Drive::Master, &id, Transfer::Pio, 63, &mut [0; 2 * SECTOR]), Err(AtaError::OutOfRange { lba: 63, sectors: 2 }));
        assert_eq!(channel.write(Drive::Master, &id, Transfer::Pio, u64::MAX, &[0; SECTOR]), Err(AtaError::OutOfRange { lba: u64::MAX, sectors: 1 }));
        assert_eq!(sim.state().commands, [command::IDENTIFY_DEVICE]);
    }

    /// Multiple mode: one data request per 16 sectors, the MULTIPLE opcodes, the same data.
    #[test]
    fn multiple_mode_moves_a_block_per_data_request() {
        let (mut channel, sim) = channel(SimDrive::new(1 << 20, true));
        let id = channel.identify(Drive::Master).unwrap();
        let transfer = channel.set_up(Drive::Master, &id, TransferMode::Auto).unwrap();
        assert_eq!(transfer, Transfer::Multiple(16));
        // 37 sectors: two whole blocks and a short last one, from an unaligned buffer.
        let mut backing = vec![0u8; 37 * SECTOR + 1];
        backing[1..].copy_from_slice(&pattern(37, 4));
        channel.write(Drive::Master, &id, transfer, 100, &backing[1..]).unwrap();
        let mut read = vec![0u8; 37 * SECTOR];
        channel.read(Drive::Master, &id, transfer, 100, &mut read).unwrap();
        assert!(read == backing[1..]);
        let expected = [command::IDENTIFY_DEVICE, command::SET_MULTIPLE_MODE, command::WRITE_MULTIPLE_EXT, command::READ_MULTIPLE_EXT];
        assert_eq!(sim.state().commands, expected);
        assert_eq!(sim.state().drives[0].as_ref().unwrap().multiple, 16);
    }

    /// A limit that is not a power of two gets the largest power of two below it; 28-bit drives
    /// get the 28-bit MULTIPLE opcodes, split at 256 sectors.
    #[test]
    fn multiple_mode_asks_for_a_power_of_two_and_uses_28_bit_opcodes_on_28_bit_drives() {
        let mut drive = SimDrive::new(1 << 27, false);
        drive.multiple_max = 12;
        let (mut channel, sim) = channel(drive);
        let id = channel.identify(Drive::Master).unwrap();
        let transfer = channel.set_up(Drive::Master, &id, TransferMode::Multiple).unwrap();
        assert_eq!(transfer, Transfer::Multiple(8));
        let data = pattern(300, 6);
        channel.write(Drive::Master, &id, transfer, 5, &data).unwrap();
        let mut read = vec![0; data.len()];
        channel.read(Drive::Master, &id, transfer, 5, &mut read).unwrap();
        assert!(read == data);
        assert_eq!(sim.state().commands[2..], [command::WRITE_MULTIPLE, command::WRITE_MULTIPLE, command::READ_MULTIPLE, command::READ_MULTIPLE]);
    }

    /// A drive that rejects SET MULTIPLE MODE, or has no multiple mode, moves single sectors;
    /// `pio` never asks.
    #[test]
    fn without_multiple_mode_data_moves_a_sector_per_request() {
        let (mut refusing, sim, id) = with_faults(Faults { abort: Some(command::SET_MULTIPLE_MODE), ..Faults::default() });
        assert_eq!(refusing.set_up(Drive::Master, &id, TransferMode::Multiple), Ok(Transfer::Pio));
        refusing.write(Drive::Master, &id, Transfer::Pio, 0, &pattern(3, 1)).unwrap();
        assert_eq!(sim.state().commands[1..], [command::SET_MULTIPLE_MODE, command::WRITE_SECTORS_EXT]);
        let mut drive = SimDrive::new(64, true);
        drive.multiple_max = 0;
        let (mut without, sim) = channel(drive);
        let id = without.identify(Drive::Master).unwrap();
        assert_eq!(without.set_up(Drive::Master, &id, TransferMode::Auto), Ok(Transfer::Pio));
        let (mut plain, _) = channel(SimDrive::new(64, true));
        let plain_id = plain.identify(Drive::Master).unwrap();
        assert_eq!(plain.set_up(Drive::Master, &plain_id, TransferMode::Pio), Ok(Transfer::Pio));
        assert_eq!(sim.state().commands, [command::IDENTIFY_DEVICE], "nothing asked of a drive without multiple mode");
    }

    /// Errors in multiple mode: a media error in the second block fails the request, a failed
    /// SET MULTIPLE MODE other than an abort is an error, and bounds hold.
    #[test]
    fn multiple_mode_keeps_the_error_and_bounds_guarantees() {
        let (mut channel, _, id) = with_faults(Faults { media_error_at: Some((command::READ_MULTIPLE_EXT, 20)), ..Faults::default() });
        let transfer = channel.set_up(Drive::Master, &id, TransferMode::Multiple).unwrap();
        let failed = channel.read(Drive::Master, &id, transfer, 0, &mut [0; 32 * SECTOR]);
        assert!(matches!(failed, Err(AtaError::Failed { error: error::UNC, .. })), "{failed:?}");
        channel.read(Drive::Master, &id, transfer, 0, &mut [0; 16 * SECTOR]).unwrap();
        let (mut channel, _, id) = with_faults(Faults { media_error_at: Some((command::WRITE_MULTIPLE_EXT, 17)), ..Faults::default() });
        let transfer = channel.set_up(Drive::Master, &id, TransferMode::Multiple).unwrap();
        let failed = channel.write(Drive::Master, &id, transfer, 0, &pattern(20, 0));
        assert!(matches!(failed, Err(AtaError::Failed { error: error::UNC, .. })), "{failed:?}");
        assert_eq!(channel.write(Drive::Master, &id, transfer, 60, &pattern(5, 0)), Err(AtaError::OutOfRange { lba: 60, sectors: 5 }));
        let (mut channel, _, id) = with_faults(Faults { device_fault: Some(command::SET_MULTIPLE_MODE), ..Faults::default() });
        assert!(matches!(channel.set_up(Drive::Master, &id, TransferMode::Auto), Err(AtaError::Failed { .. })));
    }

    mod dma {
        use super::super::super::dma::{bm, BusMasterDma, TABLE_BYTES};
        use super::super::super::sim::{BeforeFirstAck, SimBusMaster, SimLine, SimMemory};
        use super::*;

        /// A channel whose bus master has its PRD table at 0x1000 and a bounce buffer of `len`
        /// bytes at `physical`.
        fn dma_channel(drive: SimDrive, physical: u64, len: usize) -> (Channel<SimChannel, StepClock>, SimChannel, Identity) {
            let sim = SimChannel::new(Some(drive), None);
            let engine = BusMasterDma::new(SimBusMaster(sim.clone()), sim.memory(0x1000, TABLE_BYTES), sim.memory(physical, len)).unwrap();
            let mut channel = Channel::new(sim.clone(), StepClock::new(1), TIMEOUTS).with_dma(Box::new(engine));
            let id = channel.identify(Drive::Master).unwrap();
            (channel, sim, id)
        }

        /// A bounce buffer of 1 MiB from 4 KiB below a 64 KiB boundary: 17 PRDs, none crossing
        /// one (the simulated controller fails the command otherwise); data written from an
        /// unaligned buffer read back, one command each way; durable only after the flush.
        #[test]
        fn dma_moves_a_whole_request_in_one_command_through_prds_that_cross_no_64_kib_boundary() {
            let (mut channel, sim, id) = dma_channel(SimDrive::new(1 << 20, true), 0x2_F000, 1 << 20);
            let transfer = channel.set_up(Drive::Master, &id, TransferMode::Auto).unwrap();
            assert_eq!(transfer, Transfer::Dma);
            let mut backing = vec![0u8; 2048 * SECTOR + 1];
            backing[1..].copy_from_slice(&pattern(2048, 8));
            channel.write(Drive::Master, &id, transfer, 40, &backing[1..]).unwrap();
            assert!(sim.state().drives[0].as_ref().unwrap().durable.is_empty(), "DMA completion is not durability");
            channel.flush(Drive::Master, &id).unwrap();
            assert_eq!(sim.state().drives[0].as_ref().unwrap().durable[&(40 + 2047)][..], backing[1 + 2047 * SECTOR..]);
            let mut read = vec![0u8; 2048 * SECTOR];
            channel.read(Drive::Master, &id, transfer, 40, &mut read).unwrap();
            assert!(read == backing[1..]);
            assert_eq!(sim.state().commands, [command::IDENTIFY_DEVICE, command::WRITE_DMA_EXT, command::FLUSH_CACHE_EXT, command::READ_DMA_EXT]);
        }

        /// Requests larger than the bounce buffer go in several commands; 28-bit drives get the
        /// 28-bit opcodes.
        #[test]
        fn dma_splits_requests_at_the_bounce_buffer_and_uses_28_bit_opcodes_on_28_bit_drives() {
            let (mut channel, sim, id) = dma_channel(SimDrive::new(1 << 27, false), 0x1_0000, 64 << 10);
            let data = pattern(300, 2);
            channel.write(Drive::Master, &id, Transfer::Dma, 7, &data).unwrap();
            let mut read = vec![0; data.len()];
            channel.read(Drive::Master, &id, Transfer::Dma, 7, &mut read).unwrap();
            assert!(read == data);
            let expected = [[command::WRITE_DMA; 3], [command::READ_DMA; 3]].concat();
            assert_eq!(sim.state().commands[1..], expected);
        }

        /// A media error, a bus error and a drive that never finishes: each an error (so
        /// `D_IO_ERROR`), the engine stopped (the simulator refuses a command issued with it
        /// running), and the channel usable again.
        #[test]
        fn dma_errors_fail_the_request_and_leave_the_engine_stopped() {
            for (faults, expect) in [
                (Faults { media_error_at: Some((command::READ_DMA_EXT, 3)), ..Faults::default() }, "Failed"),
                (Faults { bus_error: true, ..Faults::default() }, "Dma"),
                (Faults { stalled_dma: true, ..Faults::default() }, "Timeout"),
            ] {
                let (mut channel, sim, id) = dma_channel(SimDrive::new(64, true), 0x2_0000, 8 * SECTOR);
                sim.state().drives[0].as_mut().unwrap().faults = faults;
                let failed = channel.read(Drive::Master, &id, Transfer::Dma, 0, &mut [0; 8 * SECTOR]).unwrap_err();
                assert!(alloc::format!("{failed:?}").starts_with(expect), "{failed:?}");
                assert!(!sim.state().engine_running(), "the engine runs on after {failed:?}");
                assert_eq!(crate::device::Error::from(failed), crate::device::D_IO_ERROR);
                if let AtaError::Dma { status, .. } = failed {
                    assert!(status & bm::ERROR != 0);
                }
                sim.state().drives[0].as_mut().unwrap().faults = Faults::default();
                channel.write(Drive::Master, &id, Transfer::Dma, 0, &pattern(8, 1)).unwrap();
            }
            let (mut channel, sim, id) = dma_channel(SimDrive::new(64, true), 0x2_0000, 8 * SECTOR);
            sim.state().drives[0].as_mut().unwrap().faults = Faults { media_error_at: Some((command::WRITE_DMA_EXT, 0)), ..Faults::default() };
            let failed = channel.write(Drive::Master, &id, Transfer::Dma, 0, &pattern(2, 1));
            assert!(matches!(failed, Err(AtaError::Failed { error: error::UNC, .. })), "{failed:?}");
        }

        #[test]
        fn dma_requests_past_the_end_issue_no_command() {
            let (mut channel, sim, id) = dma_channel(SimDrive::new(64, true), 0x2_0000, 8 * SECTOR);
            assert_eq!(channel.read(Drive::Master, &id, Transfer::Dma, 60, &mut [0; 8 * SECTOR]), Err(AtaError::OutOfRange { lba: 60, sectors: 8 }));
            assert_eq!(sim.state().commands, [command::IDENTIFY_DEVICE]);
        }

        /// `dma` needs a bus master and a drive that does DMA; `auto` falls back to multiple
        /// mode without either.
        #[test]
        fn dma_is_chosen_only_where_channel_and_drive_have_it() {
            let (mut no_engine, _) = channel(SimDrive::new(64, true));
            let id = no_engine.identify(Drive::Master).unwrap();
            assert_eq!(no_engine.set_up(Drive::Master, &id, TransferMode::Dma), Err(AtaError::Unsupported("no bus master for DMA")));
            assert_eq!(no_engine.set_up(Drive::Master, &id, TransferMode::Auto), Ok(Transfer::Multiple(16)));
            let mut no_dma = SimDrive::new(64, true);
            no_dma.dma = false;
            let (mut channel, _, id) = dma_channel(no_dma, 0x2_0000, 8 * SECTOR);
            assert_eq!(channel.set_up(Drive::Master, &id, TransferMode::Dma), Err(AtaError::Unsupported("a drive without DMA")));
            assert_eq!(channel.set_up(Drive::Master, &id, TransferMode::Auto), Ok(Transfer::Multiple(16)));
            let (mut channel, _, id) = dma_channel(SimDrive::new(64, true), 0x2_0000, 8 * SECTOR);
            assert_eq!(channel.set_up(Drive::Master, &id, TransferMode::Multiple), Ok(Transfer::Multiple(16)));
        }

        /// Completion by interrupt: the channel's DMA commands and flushes, each with the
        /// drive's interrupt on for that command only.
        mod interrupts {
            use super::*;
            use mach::irq::IrqDevice;
            use mach::sim::irq::Machine;
            use std::time::{Duration, Instant};

            const LINE: u32 = 14;

            /// A DMA channel whose drive's interrupt goes to line 14 of a machine of its own.
            fn irq_channel(drive: SimDrive) -> (Channel<SimChannel, StepClock>, SimChannel, Identity, Machine) {
                let machine = Machine::new();
                let sim = SimChannel::new(Some(drive), None).with_line(&machine, LINE);
                let engine = BusMasterDma::new(SimBusMaster(sim.clone()), sim.memory(0x1000, TABLE_BYTES), sim.memory(0x2_0000, 64 * SECTOR)).unwrap();
                let line = IrqDevice::open(machine.device_master()).unwrap().register(LINE).unwrap();
                let mut channel = Channel::new(sim.clone(), StepClock::new(1), TIMEOUTS).with_dma(Box::new(engine)).with_line(Box::new(SimLine(line)));
                let id = channel.identify(Drive::Master).unwrap();
                (channel, sim, id, machine)
            }

            /// Writes, a flush and a read each end at their interrupt, which comes before the
            /// driver waits (the simulated bus master moves the data as it starts) and is not
            /// lost for that; every interrupt is acknowledged, and PIO (IDENTIFY) takes none.
            #[test]
            fn dma_commands_and_flushes_end_at_their_interrupt_even_one_that_came_before_the_wait() {
                let (mut channel, sim, id, machine) = irq_channel(SimDrive::new(1024, true));
                assert_eq!(machine.delivered(), 0, "IDENTIFY polls");
                let data = pattern(100, 3);
                channel.write(Drive::Master, &id, Transfer::Dma, 10, &data).unwrap();
                channel.flush(Drive::Master, &id).unwrap();
                let mut read = vec![0; data.len()];
                channel.read(Drive::Master, &id, Transfer::Dma, 10, &mut read).unwrap();
                assert!(read == data);
                assert_eq!(sim.state().drives[0].as_ref().unwrap().durable[&109][..], data[99 * SECTOR..]);
                // 100 sectors through a 64-sector bounce buffer: two commands each way.
                assert_eq!(sim.state().commands[1..], [command::WRITE_DMA_EXT, command::WRITE_DMA_EXT, command::FLUSH_CACHE_EXT, command::READ_DMA_EXT, command::READ_DMA_EXT]);
                assert_eq!((machine.delivered(), machine.unacked(LINE)), (5, 0));
            }

            /// A drive whose interrupt never comes: each command ends in a timeout and an
            /// error within the deadline (here a few hundred milliseconds), the engine stopped
            /// and the channel usable again.
            #[test]
            fn a_lost_interrupt_is_a_timeout_and_an_error_never_a_hang() {
                let (mut channel, sim, id, machine) = irq_channel(SimDrive::new(64, true));
                sim.state().drives[0].as_mut().unwrap().faults = Faults { lost_interrupt: true, ..Faults::default() };
                let started = Instant::now();
                let read = channel.read(Drive::Master, &id, Transfer::Dma, 0, &mut [0; 8 * SECTOR]);
                assert!(matches!(read, Err(AtaError::Timeout { command: command::READ_DMA_EXT, .. })), "{read:?}");
                let flush = channel.flush(Drive::Master, &id);
                assert!(matches!(flush, Err(AtaError::Timeout { command: command::FLUSH_CACHE_EXT, .. })), "{flush:?}");
                assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
                assert!(!sim.state().engine_running());
                assert_eq!(crate::device::Error::from(read.unwrap_err()), crate::device::D_IO_ERROR);
                sim.state().drives[0].as_mut().unwrap().faults = Faults::default();
                channel.write(Drive::Master, &id, Transfer::Dma, 0, &pattern(8, 1)).unwrap();
                assert_eq!(machine.unacked(LINE), 0);
            }

            /// An interrupt while the command still runs (another device's, or an earlier
            /// command's) does not end it: the driver acknowledges it and goes on waiting for
            /// the one that does (here a slow transfer's, let go once the driver waits).
            #[test]
            fn a_spurious_interrupt_is_acknowledged_and_ignored() {
                let (mut channel, sim, id, machine) = irq_channel(SimDrive::new(64, true));
                channel.write(Drive::Master, &id, Transfer::Dma, 0, &pattern(8, 2)).unwrap();
                sim.state().drives[0].as_mut().unwrap().faults = Faults { stalled_dma: true, ..Faults::default() };
                let before = machine.delivered();
                machine.raise(LINE);
                let reader_id = id.clone();
                let reader = mach::sim::Task::current().spawn(move || {
                    let mut read = [0; 8 * SECTOR];
                    let done = channel.read(Drive::Master, &reader_id, Transfer::Dma, 0, &mut read);
                    (channel, done.map(|()| read))
                });
                while !sim.state().dma_running() && !reader.is_finished() {
                    std::thread::yield_now();
                }
                std::thread::sleep(Duration::from_millis(20));
                sim.state().release_stalled_dma();
                let (mut channel, read) = reader.join().unwrap();
                assert!(read.expect("the spurious interrupt ended the read")[..] == pattern(8, 2)[..]);
                assert_eq!(machine.delivered() - before, 2);
                // One before a command that does end: the command's data are right, and the
                // line is left unmasked.
                sim.state().drives[0].as_mut().unwrap().faults = Faults::default();
                channel.write(Drive::Master, &id, Transfer::Dma, 0, &pattern(8, 2)).unwrap();
                machine.raise(LINE);
                let mut read = [0; 8 * SECTOR];
                channel.read(Drive::Master, &id, Transfer::Dma, 0, &mut read).unwrap();
                assert!(read[..] == pattern(8, 2)[..]);
                channel.flush(Drive::Master, &id).unwrap();
                let mut again = [0; 8 * SECTOR];
                channel.read(Drive::Master, &id, Transfer::Dma, 0, &mut again).unwrap();
                assert!(again[..] == pattern(8, 2)[..]);
                // The spurious one left the line a notification behind (each command's comes
                // while the line is masked for the one before, latched): one outstanding at
                // most, which the next wait takes.
                assert!(machine.unacked(LINE) <= 1);
            }
        }

        /// A spurious interrupt, and the command's end coming after the driver looked but
        /// before it acknowledged: on a line that loses what comes while it is masked (an I/O
        /// APIC's edge input) that end raises nothing, and only the look after the ack sees it.
        #[test]
        fn an_end_the_masked_line_lost_is_seen_after_the_ack() {
            let machine = mach::sim::irq::Machine::losing_masked_edges();
            let sim = SimChannel::new(Some(SimDrive::new(64, true)), None).with_line(&machine, 14);
            let engine = BusMasterDma::new(SimBusMaster(sim.clone()), sim.memory(0x1000, TABLE_BYTES), sim.memory(0x2_0000, 8 * SECTOR)).unwrap();
            let line = mach::irq::IrqDevice::open(machine.device_master()).unwrap().register(14).unwrap();
            let releasing = sim.clone();
            let line = BeforeFirstAck { line: SimLine(line), before: Some(move || releasing.state().release_stalled_dma()) };
            let mut channel = Channel::new(sim.clone(), StepClock::new(1), TIMEOUTS).with_dma(Box::new(engine)).with_line(Box::new(line));
            let id = channel.identify(Drive::Master).unwrap();
            sim.state().drives[0].as_mut().unwrap().data.insert(3, [7; SECTOR]);
            sim.state().drives[0].as_mut().unwrap().faults = Faults { stalled_dma: true, ..Faults::default() };
            machine.raise(14);
            let mut read = [0; SECTOR];
            channel.read(Drive::Master, &id, Transfer::Dma, 3, &mut read).unwrap();
            assert_eq!(read, [7; SECTOR]);
            assert_eq!((machine.delivered(), machine.unacked(14)), (1, 0), "the end raised nothing the driver saw");
        }

        /// Memory a controller cannot use is refused when the engine is made.
        #[test]
        fn dma_memory_the_controller_cannot_use_is_refused() {
            let sim = SimChannel::new(Some(SimDrive::new(64, true)), None);
            let engine = |table: SimMemory, buffer: SimMemory| BusMasterDma::new(SimBusMaster(sim.clone()), table, buffer).err();
            let refused = |what| Some(AtaError::Unsupported(what));
            assert_eq!(engine(sim.memory(0xF000, 0x2000), sim.memory(0x10_0000, 4096)), refused("a PRD table not 4-byte aligned within 64 KiB"));
            assert_eq!(engine(sim.memory(0x2_0000, 8), sim.memory(0x3_F000, 0x2000)), refused("a PRD table under a page or too small for its bounce buffer"));
            assert_eq!(engine(sim.memory(0x8_0000, 4096), sim.memory(0xFFFF_F000, 0x2000)), refused("DMA memory above 4 GiB"));
            assert_eq!(engine(sim.memory(0x5_0000, 4096), sim.memory(0x6_0001, 4096)), refused("a bounce buffer at an odd address or under a sector"));
        }
    }
}
