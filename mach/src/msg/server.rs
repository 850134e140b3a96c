//! The server loop: receive a request, hand it to a demux, send the reply it built — unless the
//! demux deferred it (kept the send-once reply right to answer later).

use super::{mach_msg, Header, DEFAULT_CAPACITY, HEADER_SIZE};
use crate::kern::{Error, MACH_RCV_INTERRUPTED, MACH_RCV_TOO_LARGE};
use crate::port::PortName;
use crate::sys;
use alloc::vec;
use alloc::vec::Vec;

/// What the demux did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Send the reply of this many bytes now built in the reply buffer.
    Reply(usize),
    /// Send nothing now: the handler owns the reply right (a deferred reply), or the request
    /// was a one-way message.
    NoReply,
}

/// Turns a request into a reply. The demux owns every right and out-of-line region in the
/// request (decoders wrap them in owning types), and writes the reply header, addressed to the
/// request's reply right.
pub trait Demux {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> Disposition;
}

impl<F: FnMut(&[u8], &mut [u8]) -> Disposition> Demux for F {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> Disposition {
        self(request, reply)
    }
}

/// An 8-aligned, growable message buffer.
struct Buffer(Vec<u64>);

impl Buffer {
    fn new(bytes: usize) -> Buffer {
        Buffer(vec![0; bytes.div_ceil(8)])
    }

    fn bytes(&mut self) -> &mut [u8] {
        let len = self.0.len() * 8;
        // SAFETY: a u64 slice reinterpreted as the same memory in bytes: same lifetime and
        // exclusivity, every byte pattern valid for u8, alignment only relaxed.
        unsafe { core::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), len) }
    }
}

/// Serve requests arriving on `port` (a receive right or a port set) until receiving fails
/// (e.g. the port was destroyed); returns that error. Several threads may serve one port.
pub fn serve(port: PortName, demux: &mut impl Demux) -> Error {
    let mut request = Buffer::new(DEFAULT_CAPACITY);
    let mut reply = Buffer::new(DEFAULT_CAPACITY);
    let mut pending_reply: Option<usize> = None;
    loop {
        // Send the previous reply and receive the next request in one call; the reply buffer
        // is the receive buffer, then the two swap.
        let (options, send_size) = match pending_reply.take() {
            Some(size) => (sys::MACH_SEND_MSG | sys::MACH_RCV_MSG | sys::MACH_RCV_LARGE, size),
            None => (sys::MACH_RCV_MSG | sys::MACH_RCV_LARGE, 0),
        };
        match mach_msg(reply.bytes(), options, send_size, port, None) {
            Ok(()) => core::mem::swap(&mut request, &mut reply),
            Err(error) if error.code() == MACH_RCV_TOO_LARGE => {
                let needed = Header::read(reply.bytes()).map_or(0, |h| h.size as usize);
                reply = Buffer::new(needed.max(HEADER_SIZE));
                continue;
            }
            Err(error) if error.code() == MACH_RCV_INTERRUPTED => continue,
            Err(error) if super::is_receive_error(error) => return error,
            Err(error) => {
                // The client's reply right died (or similar): nothing to tell anyone.
                log::debug!("server: reply not sent: {error:?}");
                continue;
            }
        }
        let bytes = request.bytes();
        let size = Header::read(bytes).map_or(0, |h| h.size as usize).min(bytes.len());
        if let Disposition::Reply(reply_size) = demux.demux(&bytes[..size], reply.bytes()) {
            let addressed = Header::read(reply.bytes()).is_some_and(|h| h.remote.is_valid());
            if addressed {
                pending_reply = Some(reply_size);
            }
        }
    }
}
