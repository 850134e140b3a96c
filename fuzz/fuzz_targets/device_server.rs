//! The whole device server under arbitrary request messages: each input is a sequence of
//! messages handed to the server's demux as the kernel would deliver them (addressed to the
//! master port or to an open device), covering every routine, the core and the memory disk.
//! The server must never panic, and every reply it builds must fit its buffer and answer the
//! request's id.
//!
//! Each input gets a server of its own, made and dropped around it, so no input sees what an
//! earlier one left (opens, disk contents, gathered flushes) and a crash is reproduced by its
//! input alone. What a request or reply carries is released as the serving loop releases it
//! (`mach::msg::server::serve`): without that, the simulated kernel's tables grew with every
//! input and each execution became slower than the one before.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mach::constants::{MACH_MSG_TYPE_MAKE_SEND_ONCE, MACH_MSG_TYPE_MOVE_SEND_ONCE, MACH_MSG_TYPE_PORT_SEND};
use mach::interfaces::device as iface;
use mach::mig_rt::Demuxed;
use mach::msg::{self, Header, HEADER_SIZE};
use mach::ool::OolMemory;
use mach::port::{PortName, ReceiveRight, SendRight};
use mach::sys;
use rumpdisk::backend::memory::MemoryBackend;
use rumpdisk::backend::Geometry;
use rumpdisk::device::mode::{READ, WRITE};
use rumpdisk::device_server::DeviceServer;

/// A fresh server with wd0 (64 records of 512 bytes) opened read-write and read-only, and the
/// client's side: the port every reply goes to.
struct Session {
    // Fields drop in this order: the server's ports first, so that `devices` are dead names
    // when released.
    server: DeviceServer<MemoryBackend>,
    /// The send rights the two opens returned (one port: every open of wd0 shares it).
    devices: [SendRight; 2],
    replies: Replies,
}

impl Session {
    fn new() -> Session {
        let mut backend = MemoryBackend::default();
        backend.add(b"wd0", Geometry::new(512, 64).expect("valid geometry")).expect("fresh name");
        let server = DeviceServer::new(backend, None).expect("ports for the server");
        let mut replies = Replies::new();
        let devices = [READ | WRITE, READ].map(|mode| SendRight::from_name(open(&server, &mut replies, mode)));
        Session { server, devices, replies }
    }
}

/// Opens wd0 through the demux and takes the reply as a client would; returns the device port.
fn open(server: &DeviceServer<MemoryBackend>, replies: &mut Replies, mode: u32) -> PortName {
    let mut request = [0u64; 64];
    let master = server.master().name();
    let size = iface::device_open::request::encode(as_bytes(&mut request), master, mode, b"wd0", PortName::NULL).expect("fits");
    let request = &mut as_bytes(&mut request)[..size];
    received(request, master, replies.right(), None);
    let mut reply = vec![0u8; iface::MAX_REPLY_SIZE];
    let Demuxed::Reply(size) = server.handle().demux(request, &mut reply) else { panic!("device_open answers") };
    msg::send(&mut reply, size, Some(0)).expect("the reply port takes the reply");
    let reply = msg::receive(&mut replies.buf, replies.port.name(), Some(0)).expect("the reply arrived");
    iface::device_open::reply::decode(reply).expect("wd0 opens")
}

/// The reply port a client names in its requests. Each request gets a send-once right to it
/// (as `MACH_MSG_TYPE_MAKE_SEND_ONCE` in a client's header would make); replies are received
/// and released as a client that ignores them would.
struct Replies {
    port: ReceiveRight,
    /// Send-once rights made so far, named from [`FIRST_REPLY_NAME`] on.
    made: u32,
    buf: Vec<u8>,
}

/// Where the names of the send-once rights start: far above the names the kernel picks.
const FIRST_REPLY_NAME: u32 = 0x4000_0000;

impl Replies {
    fn new() -> Replies {
        Replies { port: ReceiveRight::new().expect("a reply port"), made: 0, buf: vec![0; iface::MAX_REPLY_SIZE] }
    }

    /// A fresh send-once right to the reply port.
    fn right(&mut self) -> PortName {
        let name = FIRST_REPLY_NAME + self.made;
        self.made += 1;
        let made = sys::port_insert_right(sys::mach_task_self(), name, self.port.name().raw(), MACH_MSG_TYPE_MAKE_SEND_ONCE);
        assert_eq!(made, 0, "send-once right {name:#x}");
        PortName::new(name)
    }

    /// Sends a reply the server built, as the serving loop does (a reply the kernel refuses
    /// is released as the loop releases it), and takes every reply that arrived.
    fn deliver(&mut self, reply: &mut [u8], size: usize) {
        if msg::send(reply, size, Some(0)).is_err() {
            msg::destroy_unsent(&reply[..size]);
        }
        self.drain();
    }

    /// Receives every reply that arrived (deferred ones too) and releases what it carries.
    fn drain(&mut self) {
        while let Ok(reply) = msg::receive(&mut self.buf, self.port.name(), Some(0)) {
            msg::destroy_body(reply);
        }
    }
}

impl Drop for Replies {
    /// Releases the rights no reply used (a request the server neither answered nor kept);
    /// their notices die with the port.
    fn drop(&mut self) {
        for name in FIRST_REPLY_NAME..FIRST_REPLY_NAME + self.made {
            sys::port_deallocate(sys::mach_task_self(), name);
        }
    }
}

