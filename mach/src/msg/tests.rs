//! Messages through the simulated kernel.

use super::*;
use crate::kern::{MACH_RCV_TIMED_OUT, MACH_SEND_INVALID_DEST, MIG_SERVER_DIED};
use crate::port::{ReceiveRight, SendOnceRight};
use crate::sys::sim::Task;

const MAKE_SEND_ONCE: u32 = 21;
const COPY_SEND: u32 = 19;

fn request(dest: PortName, reply: PortName, id: i32) -> MsgBuf {
    let mut buf: MsgBuf = MsgBuf::new();
    buf.set_header(&Header {
        bits: header_bits(COPY_SEND, if reply.is_valid() { MAKE_SEND_ONCE } else { 0 }),
        size: HEADER_SIZE as u32,
        remote: dest,
        local: reply,
        seqno: 0,
        id,
    });
    buf
}

#[test]
fn header_round_trips_in_the_target_layout() {
    let header = Header { bits: 0x8000_1312, size: 48, remote: PortName::new(7), local: PortName::new(9), seqno: 3, id: 2800 };
    let mut bytes = [0xffu8; HEADER_SIZE];
    header.write(&mut bytes);
    assert_eq!(Header::read(&bytes), Some(header));
    assert_eq!(HEADER_SIZE, if cfg!(target_pointer_width = "64") { 32 } else { 24 });
    assert!(Header::read(&bytes[..HEADER_SIZE - 1]).is_none());
    assert_eq!((header.remote_bits(), header.local_bits(), header.is_complex()), (0x12, 0x13, true));
}

#[test]
fn receive_times_out_when_nothing_arrives() {
    let port = ReceiveRight::new().unwrap();
    let mut buf = MsgBuf::<64>::new();
    let started = std::time::Instant::now();
    let error = receive(&mut buf, port.name(), Some(30)).unwrap_err();
    assert_eq!(error.code(), MACH_RCV_TIMED_OUT);
    assert!(started.elapsed() >= std::time::Duration::from_millis(30));
}

#[test]
fn rpc_gets_the_reply_from_a_server_task_and_swaps_header_ports() {
    let client = Task::current();
    let server_task = Task::new();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let server = server_task.spawn(move || {
        let port = ReceiveRight::new().unwrap();
        port_tx.send(client.insert_send_right(port.name()).unwrap()).unwrap();
        let mut buf: MsgBuf = MsgBuf::new();
        receive(&mut buf, port.name(), Some(5000)).unwrap();
        let request = buf.header();
        assert_eq!(request.local, port.name());
        assert_eq!(request.remote_bits(), 18, "reply right arrives as a send-once right");
        let mut reply = request;
        reply.bits = header_bits(request.remote_bits(), 0);
        reply.local = PortName::NULL;
        reply.id = request.id + 100;
        buf.set_header(&reply);
        send(&mut buf, HEADER_SIZE, None).unwrap();
        Task::current().stats()
    });
    let server_port = port_rx.recv().unwrap();
    let server_port = crate::port::SendRight::from_name(server_port);
    let mut buf = request(server_port.name(), crate::reply_port(), 1000);
    let size = rpc(&mut buf, HEADER_SIZE, Some(5000)).unwrap();
    assert_eq!((size, buf.header().id), (HEADER_SIZE, 1100));
    let server_stats = server.join().unwrap();
    assert_eq!(server_stats.names, 2, "only the task port and the receive right are left");
}

#[test]
fn a_reply_right_destroyed_unused_turns_into_a_send_once_notification() {
    let port = ReceiveRight::new().unwrap();
    let send_right = port.make_send().unwrap();
    let reply = ReceiveRight::new().unwrap();
    let mut buf = request(send_right.name(), reply.name(), 5);
    send(&mut buf, HEADER_SIZE, None).unwrap();
    receive(&mut buf, port.name(), Some(1000)).unwrap();
    drop(SendOnceRight::from_name(buf.header().remote)); // the server gives up without answering
    receive(&mut buf, reply.name(), Some(1000)).unwrap();
    assert_eq!(buf.header().id, 71, "MACH_NOTIFY_SEND_ONCE, which MIG reports as {MIG_SERVER_DIED}");
}

#[test]
fn sending_to_a_destroyed_port_fails_and_leaks_nothing() {
    let task = Task::current();
    let before = task.stats();
    let port = ReceiveRight::new().unwrap();
    let send_right = port.make_send().unwrap();
    drop(port);
    let mut buf = request(send_right.name(), PortName::NULL, 5);
    assert_eq!(send(&mut buf, HEADER_SIZE, None).unwrap_err().code(), MACH_SEND_INVALID_DEST);
    drop(send_right); // now a dead name; releasing it frees the name
    assert_eq!(task.stats(), before);
}

#[test]
fn a_send_smaller_than_a_header_is_refused() {
    let mut buf = MsgBuf::<64>::new();
    assert_eq!(send(&mut buf, 8, None).unwrap_err().code(), MACH_SEND_MSG_TOO_SMALL);
}
