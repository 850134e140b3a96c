//! Bus-master DMA of a PCI IDE controller (SFF-8038i, as QEMU's PIIX emulates it): a table of
//! physical region descriptors (PRDs) tells the controller where in memory a command's data go;
//! the driver starts the engine after issuing READ/WRITE DMA and polls its status until it stops.
//! The data pass through one bounce buffer of physically contiguous memory below 4 GiB (the
//! PRDs' addresses are 32-bit), allocated once with the table and kept for the channel's life:
//! no request allocates, so no request can leak DMA memory.

use alloc::boxed::Box;
use core::sync::atomic::{fence, Ordering};
use mach::ool::OolMemory;
use mach::port::PortName;

use super::AtaError;

/// Bus-master register bits.
pub mod bm {
    /// Command register: the engine runs.
    pub const START: u8 = 0x01;
    /// Command register: the device writes memory (a READ DMA); clear for WRITE DMA.
    pub const TO_MEMORY: u8 = 0x08;
    /// Status register: the engine is moving data.
    pub const ACTIVE: u8 = 0x01;
    /// Status register (write 1 to clear): the transfer failed on the bus.
    pub const ERROR: u8 = 0x02;
    /// Status register (write 1 to clear): the drive raised its interrupt.
    pub const INTERRUPT: u8 = 0x04;
}

/// One channel's bus-master registers (offset 0: command, 2: status, 4: the PRD table's address).
pub trait BusMaster {
    fn command(&mut self, value: u8);
    fn status(&mut self) -> u8;
    fn set_status(&mut self, value: u8);
    fn set_table(&mut self, physical: u32);
}

/// Physically contiguous memory a device reaches by physical address.
pub trait DmaMemory {
    /// The physical address of the first byte.
    fn physical(&self) -> u64;
    fn size(&self) -> usize;
    /// Copies `data` in at `offset`.
    fn copy_in(&mut self, offset: usize, data: &[u8]);
    /// Copies `buf.len()` bytes out from `offset`.
    fn copy_out(&self, offset: usize, buf: &mut [u8]);
}

/// Which way a DMA command moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// READ DMA: the drive writes memory.
    ToMemory,
    /// WRITE DMA: the drive reads memory.
    FromMemory,
}

/// What the channel needs of a DMA engine: a bounce buffer to fill or empty, and the engine's
/// start, status and stop.
pub trait DmaEngine {
    /// Bytes one command can move at most (the bounce buffer's size, whole sectors).
    fn capacity(&self) -> usize;
    /// Copies a write's data into the bounce buffer.
    fn load(&mut self, data: &[u8]);
    /// Copies a read's data out of the bounce buffer.
    fn store(&self, buf: &mut [u8]);
    /// Describes the first `bytes` of the bounce buffer in the PRD table and programs the
    /// engine (stopped) for `direction`, its old status bits cleared.
    fn prepare(&mut self, bytes: usize, direction: Direction);
    /// Starts the engine (after the command is issued).
    fn start(&mut self, direction: Direction);
    fn status(&mut self) -> u8;
    /// Stops the engine; returns its status at that moment and clears the error and interrupt
    /// bits.
    fn stop(&mut self) -> u8;
}

/// A channel's DMA engine, if it has one.
pub type Engine = Option<Box<dyn DmaEngine + Send>>;

/// A PRD covers at most 64 KiB and may not cross a 64 KiB boundary.
const PRD_LIMIT: u64 = 1 << 16;
/// Bytes of one PRD: address, byte count, end-of-table flag.
const PRD_BYTES: usize = 8;
const END_OF_TABLE: u16 = 0x8000;

/// The PRDs for `bytes` from `physical`: `(address, bytes)` pieces, each within one 64 KiB
/// window.
pub fn regions(physical: u64, bytes: usize) -> impl Iterator<Item = (u32, u32)> {
    let end = physical + bytes as u64;
    let mut at = physical;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let window_end = (at / PRD_LIMIT + 1) * PRD_LIMIT;
        let piece = (window_end.min(end) - at) as u32;
        let region = (at as u32, piece);
        at += u64::from(piece);
        Some(region)
    })
}

/// The PRD table's entries for `regions`, the last marked end of table.
fn table_entries(regions: impl Iterator<Item = (u32, u32)>) -> impl Iterator<Item = [u8; PRD_BYTES]> {
    let mut regions = regions.peekable();
    core::iter::from_fn(move || {
        let (address, bytes) = regions.next()?;
        let flags = if regions.peek().is_none() { END_OF_TABLE } else { 0 };
        let mut entry = [0; PRD_BYTES];
        entry[..4].copy_from_slice(&address.to_le_bytes());
        // A byte count of 0 means 64 KiB.
        entry[4..6].copy_from_slice(&(bytes as u16).to_le_bytes());
        entry[6..].copy_from_slice(&flags.to_le_bytes());
        Some(entry)
    })
}

/// Bounce buffers reach at most this physical address: the PRDs' addresses are 32-bit.
pub const DMA_LIMIT: u64 = 1 << 32;
/// Physical bounce-buffer sizes the engine is made with: big enough for a 1 MiB request in one
/// command.
pub const BOUNCE_BYTES: usize = 1 << 20;
/// The PRD table: one page, so it never crosses a 64 KiB boundary; it has room for the PRDs of
/// the bounce buffer, one per 64 KiB window it touches.
pub const TABLE_BYTES: usize = 4096;

/// A bus master with its PRD table and bounce buffer.
pub struct BusMasterDma<B, M> {
    bus_master: B,
    table: M,
    buffer: M,
}

