//! Messages through the simulated kernel.

use super::*;
use crate::kern::{MACH_RCV_TIMED_OUT, MACH_SEND_INVALID_DEST, MIG_SERVER_DIED};
use crate::port::{ReceiveRight, SendOnceRight};
use crate::sim::Task;

/// How long a test waits for what takes milliseconds before calling it a failure (a broken
/// path fails the test instead of hanging the run).
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let error = receive(buf.as_bytes_mut(), port.name(), Some(30)).unwrap_err();
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
        receive(buf.as_bytes_mut(), port.name(), Some(5000)).unwrap();
        let request = buf.header();
        assert_eq!(request.local, port.name());
        assert_eq!(request.remote_bits(), 18, "reply right arrives as a send-once right");
        let mut reply = request;
        reply.bits = header_bits(request.remote_bits(), 0);
        reply.local = PortName::NULL;
        reply.id = request.id + 100;
        buf.set_header(&reply);
        send(buf.as_bytes_mut(), HEADER_SIZE, None).unwrap();
        Task::current().stats()
    });
    let server_port = port_rx.recv_timeout(WAIT).unwrap();
    let server_port = crate::port::SendRight::from_name(server_port);
    let mut buf = request(server_port.name(), crate::reply_port(), 1000);
    let reply = rpc(buf.as_bytes_mut(), HEADER_SIZE, Some(5000)).unwrap();
    assert_eq!((reply.len(), Header::read(reply).unwrap().id), (HEADER_SIZE, 1100));
    let server_stats = server.join().unwrap();
    assert_eq!(server_stats.names, 2, "only the task port and the receive right are left");
}

#[test]
fn a_reply_right_destroyed_unused_turns_into_a_send_once_notification() {
    let port = ReceiveRight::new().unwrap();
    let send_right = port.make_send().unwrap();
    let reply = ReceiveRight::new().unwrap();
    let mut buf = request(send_right.name(), reply.name(), 5);
    send(buf.as_bytes_mut(), HEADER_SIZE, None).unwrap();
    receive(buf.as_bytes_mut(), port.name(), Some(1000)).unwrap();
    drop(SendOnceRight::from_name(buf.header().remote)); // the server gives up without answering
    receive(buf.as_bytes_mut(), reply.name(), Some(1000)).unwrap();
    assert_eq!(buf.header().id, 71, "MACH_NOTIFY_SEND_ONCE, which MIG reports as {MIG_SERVER_DIED}");
}

#[test]
fn sending_to_a_destroyed_port_fails_and_leaks_nothing() {
    let task = Task::current();
    crate::reply_port(); // the thread's reply port stays: count it in `before`
    let before = task.stats();
    let port = ReceiveRight::new().unwrap();
    let send_right = port.make_send().unwrap();
    drop(port);
    let mut buf = request(send_right.name(), PortName::NULL, 5);
    assert_eq!(send(buf.as_bytes_mut(), HEADER_SIZE, None).unwrap_err().code(), MACH_SEND_INVALID_DEST);
    drop(send_right); // now a dead name; releasing it frees the name
    assert_eq!(task.stats(), before);
}

#[test]
fn a_send_smaller_than_a_header_is_refused() {
    let mut buf = MsgBuf::<64>::new();
    assert_eq!(send(buf.as_bytes_mut(), 8, None).unwrap_err().code(), MACH_SEND_MSG_TOO_SMALL);
}

/// A descriptor word for the 64-bit layout: name, bits per element, inline, deallocate; then count.
fn descriptor(name: u32, bits: u32, inline: bool, deallocate: bool, number: u32) -> [u8; 8] {
    let word = name | (bits << 8) | (u32::from(inline) << 29) | (u32::from(deallocate) << 31);
    let mut bytes = [0; 8];
    bytes[..4].copy_from_slice(&word.to_le_bytes());
    bytes[4..].copy_from_slice(&number.to_le_bytes());
    bytes
}

