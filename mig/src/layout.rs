//! Message layouts GNU MIG produces for each ABI: where every descriptor and datum sits, and
//! the descriptor words themselves.

use crate::abi::Abi;
use crate::parser::{Arg, ArgKind, Routine};
use crate::types::{Count, MsgName, Type};

/// The descriptor bits of one item; `number` is the fixed count (or the maximum, for the check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// `None`: polymorphic, filled in at run time.
    pub name: Option<u32>,
    pub size_bits: u32,
    pub number: u32,
    pub inline: bool,
    pub long: bool,
    pub dealloc: bool,
}

impl Descriptor {
    /// The descriptor as the ABI writes it: one or two words (x86_64: 2×u32 = 8 bytes),
    /// or the i686 forms (one u32; long: u32 header + u16 name + u16 size + u32 number).
    pub fn bytes(&self, abi: Abi) -> Vec<u8> {
        let name = self.name.unwrap_or(0);
        let flags = |inline_bit: u32| {
            (u32::from(self.inline) << inline_bit)
                | (u32::from(self.long) << (inline_bit + 1))
                | (u32::from(self.dealloc) << (inline_bit + 2))
        };
        match abi {
            Abi::X86_64 => {
                let word = name | (self.size_bits << 8) | flags(29);
                [word.to_le_bytes(), self.number.to_le_bytes()].concat()
            }
            Abi::I686 if !self.long => (name | (self.size_bits << 8) | (self.number << 16) | flags(28)).to_le_bytes().to_vec(),
            Abi::I686 => {
                let mut v = flags(28).to_le_bytes().to_vec();
                v.extend((name as u16).to_le_bytes());
                v.extend((self.size_bits as u16).to_le_bytes());
                v.extend(self.number.to_le_bytes());
                v
            }
        }
    }
}

/// What an item's data is, after its descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// `bytes` long, always the same.
    Fixed { bytes: u32 },
    /// Inline, `element_bytes` × count, at most `max` elements.
    Variable { element_bytes: u32, max: u32 },
    /// A pointer to out-of-line memory.
    OutOfLine,
    /// Inline (`element_bytes` × count, at most `inline_max` elements) or a pointer, as the
    /// descriptor's inline bit says.
    Indefinite { element_bytes: u32, inline_max: u32 },
}

impl Data {
    /// Bytes from the end of the descriptor to the next item, unless the values decide them.
    pub fn fixed_size(self, abi: Abi) -> Option<u32> {
        match self {
            Data::Fixed { bytes } => Some(abi.round(bytes)),
            Data::OutOfLine => Some(abi.align()),
            Data::Variable { .. } | Data::Indefinite { .. } => None,
        }
    }
}

/// One item of a message: a descriptor and its data.
#[derive(Clone, Debug)]
pub struct Item {
    /// Argument name (the return code is `RetCode`; a `CountInOut` count is `<name>Cnt`).
    pub name: String,
    pub descriptor: Descriptor,
    pub data: Data,
    /// Offset of the descriptor from the end of the last variable item before it (or from 0).
    pub offset: u32,
    /// Sized by the ABI alone when this is false; after a variable inline item it moves.
    pub after_variable: bool,
}

impl Item {
    pub fn data_offset(&self, abi: Abi) -> u32 {
        self.offset + abi.descriptor_size(self.descriptor.long)
    }
}

/// A whole message: its items and size bounds.
#[derive(Clone, Debug)]
pub struct Message {
    pub items: Vec<Item>,
    /// Size with every variable item empty.
    pub min_size: u32,
    /// Size with every variable item full.
    pub max_size: u32,
    /// Carries port rights or out-of-line memory (MACH_MSGH_BITS_COMPLEX).
    pub complex: bool,
}

impl Message {
    /// Some item's rights or out-of-line memory are decided at run time (a polymorphic right,
    /// an indefinite array), so the complex bit is too.
    pub fn complex_at_run_time(&self) -> bool {
        self.items.iter().any(|i| i.descriptor.name.is_none() || matches!(i.data, Data::Indefinite { .. }))
    }

    /// The message carries, or may carry, rights or out-of-line memory.
    pub fn may_be_complex(&self) -> bool {
        self.complex || self.complex_at_run_time()
    }
}

