//! Support for the generated interfaces (`crate::interfaces`): byte access to messages, the
//! two ABIs' headers and descriptors, MIG's error codes, and the small types the generated
//! signatures use. Nothing here knows any particular interface.

mod abi;
mod values;

pub use abi::{Abi, Header, I686, X86_64};

pub use values::{Array, Indefinite, Inline, IntoOol, Le, OolRegion, PortArg, Right};

use crate::kern::{
    Error, Result, MIG_ARRAY_TOO_LARGE, MIG_BAD_ARGUMENTS, MIG_BAD_ID, MIG_REPLY_MISMATCH, MIG_SERVER_DIED,
    MIG_TYPE_ERROR,
};
use crate::msg::Disposition;
use crate::ool::OolMemory;
use crate::port::{PortName, SendOnceRight};

/// `MACH_MSGH_BITS_COMPLEX`: the body carries rights or out-of-line memory.
pub const COMPLEX: u32 = 0x8000_0000;
/// `MACH_NOTIFY_SEND_ONCE`: what arrives instead of a reply when the server dropped the right.
const NOTIFY_SEND_ONCE: i32 = 71;

/// `COMPLEX` when a polymorphic item turned out to be a right.
pub const fn complex_if(is_right: bool) -> u32 {
    if is_right {
        COMPLEX
    } else {
        0
    }
}

/// `MACH_MSG_TYPE_PORT_ANY`: a disposition that carries a right.
pub const fn is_port(disposition: u32) -> bool {
    disposition >= 16 && disposition <= 21
}

pub const fn round4(n: usize) -> usize {
    (n + 3) & !3
}

pub const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

pub const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

pub const fn port_bits(port: PortName) -> u32 {
    port.raw()
}

pub const fn port_from(raw: u32) -> PortName {
    PortName::new(raw)
}

/// The first `N` bytes of `buf`, or `MIG_ARRAY_TOO_LARGE` when it is shorter.
#[inline(always)]
pub fn room<const N: usize>(buf: &mut [u8]) -> Result<&mut [u8; N]> {
    buf.first_chunk_mut::<N>().ok_or(array_too_large())
}

pub const fn array_too_large() -> Error {
    Error::from_const(MIG_ARRAY_TOO_LARGE)
}
pub const fn bad_arguments() -> Error {
    Error::from_const(MIG_BAD_ARGUMENTS)
}
pub const fn type_error() -> Error {
    Error::from_const(MIG_TYPE_ERROR)
}
pub const fn bad_id() -> Error {
    Error::from_const(MIG_BAD_ID)
}

/// A reply must carry the request id + 100; a send-once notification means the server died.
#[inline(always)]
pub fn check_reply_id(id: i32, expected: i32) -> Result<()> {
    match id {
        id if id == expected => Ok(()),
        NOTIFY_SEND_ONCE => Err(Error::from_const(MIG_SERVER_DIED)),
        _ => Err(Error::from_const(MIG_REPLY_MISMATCH)),
    }
}

// Byte access at offsets the generated code has already checked against the buffer or the
// message size: a failed lookup here is a generator bug, not bad input. Written as whole-array
// stores and loads so that, inlined into a stub over a fixed-size buffer, each is one move.

#[inline(always)]
fn slot<const N: usize>(buf: &mut [u8], at: usize) -> &mut [u8; N] {
    buf[at..].first_chunk_mut::<N>().expect("offset checked by the generated code")
}

#[inline(always)]
fn field<const N: usize>(msg: &[u8], at: usize) -> [u8; N] {
    *msg[at..].first_chunk::<N>().expect("offset checked by the generated code")
}

#[inline(always)]
pub fn put_u8(buf: &mut [u8], at: usize, value: u8) {
    buf[at] = value;
}
#[inline(always)]
pub fn put_u16(buf: &mut [u8], at: usize, value: u16) {
    *slot(buf, at) = value.to_le_bytes();
}
#[inline(always)]
pub fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    *slot(buf, at) = value.to_le_bytes();
}
#[inline(always)]
pub fn put_u64(buf: &mut [u8], at: usize, value: u64) {
    *slot(buf, at) = value.to_le_bytes();
}

#[inline(always)]
pub fn get_u8(msg: &[u8], at: usize) -> u8 {
    msg[at]
}
#[inline(always)]
pub fn get_u16(msg: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(field(msg, at))
}
#[inline(always)]
pub fn get_u32(msg: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(field(msg, at))
}
#[inline(always)]
pub fn get_u64(msg: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(field(msg, at))
}
#[inline(always)]
pub fn get_le<T: Le>(msg: &[u8], at: usize) -> T {
    T::read(&msg[at..at + T::SIZE])
}