#[cfg(target_pointer_width = "64")]
#[test]
fn out_of_line_memory_and_rights_travel_between_tasks_without_leaks() {
    use crate::ool::OolMemory;
    let client = Task::current();
    let receiver_task = Task::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = receiver_task.spawn(move || {
        let port = ReceiveRight::new().unwrap();
        tx.send(client.insert_send_right(port.name()).unwrap()).unwrap();
        crate::reply_port();
        let before = Task::current().stats();
        let mut buf: MsgBuf = MsgBuf::new();
        let size = receive(buf.as_bytes_mut(), port.name(), Some(5000)).unwrap().len();
        assert_eq!(size, HEADER_SIZE + 16 + 16);
        let bytes = buf.as_bytes();
        let address = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
        let memory = OolMemory::adopt(address, 1 << 20).unwrap();
        assert!(memory.as_slice().iter().enumerate().all(|(i, b)| *b == i as u8));
        let right = crate::port::SendRight::from_name(PortName::new(u32::from_le_bytes(bytes[56..60].try_into().unwrap())));
        assert!(right.name().is_valid());
        let during = Task::current().stats();
        assert_eq!((during.names, during.regions), (before.names + 1, before.regions + 1));
        drop((memory, right));
        assert_eq!(Task::current().stats(), before);
    });
    let server = crate::port::SendRight::from_name(rx.recv_timeout(WAIT).unwrap());
    crate::reply_port(); // the thread's reply port stays: count it in `before`
    let before = client.stats();
    let mut data = OolMemory::new(1 << 20).unwrap();
    data.as_mut_slice().iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let (address, _) = data.into_raw();
    let extra = ReceiveRight::new().unwrap();
    let mut buf = request(server.name(), PortName::NULL, 7);
    let mut header = buf.header();
    header.bits |= BITS_COMPLEX;
    header.size = (HEADER_SIZE + 32) as u32;
    buf.set_header(&header);
    let body = &mut buf.as_bytes_mut()[HEADER_SIZE..HEADER_SIZE + 32];
    body[..8].copy_from_slice(&descriptor(9, 8, false, true, 1 << 20));
    body[8..16].copy_from_slice(&(address as u64).to_le_bytes());
    body[16..24].copy_from_slice(&descriptor(20, 64, true, false, 1)); // MAKE_SEND
    body[24..28].copy_from_slice(&extra.name().raw().to_le_bytes());
    send(buf.as_bytes_mut(), HEADER_SIZE + 32, None).unwrap();
    assert_eq!(client.stats().regions, before.regions, "the deallocate bit gave the pages away");
    receiver.join().unwrap();
    drop(extra);
    assert_eq!(client.stats().names, before.names);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn a_bad_right_in_the_body_is_refused_and_nothing_is_taken() {
    let port = ReceiveRight::new().unwrap();
    let send_right = port.make_send().unwrap();
    let before = Task::current().stats();
    let mut buf = request(send_right.name(), PortName::NULL, 7);
    let mut header = buf.header();
    header.bits |= BITS_COMPLEX;
    header.size = (HEADER_SIZE + 16) as u32;
    buf.set_header(&header);
    buf.as_bytes_mut()[HEADER_SIZE..HEADER_SIZE + 8].copy_from_slice(&descriptor(17, 64, true, false, 1));
    buf.as_bytes_mut()[HEADER_SIZE + 8..HEADER_SIZE + 12].copy_from_slice(&0x7777u32.to_le_bytes());
    let error = send(buf.as_bytes_mut(), HEADER_SIZE + 16, None).unwrap_err();
    assert_eq!(error.code(), crate::kern::MACH_SEND_INVALID_RIGHT);
    assert_eq!(Task::current().stats(), before);
    assert_eq!(receive(buf.as_bytes_mut(), port.name(), Some(0)).unwrap_err().code(), MACH_RCV_TIMED_OUT);
}

#[test]
fn a_port_set_receives_from_each_member() {
    use crate::port::PortSet;
    let set = PortSet::new().unwrap();
    let (a, b) = (ReceiveRight::new().unwrap(), ReceiveRight::new().unwrap());
    set.insert(&a).unwrap();
    set.insert(&b).unwrap();
    for (port, id) in [(&b, 2), (&a, 1)] {
        let right = port.make_send().unwrap();
        send(request(right.name(), PortName::NULL, id).as_bytes_mut(), HEADER_SIZE, None).unwrap();
    }
    let mut buf = MsgBuf::<64>::new();
    let mut seen = std::vec::Vec::new();
    for _ in 0..2 {
        receive(buf.as_bytes_mut(), set.name(), Some(1000)).unwrap();
        seen.push((buf.header().local, buf.header().id));
    }
    seen.sort();
    assert_eq!(seen, [(a.name(), 1), (b.name(), 2)]);
    set.remove(&a).unwrap();
    let right = a.make_send().unwrap();
    send(request(right.name(), PortName::NULL, 3).as_bytes_mut(), HEADER_SIZE, None).unwrap();
    assert_eq!(receive(buf.as_bytes_mut(), set.name(), Some(0)).unwrap_err().code(), MACH_RCV_TIMED_OUT);
}

#[test]
fn dropping_rights_frees_their_names() {
    let task = Task::current();
    crate::reply_port(); // the thread's reply port stays: count it in `before`
    let before = task.stats();
    let port = ReceiveRight::new().unwrap();
    let send_right = port.make_send().unwrap();
    let another = send_right.try_clone().unwrap();
    assert_eq!(another.name(), port.name(), "send rights share the receive right's name");
    assert_eq!(task.stats().names, before.names + 1);
    drop((send_right, another, port));
    let set = crate::port::PortSet::new().unwrap();
    drop(set);
    assert_eq!(task.stats(), before);
}

#[test]
fn a_receive_right_under_a_chosen_name_refuses_a_taken_name() {
    let name = PortName::new(0x4242);
    let port = ReceiveRight::with_name(name).unwrap();
    assert_eq!(port.name(), name);
    assert_eq!(ReceiveRight::with_name(name).unwrap_err().code(), crate::kern::KERN_NAME_EXISTS);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn a_rejected_request_s_rights_and_memory_are_destroyed_by_the_server_loop() {
    use crate::ool::OolMemory;
    let client = Task::current();
    let server_task = Task::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = server_task.spawn(move || {
        let port = ReceiveRight::new().unwrap();
        tx.send(client.insert_send_right(port.name()).unwrap()).unwrap();
        crate::reply_port();
        let idle = Task::current().stats();
        let mut refuse = |request: &[u8], reply: &mut [u8]| {
            let header = Header::read(request).unwrap();
            let refusal = Header { bits: header_bits(18, 0), size: HEADER_SIZE as u32, remote: header.remote, id: header.id + 100, ..Header::default() };
            refusal.write(reply);
            assert_eq!(Task::current().stats().names, idle.names + 2, "the body's right and the reply right arrived");
            Disposition::Rejected(HEADER_SIZE)
        };
        let error = serve(port.name(), &mut refuse);
        (idle, error)
    });
    let server_port = crate::port::SendRight::from_name(rx.recv_timeout(WAIT).unwrap());
    let extra = ReceiveRight::new().unwrap();
    let (address, _) = OolMemory::copy_from(&[7; 5000]).unwrap().into_raw();
    let mut buf = request(server_port.name(), crate::reply_port(), 9);
    let mut header = buf.header();
    header.bits |= BITS_COMPLEX;
    header.size = (HEADER_SIZE + 32) as u32;
    buf.set_header(&header);
    let body = &mut buf.as_bytes_mut()[HEADER_SIZE..HEADER_SIZE + 32];
    body[..8].copy_from_slice(&descriptor(9, 8, false, true, 5000));
    body[8..16].copy_from_slice(&(address as u64).to_le_bytes());
    body[16..24].copy_from_slice(&descriptor(20, 64, true, false, 1));
    body[24..28].copy_from_slice(&extra.name().raw().to_le_bytes());
    let reply = rpc(buf.as_bytes_mut(), HEADER_SIZE + 32, Some(5000)).unwrap();
    assert_eq!(Header::read(reply).unwrap().id, 109);
    // The refusal is sent after the destruction: the server holds what it held when idle.
    let after = server_task.stats();
    assert_eq!((after.regions, after.names), (0, 3), "task port, service port, reply port");
    server_task.terminate();
    let (idle, error) = server.join().unwrap();
    assert_eq!(error.code(), crate::kern::MACH_RCV_INVALID_NAME);
    assert_eq!((idle.regions, idle.names), (0, 3), "task port, service port, reply port");
}
