//! The generated device interface on the host: encoders and decoders of both ABIs agree, and
//! the demux answers malformed requests with MIG's errors instead of reading past them.

use crate::constants::{DEV_FLUSH_CACHE, DEV_GET_RECORDS, D_INVALID_OPERATION};
use super::device::{self, i686, x86_64};
use crate::kern::{Error, Result, MIG_ARRAY_TOO_LARGE, MIG_BAD_ARGUMENTS, MIG_BAD_ID, MIG_SERVER_DIED};
use crate::mig_rt::{self as rt, Array, Demuxed, ReplyPort};
use crate::port::{PortName, SendOnceRight};

const DEVICE: PortName = PortName::new(7);
const REPLY: PortName = PortName::new(9);

/// What the kernel does on delivery: the header's ports swap (x86_64 slots at 8 and 16), and
/// so do their bits, each disposition becoming the right the receiver holds.
fn deliver_x86_64(msg: &mut [u8]) {
    let received = |disposition: u32| match disposition {
        21 | 18 => 18,
        16 => 16,
        0 => 0,
        _ => 17,
    };
    let bits = rt::get_u32(msg, 0);
    let swapped = (bits & rt::COMPLEX) | received((bits >> 8) & 0xff) | received(bits & 0xff) << 8;
    let (remote, local) = (rt::get_u32(msg, 8), rt::get_u32(msg, 16));
    rt::put_u32(msg, 0, swapped);
    rt::put_u32(msg, 8, local);
    rt::put_u32(msg, 16, remote);
}

#[test]
fn flush_request_is_56_bytes_on_x86_64_and_36_on_i686() {
    let mut buf = [0u8; 8192];
    let size = x86_64::device_set_status::request::encode(&mut buf, DEVICE, DEV_FLUSH_CACHE, &[], REPLY).unwrap();
    assert_eq!(size, 56);
    deliver_x86_64(&mut buf);
    let request = x86_64::device_set_status::request::decode(&buf[..size]).unwrap();
    assert_eq!((request.device, request.flavor, request.status.len()), (DEVICE, DEV_FLUSH_CACHE, 0));
    assert_eq!(request.header.remote_port, REPLY);
    let size = i686::device_set_status::request::encode(&mut buf, DEVICE, DEV_FLUSH_CACHE, &[1, 2, 3], REPLY).unwrap();
    assert_eq!(size, 36 + 12);
    let request = i686::device_set_status::request::decode(&buf[..size]).unwrap();
    assert_eq!(request.status.iter().collect::<std::vec::Vec<i32>>(), [1, 2, 3]);
}

#[test]
fn open_names_round_trip_and_overlong_names_are_refused() {
    let mut buf = [0u8; 256];
    assert_eq!(x86_64::device_open::request::encode(&mut buf, DEVICE, 3, b"wd0", REPLY), Ok(184));
    assert_eq!(x86_64::device_open::request::decode(&buf[..184]).unwrap().name, b"wd0");
    assert_eq!(i686::device_open::request::encode(&mut buf, DEVICE, 3, &[b'a'; 127], REPLY), Ok(172));
    let err = x86_64::device_open::request::encode(&mut buf, DEVICE, 3, &[b'a'; 128], REPLY).unwrap_err();
    assert_eq!(err.code(), MIG_ARRAY_TOO_LARGE);
}

#[test]
fn get_status_replies_decode_on_both_abis() {
    let mut buf = [0u8; 8192];
    let size = x86_64::device_get_status::reply::encode(&mut buf, REPLY, 18, Ok(&[100, 512][..])).unwrap();
    assert_eq!(size, 56 + 8);
    let status: Array<'_, i32> = x86_64::device_get_status::reply::decode(&buf[..size]).unwrap();
    assert_eq!(status.iter().collect::<std::vec::Vec<_>>(), [100, 512]);
    let size = i686::device_get_status::reply::encode(&mut buf, REPLY, 18, Ok(&[100, 512][..])).unwrap();
    assert_eq!(size, 36 + 8);
    assert_eq!(i686::device_get_status::reply::decode(&buf[..size]).unwrap().len(), 2);
    // An error reply carries only the code; a send-once notification means the server died.
    let error = Error::new(D_INVALID_OPERATION as i32).unwrap();
    let size = x86_64::device_get_status::reply::encode(&mut buf, REPLY, 18, Err(error)).unwrap();
    assert_eq!(size, 48);
    assert_eq!(x86_64::device_get_status::reply::decode(&buf[..size]).unwrap_err(), error);
    rt::put_u32(&mut buf, 28, 71);
    assert_eq!(x86_64::device_get_status::reply::decode(&buf[..size]).unwrap_err().code(), MIG_SERVER_DIED);
}

/// Answers set_status and get_status; defers flushes.
#[derive(Default)]
struct Disk {
    flushes: std::vec::Vec<SendOnceRight>,
    status_calls: u32,
}

