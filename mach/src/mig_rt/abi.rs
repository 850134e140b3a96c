//! The two message ABIs of GNU Mach's typed IPC, as values: where the header fields are, how
//! a type descriptor packs its fields, how items are padded. The generated code names one of
//! [`X86_64`] and [`I686`] as `ABI`; every method is inlined, so the choice folds away.

use super::{get_u16, get_u32, get_u64, put_u32, put_u64, type_error, COMPLEX};
use crate::kern::{Error, Result};
use crate::port::PortName;

/// How type descriptors pack their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Descriptors {
    /// x86_64: word 0 `name:8 size:16 unused:5 inline longform deallocate`, word 1 the number;
    /// the long form is the same 8 bytes.
    Wide,
    /// i686: `name:8 size:8 number:12 inline longform deallocate unused` in one word; the long
    /// form is that word's flags, then u16 name, u16 size, u32 number (12 bytes).
    Packed,
}

/// One ABI's message layout.
#[derive(Clone, Copy, Debug)]
pub struct Abi {
    pub header_size: usize,
    /// Bytes of a port name slot in the header (and of an inline right).
    port_slot: usize,
    /// Items are padded to this; it is also the size of the return code's slot.
    pub align: usize,
    descriptors: Descriptors,
}

pub const X86_64: Abi = Abi { header_size: 32, port_slot: 8, align: 8, descriptors: Descriptors::Wide };
pub const I686: Abi = Abi { header_size: 24, port_slot: 4, align: 4, descriptors: Descriptors::Packed };

/// A received header, its size already checked against the bytes.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub bits: u32,
    pub size: usize,
    pub remote_port: PortName,
    pub local_port: PortName,
    pub seqno: u32,
    pub id: i32,
}

impl Header {
    pub fn complex(&self) -> bool {
        self.bits & COMPLEX != 0
    }
    /// `MACH_MSGH_BITS_REPLY`: the disposition a reply to this message uses. On receipt the
    /// kernel has swapped the header, so the remote bits describe the reply right.
    pub fn reply_disposition(&self) -> u32 {
        self.bits & 0xff
    }
}

/// `INTEGER_32`, 32 bits, one, inline: the return code's descriptor.
const RETCODE: (u32, u32) = (2, 32);

impl Abi {
    #[inline(always)]
    fn inline_bit(&self) -> u32 {
        match self.descriptors {
            Descriptors::Wide => 1 << 29,
            Descriptors::Packed => 1 << 28,
        }
    }
    #[inline(always)]
    fn long_bit(&self) -> u32 {
        self.inline_bit() << 1
    }
    #[inline(always)]
    fn dealloc_bit(&self) -> u32 {
        self.inline_bit() << 2
    }
    #[inline(always)]
    fn short_descriptor_size(&self) -> usize {
        match self.descriptors {
            Descriptors::Wide => 8,
            Descriptors::Packed => 4,
        }
    }

    /// `mig_reply_header_t`: header, return-code descriptor, return code and its padding.
    #[inline(always)]
    pub fn error_reply_size(&self) -> usize {
        self.header_size + self.short_descriptor_size() + self.align
    }

    #[inline(always)]
    fn put_port(&self, buf: &mut [u8], at: usize, port: PortName) {
        match self.port_slot {
            8 => put_u64(buf, at, u64::from(port.raw())),
            _ => put_u32(buf, at, port.raw()),
        }
    }

    /// The header of `msg`, if `msg` holds one whose size fits in `msg`.
    #[inline(always)]
    pub fn header(&self, msg: &[u8]) -> Option<Header> {
        if msg.len() < self.header_size {
            return None;
        }
        let size = get_u32(msg, 4) as usize;
        if size < self.header_size || size > msg.len() {
            return None;
        }
        let slot = self.port_slot;
        Some(Header {
            bits: get_u32(msg, 0),
            size,
            remote_port: PortName::new(get_u32(msg, 8)),
            local_port: PortName::new(get_u32(msg, 8 + slot)),
            seqno: get_u32(msg, 8 + 2 * slot),
            id: get_u32(msg, 12 + 2 * slot) as i32,
        })
    }

    #[inline(always)]
    pub fn put_header(&self, buf: &mut [u8], bits: u32, size: usize, remote: PortName, local: PortName, id: i32) {
        let slot = self.port_slot;
        put_u32(buf, 0, bits);
        put_u32(buf, 4, size as u32);
        self.put_port(buf, 8, remote);
        self.put_port(buf, 8 + slot, local);
        put_u32(buf, 8 + 2 * slot, 0);
        put_u32(buf, 12 + 2 * slot, id as u32);
    }

    /// A short descriptor word (the first word on x86_64, whose second holds `number`).
    #[inline(always)]
    fn short_word(&self, name: u32, size: u32, number: u32) -> u32 {
        match self.descriptors {
            Descriptors::Wide => name | size << 8 | self.inline_bit(),
            Descriptors::Packed => name | size << 8 | number << 16 | self.inline_bit(),
        }
    }

    /// Writes the reply carrying only `error`; returns its size (0 if `buf` cannot hold it).
    pub fn put_error_reply(&self, buf: &mut [u8], reply_port: PortName, disposition: u32, id: i32, error: Error) -> usize {
        let size = self.error_reply_size();
        if buf.len() < size {
            return 0;
        }
        self.put_header(buf, disposition, size, reply_port, PortName::NULL, id);
        let at = self.header_size;
        put_u32(buf, at, self.short_word(RETCODE.0, RETCODE.1, 1));
        if self.descriptors == Descriptors::Wide {
            put_u32(buf, at + 4, 1);
        }
        let code = error.code() as u32;
        match self.align {
            8 => put_u64(buf, size - 8, u64::from(code)),
            _ => put_u32(buf, size - 4, code),
        }
        size
    }

