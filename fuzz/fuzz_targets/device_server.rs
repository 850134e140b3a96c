//! The whole device server under arbitrary request messages: each input is a sequence of
//! messages handed to the server's demux as the kernel would deliver them (addressed to the
//! master port or to an open device), covering every routine, the core and the memory disk.
//! The server must never panic, and every reply it builds must fit its buffer and answer the
//! request's id.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mach::interfaces::device as iface;
use mach::msg::{Header, HEADER_SIZE};
use mach::ool::OolMemory;
use mach::port::PortName;
use rumpdisk::backend::memory::MemoryBackend;
use rumpdisk::backend::Geometry;
use rumpdisk::device::mode::{READ, WRITE};
use rumpdisk::device_server::DeviceServer;

const MOVE_SEND_ONCE: u32 = 18;
const PORT_SEND: u32 = 17;

fn server() -> &'static DeviceServer<MemoryBackend> {
    static SERVER: OnceLock<DeviceServer<MemoryBackend>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let mut backend = MemoryBackend::default();
        backend.add(b"wd0", Geometry::new(512, 64).expect("valid geometry")).expect("fresh name");
        DeviceServer::new(backend, None).expect("ports for the server")
    })
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

/// Rewrites a header as received: it arrived on `port`, its reply right is a send-once right.
fn received(message: &mut [u8], port: PortName, size: Option<usize>) {
    let Some(mut header) = Header::read(message) else { return };
    header.local = port;
    header.bits = (header.bits & 0x8000_0000) | MOVE_SEND_ONCE | PORT_SEND << 8;
    if let Some(size) = size {
        header.size = size as u32;
    }
    header.write(message);
}

/// wd0's device ports, read-write and read-only; opened again when the input closed them.
fn devices() -> [PortName; 2] {
    static DEVICES: std::sync::Mutex<[PortName; 2]> = std::sync::Mutex::new([PortName::NULL; 2]);
    let mut devices = DEVICES.lock().unwrap();
    if server().core().open_devices() < 2 {
        *devices = open_devices();
    }
    *devices
}

/// Opens wd0 read-write and read-only through the demux; returns the device ports.
fn open_devices() -> [PortName; 2] {
    let server = server();
    let mut handle = server.handle();
    [READ | WRITE, READ].map(|mode| {
        let mut request = [0u64; 64];
        let size = iface::device_open::request::encode(as_bytes(&mut request), server.master().name(), mode, b"wd0", PortName::NULL)
            .expect("fits");
        received(as_bytes(&mut request), server.master().name(), None);
        let mut reply = vec![0u8; iface::MAX_REPLY_SIZE];
        handle.demux(&as_bytes(&mut request)[..size], &mut reply);
        iface::device_open::reply::decode(&reply).unwrap_or(PortName::NULL)
    })
}

/// A device_write request carries its data out of line: give it real memory of the size its
/// descriptor names (the kernel would have), which the server then owns and frees. `false`:
/// too big to bother.
fn with_real_memory(message: &mut [u8]) -> bool {
    let Ok(request) = iface::device_write::request::decode(message) else { return true };
    if request.data.len > 1 << 20 {
        return false;
    }
    let Ok(memory) = OolMemory::new(request.data.len) else { return false };
    let (address, _) = memory.into_raw();
    // The address is the request's last field.
    let at = iface::device_write::request::MIN_SIZE - 8;
    message[at..at + 8].copy_from_slice(&(address as u64).to_le_bytes());
    true
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
    let server = server();
    let devices = devices();
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
        received(message, port, (selector & 4 != 0).then_some(len));
        if !with_real_memory(message) {
            continue;
        }
        let request_id = Header::read(message).map(|h| h.id);
        match handle.demux(message, &mut reply) {
            mach::mig_rt::Demuxed::Reply(size) | mach::mig_rt::Demuxed::Rejected(size) | mach::mig_rt::Demuxed::UnknownId(size) if size > 0 => {
                assert!(size <= reply.len() && size >= HEADER_SIZE, "reply size {size}");
                let answer = Header::read(&reply).expect("a reply header");
                assert_eq!(Some(answer.id), request_id.map(|id| id.wrapping_add(100)), "reply id");
            }
            _ => {}
        }
        // As the serving loop does when no request waits: flush requests that gathered start.
        server.core().start_gathered_flushes();
    }
});
