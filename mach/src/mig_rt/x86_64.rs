//! The x86_64 message ABI: 32-byte header (ports in 8-byte slots), 8-byte descriptors whose
//! long form is the short form with the long-form bit, items padded to 8.

use super::{get_u32, put_u32, put_u64, type_error};
use crate::kern::{Error, Result};
use crate::port::PortName;

pub const HEADER_SIZE: usize = 32;
/// `mig_reply_header_t`: header, return-code descriptor, return code, padding.
pub const ERROR_REPLY_SIZE: usize = 48;
const RETCODE_DESCRIPTOR: u64 = 0x0000_0001_2000_2002;
const INLINE: u32 = 1 << 29;
const LONG: u32 = 1 << 30;
const DEALLOC: u32 = 1 << 31;

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
        self.bits & super::COMPLEX != 0
    }
    /// `MACH_MSGH_BITS_REPLY`: the disposition a reply to this message uses.
    pub fn reply_disposition(&self) -> u32 {
        (self.bits >> 8) & 0xff
    }
}

/// The header of `msg`, if `msg` holds one whose size fits in `msg`.
#[inline(always)]
pub fn header(msg: &[u8]) -> Option<Header> {
    let head = msg.first_chunk::<HEADER_SIZE>()?;
    let size = get_u32(head, 4) as usize;
    if size < HEADER_SIZE || size > msg.len() {
        return None;
    }
    Some(Header {
        bits: get_u32(head, 0),
        size,
        remote_port: PortName::new(get_u32(head, 8)),
        local_port: PortName::new(get_u32(head, 16)),
        seqno: get_u32(head, 24),
        id: get_u32(head, 28) as i32,
    })
}

#[inline(always)]
pub fn put_header(buf: &mut [u8], bits: u32, size: usize, remote: PortName, local: PortName, id: i32) {
    put_u32(buf, 0, bits);
    put_u32(buf, 4, size as u32);
    put_u64(buf, 8, u64::from(remote.raw()));
    put_u64(buf, 16, u64::from(local.raw()));
    put_u32(buf, 24, 0);
    put_u32(buf, 28, id as u32);
}

/// Writes the reply carrying only `error`; returns its size (0 if `buf` cannot hold it).
pub fn put_error_reply(buf: &mut [u8], reply_port: PortName, disposition: u32, id: i32, error: Error) -> usize {
    let Some(buf) = buf.first_chunk_mut::<ERROR_REPLY_SIZE>() else {
        return 0;
    };
    put_header(buf, disposition, ERROR_REPLY_SIZE, reply_port, PortName::NULL, id);
    put_u64(buf, 32, RETCODE_DESCRIPTOR);
    put_u64(buf, 40, error.code() as u32 as u64);
    ERROR_REPLY_SIZE
}

/// The return code of a reply: `Err(code)` for a well-formed error reply, `MIG_TYPE_ERROR` for
/// a malformed one, `Ok` when the server succeeded (the caller checks the rest).
#[inline]
pub fn check_return_code(msg: &[u8]) -> Result<()> {
    if msg.len() < ERROR_REPLY_SIZE || super::get_u64(msg, 32) != RETCODE_DESCRIPTOR {
        return Err(type_error());
    }
    match Error::new(get_u32(msg, 40) as i32) {
        None => Ok(()),
        Some(error) if msg.len() == ERROR_REPLY_SIZE && get_u32(msg, 0) & super::COMPLEX == 0 => Err(error),
        Some(_) => Err(type_error()),
    }
}

/// The whole descriptor equals `expected` (GNU MIG's `BAD_TYPECHECK`).
#[inline(always)]
pub fn same_descriptor(msg: &[u8], at: usize, expected: u64) -> bool {
    super::get_u64(msg, at) == expected
}

/// A long-form descriptor with these fields (deallocate bit ignored, as GNU MIG does).
#[inline(always)]
pub fn long_descriptor_is(msg: &[u8], at: usize, name: u32, size: u32, number: Option<u32>, inline: bool) -> bool {
    descriptor_kind_is(msg, at, name, size, inline, true) && number.is_none_or(|n| get_u32(msg, at + 4) == n)
}

/// Name, element size, inline and long-form bits as given; the count is checked apart.
#[inline(always)]
pub fn descriptor_kind_is(msg: &[u8], at: usize, name: u32, size: u32, inline: bool, long: bool) -> bool {
    let word = get_u32(msg, at);
    word & 0xff == name
        && (word >> 8) & 0xffff == size
        && (word & INLINE != 0) == inline
        && (word & LONG != 0) == long
}

/// A polymorphic inline right as received: a right, one element of `size` bits.
#[inline(always)]
pub fn port_descriptor_is(msg: &[u8], at: usize, size: u32) -> bool {
    let word = get_u32(msg, at);
    super::is_received_right(word & 0xff)
        && (word >> 8) & 0xffff == size
        && word & (INLINE | LONG) == INLINE
        && get_u32(msg, at + 4) == 1
}

/// Writes a long-form descriptor (the same 8 bytes as the short form, with the long bit).
#[inline(always)]
pub fn put_long_descriptor(buf: &mut [u8], at: usize, name: u32, size: u32, number: u32, inline: bool, dealloc: bool) {
    let flags = LONG | if inline { INLINE } else { 0 } | if dealloc { DEALLOC } else { 0 };
    put_u32(buf, at, name | size << 8 | flags);
    put_u32(buf, at + 4, number);
}

#[inline(always)]
pub fn descriptor_inline(msg: &[u8], at: usize) -> bool {
    get_u32(msg, at) & INLINE != 0
}

#[inline(always)]
pub fn descriptor_name(msg: &[u8], at: usize) -> u32 {
    get_u32(msg, at) & 0xff
}

/// The element count (`long` makes no difference in this ABI).
#[inline(always)]
pub fn descriptor_number(msg: &[u8], at: usize, _long: bool) -> u32 {
    get_u32(msg, at + 4)
}
