//! The body items of a typed message in the target's layout (hurd-facts §3): 8-byte
//! descriptors and 8-byte alignment on 64-bit targets; on i686 4-byte descriptors (12 with the
//! long form) and 4-byte alignment.

use super::HEADER_SIZE;
use crate::kern::{Error, Result, MACH_SEND_INVALID_TYPE};

/// One body item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// `MACH_MSG_TYPE_*`.
    pub name: u32,
    /// Bits per element.
    pub bits: u32,
    pub number: u32,
    pub inline: bool,
    pub deallocate: bool,
    /// Where the inline data, or the out-of-line pointer, starts.
    pub at: usize,
}

impl Item {
    /// Bytes of data the item describes.
    pub fn data_len(&self) -> Option<usize> {
        usize::try_from((u64::from(self.number) * u64::from(self.bits)).div_ceil(8)).ok()
    }

    /// Whether the elements are port rights (`MACH_MSG_TYPE_MOVE_RECEIVE` ..= `MAKE_SEND_ONCE`).
    pub fn carries_rights(&self) -> bool {
        (16..=21).contains(&self.name)
    }
}

/// Bytes of a pointer and of the alignment unit in the target's layout.
pub const WORD: usize = core::mem::size_of::<usize>();

/// The items of `message` (whole message, header included), each checked to lie inside it.
pub fn items(message: &[u8]) -> Items<'_> {
    Items { bytes: message, at: HEADER_SIZE }
}

pub struct Items<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?)))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl Items<'_> {
    /// Parse the descriptor at `self.at`: the item and where the next one starts.
    fn parse(&self) -> Option<(Item, usize)> {
        let word = u32_at(self.bytes, self.at)?;
        let (mut item, data) = if WORD == 8 {
            let item = Item {
                name: word & 0xff,
                bits: (word >> 8) & 0xffff,
                inline: word & (1 << 29) != 0,
                deallocate: word & (1 << 31) != 0,
                number: u32_at(self.bytes, self.at + 4)?,
                at: 0,
            };
            (item, self.at + 8)
        } else {
            let long = word & (1 << 29) != 0;
            let mut item = Item {
                name: word & 0xff,
                bits: (word >> 8) & 0xff,
                number: (word >> 16) & 0xfff,
                inline: word & (1 << 28) != 0,
                deallocate: word & (1 << 30) != 0,
                at: 0,
            };
            if long {
                item.name = u16_at(self.bytes, self.at + 4)?;
                item.bits = u16_at(self.bytes, self.at + 6)?;
                item.number = u32_at(self.bytes, self.at + 8)?;
            }
            (item, self.at + if long { 12 } else { 4 })
        };
        item.at = data;
        let len = if item.inline { item.data_len()?.checked_next_multiple_of(WORD)? } else { WORD };
        let next = data.checked_add(len)?;
        (next <= self.bytes.len()).then_some((item, next))
    }
}

impl Iterator for Items<'_> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Result<Item>> {
        if self.at >= self.bytes.len() {
            return None;
        }
        match self.parse() {
            Some((item, next)) => {
                self.at = next;
                Some(Ok(item))
            }
            None => {
                self.at = self.bytes.len();
                Some(Err(Error::from_const(MACH_SEND_INVALID_TYPE)))
            }
        }
    }
}

/// Read a port name or pointer-sized value at `at` (the low 32 bits of a 64-bit port slot).
pub fn word_at(bytes: &[u8], at: usize) -> Option<usize> {
    if WORD == 8 {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?) as usize)
    } else {
        u32_at(bytes, at).map(|v| v as usize)
    }
}
