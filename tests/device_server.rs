//! The device server end to end on the host: generated client stubs → simulated kernel →
//! server loop → generated demux → server core → memory disk, and back.

use std::sync::mpsc::channel;
use std::sync::Arc;
use std::thread::JoinHandle;

use mach::interfaces::device as iface;
use mach::kern::{Error, MACH_SEND_INVALID_DEST};
use mach::mig_rt::{PortArg, ReplyPort};
use mach::port::{PortName, SendRight};
use mach::sim::Task;
use rumpdisk::backend::memory::{Faults, MemoryBackend, MemoryDisk};
use rumpdisk::backend::{Backend, Geometry};
use rumpdisk::device::mode::{READ, WRITE};
use rumpdisk::device::{flavor, Access, D_INVALID_OPERATION, D_READ_ONLY, D_INVALID_RECNUM, D_INVALID_SIZE, D_IO_ERROR, D_NO_SUCH_DEVICE};
use rumpdisk::device_server::DeviceServer;

const RECORDS: u64 = 4096; // 2 MiB

/// A server task serving `backend` with `threads` threads; the master port is named in the
/// calling task.
struct Running<B: Backend + 'static = MemoryBackend> {
    task: Task,
    master: PortName,
    server: Arc<DeviceServer<B>>,
    threads: Vec<JoinHandle<Error>>,
}

