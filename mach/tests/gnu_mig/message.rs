//! An independent reader of typed Mach messages (the test's oracle, not the code under test):
//! walks the descriptors of a message on either ABI to find out-of-line fields.

use super::c_stubs::Abi;

/// One body item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Offset of the descriptor.
    pub at: usize,
    /// Long form (i686: 12 bytes).
    pub long: bool,
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
                (
                    w & 0xff,
                    w >> 8 & 0xffff,
                    word(msg, at + 4)?,
                    inline,
                    long,
                    w >> 31 & 1 == 1,
                    8,
                )
            }
            Abi::I686 => {
                let (inline, long, dealloc) =
                    (w >> 28 & 1 == 1, w >> 29 & 1 == 1, w >> 30 & 1 == 1);
                if long {
                    let names = word(msg, at + 4)?;
                    (
                        names & 0xffff,
                        names >> 16,
                        word(msg, at + 8)?,
                        inline,
                        long,
                        dealloc,
                        12,
                    )
                } else {
                    (
                        w & 0xff,
                        w >> 8 & 0xff,
                        w >> 16 & 0xfff,
                        inline,
                        long,
                        dealloc,
                        4,
                    )
                }
            }
        };
        let data_offset = at + head;
        let data_len = if inline {
            (size_bits as usize * number as usize).div_ceil(8)
        } else {
            abi.pointer_size()
        };
        items.push(Item {
            at,
            long,
            name,
            size_bits,
            number,
            inline,
            dealloc,
            data_offset,
        });
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
    msg[offset..offset + abi.pointer_size()]
        .copy_from_slice(&address.to_le_bytes()[..abi.pointer_size()]);
}

/// The type name a receiver finds for a right sent with `name` (`MACH_MSG_TYPE_*`).
fn received_type(name: u32) -> u32 {
    const MOVE_RECEIVE: u32 = 16;
    const PORT_SEND: u32 = 17;
    const PORT_SEND_ONCE: u32 = 18;
    match name {
        16 => MOVE_RECEIVE,
        17 | 19 | 20 => PORT_SEND,
        18 | 21 => PORT_SEND_ONCE,
        other => other,
    }
}

/// What GNU Mach does to a message between `mach_msg` send and receive, as far as the stubs can
/// see: the header's ports swap places (the receiver's remote port is the reply port), their
/// dispositions become the rights received, and so do the type names of ports in the body.
/// Port names and out-of-line addresses are kept (one task plays both sides here).
pub fn deliver(abi: Abi, sent: &[u8]) -> Vec<u8> {
    let mut msg = sent.to_vec();
    if msg.len() < header_size(abi) {
        return msg;
    }
    let bits = word(&msg, 0).unwrap_or(0);
    let (remote, local) = (bits & 0xff, bits >> 8 & 0xff);
    let received_local = if local == 0 { 0 } else { received_type(local) };
    let swapped = (bits & !0xffff) | received_local | received_type(remote) << 8;
    msg[0..4].copy_from_slice(&swapped.to_le_bytes());
    let slot = abi.pointer_size();
    let (remote_at, local_at) = (8, 8 + slot);
    let remote_name = msg[remote_at..remote_at + slot].to_vec();
    msg.copy_within(local_at..local_at + slot, remote_at);
    msg[local_at..local_at + slot].copy_from_slice(&remote_name);
    for item in items(abi, &msg).unwrap_or_default() {
        if !(16..=21).contains(&item.name) {
            continue;
        }
        let name_at = if abi == Abi::I686 && item.long {
            item.at + 4
        } else {
            item.at
        };
        msg[name_at] = received_type(item.name) as u8;
    }
    msg
}

fn add_u32(msg: &mut [u8], at: usize, delta: u32) {
    let v = word(msg, at).expect("in the message").wrapping_add(delta);
    msg[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn xor_u32(msg: &mut [u8], at: usize, bits: u32) {
    let v = word(msg, at).expect("in the message") ^ bits;
    msg[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Damaged copies of a well-formed message, each named: the header's size, complex bit and id,
/// and every field of every descriptor (name, size, number, inline, long form, deallocate).
pub fn mutations(abi: Abi, msg: &[u8]) -> Vec<(String, Vec<u8>)> {
    let align = abi.pointer_size() as u32;
    let id_at = header_size(abi) - 4;
    let mut out = Vec::new();
    let mut add = |what: String, f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = msg.to_vec();
        f(&mut m);
        out.push((what, m));
    };
    // The kernel sets msgh_size to what arrived: a longer or shorter message, not a wrong size.
    add("longer by align".into(), &|m| {
        add_u32(m, 4, align);
        m.extend(std::iter::repeat_n(0, align as usize));
    });
    if msg.len() > header_size(abi) {
        add("shorter by align".into(), &|m| {
            add_u32(m, 4, align.wrapping_neg());
            m.truncate(m.len() - align as usize);
        });
    }
    add("complex bit".into(), &|m| xor_u32(m, 0, 1 << 31));
    add("id + 1".into(), &|m| add_u32(m, id_at, 1));
    for (i, item) in items(abi, msg).unwrap_or_default().into_iter().enumerate() {
        let at = item.at;
        // (field, offset of the word, bits to flip or amount to add)
        let (name_at, size_at, size_step, number_at, number_step, flag_shift) =
            match (abi, item.long) {
                (Abi::X86_64, _) => (at, at, 8 << 8, at + 4, 1, 29),
                (Abi::I686, false) => (at, at, 8 << 8, at, 1 << 16, 28),
                (Abi::I686, true) => (at + 4, at + 4, 8 << 16, at + 8, 1, 28),
            };
        add(format!("item {i} type name"), &|m| xor_u32(m, name_at, 1));
        add(format!("item {i} size"), &|m| {
            add_u32(m, size_at, size_step)
        });
        add(format!("item {i} number + 1"), &|m| {
            add_u32(m, number_at, number_step)
        });
        add(format!("item {i} inline bit"), &|m| {
            xor_u32(m, at, 1 << flag_shift)
        });
        add(format!("item {i} long-form bit"), &|m| {
            xor_u32(m, at, 2 << flag_shift)
        });
        add(format!("item {i} deallocate bit"), &|m| {
            xor_u32(m, at, 4 << flag_shift)
        });
    }
    out
}