impl<B: BusMaster, M: DmaMemory> BusMasterDma<B, M> {
    /// Refuses memory the controller cannot use: beyond 32-bit addresses, a table that is not
    /// 4-byte aligned, crosses a 64 KiB boundary or is too small for the buffer's PRDs, a buffer
    /// not at an even address or smaller than a sector.
    pub fn new(bus_master: B, table: M, buffer: M) -> Result<Self, AtaError> {
        let fits = |memory: &M| memory.physical().checked_add(memory.size() as u64).is_some_and(|end| end <= DMA_LIMIT);
        if !fits(&table) || !fits(&buffer) {
            return Err(AtaError::Unsupported("DMA memory above 4 GiB"));
        }
        let table_start = table.physical();
        let table_end = table_start + table.size() as u64 - 1;
        if !table_start.is_multiple_of(4) || table_start / PRD_LIMIT != table_end / PRD_LIMIT {
            return Err(AtaError::Unsupported("a PRD table not 4-byte aligned within 64 KiB"));
        }
        if regions(buffer.physical(), buffer.size()).count() * PRD_BYTES > table.size() {
            return Err(AtaError::Unsupported("a PRD table too small for its bounce buffer"));
        }
        if !buffer.physical().is_multiple_of(2) || buffer.size() < super::SECTOR {
            return Err(AtaError::Unsupported("a bounce buffer at an odd address or under a sector"));
        }
        Ok(BusMasterDma { bus_master, table, buffer })
    }
}

impl<B: BusMaster, M: DmaMemory> DmaEngine for BusMasterDma<B, M> {
    fn capacity(&self) -> usize {
        self.buffer.size() / super::SECTOR * super::SECTOR
    }

    fn load(&mut self, data: &[u8]) {
        self.buffer.copy_in(0, data);
    }

    fn store(&self, buf: &mut [u8]) {
        self.buffer.copy_out(0, buf);
    }

    fn prepare(&mut self, bytes: usize, direction: Direction) {
        for (i, entry) in table_entries(regions(self.buffer.physical(), bytes)).enumerate() {
            self.table.copy_in(i * PRD_BYTES, &entry);
        }
        self.bus_master.command(direction_bits(direction));
        self.bus_master.set_status(bm::ERROR | bm::INTERRUPT);
        // `new` checked the table lies below 4 GiB.
        self.bus_master.set_table(self.table.physical() as u32);
    }

    fn start(&mut self, direction: Direction) {
        // The bounce buffer's and table's stores before the device reads them.
        fence(Ordering::SeqCst);
        self.bus_master.command(direction_bits(direction) | bm::START);
    }

    fn status(&mut self) -> u8 {
        self.bus_master.status()
    }

    fn stop(&mut self) -> u8 {
        self.bus_master.command(0);
        let status = self.bus_master.status();
        self.bus_master.set_status(bm::ERROR | bm::INTERRUPT);
        // The bounce buffer's loads after the device wrote it.
        fence(Ordering::SeqCst);
        status
    }
}

/// Wired, physically contiguous memory below 4 GiB from gnumach's `vm_allocate_contiguous`;
/// released when dropped.
pub struct Contiguous {
    memory: OolMemory,
    physical: u64,
}

impl Contiguous {
    pub fn allocate(host_priv: PortName, len: usize) -> mach::kern::Result<Contiguous> {
        let (memory, physical) = OolMemory::contiguous_at(host_priv, len, DMA_LIMIT)?;
        Ok(Contiguous { memory, physical })
    }
}

impl DmaMemory for Contiguous {
    fn physical(&self) -> u64 {
        self.physical
    }

    fn size(&self) -> usize {
        self.memory.len()
    }

    fn copy_in(&mut self, offset: usize, data: &[u8]) {
        self.memory.as_mut_slice()[offset..offset + data.len()].copy_from_slice(data);
    }

    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.memory.as_slice()[offset..offset + buf.len()]);
    }
}

fn direction_bits(direction: Direction) -> u8 {
    match direction {
        Direction::ToMemory => bm::TO_MEMORY,
        Direction::FromMemory => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn regions_split_at_64_kib_boundaries_only() {
        let within: Vec<_> = regions(0x1_0000, 0x1_0000).collect();
        assert_eq!(within, [(0x1_0000, 0x1_0000)]);
        // 1 MiB from 4 KiB below a boundary: a short piece, 15 whole windows, the rest.
        let crossing: Vec<_> = regions(0x2_F000, 1 << 20).collect();
        assert_eq!(crossing.len(), 17);
        assert_eq!(crossing[0], (0x2_F000, 0x1000));
        assert_eq!(crossing[1], (0x3_0000, 0x1_0000));
        assert_eq!(crossing[16], (0x12_0000, 0xF000));
        for (address, bytes) in crossing.iter().copied() {
            let last = u64::from(address) + u64::from(bytes) - 1;
            assert_eq!(u64::from(address) >> 16, last >> 16, "{address:#x}+{bytes:#x} crosses 64 KiB");
        }
        assert_eq!(crossing.iter().map(|r| u64::from(r.1)).sum::<u64>(), 1 << 20);
        assert_eq!(regions(0x1000, 512).collect::<Vec<_>>(), [(0x1000, 512)]);
    }

    #[test]
    fn the_table_encodes_64_kib_as_zero_and_ends_with_the_last_entry() {
        let table: Vec<_> = table_entries(regions(0xF000, 0x1_1000)).collect();
        assert_eq!(table, [[0x00, 0xF0, 0, 0, 0x00, 0x10, 0, 0], [0, 0, 1, 0, 0, 0, 0x00, 0x80]]);
    }
}