impl x86_64::Server for Disk {
    fn device_set_status(&mut self, reply_to: ReplyPort<'_>, _device: PortName, flavor: u32, status: Array<'_, i32>) -> Result<()> {
        self.status_calls += 1;
        if flavor == DEV_FLUSH_CACHE && status.is_empty() {
            self.flushes.push(reply_to.defer());
            return Ok(());
        }
        Err(Error::new(D_INVALID_OPERATION as i32).unwrap())
    }
}

#[test]
fn demux_serves_defers_and_rejects() {
    let mut disk = Disk::default();
    let mut request = [0u8; 8192];
    let mut reply = [0u8; x86_64::MAX_REPLY_SIZE];
    // An unknown flavor: an error reply, 48 bytes, moving the send-once right the request
    // carried (MACH_MSGH_BITS_REPLY of the received bits) back to the client.
    let size = x86_64::device_set_status::request::encode(&mut request, DEVICE, 77, &[1], REPLY).unwrap();
    deliver_x86_64(&mut request);
    assert_eq!(x86_64::demux(&mut disk, &request[..size], &mut reply), Demuxed::Reply(48));
    let header = rt::X86_64.header(&reply).unwrap();
    assert_eq!((header.bits, header.remote_port, header.local_port, header.id), (18, REPLY, PortName::NULL, 2910));
    assert_eq!(x86_64::device_set_status::reply::decode(&reply[..48]).unwrap_err().code(), D_INVALID_OPERATION as i32);
    // A flush: deferred, nothing sent now; later the generated encoder builds the reply.
    let size = x86_64::device_set_status::request::encode(&mut request, DEVICE, DEV_FLUSH_CACHE, &[], REPLY).unwrap();
    deliver_x86_64(&mut request);
    assert_eq!(x86_64::demux(&mut disk, &request[..size], &mut reply), Demuxed::NoReply);
    let right = disk.flushes.pop().unwrap();
    let size = x86_64::device_set_status::reply::encode(&mut reply, right.into_name(), 18, Ok(())).unwrap();
    assert_eq!(x86_64::device_set_status::reply::decode(&reply[..size]), Ok(()));
    // An unimplemented routine answers MIG_BAD_ID through the default method.
    let size = x86_64::device_get_status::request::encode(&mut request, DEVICE, DEV_GET_RECORDS, 1024, REPLY).unwrap();
    assert_eq!(x86_64::demux(&mut disk, &request[..size], &mut reply), Demuxed::Reply(48));
    assert_eq!(x86_64::device_get_status::reply::decode(&reply[..48]).unwrap_err().code(), MIG_BAD_ID);
    // An id outside the interface.
    rt::put_u32(&mut request, 28, 2999);
    assert_eq!(x86_64::demux(&mut disk, &request[..size], &mut reply), Demuxed::UnknownId(48));
}

#[test]
fn demux_rejects_malformed_requests_without_panicking() {
    let mut disk = Disk::default();
    let mut request = [0u8; 8192];
    let mut reply = [0u8; x86_64::MAX_REPLY_SIZE];
    let size = x86_64::device_set_status::request::encode(&mut request, DEVICE, 5, &[1, 2, 3], REPLY).unwrap();
    let bad_arguments = |reply: &[u8]| x86_64::device_set_status::reply::decode(&reply[..48]).unwrap_err().code();
    // A count that disagrees with the size, a wrong descriptor, a complex bit.
    let mut bad = request;
    rt::put_u32(&mut bad, 52, 5);
    assert_eq!(x86_64::demux(&mut disk, &bad[..size], &mut reply), Demuxed::Rejected(48));
    assert_eq!(bad_arguments(&reply), MIG_BAD_ARGUMENTS);
    let mut bad = request;
    bad[32] = 11;
    assert_eq!(x86_64::demux(&mut disk, &bad[..size], &mut reply), Demuxed::Rejected(48));
    let mut bad = request;
    bad[3] |= 0x80;
    assert_eq!(x86_64::demux(&mut disk, &bad[..size], &mut reply), Demuxed::Rejected(48));
    // Every truncation and every single-byte corruption: an answer, never a panic.
    for len in 0..size {
        let mut cut = request;
        rt::put_u32(&mut cut, 4, len as u32);
        let _ = x86_64::demux(&mut disk, &cut[..len], &mut reply);
    }
    for at in 0..size {
        for value in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut bad = request;
            bad[at] = value;
            let _ = x86_64::demux(&mut disk, &bad[..size], &mut reply);
        }
    }
}

#[test]
fn the_target_abi_is_re_exported() {
    assert_eq!(device::device_set_status::ID, 2810);
    assert_eq!(device::BASE, 2800);
    assert_eq!(DEV_FLUSH_CACHE, 2);
}