impl<B: Backend + 'static> Running<B> {
    fn start(backend: B, threads: usize, upstream: Option<&Running>) -> Running<B> {
        let client = Task::current();
        let task = Task::new();
        // The upstream master, as a send right in the new server's task.
        let upstream = upstream.map(|up| {
            let (tx, rx) = channel();
            let server = up.server.clone();
            up.task.spawn(move || tx.send(task.insert_send_right(server.master().name()).unwrap()).unwrap()).join().unwrap();
            rx.recv_timeout(WAIT).unwrap()
        });
        let (tx, rx) = channel();
        task.spawn(move || {
            let server = DeviceServer::new(backend, upstream.map(SendRight::from_name)).unwrap();
            let master = client.insert_send_right(server.master().name()).unwrap();
            tx.send((Arc::new(server), master)).unwrap();
        })
        .join()
        .unwrap();
        let (server, master) = rx.recv_timeout(WAIT).unwrap();
        let threads = (0..threads)
            .map(|_| {
                let server = server.clone();
                task.spawn(move || server.serve())
            })
            .collect();
        Running { task, master, server, threads }
    }

    fn stop(self) {
        self.task.terminate();
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

fn memory(name: &[u8], records: u64) -> (MemoryBackend, Arc<MemoryDisk>) {
    let mut backend = MemoryBackend::default();
    let disk = backend.add(name, Geometry::new(512, records).unwrap()).unwrap();
    (backend, disk)
}

fn wd0(threads: usize) -> (Running, Arc<MemoryDisk>) {
    let (backend, disk) = memory(b"wd0", RECORDS);
    (Running::start(backend, threads, None), disk)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

#[test]
fn open_size_write_read_back_and_flush() {
    let (server, disk) = wd0(1);
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    let records = iface::device_get_status(dev.name(), flavor::DEV_GET_RECORDS, 1024).unwrap();
    assert_eq!(records.as_slice(), [RECORDS as i32, 512], "exactly two words for libstore");
    let size = iface::device_get_status(dev.name(), flavor::DEV_GET_SIZE, 2).unwrap();
    assert_eq!(size.as_slice(), [RECORDS as i32 * 512, 512]);

    let sector = pattern(512, 1);
    assert_eq!(iface::device_write(dev.name(), 0, 7, &sector), Ok(512));
    assert!(iface::device_read(dev.name(), 0, 7, 512).unwrap().as_slice() == sector);

    let mib = pattern(1 << 20, 2);
    assert_eq!(iface::device_write(dev.name(), 0, 100, &mib), Ok(1 << 20));
    assert!(iface::device_read(dev.name(), 0, 100, 1 << 20).unwrap().as_slice() == mib);

    // A buffer that starts at an odd address.
    let unaligned = &pattern(2049, 3)[1..];
    assert_eq!(iface::device_write(dev.name(), 0, 3000, unaligned), Ok(2048));
    assert!(iface::device_read(dev.name(), 0, 3000, 2048).unwrap().as_slice() == unaligned);

    assert_eq!(iface::device_read_inband(dev.name(), 0, 7, 1).unwrap().as_slice(), &sector[..1]);
    assert_eq!(iface::device_read_inband(dev.name(), 0, 7, 4096).unwrap().as_slice(), &sector[..128], "inline reads stop at 128 bytes");

    assert_eq!(iface::device_set_status(dev.name(), flavor::DEV_FLUSH_CACHE, &[]), Ok(()));
    assert_eq!(disk.flushes(), 1);
    assert!(disk.durable()[100 * 512..][..1 << 20] == mib[..]);
    assert_eq!(iface::device_close(dev.name()), Ok(()));
    server.stop();
}

#[test]
fn a_read_only_open_refuses_writes() {
    let (server, disk) = wd0(1);
    let ro = iface::device_open(server.master, READ, b"wd0").unwrap();
    assert_eq!(iface::device_write(ro.name(), 0, 0, &[1; 512]), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_write_inband(ro.name(), 0, 0, &[1; 128]), Err(D_INVALID_OPERATION));
    assert!(disk.contents().iter().all(|&b| b == 0));
    let wo = iface::device_open(server.master, WRITE, b"wd0").unwrap();
    assert_eq!(iface::device_read(wo.name(), 0, 0, 512).map(|m| m.len()), Err(D_INVALID_OPERATION));
    server.stop();
}

#[test]
fn records_and_sizes_are_checked() {
    let (server, _) = wd0(1);
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    assert_eq!(iface::device_write(dev.name(), 0, RECORDS, &[0; 512]), Err(D_INVALID_SIZE));
    assert_eq!(iface::device_write(dev.name(), 0, RECORDS + 1, &[]), Err(D_INVALID_RECNUM));
    assert_eq!(iface::device_write(dev.name(), 0, u64::MAX, &[0; 512]), Err(D_INVALID_RECNUM));
    assert_eq!(iface::device_write(dev.name(), 0, 0, &[0; 100]), Err(D_INVALID_SIZE));
    assert_eq!(iface::device_write_inband(dev.name(), 0, 0, &[0; 128]), Err(D_INVALID_SIZE), "inline writes are less than a record");
    assert_eq!(iface::device_read(dev.name(), 0, RECORDS - 1, 4096).unwrap().len(), 512, "short at the end");
    assert_eq!(iface::device_read(dev.name(), 0, RECORDS, 512).unwrap().len(), 0);
    assert_eq!(iface::device_read(dev.name(), 0, RECORDS + 1, 512).map(|m| m.len()), Err(D_INVALID_RECNUM));
    assert_eq!(iface::device_read(dev.name(), 0, 0, -1).map(|m| m.len()), Err(D_INVALID_SIZE));
    assert_eq!(iface::device_get_status(dev.name(), flavor::DEV_GET_SIZE, 1).map(|s| s.as_slice().len()), Err(D_INVALID_SIZE));
    server.stop();
}

#[test]
fn unknown_flavors_and_routines_are_invalid_operations() {
    let (server, _) = wd0(1);
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    assert_eq!(iface::device_set_status(dev.name(), flavor::BLKRRPART, &[]), Ok(()));
    assert_eq!(iface::device_set_status(dev.name(), 77, &[1, 2, 3]), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_get_status(dev.name(), flavor::DEV_FLUSH_CACHE, 2).map(|s| s.as_slice().len()), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_map(dev.name(), 1, 0, 4096, 0).map(|p| p.name()), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_set_filter(dev.name(), mach::mig_rt::PortArg::move_send(dev.try_clone().unwrap()), 0, &[]), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_intr_register(dev.name(), 1, 0, mach::mig_rt::PortArg::move_send(dev.try_clone().unwrap())), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_intr_ack(dev.name(), mach::mig_rt::PortArg::move_send(dev.try_clone().unwrap())), Err(D_INVALID_OPERATION));
    assert_eq!(iface::device_open(dev.name(), READ, b"wd0").map(|p| p.name()), Err(D_INVALID_OPERATION), "a device port is no master");
    server.stop();
}

#[test]
fn reopening_shares_the_port_and_the_last_close_destroys_it() {
    let (server, _) = wd0(1);
    let first = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    let second = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    assert_eq!(first.name(), second.name(), "one port, two user references");
    let read_only = iface::device_open(server.master, READ, b"wd0").unwrap();
    assert_ne!(read_only.name(), first.name());
    let third = iface::device_open_new(server.master, READ | WRITE, b"wd0").unwrap();
    assert_eq!(third.name(), first.name(), "device_open_new opens the same way");
    assert_eq!(iface::device_close(third.name()), Ok(()));
    assert_eq!(server.server.core().open_devices(), 2);
    assert_eq!(iface::device_close(first.name()), Ok(()));
    assert_eq!(iface::device_get_status(first.name(), flavor::DEV_GET_SIZE, 2).map(|s| s.as_slice()[0]), Ok(RECORDS as i32 * 512));
    assert_eq!(iface::device_close(first.name()), Ok(()));
    assert_eq!(server.server.core().open_devices(), 1);
    let dead = iface::device_get_status(first.name(), flavor::DEV_GET_SIZE, 2).map(|s| s.as_slice()[0]);
    assert_eq!(dead.map_err(|e| e.code()), Err(MACH_SEND_INVALID_DEST), "the port died with the last close");
    assert_eq!(iface::device_close(read_only.name()), Ok(()));
    assert_eq!(server.server.core().open_devices(), 0);
    server.stop();
}

#[test]
fn an_open_with_no_reply_port_opens_nothing() {
    let (server, _) = wd0(1);
    let before = server.task.stats();
    let mut buf: mach::msg::MsgBuf = mach::msg::MsgBuf::new();
    let size = iface::device_open::request::encode(buf.as_bytes_mut(), server.master, READ | WRITE, b"wd0", PortName::NULL).unwrap();
    mach::msg::send(buf.as_bytes_mut(), size, None).unwrap();
    // One thread serves in order: this answer comes after the one-way open was handled.
    assert_eq!(iface::device_open(server.master, READ, b"sd9").map(|p| p.name()), Err(D_NO_SUCH_DEVICE));
    assert_eq!(server.server.core().open_devices(), 0, "nobody could ever close it");
    assert_eq!(server.task.stats(), before, "no device port or right left behind");
    server.stop();
}

#[test]
fn a_client_that_dies_with_devices_open_has_them_closed() {
    let (server, _) = wd0(1);
    let client = Task::new();
    let master = client.insert_send_right(server.master).unwrap();
    let (opened_tx, opened) = channel();
    client.spawn(move || {
        let opens = [READ | WRITE, READ | WRITE, READ].map(|mode| iface::device_open(master, mode, b"wd0").unwrap());
        opened_tx.send(()).unwrap();
        std::mem::forget(opens); // held until the task ends, never closed
    });
    opened.recv_timeout(WAIT).unwrap();
    assert_eq!(server.server.core().open_devices(), 2);
    // Another client's open of the same device keeps it open until that client ends too.
    let survivor = iface::device_open(server.master, READ, b"wd0").unwrap();
    client.terminate();
    assert!(eventually(|| server.server.core().open_devices() == 1), "the read-write device closed");
    drop(survivor); // a send right dropped without device_close
    assert!(eventually(|| server.server.core().open_devices() == 0), "the read-only device closed");
    assert_eq!(iface::device_open(server.master, READ | WRITE, b"wd0").map(|_| ()), Ok(()), "and opens again");
    server.stop();
}

#[test]
fn a_no_senders_notice_overtaken_by_a_new_open_closes_nothing() {
    let (mut disks, _) = memory(b"wd0", RECORDS);
    disks.add(b"wd1", Geometry::new(512, 8).unwrap()).unwrap();
    let (gate, gate_rx) = channel();
    let server = Running::start(SlowOpen { disks, gate: std::sync::Mutex::new(gate_rx) }, 1, None);
    let client = Task::new();
    let client_master = client.insert_send_right(server.master).unwrap();
    let (opened_tx, opened) = channel();
    client.spawn(move || {
        std::mem::forget(iface::device_open(client_master, READ, b"wd0").unwrap());
        opened_tx.send(()).unwrap();
    });
    opened.recv_timeout(WAIT).unwrap();
    // The only serving thread is held in wd1's open; a new open of wd0 queues, then the first
    // client dies: the kernel's notice (one send right made so far) queues after it.
    let master = server.master;
    let slow = Task::current().spawn(move || iface::device_open(master, READ, b"wd1").map(|p| p.into_name()));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let second = Task::current().spawn(move || iface::device_open(master, READ, b"wd0").map(|p| p.into_name()));
    std::thread::sleep(std::time::Duration::from_millis(50));
    client.terminate();
    gate.send(()).unwrap();
    let second = second.join().unwrap().unwrap();
    assert!(slow.join().unwrap().is_ok());
    let records = iface::device_get_status(second, flavor::DEV_GET_RECORDS, 2).map(|s| s.as_slice()[0]);
    assert_eq!(records, Ok(RECORDS as i32), "the second open's device is still open");
    server.stop();
}

/// Whether `done` becomes true within [`WAIT`].
fn eventually(done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while !done() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

#[test]
fn a_flush_answer_to_a_client_that_died_leaves_nothing_behind() {
    let (server, disk) = wd0(1);
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    let before = server.task.stats();
    for _ in 0..3 {
        // The sync is sent, its client's reply port dies, then the flush answers it.
        let reply_port = mach::port::ReceiveRight::new().unwrap();
        let mut buf: mach::msg::MsgBuf = mach::msg::MsgBuf::new();
        let size = iface::device_set_status::request::encode(buf.as_bytes_mut(), dev.name(), flavor::DEV_FLUSH_CACHE, &[], reply_port.name()).unwrap();
        mach::msg::send(buf.as_bytes_mut(), size, None).unwrap();
        drop(reply_port);
    }
    assert_eq!(iface::device_set_status(dev.name(), flavor::DEV_FLUSH_CACHE, &[]), Ok(()), "a live client's sync");
    assert!(disk.flushes() >= 1);
    assert!(eventually(|| server.task.stats() == before), "the dead clients' reply names released: {:?} → {:?}", before, server.task.stats());
    server.stop();
}

#[test]
fn other_names_are_forwarded_to_the_upstream_master() {
    let (console_backend, console) = memory(b"console", 8);
    let upstream = Running::start(console_backend, 1, None);
    let (backend, _) = memory(b"wd0", RECORDS);
    let server = Running::start(backend, 1, Some(&upstream));
    let dev = iface::device_open(server.master, READ | WRITE, b"console").unwrap();
    assert_eq!(iface::device_write(dev.name(), 0, 1, &[b'x'; 512]), Ok(512));
    assert_eq!(console.contents()[512], b'x', "the write reached the upstream device");
    assert_eq!(server.server.core().open_devices(), 0);
    assert_eq!(iface::device_open(server.master, READ, b"wd9").map(|p| p.name()), Err(D_NO_SUCH_DEVICE), "upstream's answer");
    let (alone, _) = wd0(1);
    assert_eq!(iface::device_open(alone.master, READ, b"console").map(|p| p.name()), Err(D_NO_SUCH_DEVICE), "no upstream");
    server.stop();
    upstream.stop();
    alone.stop();
}

#[test]
fn a_refused_open_of_our_own_name_is_answered_not_forwarded() {
    let (console_backend, _) = memory(b"console", 8);
    let upstream = Running::start(console_backend, 1, None);
    let (backend, disk) = memory(b"wd0", RECORDS);
    let server = Running::start(backend, 1, Some(&upstream));
    disk.set_faults(Faults { open: Some(D_READ_ONLY), ..Faults::default() });
    // libstore retries read-only on D_READ_ONLY; the upstream master's D_NO_SUCH_DEVICE would
    // end its open instead.
    assert_eq!(iface::device_open(server.master, READ | WRITE, b"wd0").map(|p| p.name()), Err(D_READ_ONLY));
    assert_eq!(upstream.server.core().open_devices(), 0);
    server.stop();
    upstream.stop();
}

/// Any error of ours falls back to the upstream master, as libmachdev's `ds_device_open` does: a
/// name both serve and ours cannot open (a drive that is down) opens the upstream's device.
#[test]
fn a_refused_open_falls_back_to_the_upstream_master_which_has_the_name() {
    let (upstream_backend, upstream_disk) = memory(b"wd0", 8);
    let upstream = Running::start(upstream_backend, 1, None);
    let (backend, disk) = memory(b"wd0", RECORDS);
    let server = Running::start(backend, 1, Some(&upstream));
    disk.set_faults(Faults { open: Some(D_IO_ERROR), ..Faults::default() });
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").expect("opened upstream");
    assert_eq!(iface::device_write(dev.name(), 0, 1, &[b'u'; 512]), Ok(512));
    assert_eq!(upstream_disk.contents()[512], b'u', "the write reached the upstream's device");
    assert_eq!((server.server.core().open_devices(), upstream.server.core().open_devices()), (0, 1));
    server.stop();
    upstream.stop();
}

/// Memory disks whose opens of `wd1` wait until the test lets them go (a rump kernel starting).
struct SlowOpen {
    disks: MemoryBackend,
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Backend for SlowOpen {
    type Disk = Arc<MemoryDisk>;

    fn open(&self, name: &[u8], access: Access) -> Result<Arc<MemoryDisk>, Error> {
        if name == b"wd1" {
            self.gate.lock().unwrap().recv_timeout(WAIT).expect("the test lets the open go");
        }
        self.disks.open(name, access)
    }
}

/// How long a test waits for something that takes milliseconds before calling it a failure.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[test]
fn other_requests_go_on_while_a_backend_open_is_slow() {
    let (mut disks, _) = memory(b"wd0", RECORDS);
    disks.add(b"wd1", Geometry::new(512, 8).unwrap()).unwrap();
    let (gate, gate_rx) = channel();
    let server = Running::start(SlowOpen { disks, gate: std::sync::Mutex::new(gate_rx) }, 2, None);
    let master = server.master;
    let slow = Task::current().spawn(move || iface::device_open(master, READ, b"wd1").map(|p| p.into_name()));
    std::thread::sleep(std::time::Duration::from_millis(50)); // the slow open is in the backend
    let (done_tx, done) = channel();
    Task::current().spawn(move || {
        let wd0 = iface::device_open(master, READ, b"wd0").unwrap();
        done_tx.send(iface::device_get_status(wd0.name(), flavor::DEV_GET_RECORDS, 2).map(|s| s.as_slice()[0])).unwrap();
    });
    let answer = done.recv_timeout(WAIT);
    gate.send(()).unwrap();
    assert_eq!(answer, Ok(Ok(RECORDS as i32)), "wd0 answered while wd1's open waited");
    assert!(slow.join().unwrap().is_ok());
    server.stop();
}

#[test]
fn a_failed_flush_or_write_is_reported_never_success() {
    let (server, disk) = wd0(1);
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    disk.set_faults(Faults { flush: Some(D_IO_ERROR), write: Some(Error::new(5).unwrap()), ..Faults::default() });
    assert_eq!(iface::device_set_status(dev.name(), flavor::DEV_FLUSH_CACHE, &[]), Err(D_IO_ERROR));
    assert_eq!(iface::device_write(dev.name(), 0, 0, &[1; 512]), Err(Error::new(5).unwrap()), "the backend's errno");
    server.stop();
}

#[test]
fn out_of_line_data_is_released_on_every_path() {
    let (server, disk) = wd0(1);
    let dev = iface::device_open(server.master, READ, b"wd0").unwrap();
    let rw = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap();
    let before = server.task.stats();
    for _ in 0..20 {
        assert_eq!(iface::device_write(dev.name(), 0, 0, &[1; 8192]), Err(D_INVALID_OPERATION));
        assert_eq!(iface::device_write(rw.name(), 0, RECORDS, &[1; 8192]), Err(D_INVALID_SIZE));
        assert_eq!(iface::device_write(rw.name(), 0, 0, &[1; 8192]), Ok(8192));
        let data = iface::device_read(rw.name(), 0, 0, 8192).unwrap();
        assert_eq!(data.len(), 8192);
    }
    disk.set_faults(Faults { write: Some(D_IO_ERROR), ..Faults::default() });
    assert_eq!(iface::device_write(rw.name(), 0, 0, &[1; 8192]), Err(D_IO_ERROR));
    assert_eq!(server.task.stats(), before, "no region or name left behind in the server");
    server.stop();
}

#[test]
fn flushes_arriving_during_a_flush_are_answered_by_one_more_flush() {
    let (server, disk) = wd0(3);
    let (started_tx, started) = channel();
    let (release, release_rx) = channel::<()>();
    let gate = std::sync::Mutex::new(Some((started_tx, release_rx)));
    disk.set_flush_hook(Some(Box::new(move || {
        if let Some((started, release)) = gate.lock().unwrap().take() {
            started.send(()).unwrap();
            release.recv_timeout(WAIT).unwrap();
        }
    })));
    let dev = iface::device_open(server.master, READ | WRITE, b"wd0").unwrap().into_name();
    let client = Task::current();
    let flush = move || client.spawn(move || iface::device_set_status(dev, flavor::DEV_FLUSH_CACHE, &[]));
    let first = flush();
    started.recv_timeout(WAIT).unwrap();
    assert_eq!(iface::device_write(dev, 0, 9, &[9; 512]), Ok(512), "I/O goes on during a flush");
    let waiting: Vec<_> = (0..4).map(|_| flush()).collect();
    while server.server.core().waiting_flushes() < 4 {
        std::thread::yield_now();
    }
    release.send(()).unwrap();
    assert_eq!(first.join().unwrap(), Ok(()));
    for client in waiting {
        assert_eq!(client.join().unwrap(), Ok(()));
    }
    assert_eq!(disk.flushes(), 2, "four waiting requests, one flush");
    assert_eq!(disk.durable()[9 * 512..10 * 512], [9; 512]);
    server.stop();
}

/// The kernel pass-through backend relays to a device master: here another device server on
/// the simulated kernel stands in for GNU Mach's `rd0`.
#[test]
fn a_kernel_device_is_passed_through() {
    use rumpdisk::backend::kernel::KernelBackend;
    use rumpdisk::backend::{Backend, Disk};
    use rumpdisk::device::Access;
    let (kernel_backend, rd0) = memory(b"rd0", 64);
    let kernel = Running::start(kernel_backend, 1, None);
    let backend = KernelBackend::new(SendRight::from_name(kernel.master), &[b"rd0"]);
    let rw = Access { read: true, write: true };
    assert_eq!(backend.open(b"wd0", rw).err(), Some(D_NO_SUCH_DEVICE), "only the names given");
    let disk = backend.open(b"rd0", rw).unwrap();
    assert_eq!(disk.geometry(), Geometry::new(512, 64).unwrap());
    disk.write(3, &pattern(1024, 4)).unwrap();
    assert!(rd0.contents()[3 * 512..5 * 512] == pattern(1024, 4)[..]);
    let mut back = vec![0; 1024];
    disk.read(3, &mut back).unwrap();
    assert_eq!(back, pattern(1024, 4));
    disk.flush().unwrap();
    assert_eq!(rd0.flushes(), 1);
    rd0.set_faults(Faults { flush: Some(D_IO_ERROR), ..Faults::default() });
    // Written since the last flush: the stand-in server sends the next flush to its disk.
    disk.write(5, &pattern(512, 6)).unwrap();
    assert_eq!(disk.flush(), Err(D_IO_ERROR));
    assert_eq!(disk.write(64, &[0; 512]), Err(D_INVALID_SIZE), "the kernel device's own checks");
    assert_eq!(kernel.server.core().open_devices(), 1);
    drop(disk);
    assert_eq!(kernel.server.core().open_devices(), 0, "closed on drop");
    kernel.stop();
}

/// Requests as the kernel would deliver them, handed straight to one serving thread's demux.
mod malformed {
    use super::*;
    use mach::kern::{MIG_BAD_ARGUMENTS, MIG_BAD_ID};
    use mach::mig_rt::Demuxed;
    use mach::msg::{Header, HEADER_SIZE};

    const MOVE_SEND_ONCE: u32 = 18;
    const PORT_SEND: u32 = 17;

    /// Rewrites an encoded request's header as received on `port`.
    fn as_received(message: &mut [u8], port: PortName) {
        let mut header = Header::read(message).unwrap();
        header.local = port;
        header.bits = (header.bits & 0x8000_0000) | MOVE_SEND_ONCE | PORT_SEND << 8;
        header.write(message);
    }

    /// The return code of an error reply.
    fn return_code(reply: &[u8]) -> i32 {
        i32::from_le_bytes(reply[HEADER_SIZE + 8..HEADER_SIZE + 12].try_into().unwrap())
    }

    #[test]
    fn idle_jobs_run_before_the_patience_th_request_when_the_server_is_never_idle() {
        use rumpdisk::device_server::IDLE_JOB_PATIENCE;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (backend, _disk) = memory(b"wd0", 64);
        let server = DeviceServer::new(backend, None).unwrap();
        let master = server.master().name();
        let ran = Arc::new(AtomicBool::new(false));
        let job_ran = ran.clone();
        server.when_idle(Box::new(move || job_ran.store(true, Ordering::SeqCst)));
        let mut handle = server.handle();
        let mut reply = vec![0u8; iface::MAX_REPLY_SIZE];
        let mut serve = |request: &[u8], reply: &mut [u8]| mach::msg::Demux::demux(&mut handle, request, reply);

        let mut open = vec![0u8; iface::device_open::request::MAX_SIZE];
        // Requests before the first open do not count: the server is starting up.
        for _ in 0..IDLE_JOB_PATIENCE {
            let size = iface::device_open::request::encode(&mut open, master, READ, b"nothing", PortName::NULL).unwrap();
            as_received(&mut open, master);
            serve(&open[..size], &mut reply);
        }
        assert!(!ran.load(Ordering::SeqCst));
        let size = iface::device_open::request::encode(&mut open, master, READ, b"wd0", PortName::NULL).unwrap();
        as_received(&mut open, master);
        serve(&open[..size], &mut reply);
        let device = iface::device_open::reply::decode(&reply).unwrap();
        let mut status = vec![0u8; iface::device_get_status::request::MAX_SIZE];
        let size = iface::device_get_status::request::encode(&mut status, device, flavor::DEV_GET_SIZE, 2, PortName::NULL).unwrap();
        as_received(&mut status, device);
        for served in 1..IDLE_JOB_PATIENCE {
            serve(&status[..size], &mut reply);
            assert!(!ran.load(Ordering::SeqCst), "ran after {served} requests, before an idle moment or the bound");
        }
        serve(&status[..size], &mut reply);
        assert!(ran.load(Ordering::SeqCst), "still waiting after {IDLE_JOB_PATIENCE} requests");
    }

    #[test]
    fn bad_requests_get_error_replies_and_change_nothing() {
        let (backend, disk) = memory(b"wd0", 64);
        let server = DeviceServer::new(backend, None).unwrap();
        let master = server.master().name();
        let mut handle = server.handle();
        let mut reply = vec![0u8; iface::MAX_REPLY_SIZE];

        let mut open = vec![0u8; iface::device_open::request::MAX_SIZE];
        let size = iface::device_open::request::encode(&mut open, master, READ | WRITE, b"wd0", PortName::NULL).unwrap();
        as_received(&mut open, master);
        assert!(matches!(handle.demux(&open[..size], &mut reply), Demuxed::Reply(_)));
        let device = iface::device_open::reply::decode(&reply).unwrap();

        let mut write = vec![0u8; iface::device_write_inband::request::MAX_SIZE];
        let size = iface::device_write_inband::request::encode(&mut write, device, 0, 0, &[7; 128], PortName::NULL).unwrap();
        as_received(&mut write, device);

        // Truncated: shorter than its own size field, or than a header.
        assert!(matches!(handle.demux(&write[..HEADER_SIZE - 1], &mut reply), Demuxed::Malformed));
        assert!(matches!(handle.demux(&write[..size - 8], &mut reply), Demuxed::Malformed | Demuxed::Rejected(_)));
        // A data descriptor that lies about its type.
        let mut lying = write[..size].to_vec();
        let descriptor = HEADER_SIZE + 32;
        lying[descriptor] ^= 0x01;
        let Demuxed::Rejected(n) = handle.demux(&lying, &mut reply) else { panic!("a bad descriptor was accepted") };
        assert!(n > 0);
        assert_eq!(return_code(&reply), MIG_BAD_ARGUMENTS);
        // An id no routine has.
        let mut unknown = write[..size].to_vec();
        unknown[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&2899i32.to_le_bytes());
        assert!(matches!(handle.demux(&unknown, &mut reply), Demuxed::UnknownId(_)));
        assert_eq!(return_code(&reply), MIG_BAD_ID);
        assert!(disk.contents().iter().all(|&b| b == 0), "no bad request wrote");
        // The well-formed one still works (and fails for its size, not its form).
        assert!(matches!(handle.demux(&write[..size], &mut reply), Demuxed::Reply(_)));
        assert_eq!(iface::device_write_inband::reply::decode(&reply), Err(D_INVALID_SIZE));
    }
}

/// A bootstrap port's `fsys_getpriv`, answered with the device server's master (the boot
/// server's whole protocol is tested in `rumpdisk::boot`).
#[derive(Clone, Copy)]
struct GetprivStandIn {
    host_priv: PortName,
    master: PortName,
}

impl mach::interfaces::fsys::Server for GetprivStandIn {
    fn fsys_getpriv(&mut self, _reply: ReplyPort<'_>, _fsys: PortName) -> mach::kern::Result<(PortArg, PortArg, PortArg)> {
        Ok((PortArg::copy_send(self.host_priv), PortArg::make_send(self.master), PortArg::copy_send(self.host_priv)))
    }
}

#[test]
fn the_bootstrap_port_is_served_on_its_own_thread_and_idle_work_waits_for_the_first_open() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (running, disk) = wd0(1);
    let client = Task::current();
    let idle_job_ran = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    {
        let (server, idle_job_ran) = (running.server.clone(), idle_job_ran.clone());
        running.task.spawn(move || {
            // Stand-ins for host-priv and the next task's port: plain ports of the server task.
            let other = mach::port::ReceiveRight::new().unwrap();
            let other_send = other.make_send().unwrap().into_name();
            let stand_in = GetprivStandIn { host_priv: other_send, master: server.master().name() };
            let bootstrap = mach::port::ReceiveRight::new().unwrap();
            let bootstrap_send = client.insert_send_right(bootstrap.name()).unwrap();
            server.serve_port(bootstrap, Box::new(move |request: &[u8], reply: &mut [u8]| mach::interfaces::fsys::demux(&mut { stand_in }, request, reply).disposition())).unwrap();
            server.when_idle(Box::new(move || idle_job_ran.store(true, Ordering::SeqCst)));
            std::mem::forget(other);
            tx.send(bootstrap_send).unwrap();
        })
        .join()
        .unwrap();
        let server = running.server.clone();
        assert!(server.claim_others_thread());
        running.task.spawn(move || server.serve_others());
    }
    let bootstrap = rx.recv_timeout(WAIT).unwrap();
    assert!(!idle_job_ran.load(Ordering::SeqCst), "no idle moment yet: the thread blocked before the job came");
    // What the next task does first: its device master is the server's own master port.
    let (_host_priv, master, _task) = mach::interfaces::fsys::fsys_getpriv(bootstrap).unwrap();
    // The server is idle now, but still starting up: its first open has not come yet.
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!idle_job_ran.load(Ordering::SeqCst), "idle work ran before the first device_open");
    let dev = iface::device_open(master.name(), READ | WRITE, b"wd0").unwrap();
    assert_eq!(iface::device_write(dev.name(), 0, 3, &[6; 512]), Ok(512));
    assert_eq!(&disk.contents()[3 * 512..4 * 512], &[6; 512][..]);
    // Device requests on the bootstrap port are not device requests: refused, not served.
    assert!(iface::device_open(bootstrap, READ, b"wd0").is_err());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !idle_job_ran.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(idle_job_ran.load(Ordering::SeqCst), "the idle job ran once the requests were answered");
    running.stop();
}

/// Device threads grow with demand, up to the bound, and the ports of other interfaces (the
/// boot port) keep their own thread: with every device thread held by a flush that waits on its
/// drive, the boot port still answers, and each new device request before the bound is taken
/// by a new thread.
#[test]
fn device_threads_grow_to_the_bound_and_the_boot_port_answers_while_they_wait() {
    const MAX: usize = 3;
    let client = Task::current();
    let task = Task::new();
    let mut backend = MemoryBackend::default();
    let disks: Vec<Arc<MemoryDisk>> = [&b"wd0"[..], b"wd1", b"wd2"].iter().map(|name| backend.add(name, Geometry::new(512, 64).unwrap()).unwrap()).collect();
    // Each disk's flush tells the test it started, then waits for the test.
    let (started_tx, started) = channel();
    let (release_tx, release_rx) = channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    for disk in &disks {
        let (started_tx, release_rx) = (started_tx.clone(), release_rx.clone());
        disk.set_flush_hook(Some(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv_timeout(WAIT).expect("the test lets the flush go");
        })));
    }
    let (tx, rx) = channel();
    task.spawn(move || {
        let server: &'static DeviceServer<MemoryBackend> = Box::leak(Box::new(DeviceServer::new(backend, None).unwrap()));
        server.grow(mach::thread::spawn, MAX);
        let other = mach::port::ReceiveRight::new().unwrap();
        let stand_in = GetprivStandIn { host_priv: other.make_send().unwrap().into_name(), master: server.master().name() };
        std::mem::forget(other);
        let bootstrap = mach::port::ReceiveRight::new().unwrap();
        let bootstrap_there = client.insert_send_right(bootstrap.name()).unwrap();
        server.serve_port(bootstrap, Box::new(move |request: &[u8], reply: &mut [u8]| mach::interfaces::fsys::demux(&mut { stand_in }, request, reply).disposition())).unwrap();
        assert!(server.claim_others_thread());
        Task::current().spawn(move || server.serve_others());
        let master = client.insert_send_right(server.master().name()).unwrap();
        tx.send((server, master, bootstrap_there)).unwrap();
        server.serve()
    });
    let (server, master, bootstrap) = rx.recv_timeout(WAIT).unwrap();
    let opened: Vec<SendRight> = [&b"wd0"[..], b"wd1", b"wd2"].iter().map(|name| iface::device_open(master, READ | WRITE, name).unwrap()).collect();
    assert!(server.serving_threads() <= 2, "grown only when busy: {}", server.serving_threads());

    // One flush per disk, each from a client thread of its own; each holds a device thread.
    let (answers_tx, answers) = channel();
    for (n, dev) in opened.iter().enumerate() {
        let (dev, answers_tx) = (dev.name(), answers_tx.clone());
        Task::current().spawn(move || answers_tx.send(iface::device_set_status(dev, flavor::DEV_FLUSH_CACHE, &[])).unwrap());
        started.recv_timeout(WAIT).unwrap_or_else(|_| panic!("flush {n} was never started: no thread took it"));
        assert_eq!(server.serving_threads(), (n + 2).min(MAX), "after flush {n}");
    }
    // Every device thread waits on a drive, and the bound stops the growth there.
    let (status_tx, status) = channel();
    let wd0 = opened[0].name();
    Task::current().spawn(move || status_tx.send(iface::device_get_status(wd0, flavor::DEV_GET_RECORDS, 2).map(|s| s.as_slice()[0])).unwrap());
    assert!(status.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "served beyond the bound");
    assert_eq!(server.serving_threads(), MAX);
    // The boot port answers meanwhile, on its own thread.
    let (getpriv_tx, getpriv) = channel();
    Task::current().spawn(move || getpriv_tx.send(mach::interfaces::fsys::fsys_getpriv(bootstrap).map(|(_, master, _)| master.into_name())).unwrap());
    assert!(getpriv.recv_timeout(WAIT).expect("the boot port answered while the device threads waited").is_ok());

    for _ in 0..opened.len() {
        release_tx.send(()).unwrap();
    }
    assert_eq!(status.recv_timeout(WAIT), Ok(Ok(64)), "served once a thread was free");
    for _ in 0..opened.len() {
        assert_eq!(answers.recv_timeout(WAIT), Ok(Ok(())));
    }
    task.terminate();
}
