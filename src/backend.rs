//! The one operations table between the device protocol and a disk driver (the role
//! libmachdev's `machdev_device_emulation_ops` plays in the C Hurd).
//!
//! The server does every protocol check (modes, bounds, sizes) before it calls a backend, so a
//! backend sees only whole, in-range requests of whole records, one call per client request.
//! Methods take `&self`: a backend that can run requests in parallel (rump) does, one that
//! cannot (a PIO channel) serialises inside. A DMA or AHCI backend fits the same table: it reads
//! into and writes from the caller's buffer and returns when the transfer is complete.

pub mod ata;
pub mod flush_mode;
pub mod kernel;
pub mod memory;
pub mod rump;

use mach::ool::OolMemory;

use crate::device::{Access, Error};

/// The shape of an opened disk: a whole number of records of one power-of-two size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    record_size: u32,
    records: u64,
}

impl Geometry {
    /// Largest record size the 32-bit status words can carry.
    pub const MAX_RECORD_SIZE: u32 = 1 << 30;

    /// `None` unless `record_size` is a power of two no larger than [`Self::MAX_RECORD_SIZE`]
    /// and the byte size fits in 64 bits (so offset arithmetic below it cannot overflow).
    pub fn new(record_size: u32, records: u64) -> Option<Geometry> {
        let valid_record_size =
            record_size.is_power_of_two() && record_size <= Self::MAX_RECORD_SIZE;
        records.checked_mul(u64::from(record_size))?;
        valid_record_size.then_some(Geometry { record_size, records })
    }

    pub fn record_size(&self) -> u32 {
        self.record_size
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn bytes(&self) -> u64 {
        self.records * u64::from(self.record_size)
    }
}

/// A driver: turns the names it owns into opened disks.
pub trait Backend: Send + Sync {
    type Disk: Disk;

    /// Opens `name` (e.g. `wd0`) for `access`. `D_NO_SUCH_DEVICE` means "not mine": the server
    /// forwards the open to the upstream device master (libmachdev's rule), so names the
    /// backend does not own must fail with it, at once. Any other error is the client's answer.
    fn open(&self, name: &[u8], access: Access) -> Result<Self::Disk, Error>;
}

/// An opened disk. Dropping it closes it.
pub trait Disk: Send + Sync {
    fn geometry(&self) -> Geometry;

    /// Fills `buf` from the records starting at `record`; `buf.len()` is a whole number of
    /// records inside the disk.
    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error>;

    /// Reads `len` bytes (whole records inside the disk, not 0) at `record` into fresh memory a
    /// reply carries away out of line: [`read_into_fresh`] for most disks, memory the kernel gives
    /// the driver for a DMA straight into it for others. Memory that holds anything but the
    /// records never leaves. No default, so that a disk wrapping another cannot silently lose
    /// the inner disk's way.
    fn read_out_of_line(&self, record: u64, len: usize) -> Result<OolMemory, Error>;

    /// Writes `data` at `record`; same guarantees as [`Disk::read`]. Returns once the drive has
    /// the data (possibly only in its volatile cache).
    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error>;

    /// Writes `data`, received out of line, at `record`; as [`Disk::write`] of its bytes for
    /// most disks, straight from the received pages for a driver that can (no default, as
    /// above).
    fn write_out_of_line(&self, record: u64, data: OolMemory) -> Result<(), Error>;

    /// Makes every write that returned before this call durable.
    fn flush(&self) -> Result<(), Error>;
}

/// [`Disk::read_out_of_line`] through [`Disk::read`]: zero-filled memory filled by it.
pub fn read_into_fresh<D: Disk + ?Sized>(disk: &D, record: u64, len: usize) -> Result<OolMemory, Error> {
    let mut memory = OolMemory::new(len)?;
    disk.read(record, memory.as_mut_slice())?;
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_rejects_odd_record_sizes_and_overflowing_sizes() {
        assert_eq!(Geometry::new(512, 8).map(|g| g.bytes()), Some(4096));
        assert!(Geometry::new(0, 1).is_none());
        assert!(Geometry::new(520, 1).is_none());
        assert!(Geometry::new(1 << 31, 1).is_none());
        assert!(Geometry::new(512, u64::MAX / 512 + 1).is_none());
        assert!(Geometry::new(512, u64::MAX / 512).is_some());
    }
}