#[test]
fn out_of_line_reply_data_round_trips() {
    let mut buf = [0u8; 128];
    let data = crate::ool::OolMemory::copy_from(b"sector bytes").unwrap();
    let size = x86_64::device_read::reply::encode(&mut buf, REPLY, 18, Ok(data)).unwrap();
    assert_eq!(size, 64);
    // Complex, with the deallocate bit the .defs asks for.
    assert_ne!(rt::get_u32(&buf, 0) & rt::COMPLEX, 0);
    assert_eq!(rt::get_u32(&buf, 48) >> 29, 0b110);
    let region = x86_64::device_read::reply::decode(&buf[..size]).unwrap();
    assert_eq!(rt::into_ool(region).unwrap().as_slice(), b"sector bytes");
    // The same reply without its complex bit would hand over an address nobody sent.
    let bits = rt::get_u32(&buf, 0);
    rt::put_u32(&mut buf, 0, bits & !rt::COMPLEX);
    assert_eq!(x86_64::device_read::reply::decode(&buf[..size]).unwrap_err(), rt::type_error());
}

#[test]
fn rights_the_sender_disposes_of_set_the_complex_bit() {
    let mut buf = [0u8; 512];
    let filter = rt::PortArg::make_send(PortName::new(12));
    let size = x86_64::device_set_filter::request::encode(&mut buf, DEVICE, filter, 3, &[1, 2, 3], REPLY).unwrap();
    assert_eq!(size, 72 + 8);
    assert_ne!(rt::get_u32(&buf, 0) & rt::COMPLEX, 0);
    assert_eq!(rt::get_u32(&buf, 32) & 0xff, 20);
    // The kernel delivers a MAKE_SEND as PORT_SEND (17).
    deliver_x86_64(&mut buf);
    let descriptor = rt::get_u32(&buf, 32);
    rt::put_u32(&mut buf, 32, (descriptor & !0xff) | 17);
    let request = x86_64::device_set_filter::request::decode(&buf[..size]).unwrap();
    assert_eq!(request.receive_port, PortName::new(12));
    assert_eq!(request.filter.iter().collect::<std::vec::Vec<i16>>(), [1, 2, 3]);
    // A right without the complex bit is refused.
    let bits = rt::get_u32(&buf, 0);
    rt::put_u32(&mut buf, 0, bits & !rt::COMPLEX);
    assert_eq!(x86_64::device_set_filter::request::decode(&buf[..size]).unwrap_err(), rt::bad_arguments());
}

#[test]
fn i686_inline_writes_pad_to_four() {
    let mut buf = [0xaau8; 256];
    let size = i686::device_write_inband::request::encode(&mut buf, DEVICE, 2, 7, b"hello", REPLY).unwrap();
    assert_eq!(size, 44 + 8);
    assert_eq!(&buf[44..52], b"hello\0\0\0");
    // Short descriptor: CHAR, 8 bits, five of them, inline.
    assert_eq!(rt::get_u32(&buf, 40), 8 | 8 << 8 | 5 << 16 | 1 << 28);
    let request = i686::device_write_inband::request::decode(&buf[..size]).unwrap();
    assert_eq!((request.recnum, request.data), (7, &b"hello"[..]));
    let too_long = [0u8; 129];
    assert_eq!(i686::device_write_inband::request::encode(&mut buf, DEVICE, 2, 7, &too_long, REPLY).unwrap_err().code(), MIG_ARRAY_TOO_LARGE);
}

#[test]
fn indefinite_arrays_go_inline_when_small_and_out_of_line_when_large() {
    use super::gnumach::x86_64::vm_pages_phys::reply;
    let mut buf = [0u8; 4096];
    let small = crate::ool::OolMemory::copy_from(&[7u8; 16]).unwrap();
    let size = reply::encode(&mut buf, REPLY, 18, Ok(small)).unwrap();
    assert_eq!(size, 56 + 16);
    assert_eq!(rt::get_u32(&buf, 0) & rt::COMPLEX, 0);
    assert_eq!(reply::decode(&buf[..size]).unwrap(), rt::Indefinite::Inline(&[7u8; 16][..]));
    let large = crate::ool::OolMemory::copy_from(&[9u8; 4096]).unwrap();
    let size = reply::encode(&mut buf, REPLY, 18, Ok(large)).unwrap();
    assert_eq!(size, 56 + 8);
    assert_ne!(rt::get_u32(&buf, 0) & rt::COMPLEX, 0);
    // Without the complex bit the kernel copied nothing: the pointer is only the sender's word,
    // and adopting it would unmap the receiver's memory. GNU MIG takes it; the decoder refuses.
    let mut forged = buf;
    rt::put_u32(&mut forged, 0, rt::get_u32(&buf, 0) & !rt::COMPLEX);
    assert!(reply::decode(&forged[..size]).is_err());
    let rt::Indefinite::OutOfLine(region) = reply::decode(&buf[..size]).unwrap() else {
        panic!("4096 bytes travel out of line");
    };
    assert_eq!(rt::into_ool(region).unwrap().as_slice(), &[9u8; 4096][..]);
}
