//! What one AHCI command is in memory (AHCI 1.3.1, sections 4.2.2–4.2.3): a command header in
//! the command list, and a command table holding the command FIS (a host-to-device register FIS)
//! and the physical region descriptor table (PRDT) that says where the data go. Pure encoding,
//! so host tests check every field.

use super::super::SECTOR;

/// Bytes of one command header; the command list holds 32, this driver uses slot 0.
pub const HEADER_BYTES: usize = 32;
/// The command FIS's length in the header's CFL field, in dwords (a register FIS is 20 bytes).
const FIS_DWORDS: u32 = 5;
/// Where the PRDT starts in the command table (after the FIS, ATAPI command and reserved area).
pub const PRDT_OFFSET: usize = 0x80;
/// Bytes of one PRDT entry.
pub const PRD_BYTES: usize = 16;
/// The most one PRDT entry may describe (its byte-count field is 22 bits, count − 1).
pub const PRD_LIMIT: u64 = 4 << 20;

/// FIS type of a host-to-device register FIS.
const FIS_REGISTER_H2D: u8 = 0x27;
/// Its flags byte: this FIS carries a command (not a device-control update).
const FIS_COMMAND: u8 = 0x80;
/// Device register: LBA addressing.
const DEVICE_LBA: u8 = 0x40;

/// Header DW0 bit W: the data go from memory to the device.
const HEADER_WRITE: u32 = 1 << 6;

/// An ATA command as a register FIS carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub opcode: u8,
    pub lba: u64,
    /// Sectors (0 for commands without data count); 65536 (48-bit) and 256 (28-bit) are encoded
    /// as 0, as the task file does.
    pub count: u32,
    /// A 48-bit (EXT) command: LBA bits 24–47 in the FIS's "exp" bytes, not the device register.
    pub lba48: bool,
}

impl Command {
    /// A command without LBA or count (IDENTIFY DEVICE, FLUSH CACHE).
    pub fn plain(opcode: u8) -> Command {
        Command { opcode, lba: 0, count: 0, lba48: false }
    }

    /// The 20-byte host-to-device register FIS.
    pub fn fis(&self) -> [u8; 20] {
        let lba = self.lba.to_le_bytes();
        let mut fis = [0; 20];
        fis[0] = FIS_REGISTER_H2D;
        fis[1] = FIS_COMMAND;
        fis[2] = self.opcode;
        fis[4..7].copy_from_slice(&lba[..3]);
        if self.lba48 {
            fis[7] = DEVICE_LBA;
            fis[8..11].copy_from_slice(&lba[3..6]);
        } else {
            fis[7] = DEVICE_LBA | (lba[3] & 0x0F);
        }
        let count = (self.count as u16).to_le_bytes();
        fis[12] = count[0];
        fis[13] = if self.lba48 { count[1] } else { 0 };
        fis
    }
}

/// The command header of a command whose table is at `table` (128-byte aligned) with `entries`
/// PRDT entries; `write` when the data go to the device.
pub fn header(table: u64, entries: usize, write: bool) -> [u8; HEADER_BYTES] {
    let mut dw0 = FIS_DWORDS | (entries as u32) << 16;
    if write {
        dw0 |= HEADER_WRITE;
    }
    let mut header = [0; HEADER_BYTES];
    header[0..4].copy_from_slice(&dw0.to_le_bytes());
    // DW1, the bytes transferred, is the HBA's to write.
    header[8..16].copy_from_slice(&table.to_le_bytes());
    header
}

/// The PRDT entries for `bytes` from `physical`: `(address, bytes)` pieces of at most
/// [`PRD_LIMIT`].
pub fn regions(physical: u64, bytes: usize) -> impl Iterator<Item = (u64, u64)> {
    let end = physical + bytes as u64;
    let mut at = physical;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let piece = PRD_LIMIT.min(end - at);
        let region = (at, piece);
        at += piece;
        Some(region)
    })
}

