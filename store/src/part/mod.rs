//! `part:N:CHILD`: partition N of a store, found in the child's MBR or GPT and opened as a remap
//! of the child's blocks — libstore's `part` class, with the tables read here instead of through
//! libparted.
//!
//! Numbering follows libparted's, which upstream relies on: MBR primary partitions are numbered
//! by their slot (1–4, gaps stay gaps), logical partitions inside the extended one from 5 in the
//! order of the chain, the extended partition itself has no number; GPT partitions are numbered
//! by their entry (1-based), unused entries leave gaps. Tables are read in 512-byte sectors
//! whatever the child's block size (libparted's `PED_SECTOR_SIZE`, as upstream uses it).
//!
//! A table is checked whole before any partition is used: every partition inside the child and
//! clear of the table and of every other partition, the GPT header and entry array CRCs right.
//! Only the primary GPT header is read; a disk whose primary header is damaged is refused rather
//! than repaired from the backup header.

mod crc32;
mod gpt;
mod mbr;

use alloc::vec;
use alloc::vec::Vec;

use crate::class::remap;
use crate::errno::Errno;
use crate::error::{Error, PartitionError, Problem, Result, Scheme};
use crate::runs::Run;
use crate::store::Store;

/// The sector size partition tables are written in.
pub const SECTOR: u64 = 512;

/// One partition, in 512-byte sectors of the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub start: u64,
    pub sectors: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub scheme: Scheme,
    /// In number order.
    pub partitions: Vec<Partition>,
}

/// What stopped a table from being read: the table itself, or the child's I/O.
pub(crate) enum Failure {
    Table(Problem),
    Read(Error),
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Failure {
        Failure::Table(problem)
    }
}

/// The child seen in 512-byte sectors, whatever its block size.
pub(crate) struct Sectors<'a> {
    store: &'a mut Store,
    count: u64,
}

impl Sectors<'_> {
    /// Sectors `lba..lba + count`; `Truncated` when they are not all in the child.
    pub(crate) fn read(&mut self, lba: u64, count: u64) -> core::result::Result<Vec<u8>, Failure> {
        if lba.checked_add(count).is_none_or(|end| end > self.count) {
            return Err(Problem::Truncated.into());
        }
        let bs = u64::from(self.store.block_size());
        let (first, last) = (lba * SECTOR, (lba + count) * SECTOR);
        let (block, skip) = (first / bs, (first % bs) as usize);
        let blocks = last.div_ceil(bs) - block;
        let want = usize::try_from(blocks * bs).map_err(|_| Failure::Table(Problem::Truncated))?;
        let data = self.store.read_vec(block, want).map_err(|e| Failure::Read(Error::child("part", 0, e)))?;
        let len = (count * SECTOR) as usize;
        // The sectors are inside the child: a short read is the child's failure, not the table's.
        let short = || Failure::Read(Error::child("part", 0, Error::class(self.store.class_name(), Errno::EIO)));
        data.get(skip..skip + len).map(<[u8]>::to_vec).ok_or_else(short)
    }
}

/// Little-endian fields of on-disk structures (callers index within a buffer they sized).
pub(crate) fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

pub(crate) fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from(le32(bytes, at)) | u64::from(le32(bytes, at + 4)) << 32
}

/// Reads and checks `store`'s partition table.
pub(crate) fn read_table(store: &mut Store) -> core::result::Result<Table, Failure> {
    let count = store.size() / SECTOR;
    let mut disk = Sectors { store, count };
    let sector0 = disk.read(0, 1)?;
    if sector0[510..512] != [0x55, 0xAA] {
        return Err(Problem::NoTable.into());
    }
    let table = if mbr::is_protective(&sector0) {
        Table { scheme: Scheme::Gpt, partitions: gpt::parse(&mut disk)? }
    } else {
        Table { scheme: Scheme::Mbr, partitions: mbr::parse(&sector0, &mut disk)? }
    };
    check(&table.partitions, count)?;
    Ok(table)
}

/// Every partition inside the child, off sector 0, and clear of the others.
fn check(partitions: &[Partition], sectors: u64) -> core::result::Result<(), Problem> {
    for part in partitions {
        let end = part.start.checked_add(part.sectors).filter(|end| *end <= sectors);
        if end.is_none() {
            let end = part.start.saturating_add(part.sectors);
            return Err(Problem::PastEnd { number: part.number, end, sectors });
        }
        if part.start == 0 {
            return Err(Problem::OverTable { number: part.number });
        }
    }
    let mut by_start: Vec<&Partition> = partitions.iter().collect();
    by_start.sort_by_key(|part| part.start);
    for pair in by_start.windows(2) {
        // Ends are known not to overflow from the loop above.
        if pair[0].start + pair[0].sectors > pair[1].start {
            let (first, second) = (pair[0].number.min(pair[1].number), pair[0].number.max(pair[1].number));
            return Err(Problem::Overlap { first, second });
        }
    }
    Ok(())
}

/// Partition `number` (1-based) of `child`, as a remap store over it; `child` is consumed.
pub fn create(mut child: Store, number: u32) -> Result<Store> {
    let fail = |problem| Error::from(PartitionError { number, problem });
    let table = match read_table(&mut child) {
        Ok(table) => table,
        Err(Failure::Table(problem)) => return Err(fail(problem)),
        Err(Failure::Read(error)) => return Err(error),
    };
    let Some(part) = table.partitions.iter().find(|p| p.number == number) else {
        let available = table.partitions.iter().map(|p| p.number).collect();
        return Err(fail(Problem::NotFound { scheme: table.scheme, available }));
    };
    let block_size = child.block_size();
    let bs = u64::from(block_size);
    let (start, length) = (part.start * SECTOR, part.sectors * SECTOR);
    if start % bs != 0 || length % bs != 0 {
        return Err(fail(Problem::Misaligned { block_size }));
    }
    remap::create(child, vec![Run::new(start / bs, length / bs)])
}

#[cfg(test)]
pub(crate) mod tests;
