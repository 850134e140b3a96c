//! The MBR: four slots in sector 0, and logical partitions in a chain of extended boot records
//! (EBRs) inside the one extended partition.
//!
//! Slot layout (16 bytes from offset 446): boot indicator @0, type @4, first sector @8 (u32),
//! sectors @12 (u32). In an EBR, slot 0 is the logical partition (relative to the EBR) and slot 1
//! the link to the next EBR (relative to the start of the extended partition).

use alloc::vec::Vec;

use super::{le32, Failure, Partition, Problem, Sectors};

const SLOTS: usize = 446;
const SLOT_SIZE: usize = 16;
/// Partition type of a GPT's protective MBR entry.
const PROTECTIVE: u8 = 0xEE;
/// The types libparted takes for an extended partition (CHS, LBA, Linux).
const EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
/// Logical partitions are numbered from here.
const FIRST_LOGICAL: u32 = 5;
/// A chain of more EBRs than this loops (libparted's limit on logical partitions is lower).
const MAX_EBRS: usize = 128;

struct Slot {
    boot: u8,
    kind: u8,
    start: u64,
    sectors: u64,
}

impl Slot {
    fn read(sector: &[u8], index: usize) -> Slot {
        let at = SLOTS + index * SLOT_SIZE;
        Slot {
            boot: sector[at],
            kind: sector[at + 4],
            start: u64::from(le32(sector, at + 8)),
            sectors: u64::from(le32(sector, at + 12)),
        }
    }

    fn is_empty(&self) -> bool {
        self.kind == 0 || self.sectors == 0
    }
}

/// Whether sector 0 is a GPT's protective MBR.
pub(super) fn is_protective(sector0: &[u8]) -> bool {
    (0..4).any(|index| Slot::read(sector0, index).kind == PROTECTIVE)
}

pub(super) fn parse(sector0: &[u8], disk: &mut Sectors) -> Result<Vec<Partition>, Failure> {
    let mut partitions = Vec::new();
    let mut extended = None;
    for index in 0..4 {
        let slot = Slot::read(sector0, index);
        if slot.boot != 0 && slot.boot != 0x80 {
            return Err(Problem::BadBootIndicator { slot: index as u8 + 1, value: slot.boot }.into());
        }
        if slot.is_empty() {
            continue;
        }
        if EXTENDED.contains(&slot.kind) {
            if extended.replace((slot.start, slot.sectors)).is_some() {
                return Err(Problem::TwoExtended.into());
            }
        } else {
            partitions.push(Partition { number: index as u32 + 1, start: slot.start, sectors: slot.sectors });
        }
    }
    if let Some((start, sectors)) = extended {
        logical(disk, start, sectors, &mut partitions)?;
    }
    Ok(partitions)
}

/// Follows the EBR chain of the extended partition at `base` (`sectors` long).
fn logical(disk: &mut Sectors, base: u64, sectors: u64, partitions: &mut Vec<Partition>) -> Result<(), Failure> {
    let inside = |lba: u64| lba >= base && lba - base < sectors;
    let mut ebr = base;
    let mut number = FIRST_LOGICAL;
    for _ in 0..MAX_EBRS {
        let sector = disk.read(ebr, 1)?;
        if sector[510..512] != [0x55, 0xAA] {
            return Err(Problem::BadChain("an extended boot record does not end in 55 aa").into());
        }
        let (part, link) = (Slot::read(&sector, 0), Slot::read(&sector, 1));
        if !part.is_empty() {
            partitions.push(Partition { number, start: ebr + part.start, sectors: part.sectors });
            number += 1;
        }
        if link.is_empty() {
            return Ok(());
        }
        ebr = base + link.start;
        if !inside(ebr) {
            return Err(Problem::BadChain("a link points outside the extended partition").into());
        }
    }
    Err(Problem::BadChain("it does not end (a loop?)").into())
}