/// One PRDT entry: the address (even: bit 0 is reserved) and the byte count minus one (so odd:
/// a whole number of words). No interrupt on completion: the driver polls.
pub fn prd_entry((address, bytes): (u64, u64)) -> [u8; PRD_BYTES] {
    let mut entry = [0; PRD_BYTES];
    entry[0..8].copy_from_slice(&address.to_le_bytes());
    entry[12..16].copy_from_slice(&((bytes - 1) as u32).to_le_bytes());
    entry
}

/// Sectors one command may carry at most: what its count field reaches.
pub fn max_sectors(lba48: bool) -> usize {
    if lba48 {
        65536
    } else {
        256
    }
}

/// Whether `bytes` from `physical` is memory a PRDT can describe: words at even addresses.
pub fn describable(physical: u64, bytes: usize) -> bool {
    physical.is_multiple_of(2) && bytes.is_multiple_of(2) && bytes >= SECTOR
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn a_48_bit_fis_spreads_the_lba_over_six_bytes_and_the_count_over_two() {
        let fis = Command { opcode: 0x25, lba: 0x0000_BEEF_CAFE_F00D, count: 0x1234, lba48: true }.fis();
        assert_eq!(fis[..4], [0x27, 0x80, 0x25, 0]);
        assert_eq!(fis[4..7], [0x0D, 0xF0, 0xFE], "LBA 0-23");
        assert_eq!(fis[7], 0x40, "LBA mode, no LBA bits in the device register");
        assert_eq!(fis[8..11], [0xCA, 0xEF, 0xBE], "LBA 24-47");
        assert_eq!(fis[12..14], [0x34, 0x12]);
        assert_eq!(fis[14..], [0; 6]);
        let most = Command { opcode: 0x35, lba: 0, count: 65536, lba48: true }.fis();
        assert_eq!(most[12..14], [0, 0], "65536 sectors are encoded as 0");
    }

    #[test]
    fn a_28_bit_fis_puts_lba_bits_24_to_27_in_the_device_register() {
        let fis = Command { opcode: 0xC8, lba: 0x0ABC_DEF1, count: 256, lba48: false }.fis();
        assert_eq!(fis[4..8], [0xF1, 0xDE, 0xBC, 0x4A]);
        assert_eq!(fis[8..11], [0; 3]);
        assert_eq!(fis[12..14], [0, 0], "256 sectors are encoded as 0");
    }

    #[test]
    fn the_header_names_the_fis_length_direction_entries_and_table() {
        let header = header(0x1234_5680, 3, true);
        assert_eq!(u32::from_le_bytes(header[0..4].try_into().unwrap()), 5 | 1 << 6 | 3 << 16);
        assert_eq!(header[4..8], [0; 4], "bytes transferred start at 0");
        assert_eq!(u64::from_le_bytes(header[8..16].try_into().unwrap()), 0x1234_5680);
        let read = super::header(0x80, 1, false);
        assert_eq!(u32::from_le_bytes(read[0..4].try_into().unwrap()), 5 | 1 << 16);
    }

    #[test]
    fn prd_entries_hold_at_most_4_mib_and_count_minus_one() {
        let pieces: Vec<_> = regions(0x10_0000, (9 << 20) + 512).collect();
        assert_eq!(pieces, [(0x10_0000, 4 << 20), (0x50_0000, 4 << 20), (0x90_0000, (1 << 20) + 512)]);
        let entry = prd_entry((0x1_2345_6000, 4 << 20));
        assert_eq!(u64::from_le_bytes(entry[0..8].try_into().unwrap()), 0x1_2345_6000);
        assert_eq!(u32::from_le_bytes(entry[12..16].try_into().unwrap()), (4 << 20) - 1);
        assert_eq!(prd_entry((0x2000, 512))[12..16], [0xFF, 0x01, 0, 0], "511, odd: whole words");
        assert!(describable(0x2000, 512) && !describable(0x2001, 512) && !describable(0x2000, 511));
    }
}
