//! Messages: aligned buffers, the header, send, receive and RPC. The server loop is in
//! [`server`].

pub(crate) mod items;
mod server;

pub use server::{serve, Demux, Disposition};
#[cfg(not(any(target_os = "none", target_os = "hurd")))]
pub(crate) use server::serve_queued;

use crate::kern::{self, Error, Result, MACH_RCV_INVALID_NAME, MACH_SEND_MSG_TOO_SMALL};
use crate::constants::{MACH_MSG_TYPE_MOVE_RECEIVE, MACH_MSG_TYPE_MOVE_SEND, MACH_MSG_TYPE_MOVE_SEND_ONCE};
use crate::ool::OolMemory;
use crate::port::{PortName, ReceiveRight, SendOnceRight, SendRight};
use crate::sys;

/// Size of the message header for the target's ABI (32 bytes on x86_64, 24 on i686).
pub const HEADER_SIZE: usize = 8 + 2 * SLOT + 8;
/// Bytes a port name takes in the header (and inline in a body) on the target's ABI.
const SLOT: usize = core::mem::size_of::<usize>();
const OFFSET_REMOTE: usize = 8;
const OFFSET_LOCAL: usize = 8 + SLOT;
const OFFSET_SEQNO: usize = 8 + 2 * SLOT;
const OFFSET_ID: usize = 12 + 2 * SLOT;

/// `MACH_MSGH_BITS_COMPLEX`: the body carries port rights or out-of-line memory.
pub const BITS_COMPLEX: u32 = crate::constants::MACH_MSGH_BITS_COMPLEX;

/// `MACH_MSGH_BITS(remote, local)`.
pub const fn header_bits(remote: u32, local: u32) -> u32 {
    remote | (local << 8)
}

/// Default capacity of a [`MsgBuf`]: enough for every device-interface message (the largest,
/// `device_get_status`'s reply, carries 1024 ints).
pub const DEFAULT_CAPACITY: usize = 8192;

/// An 8-aligned message buffer of `N` bytes (the kernel does not need the alignment; typed
/// reads and writes of the body are cheaper with it).
#[repr(C, align(8))]
#[derive(Clone)]
pub struct MsgBuf<const N: usize = DEFAULT_CAPACITY> {
    bytes: [u8; N],
}

impl<const N: usize> MsgBuf<N> {
    pub const fn new() -> Self {
        MsgBuf { bytes: [0; N] }
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The header at the start of the buffer.
    pub fn header(&self) -> Header {
        Header::read(&self.bytes).expect("a MsgBuf holds at least a header")
    }

    pub fn set_header(&mut self, header: &Header) {
        header.write(&mut self.bytes);
    }
}

impl<const N: usize> Default for MsgBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A message header (`mach_msg_header_t`) in the target's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Header {
    pub bits: u32,
    pub size: u32,
    /// The destination when sending; the reply right on receipt.
    pub remote: PortName,
    /// The reply port when sending; the port the message arrived on, on receipt.
    pub local: PortName,
    pub seqno: u32,
    pub id: i32,
}

impl Header {
    /// Read a header; `None` if `bytes` is shorter than one.
    pub fn read(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_SIZE {
            return None;
        }
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        Some(Header {
            bits: word(0),
            size: word(4),
            remote: PortName::new(word(OFFSET_REMOTE)),
            local: PortName::new(word(OFFSET_LOCAL)),
            seqno: word(OFFSET_SEQNO),
            id: word(OFFSET_ID) as i32,
        })
    }

    /// Write the header (port slots zero-extended to the ABI's width).
    ///
    /// # Panics
    /// If `bytes` is shorter than [`HEADER_SIZE`] (a buffer-sizing bug, not bad input).
    pub fn write(&self, bytes: &mut [u8]) {
        let header = &mut bytes[..HEADER_SIZE];
        header.fill(0);
        header[0..4].copy_from_slice(&self.bits.to_le_bytes());
        header[4..8].copy_from_slice(&self.size.to_le_bytes());
        header[OFFSET_REMOTE..OFFSET_REMOTE + 4].copy_from_slice(&self.remote.raw().to_le_bytes());
        header[OFFSET_LOCAL..OFFSET_LOCAL + 4].copy_from_slice(&self.local.raw().to_le_bytes());
        header[OFFSET_SEQNO..OFFSET_SEQNO + 4].copy_from_slice(&self.seqno.to_le_bytes());
        header[OFFSET_ID..OFFSET_ID + 4].copy_from_slice(&self.id.to_le_bytes());
    }

    /// The disposition of the remote right (`MACH_MSGH_BITS_REMOTE`).
    pub fn remote_bits(&self) -> u32 {
        self.bits & 0xff
    }

    /// The disposition of the local right (`MACH_MSGH_BITS_LOCAL`).
    pub fn local_bits(&self) -> u32 {
        (self.bits >> 8) & 0xff
    }

    pub fn is_complex(&self) -> bool {
        self.bits & BITS_COMPLEX != 0
    }
}

/// The low-level call: `buf` is the whole message buffer (sent from, received into).
fn mach_msg(buf: &mut [u8], option: u32, send_size: usize, rcv_name: PortName, timeout: Option<u32>) -> Result<()> {
    let send_ok = option & sys::MACH_SEND_MSG == 0 || (HEADER_SIZE..=buf.len()).contains(&send_size);
    if !send_ok || !send_size.is_multiple_of(4) {
        return Err(Error::from_const(MACH_SEND_MSG_TOO_SMALL));
    }
    let rcv_size = if option & sys::MACH_RCV_MSG != 0 { buf.len() } else { 0 };
    let option = option | if timeout.is_some() { sys::MACH_SEND_TIMEOUT | sys::MACH_RCV_TIMEOUT } else { 0 };
    let (Ok(send_size), Ok(rcv_size)) = (u32::try_from(send_size), u32::try_from(rcv_size)) else {
        return Err(Error::from_const(MACH_SEND_MSG_TOO_SMALL));
    };
    // SAFETY: `buf` is valid for both sizes (checked above); out-of-line descriptors are the
    // sender's promise (see `send`).
    let code = unsafe {
        sys::mach_msg(buf.as_mut_ptr(), option, send_size, rcv_size, rcv_name.raw(), timeout.unwrap_or(0), 0)
    };
    kern::check(code)
}