fn descriptor_for(abi: Abi, ty: &Type, sending: bool, dealloc: bool) -> Descriptor {
    let msg_name = if sending { ty.in_name } else { ty.out_name };
    let size_bits = if ty.is_port() {
        if ty.inline { abi.word_bits() } else { 32 }
    } else {
        ty.element_bits
    };
    let number = match ty.count {
        Count::Fixed(n) => n,
        Count::Variable(max) => max.unwrap_or(0),
    };
    // MIG's long-form rule: a size or count the short i686 form cannot hold, or no bound at all.
    let long = size_bits > 255 || number > 4095 || ty.unbounded;
    Descriptor {
        name: match msg_name {
            MsgName::Fixed(n) => Some(n),
            MsgName::Polymorphic => None,
        },
        size_bits,
        number: if ty.inline { number } else { 0 },
        inline: ty.inline,
        long,
        dealloc,
    }
}

/// The data part of an item, in bytes.
fn data_for(ty: &Type, descriptor: &Descriptor) -> Data {
    if !ty.inline {
        return Data::OutOfLine;
    }
    if ty.indefinite {
        return Data::Indefinite { element_bytes: descriptor.size_bits / 8, inline_max: ty.max_count().unwrap_or(0) };
    }
    match ty.count {
        Count::Fixed(n) => Data::Fixed { bytes: (descriptor.size_bits * n).div_ceil(8) },
        Count::Variable(max) => Data::Variable { element_bytes: descriptor.size_bits / 8, max: max.unwrap_or(0) },
    }
}

/// The descriptor of a `CountInOut` capacity: one `INTEGER_32`.
fn count_descriptor() -> Descriptor {
    Descriptor { name: Some(crate::types::name::INTEGER_32), size_bits: 32, number: 1, inline: true, long: false, dealloc: false }
}

fn build(abi: Abi, entries: Vec<(String, Descriptor, Data, bool)>) -> Message {
    let mut items = Vec::new();
    let (mut offset, mut min, mut max) = (abi.header_size(), abi.header_size(), abi.header_size());
    let mut after_variable = false;
    let mut complex = false;
    for (name, descriptor, data, is_port) in entries {
        // An indefinite array is complex only when it goes out of line (decided at run time).
        complex |= is_port || (!descriptor.inline && !matches!(data, Data::Indefinite { .. }));
        let head = abi.descriptor_size(descriptor.long);
        items.push(Item { name, descriptor, data, offset, after_variable });
        match data {
            Data::Fixed { bytes } => {
                let size = head + abi.round(bytes);
                offset += size;
                min += size;
                max += size;
            }
            Data::OutOfLine => {
                let size = head + abi.align();
                offset += size;
                min += size;
                max += size;
            }
            Data::Variable { element_bytes, max: count } => {
                min += head;
                max += head + abi.round(element_bytes * count);
                offset = 0;
                after_variable = true;
            }
            Data::Indefinite { element_bytes, inline_max } => {
                min += head;
                max += head + abi.round(element_bytes * inline_max).max(abi.align());
                offset = 0;
                after_variable = true;
            }
        }
    }
    Message { items, min_size: min, max_size: max, complex }
}

/// The request of `routine` as its client sends it.
pub fn request(abi: Abi, routine: &Routine) -> Message {
    let mut entries = Vec::new();
    for arg in routine.args.iter().filter(|a| a.in_request()) {
        if arg.kind == ArgKind::Out {
            entries.push((format!("{}Cnt", arg.name), count_descriptor(), Data::Fixed { bytes: 4 }, false));
        } else {
            entries.push(entry(abi, arg, true));
        }
    }
    build(abi, entries)
}

/// The reply of a routine (return code first), as its server sends it.
pub fn reply(abi: Abi, routine: &Routine) -> Message {
    let mut entries = vec![("RetCode".to_owned(), count_descriptor(), Data::Fixed { bytes: 4 }, false)];
    for arg in routine.args.iter().filter(|a| a.in_reply()) {
        entries.push(entry(abi, arg, true));
    }
    build(abi, entries)
}

fn entry(abi: Abi, arg: &Arg, sending: bool) -> (String, Descriptor, Data, bool) {
    let descriptor = descriptor_for(abi, &arg.ty, sending, arg.dealloc && !arg.dealloc_chosen_by_caller);
    let data = data_for(&arg.ty, &descriptor);
    (arg.name.clone(), descriptor, data, arg.ty.is_port())
}

/// The descriptor a receiver checks for an item: the sender's, with port names as they arrive.
pub fn received(abi: Abi, arg: &Arg) -> Descriptor {
    descriptor_for(abi, &arg.ty, false, arg.dealloc)
}
