//! The 64-bit message layout the simulation parses (hurd-facts §3): a 32-byte header and
//! 8-byte type descriptors, data padded to 8.

pub const HEADER_SIZE: usize = 32;
pub const OFFSET_BITS: usize = 0;
pub const OFFSET_SIZE: usize = 4;
pub const OFFSET_REMOTE: usize = 8;
pub const OFFSET_LOCAL: usize = 16;
pub const OFFSET_SEQNO: usize = 24;
pub const OFFSET_ID: usize = 28;

pub use crate::msg::BITS_COMPLEX;

/// A body item's type descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Descriptor {
    pub name: u32,
    pub bits: u32,
    pub inline: bool,
    pub deallocate: bool,
    pub number: u32,
}

impl Descriptor {
    pub fn read(bytes: &[u8], at: usize) -> Option<Descriptor> {
        let word = read_u32(bytes, at)?;
        Some(Descriptor {
            name: word & 0xff,
            bits: (word >> 8) & 0xffff,
            inline: word & (1 << 29) != 0,
            deallocate: word & (1 << 31) != 0,
            number: read_u32(bytes, at + 4)?,
        })
    }

    /// Bytes of data the item describes (inline or out of line).
    pub fn data_len(&self) -> Option<usize> {
        let bits = u64::from(self.number) * u64::from(self.bits);
        usize::try_from(bits.div_ceil(8)).ok()
    }

    /// Whether the elements are port rights moved or copied by the kernel.
    pub fn carries_rights(&self) -> bool {
        (16..=21).contains(&self.name)
    }
}

pub fn round8(n: usize) -> usize {
    n.next_multiple_of(8)
}

pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(chunk.try_into().ok()?))
}

pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

pub fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}
