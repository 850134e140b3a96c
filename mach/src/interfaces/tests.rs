//! The generated device interface on the host: encoders and decoders of both ABIs agree, and
//! the demux answers malformed requests with MIG's errors instead of reading past them.

use super::constants::{DEV_FLUSH_CACHE, DEV_GET_RECORDS, D_INVALID_OPERATION};
use super::device::{self, i686, x86_64};
use crate::kern::{Error, Result, MIG_ARRAY_TOO_LARGE, MIG_BAD_ARGUMENTS, MIG_BAD_ID, MIG_SERVER_DIED};
use crate::mig_rt::{self as rt, Array, Demuxed, ReplyPort};
use crate::port::{PortName, SendOnceRight};

const DEVICE: PortName = PortName::new(7);
const REPLY: PortName = PortName::new(9);

/// What the kernel does on delivery: the header's ports swap (x86_64 slots at 8 and 16).
fn deliver_x86_64(msg: &mut [u8]) {
    let (remote, local) = (rt::get_u32(msg, 8), rt::get_u32(msg, 16));
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
    for (encode_size, decoded) in [
        (x86_64::device_open::request::encode(&mut buf, DEVICE, 3, b"wd0", REPLY).unwrap(), {
            x86_64::device_open::request::decode(&buf[..184]).unwrap().name.to_vec()
        }),
    ] {
        assert_eq!(encode_size, 184);
        assert_eq!(decoded, b"wd0");
    }
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
    // An unknown flavor: an error reply, 48 bytes, to the request's reply port.
    let size = x86_64::device_set_status::request::encode(&mut request, DEVICE, 77, &[1], REPLY).unwrap();
    assert_eq!(x86_64::demux(&mut disk, &request[..size], &mut reply), Demuxed::Reply(48));
    assert_eq!(x86_64::device_set_status::reply::decode(&reply[..48]).unwrap_err().code(), D_INVALID_OPERATION as i32);
    // A flush: deferred, nothing sent now; later the generated encoder builds the reply.
    let size = x86_64::device_set_status::request::encode(&mut request, DEVICE, DEV_FLUSH_CACHE, &[], REPLY).unwrap();
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