/// Zeroes the padding of an inline array spanning `start..end` (`end` 8-aligned): its last
/// word, before the data is written over the start of it.
#[inline(always)]
pub fn zero_padding8(buf: &mut [u8], start: usize, end: usize) {
    if end > start {
        put_u64(buf, end - 8, 0);
    }
}

/// As [`zero_padding8`], for 4-aligned `end` (i686).
#[inline(always)]
pub fn zero_padding4(buf: &mut [u8], start: usize, end: usize) {
    if end > start {
        put_u32(buf, end - 4, 0);
    }
}

/// Writes `elements` little-endian, `N` bytes each, from `at` (one bounds check for all).
#[inline(always)]
pub fn put_elements<const N: usize, T: Copy>(buf: &mut [u8], at: usize, elements: &[T], to_le: impl Fn(T) -> [u8; N]) {
    let (slots, _) = buf[at..at + N * elements.len()].as_chunks_mut::<N>();
    for (slot, &element) in slots.iter_mut().zip(elements) {
        *slot = to_le(element);
    }
}

/// A `c_string`/`STRING_C` field: the bytes before the first NUL (all of them if none).
pub fn c_string(field: &[u8]) -> &[u8] {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..len]
}

/// Writes `name` and a NUL into `field`, zero-filling the rest. A name that does not fit with
/// its NUL, or holds a NUL, is refused rather than cut (GNU MIG's `mig_strncpy` would cut it).
pub fn put_c_string(field: &mut [u8], name: &[u8]) -> Result<()> {
    if name.len() >= field.len() || name.contains(&0) {
        return Err(array_too_large());
    }
    field[..name.len()].copy_from_slice(name);
    field[name.len()..].fill(0);
    Ok(())
}

/// Takes ownership of out-of-line memory a message delivered (inline data is copied into
/// fresh memory, so the caller gets one type either way).
pub fn into_ool(value: impl IntoOol) -> Result<OolMemory> {
    value.into_ool()
}

/// What a demux did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demuxed {
    /// Send the reply, this many bytes, to the port its header names.
    Reply(usize),
    /// Nothing to send: a simpleroutine, or the method deferred its reply.
    NoReply,
    /// The request failed its type checks: its rights and memory were not taken (destroy
    /// them) and the error reply of this many bytes is ready (0: a simpleroutine, no reply).
    Rejected(usize),
    /// Not this interface's id: the `MIG_BAD_ID` reply of this many bytes is ready, for when no
    /// other demux takes the request.
    UnknownId(usize),
    /// Shorter than a header, or a header whose size does not fit the bytes: nothing to answer.
    Malformed,
}

impl Demuxed {
    /// What the server loop does with the reply buffer.
    pub fn disposition(self) -> Disposition {
        match self {
            Demuxed::Reply(size) | Demuxed::UnknownId(size) => Disposition::Reply(size),
            Demuxed::NoReply | Demuxed::Malformed => Disposition::NoReply,
            // The loop destroys what the refused request carried, which no method took.
            Demuxed::Rejected(size) => Disposition::Rejected(size),
        }
    }
}

/// The reply port of a request being served. The method answers by returning its result, or
/// keeps the port with [`defer`](ReplyPort::defer) and sends the reply later.
#[derive(Debug)]
pub struct ReplyPort<'a> {
    name: PortName,
    disposition: u32,
    deferred: &'a mut bool,
}

impl<'a> ReplyPort<'a> {
    pub fn new(name: PortName, disposition: u32, deferred: &'a mut bool) -> ReplyPort<'a> {
        ReplyPort { name, disposition, deferred }
    }

    pub fn name(&self) -> PortName {
        self.name
    }

    /// The disposition a reply to it must use (`MACH_MSG_TYPE_MOVE_SEND_ONCE` from MIG clients).
    pub fn disposition(&self) -> u32 {
        self.disposition
    }

    /// Keeps the reply right: the demux sends nothing, and the method's result is dropped.
    /// Answer later with the routine's `reply::encode(buf, right.name(), MOVE_SEND_ONCE, …)`
    /// and `msg::send`, which consumes the right.
    pub fn defer(self) -> SendOnceRight {
        *self.deferred = true;
        SendOnceRight::from_name(self.name)
    }
}

#[cfg(test)]
mod tests;
