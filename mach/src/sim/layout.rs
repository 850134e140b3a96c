//! The 64-bit message header the simulation reads and writes (hurd-facts §3); body items are
//! parsed by `msg::items`.

pub const HEADER_SIZE: usize = 32;
pub const OFFSET_BITS: usize = 0;
pub const OFFSET_SIZE: usize = 4;
pub const OFFSET_REMOTE: usize = 8;
pub const OFFSET_LOCAL: usize = 16;
pub const OFFSET_SEQNO: usize = 24;
pub const OFFSET_ID: usize = 28;

pub use crate::msg::BITS_COMPLEX;

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
