//! The GUID partition table: a header at sector 1 and an array of entries it points to, each
//! covered by a CRC-32 (UEFI specification, chapter 5).
//!
//! Header fields used: signature "EFI PART" @0, header size @12, header CRC @16 (computed with
//! itself zeroed), this header's sector @24, entry array sector @72, entry count @80, entry size
//! @84, entry array CRC @88. Entry fields: type GUID @0 (all zero: unused), first sector @32,
//! last sector (inclusive) @40.

use alloc::vec::Vec;

use super::crc32::crc32;
use super::{le32, le64, Failure, Partition, Problem, Sectors, SECTOR};

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The smallest header the specification defines.
const MIN_HEADER: usize = 92;
const MIN_ENTRY: usize = 128;
/// An entry array larger than this is garbage (the usual one is 16 KiB).
const MAX_ENTRIES_BYTES: usize = 1 << 20;

fn bad(what: &'static str) -> Failure {
    Failure::Table(Problem::BadGpt(what))
}

pub(super) fn parse(disk: &mut Sectors) -> Result<Vec<Partition>, Failure> {
    let header = disk.read(1, 1)?;
    if &header[..8] != SIGNATURE {
        return Err(Problem::ProtectiveWithoutGpt.into());
    }
    let size = le32(&header, 12) as usize;
    if !(MIN_HEADER..=SECTOR as usize).contains(&size) {
        return Err(bad("header size out of range"));
    }
    let mut zeroed = header[..size].to_vec();
    zeroed[16..20].fill(0);
    if crc32(&zeroed) != le32(&header, 16) {
        return Err(bad("header CRC mismatch"));
    }
    if le64(&header, 24) != 1 {
        return Err(bad("the header does not say it is at sector 1"));
    }
    let (array_lba, count, entry_size) = (le64(&header, 72), le32(&header, 80) as usize, le32(&header, 84) as usize);
    if entry_size < MIN_ENTRY || !entry_size.is_multiple_of(8) {
        return Err(bad("entry size is not a multiple of 8 of at least 128"));
    }
    let bytes = count.checked_mul(entry_size).filter(|b| *b <= MAX_ENTRIES_BYTES).ok_or(bad("entry array too large"))?;
    if array_lba < 2 {
        return Err(bad("the entry array overlaps the header"));
    }
    let array = disk.read(array_lba, (bytes as u64).div_ceil(SECTOR)).map_err(|failure| match failure {
        Failure::Table(Problem::Truncated) => bad("the entry array lies past the end of the store"),
        other => other,
    })?;
    if crc32(&array[..bytes]) != le32(&header, 88) {
        return Err(bad("entry array CRC mismatch"));
    }
    let mut partitions = Vec::new();
    for (index, entry) in array[..bytes].chunks_exact(entry_size).enumerate() {
        if entry[..16].iter().all(|b| *b == 0) {
            continue;
        }
        let number = index as u32 + 1;
        let (first, last) = (le64(entry, 32), le64(entry, 40));
        let sectors = last.checked_sub(first).and_then(|d| d.checked_add(1)).ok_or(Problem::Inverted { number })?;
        partitions.push(Partition { number, start: first, sectors });
    }
    Ok(partitions)
}
