//! An independent reader of typed Mach messages (the test's oracle, not the code under test):
//! walks the descriptors of a message on either ABI to find out-of-line fields.

use super::c_stubs::Abi;

/// One body item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: u32,
    pub size_bits: u32,
    pub number: u32,
    pub inline: bool,
    pub dealloc: bool,
    /// Offset of the data (inline bytes, or the out-of-line address) in the message.
    pub data_offset: usize,
}

/// An out-of-line address field.
#[derive(Clone, Copy, Debug)]
pub struct OolField {
    pub offset: usize,
    pub address: u64,
    /// Bytes the memory holds (size × number).
    pub len: usize,
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn header_size(abi: Abi) -> usize {
    match abi {
        Abi::X86_64 => 32,
        Abi::I686 => 24,
    }
}

fn round(abi: Abi, n: usize) -> usize {
    let a = abi.pointer_size();
    n.div_ceil(a) * a
}

/// The items of a whole message (its size is `msgh_size`); `None` if it does not parse.
pub fn items(abi: Abi, msg: &[u8]) -> Option<Vec<Item>> {
    let size = word(msg, 4)? as usize;
    let msg = msg.get(..size)?;
    let mut at = header_size(abi);
    let mut items = Vec::new();
    while at < msg.len() {
        let w = word(msg, at)?;
        let (name, size_bits, number, inline, long, dealloc, head) = match abi {
            Abi::X86_64 => {
                let (inline, long) = (w >> 29 & 1 == 1, w >> 30 & 1 == 1);
                (w & 0xff, w >> 8 & 0xffff, word(msg, at + 4)?, inline, long, w >> 31 & 1 == 1, 8)
            }
            Abi::I686 => {
                let (inline, long, dealloc) = (w >> 28 & 1 == 1, w >> 29 & 1 == 1, w >> 30 & 1 == 1);
                if long {
                    let names = word(msg, at + 4)?;
                    (names & 0xffff, names >> 16, word(msg, at + 8)?, inline, long, dealloc, 12)
                } else {
                    (w & 0xff, w >> 8 & 0xff, w >> 16 & 0xfff, inline, long, dealloc, 4)
                }
            }
        };
        let _ = long;
        let data_offset = at + head;
        let data_len = if inline {
            (size_bits as usize * number as usize).div_ceil(8)
        } else {
            abi.pointer_size()
        };
        items.push(Item { name, size_bits, number, inline, dealloc, data_offset });
        at = data_offset + round(abi, data_len);
    }
    (at == msg.len()).then_some(items)
}

/// The out-of-line fields of a message (empty when it does not parse).
pub fn ool_fields(abi: Abi, msg: &[u8]) -> Vec<OolField> {
    let items = items(abi, msg).unwrap_or_default();
    items
        .iter()
        .filter(|i| !i.inline)
        .map(|i| OolField {
            offset: i.data_offset,
            address: address_from(abi, &msg[i.data_offset..]),
            len: (i.size_bits as usize * i.number as usize).div_ceil(8),
        })
        .collect()
}

/// A pointer as the ABI stores it, read from the start of `bytes`.
pub fn address_from(abi: Abi, bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..abi.pointer_size()].copy_from_slice(&bytes[..abi.pointer_size()]);
    u64::from_le_bytes(b)
}

pub fn set_address(abi: Abi, msg: &mut [u8], offset: usize, address: u64) {
    msg[offset..offset + abi.pointer_size()].copy_from_slice(&address.to_le_bytes()[..abi.pointer_size()]);
}