    /// The return code of a reply: `Err(code)` for a well-formed error reply, `MIG_TYPE_ERROR`
    /// for a malformed one, `Ok` when the server succeeded (the caller checks the rest).
    #[inline]
    pub fn check_return_code(&self, msg: &[u8]) -> Result<()> {
        let size = self.error_reply_size();
        if msg.len() < size || !self.same_short(msg, self.header_size, RETCODE.0, RETCODE.1, 1) {
            return Err(type_error());
        }
        match Error::new(get_u32(msg, size - self.align) as i32) {
            None => Ok(()),
            Some(error) if msg.len() == size && get_u32(msg, 0) & COMPLEX == 0 => Err(error),
            Some(_) => Err(type_error()),
        }
    }

    /// The whole short descriptor (both words on x86_64) is exactly this one (GNU MIG's
    /// `BAD_TYPECHECK`), deallocate bit clear.
    #[inline(always)]
    fn same_short(&self, msg: &[u8], at: usize, name: u32, size: u32, number: u32) -> bool {
        match self.descriptors {
            Descriptors::Wide => get_u64(msg, at) == u64::from(self.short_word(name, size, number)) | u64::from(number) << 32,
            Descriptors::Packed => get_u32(msg, at) == self.short_word(name, size, number),
        }
    }

    /// The descriptor is exactly the given raw value (as generated from the .defs).
    #[inline(always)]
    pub fn same_descriptor(&self, msg: &[u8], at: usize, expected: u64) -> bool {
        match self.descriptors {
            Descriptors::Wide => get_u64(msg, at) == expected,
            Descriptors::Packed => u64::from(get_u32(msg, at)) == expected,
        }
    }

    /// Name, element size, inline and long-form bits as given (deallocate ignored, as GNU MIG
    /// does); the count is checked apart.
    #[inline(always)]
    pub fn descriptor_kind_is(&self, msg: &[u8], at: usize, name: u32, size: u32, inline: bool, long: bool) -> bool {
        let word = get_u32(msg, at);
        let flags_match = (word & self.inline_bit() != 0) == inline && (word & self.long_bit() != 0) == long;
        match (self.descriptors, long) {
            (Descriptors::Packed, true) => {
                flags_match && u32::from(get_u16(msg, at + 4)) == name && u32::from(get_u16(msg, at + 6)) == size
            }
            (Descriptors::Packed, false) => flags_match && word & 0xff == name && (word >> 8) & 0xff == size,
            (Descriptors::Wide, _) => flags_match && word & 0xff == name && (word >> 8) & 0xffff == size,
        }
    }

    /// A long-form descriptor with these fields and count (deallocate ignored).
    #[inline(always)]
    pub fn long_descriptor_is(&self, msg: &[u8], at: usize, name: u32, size: u32, number: u32, inline: bool) -> bool {
        self.descriptor_kind_is(msg, at, name, size, inline, true) && self.descriptor_number(msg, at, true) == number
    }

    /// A polymorphic inline item as GNU MIG's stubs check it: one inline element of `size`
    /// bits, of any type — but a right only in a complex message (only there has the kernel
    /// translated it).
    #[inline(always)]
    pub fn polymorphic_descriptor_is(&self, msg: &[u8], at: usize, size: u32, complex: bool) -> bool {
        let name = self.descriptor_name(msg, at);
        self.descriptor_kind_is(msg, at, name, size, true, false)
            && self.descriptor_number(msg, at, false) == 1
            && (complex || !super::is_port(name))
    }

    #[inline(always)]
    pub fn descriptor_name(&self, msg: &[u8], at: usize) -> u32 {
        get_u32(msg, at) & 0xff
    }

    #[inline(always)]
    pub fn descriptor_inline(&self, msg: &[u8], at: usize) -> bool {
        get_u32(msg, at) & self.inline_bit() != 0
    }

    /// The element count, from the short or the long form.
    #[inline(always)]
    pub fn descriptor_number(&self, msg: &[u8], at: usize, long: bool) -> u32 {
        match (self.descriptors, long) {
            (Descriptors::Wide, _) => get_u32(msg, at + 4),
            (Descriptors::Packed, true) => get_u32(msg, at + 8),
            (Descriptors::Packed, false) => (get_u32(msg, at) >> 16) & 0xfff,
        }
    }

    /// Writes a long-form descriptor (its arguments are the descriptor's fields).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn put_long_descriptor(&self, buf: &mut [u8], at: usize, name: u32, size: u32, number: u32, inline: bool, dealloc: bool) {
        let flags = self.long_bit() | if inline { self.inline_bit() } else { 0 } | if dealloc { self.dealloc_bit() } else { 0 };
        match self.descriptors {
            Descriptors::Wide => {
                put_u32(buf, at, name | size << 8 | flags);
                put_u32(buf, at + 4, number);
            }
            Descriptors::Packed => {
                put_u32(buf, at, flags);
                put_u32(buf, at + 4, name | size << 16);
                put_u32(buf, at + 8, number);
            }
        }
    }
}
