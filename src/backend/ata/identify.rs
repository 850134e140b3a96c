//! What IDENTIFY DEVICE tells the driver: size, addressing, cache and flush support.

use super::registers::SECTOR;
use super::AtaError;

/// The facts about a drive the driver uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Addressable 512-byte sectors.
    pub sectors: u64,
    /// 48-bit addressing (READ/WRITE SECTORS EXT, FLUSH CACHE EXT when supported).
    pub lba48: bool,
    pub write_cache_supported: bool,
    pub write_cache_enabled: bool,
    pub flush_cache_ext: bool,
    /// Most sectors one data request of READ/WRITE MULTIPLE may carry (0: no multiple mode).
    pub multiple_max: u8,
    /// DMA data transfer (READ/WRITE DMA).
    pub dma: bool,
    /// Model string, trailing blanks removed.
    pub model: ModelName,
}

/// The 40-character model field.
#[derive(Clone, PartialEq, Eq)]
pub struct ModelName([u8; 40]);

impl ModelName {
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().rposition(|&b| b != b' ' && b != 0).map_or(0, |last| last + 1);
        &self.0[..end]
    }
}

impl core::fmt::Debug for ModelName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", core::str::from_utf8(self.as_bytes()).unwrap_or("<not ASCII>"))
    }
}

impl Identity {
    /// Parses the 256 little-endian words of IDENTIFY DEVICE data.
    pub fn parse(data: &[u8; SECTOR]) -> Result<Identity, AtaError> {
        let word = |n: usize| u16::from_le_bytes([data[2 * n], data[2 * n + 1]]);
        let bit = |n: usize, b: u16| word(n) & (1 << b) != 0;
        if !bit(49, 9) {
            return Err(AtaError::Unsupported("no LBA addressing"));
        }
        // Word 106: valid when bit 14 is set and bit 15 clear; bit 12: sectors longer than 256 words.
        let w106 = word(106);
        if w106 & 0xC000 == 0x4000 && w106 & (1 << 12) != 0 {
            let words = u32::from(word(117)) | u32::from(word(118)) << 16;
            if words as usize * 2 != SECTOR {
                return Err(AtaError::Unsupported("logical sectors other than 512 bytes"));
            }
        }
        let lba48 = bit(83, 10);
        let sectors = if lba48 {
            (0..4).fold(0u64, |acc, i| acc | u64::from(word(100 + i)) << (16 * i))
        } else {
            u64::from(word(60)) | u64::from(word(61)) << 16
        };
        if sectors == 0 {
            return Err(AtaError::Unsupported("zero capacity"));
        }
        let mut model = [0; 40];
        for (i, pair) in model.chunks_exact_mut(2).enumerate() {
            pair.copy_from_slice(&word(27 + i).to_be_bytes()); // ATA strings are byte-swapped words
        }
        Ok(Identity {
            sectors,
            lba48,
            write_cache_supported: bit(82, 5),
            write_cache_enabled: bit(85, 5),
            flush_cache_ext: bit(83, 13),
            // Word 47: 0x80 in the high byte, the block limit in the low one.
            multiple_max: if word(47) >> 8 == 0x80 { word(47) as u8 } else { 0 },
            dma: bit(49, 8),
            model: ModelName(model),
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// IDENTIFY data for a drive of `sectors` with the given features, as a drive would send it;
    /// multiple mode up to 16 sectors and DMA, as QEMU's disk offers them.
    pub fn identify_data(sectors: u64, lba48: bool, write_cache: bool, flush_ext: bool) -> [u8; SECTOR] {
        transfer_modes(identify_data_without_modes(sectors, lba48, write_cache, flush_ext), 16, true)
    }

    /// `data` with word 47's multiple-mode limit (0: none) and word 49's DMA bit set as given.
    pub fn transfer_modes(mut data: [u8; SECTOR], multiple_max: u8, dma: bool) -> [u8; SECTOR] {
        let w47 = if multiple_max == 0 { 0 } else { 0x8000 | u16::from(multiple_max) };
        data[94..96].copy_from_slice(&w47.to_le_bytes());
        let w49 = u16::from_le_bytes([data[98], data[99]]) & !(1 << 8) | u16::from(dma) << 8;
        data[98..100].copy_from_slice(&w49.to_le_bytes());
        data
    }

    fn identify_data_without_modes(sectors: u64, lba48: bool, write_cache: bool, flush_ext: bool) -> [u8; SECTOR] {
        let mut words = [0u16; 256];
        words[49] = 1 << 9;
        let lba28 = sectors.min(0x0FFF_FFFF);
        words[60] = lba28 as u16;
        words[61] = (lba28 >> 16) as u16;
        words[82] = u16::from(write_cache) << 5;
        words[83] = u16::from(lba48) << 10 | u16::from(flush_ext) << 13 | 1 << 12;
        words[85] = u16::from(write_cache) << 5;
        if lba48 {
            for i in 0..4 {
                words[100 + i] = (sectors >> (16 * i)) as u16;
            }
        }
        for (i, pair) in b"QEMU HARDDISK                           ".chunks_exact(2).enumerate() {
            words[27 + i] = u16::from_be_bytes([pair[0], pair[1]]);
        }
        let mut data = [0; SECTOR];
        for (i, w) in words.iter().enumerate() {
            data[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
        }
        data
    }

    #[test]
    fn an_lba48_drive_reports_its_48_bit_size_and_features() {
        let id = Identity::parse(&identify_data(1 << 33, true, true, true)).unwrap();
        assert_eq!(id.sectors, 1 << 33);
        assert!(id.lba48 && id.write_cache_supported && id.write_cache_enabled && id.flush_cache_ext);
        assert_eq!((id.multiple_max, id.dma), (16, true));
        assert_eq!(id.model.as_bytes(), b"QEMU HARDDISK");
    }

    #[test]
    fn an_lba28_drive_uses_words_60_and_61() {
        let id = Identity::parse(&identify_data(0x0123_4567, false, false, false)).unwrap();
        assert_eq!(id.sectors, 0x0123_4567);
        assert!(!id.lba48 && !id.write_cache_enabled && !id.flush_cache_ext);
    }

    /// Word 47 counts only with its 0x80 signature; word 49 bit 8 is DMA.
    #[test]
    fn multiple_mode_and_dma_are_read_from_words_47_and_49() {
        let plain = identify_data(100, true, true, true);
        let id = Identity::parse(&transfer_modes(plain, 0, false)).unwrap();
        assert_eq!((id.multiple_max, id.dma), (0, false));
        let mut unsigned = transfer_modes(plain, 8, true);
        unsigned[95] = 0; // the low byte says 8, without the signature
        let id = Identity::parse(&unsigned).unwrap();
        assert_eq!((id.multiple_max, id.dma), (0, true));
    }

    #[test]
    fn drives_the_driver_cannot_address_are_refused() {
        let mut no_lba = identify_data(100, false, false, false);
        no_lba[98] = 0;
        no_lba[99] = 0;
        assert_eq!(Identity::parse(&no_lba), Err(AtaError::Unsupported("no LBA addressing")));
        let mut big_sectors = identify_data(100, true, false, false);
        big_sectors[212..214].copy_from_slice(&(0x4000u16 | 1 << 12).to_le_bytes());
        big_sectors[234..236].copy_from_slice(&2048u16.to_le_bytes());
        assert_eq!(Identity::parse(&big_sectors), Err(AtaError::Unsupported("logical sectors other than 512 bytes")));
        assert_eq!(Identity::parse(&identify_data(0, true, false, false)), Err(AtaError::Unsupported("zero capacity")));
    }
}