/// An 8-aligned copy of `bytes`, the way the kernel hands a message to a server.
fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; bytes.len().div_ceil(8).max(HEADER_SIZE / 8)];
    as_bytes(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

fn as_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: the same memory as bytes: every pattern is a valid u8, alignment only relaxed.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

/// Rewrites a header as received: it arrived on `port` and carries the send-once right
/// `reply` (or a null or dead name).
fn received(message: &mut [u8], port: PortName, reply: PortName, size: Option<usize>) {
    let Some(mut header) = Header::read(message) else { return };
    header.local = port;
    header.remote = reply;
    header.bits = (header.bits & 0x8000_0000) | MACH_MSG_TYPE_MOVE_SEND_ONCE | MACH_MSG_TYPE_PORT_SEND << 8;
    if let Some(size) = size {
        header.size = size as u32;
    }
    header.write(message);
}

/// What became of a request's out-of-line data.
#[derive(PartialEq)]
enum OutOfLine {
    /// Not a well-formed `device_write`: any descriptor is left as the input made it.
    Untouched,
    /// Real memory of the size the descriptor names (the kernel would have mapped it), which
    /// the server then owns and frees.
    Given,
    /// Too big to bother.
    TooBig,
}

/// A device_write request carries its data out of line: give it real memory.
fn with_real_memory(message: &mut [u8]) -> OutOfLine {
    let Ok(request) = iface::device_write::request::decode(message) else { return OutOfLine::Untouched };
    if request.data.len > 1 << 20 {
        return OutOfLine::TooBig;
    }
    let Ok(memory) = OolMemory::new(request.data.len) else { return OutOfLine::TooBig };
    let (address, _) = memory.into_raw();
    // The address is the request's last field.
    let at = iface::device_write::request::MIN_SIZE - 8;
    message[at..at + 8].copy_from_slice(&(address as u64).to_le_bytes());
    OutOfLine::Given
}

/// A well-formed request of one of the routines, its arguments taken from `bytes` (record
/// numbers and sizes biased towards the 64-record disk, so requests reach the disk often).
fn structured(kind: u8, bytes: &[u8], port: PortName, buf: &mut [u8]) -> Option<usize> {
    let byte = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let recnum = u64::from(byte(0) % 72);
    let wanted = i32::from(byte(1)) * 64 - 128;
    let mode = u32::from(byte(2) & 3);
    let data = bytes.get(3..).unwrap_or(&[]);
    let reply = PortName::NULL;
    match kind % 8 {
        0 => iface::device_open::request::encode(buf, port, mode, &data[..data.len().min(128)], reply),
        1 => iface::device_close::request::encode(buf, port, reply),
        2 => iface::device_write::request::encode(buf, port, mode, recnum, data, reply),
        3 => iface::device_write_inband::request::encode(buf, port, mode, recnum, &data[..data.len().min(128)], reply),
        4 => iface::device_read::request::encode(buf, port, mode, recnum, wanted * 16, reply),
        5 => iface::device_read_inband::request::encode(buf, port, mode, recnum, wanted, reply),
        6 => {
            let flavor = [0, 1, 2, 0x125F, u32::from(byte(1))][usize::from(byte(2)) % 5];
            let status: Vec<i32> = data.iter().take(16).map(|&b| i32::from(b)).collect();
            iface::device_set_status::request::encode(buf, port, flavor, &status, reply)
        }
        _ => iface::device_get_status::request::encode(buf, port, u32::from(byte(1) % 4), u32::from(byte(2)), reply),
    }
    .ok()
}

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new();
    let server = &session.server;
    let replies = &mut session.replies;
    let devices = session.devices.each_ref().map(SendRight::name);
    let mut handle = server.handle();
    let mut reply = vec![0u8; iface::MAX_REPLY_SIZE];
    // Each message: a selector byte, a 16-bit length, the bytes.
    let mut rest = data;
    while rest.len() >= 3 {
        let selector = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (bytes, tail) = rest[3..].split_at(len);
        rest = tail;
        let port = match selector & 3 {
            0 => server.master().name(),
            1 => devices[0],
            2 => devices[1],
            _ => PortName::new(u32::from(selector)),
        };
        let (mut words, len) = if selector & 8 != 0 {
            let mut words = vec![0u64; 1 << 10];
            let Some(size) = structured(selector >> 4, bytes, port, as_bytes(&mut words)) else { continue };
            (words, size)
        } else {
            (aligned(bytes), len)
        };
        let message = &mut as_bytes(&mut words)[..len.max(HEADER_SIZE)];
        let reply_port = match Header::read(message).map(|h| h.remote) {
            // A raw message naming no reply port, or a dead one, is delivered so: the server
            // must answer nobody then.
            Some(remote) if selector & 8 == 0 && (remote == PortName::NULL || remote == PortName::DEAD) => remote,
            _ => replies.right(),
        };
        received(message, port, reply_port, (selector & 4 != 0).then_some(len));
        let out_of_line = with_real_memory(message);
        if out_of_line == OutOfLine::TooBig {
            continue;
        }
        let request_id = Header::read(message).map(|h| h.id);
        let demuxed = handle.demux(message, &mut reply);
        if let Demuxed::Reply(size) | Demuxed::Rejected(size) | Demuxed::UnknownId(size) = demuxed {
            if size > 0 {
                assert!(size <= reply.len() && size >= HEADER_SIZE, "reply size {size}");
                let answer = Header::read(&reply).expect("a reply header");
                assert_eq!(Some(answer.id), request_id.map(|id| id.wrapping_add(100)), "reply id");
                replies.deliver(&mut reply, size);
            }
        }
        // A refused request keeps what it carried: the serving loop destroys it. Only memory
        // given here is real; the input's own descriptors name nothing the harness holds.
        if matches!(demuxed, Demuxed::Rejected(_)) && out_of_line == OutOfLine::Given {
            msg::destroy_body(message);
        }
        // As the serving loop does when no request waits: flush requests that gathered start.
        server.core().start_gathered_flushes();
        replies.drain();
    }
});