/// Send the first `size` bytes of `buf`, whose header names the destination.
///
/// Out-of-line descriptors in the message must point at memory that stays valid for the call;
/// regions sent with the deallocate bit must have been given up (`OolMemory::into_raw`).
pub fn send(buf: &mut [u8], size: usize, timeout: Option<u32>) -> Result<()> {
    mach_msg(buf, sys::MACH_SEND_MSG, size, PortName::NULL, timeout)
}

/// Receive one message on `port` (a receive right or a port set) into `buf`; returns the
/// message (the first `msgh_size` bytes of `buf`).
pub fn receive(buf: &mut [u8], port: PortName, timeout: Option<u32>) -> Result<&[u8]> {
    if !port.is_valid() {
        return Err(Error::from_const(MACH_RCV_INVALID_NAME));
    }
    mach_msg(buf, sys::MACH_RCV_MSG, 0, port, timeout)?;
    Ok(received(buf))
}

/// Send the request in `buf` (whose header already names the reply port as its local port)
/// and receive the reply on that port into the same buffer; returns the reply.
///
/// A receive that fails after the request went out (a timeout, an interruption) leaves a late
/// reply possible: the thread's reply port is then destroyed and replaced on next use.
pub fn rpc(buf: &mut [u8], send_size: usize, timeout: Option<u32>) -> Result<&[u8]> {
    let reply_port = Header::read(buf).map_or(PortName::NULL, |h| h.local);
    let options = sys::MACH_SEND_MSG | sys::MACH_RCV_MSG;
    match mach_msg(buf, options, send_size, reply_port, timeout) {
        Ok(()) => Ok(received(buf)),
        Err(error) => {
            if is_receive_error(error) && reply_port == crate::reply_port() {
                crate::reply::discard();
            }
            Err(error)
        }
    }
}

/// The message the kernel just wrote at the start of `buf`.
fn received(buf: &[u8]) -> &[u8] {
    let size = Header::read(buf).map_or(0, |h| h.size as usize);
    &buf[..size.min(buf.len())]
}

/// Release every right and out-of-line region in the body of a received message that nobody
/// took (a request the demux refused), as C's `mach_msg_destroy` does. The header's rights are
/// left alone: the reply right answers the refusal, the local port is the server's own.
pub fn destroy_body(message: &[u8]) {
    destroy_items(message, Owned::Received);
}

/// Release what a message this task built but could not send still carries — the destination
/// right and the body's moved rights and `deallocate` out-of-line regions — as glibc's
/// `mach_msg_server` does with a reply the kernel refused (`MACH_SEND_INVALID_DEST`: the
/// client's reply port died, and nothing in the message was taken).
pub fn destroy_unsent(message: &[u8]) {
    let Some(header) = Header::read(message) else { return };
    release(header.remote_bits(), header.remote);
    destroy_items(&message[..(header.size as usize).min(message.len())], Owned::Unsent);
}

/// Whose the body's out-of-line regions are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owned {
    /// Received: every region was mapped into this task for it.
    Received,
    /// Built here and not sent: only regions marked `deallocate` were to be given away; the
    /// others still belong to whoever lent them.
    Unsent,
}

fn destroy_items(message: &[u8], owned: Owned) {
    if !Header::read(message).is_some_and(|h| h.is_complex()) {
        return;
    }
    for item in items::items(message) {
        let Ok(item) = item else { return };
        if item.inline {
            if item.carries_rights() {
                let stride = (item.bits / 8) as usize;
                for i in 0..item.number as usize {
                    if let Some(name) = items::word_at(message, item.at + i * stride) {
                        release(item.name, PortName::new(name as u32));
                    }
                }
            }
            continue;
        }
        if owned == Owned::Unsent && !item.deallocate {
            continue;
        }
        let address = items::word_at(message, item.at).unwrap_or(0);
        if item.carries_rights() {
            // An out-of-line array of 4-byte names.
            let Ok(names) = OolMemory::adopt(address, item.number as usize * 4) else { continue };
            for name in names.as_slice().chunks_exact(4) {
                release(item.name, PortName::new(u32::from_le_bytes([name[0], name[1], name[2], name[3]])));
            }
        } else if let Some(len) = item.data_len() {
            drop(OolMemory::adopt(address, len));
        }
    }
}

/// Release one right held under a `MACH_MSG_TYPE_MOVE_*` name (as received, or as a sender
/// moving it); copied and made rights are not the message's to release.
fn release(received_type: u32, name: PortName) {
    if !name.is_valid() {
        return;
    }
    match received_type {
        MACH_MSG_TYPE_MOVE_RECEIVE => drop(ReceiveRight::from_name(name)),
        MACH_MSG_TYPE_MOVE_SEND => drop(SendRight::from_name(name)),
        MACH_MSG_TYPE_MOVE_SEND_ONCE => drop(SendOnceRight::from_name(name)),
        _ => {}
    }
}

/// `MACH_RCV_*` codes (0x10004000 block), as opposed to `MACH_SEND_*`.
fn is_receive_error(error: Error) -> bool {
    error.code() & !0x3fff == 0x1000_4000
}

#[cfg(test)]
mod tests;
