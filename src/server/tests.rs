use super::*;
use crate::backend::memory::{Faults, MemoryBackend, MemoryDisk};
use crate::backend::Geometry;
use crate::device::mode::{READ, WRITE};
use crate::device::{D_DEVICE_DOWN, D_INVALID_OPERATION, D_INVALID_RECNUM, D_INVALID_SIZE, D_IO_ERROR, D_NO_MEMORY, D_NO_SUCH_DEVICE};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Barrier;
use std::thread;
use std::vec;
use std::vec::Vec;

/// How long a test waits for what takes milliseconds before calling it a failure (a broken
/// path fails the test instead of hanging the run).
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A deferred reply: the answer goes down a channel.
struct Reply(Sender<Result<(), Error>>);

impl Waiter for Reply {
    fn answer(self, result: Result<(), Error>) {
        self.0.send(result).expect("test receiver alive");
    }
}

fn reply() -> (Reply, Receiver<Result<(), Error>>) {
    let (tx, rx) = channel();
    (Reply(tx), rx)
}

const RECORDS: u64 = 64;

fn server() -> (Server<MemoryBackend, Reply>, Arc<MemoryDisk>) {
    let mut backend = MemoryBackend::default();
    let disk = backend.add(b"wd0", Geometry::new(512, RECORDS).unwrap()).unwrap();
    (Server::new(backend), disk)
}

fn open(server: &Server<MemoryBackend, Reply>, mode: u32) -> DeviceId {
    match server.open(b"wd0", mode) {
        Opened::Local { device, .. } => device,
        other => panic!("wd0 not opened: {other:?}"),
    }
}

/// While a write waits for its disk, its client's sync has not come yet: the gathered flush of
/// that disk waits for the write's end, then starts (completion by interrupt lets the serving
/// threads run meanwhile; they must not start it early).
#[test]
fn a_gathered_flush_waits_for_the_write_in_progress_on_its_disk() {
    let (server, disk) = server();
    let server = Arc::new(server);
    let device = open(&server, READ | WRITE);
    let (started_tx, started) = channel();
    let (release_tx, release) = channel::<()>();
    let release = std::sync::Mutex::new(release);
    disk.set_write_hook(Some(std::boxed::Box::new(move || {
        started_tx.send(()).unwrap();
        release.lock().unwrap().recv_timeout(WAIT).expect("the test lets the write go");
    })));
    let writer = {
        let server = server.clone();
        thread::spawn(move || server.write(device, 1, &[7; 512]))
    };
    started.recv_timeout(WAIT).expect("the write started");
    let (waiter, answer) = reply();
    server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
    assert!(!server.has_gathered_flushes(), "a write is in progress on the disk");
    server.start_gathered_flushes();
    assert_eq!(disk.flushes(), 0, "not started while the write waits");
    release_tx.send(()).unwrap();
    assert_eq!(writer.join().unwrap(), Ok(512));
    assert!(server.has_gathered_flushes(), "the write ended");
    server.start_gathered_flushes();
    assert_eq!(answer.recv_timeout(WAIT), Ok(Ok(())));
    assert_eq!(disk.flushes(), 1);
    assert_eq!(disk.durable()[512..1024], [7; 512]);
}

fn read(server: &Server<MemoryBackend, Reply>, device: DeviceId, record: u64, len: u64) -> Result<Vec<u8>, Error> {
    server.read(device, record, len, |n| Ok(vec![0xAA; n]))
}

/// A flush request as the serving loop sees it: it gathers until the server has nothing else
/// to do, then its flush starts.
fn flush(server: &Server<MemoryBackend, Reply>, device: DeviceId) -> Result<(), Error> {
    let (waiter, answer) = reply();
    server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
    assert!(answer.try_recv().is_err(), "gathering, not flushed yet");
    assert!(server.has_gathered_flushes());
    server.start_gathered_flushes();
    assert!(!server.has_gathered_flushes());
    answer.try_recv().expect("answered by the flush the idle server started")
}

#[test]
fn reopening_shares_the_device_and_closing_counts_down() {
    let (server, _) = server();
    let first = server.open(b"wd0", READ | WRITE);
    let Opened::Local { device } = first else { panic!("{first:?}") };
    assert_eq!(server.open(b"wd0", READ | WRITE), Opened::Local { device });
    assert_eq!(server.open_devices(), 1);
    assert_eq!(server.close(device), Ok(Closed::StillOpen));
    assert_eq!(server.close(device), Ok(Closed::Last));
    assert_eq!(server.close(device), Err(D_NO_SUCH_DEVICE));
    assert_eq!(server.open_devices(), 0);
    assert_eq!(read(&server, device, 0, 512), Err(D_NO_SUCH_DEVICE), "closed ids are dead");
}

#[test]
fn unknown_names_are_forwarded_and_refused_opens_answered() {
    let (server, disk) = server();
    assert_eq!(server.open(b"console", READ | WRITE), Opened::Forward);
    assert_eq!(server.open(b"", READ), Opened::Forward);
    disk.set_faults(Faults { open: Some(D_DEVICE_DOWN), ..Faults::default() });
    assert_eq!(server.open(b"wd0", READ), Opened::Refused(D_DEVICE_DOWN));
    assert_eq!(server.open_devices(), 0);
}

#[test]
fn open_for_writing_says_whether_a_client_may_write_a_disk() {
    let (server, _) = server();
    assert!(!server.open_for_writing());
    let reader = open(&server, READ);
    assert!(!server.open_for_writing(), "a read-only open");
    let writer = open(&server, READ | WRITE);
    assert!(server.open_for_writing());
    assert_eq!(server.close(writer), Ok(Closed::Last));
    assert!(!server.open_for_writing(), "the writer closed");
    assert_eq!(server.close(reader), Ok(Closed::Last));
}

#[test]
fn a_read_only_open_never_writes_even_when_the_name_is_open_for_writing() {
    let (server, disk) = server();
    let rw = open(&server, READ | WRITE);
    let ro = open(&server, READ);
    assert_ne!(rw, ro, "different access, different device");
    assert_eq!(server.write(ro, 0, &[1; 512]), Err(D_INVALID_OPERATION));
    assert_eq!(disk.contents()[0], 0);
    assert_eq!(server.write(rw, 0, &[1; 512]), Ok(512));
    assert_eq!(read(&server, ro, 0, 512).unwrap(), vec![1; 512]);
    let wo = open(&server, WRITE);
    assert_eq!(read(&server, wo, 0, 512), Err(D_INVALID_OPERATION));
}

#[test]
fn reads_and_writes_check_records_and_sizes() {
    let (server, _) = server();
    let device = open(&server, READ | WRITE);
    assert_eq!(server.write(device, RECORDS - 1, &[5; 1024]), Err(D_INVALID_SIZE));
    assert_eq!(server.write(device, RECORDS, &[5; 512]), Err(D_INVALID_SIZE));
    assert_eq!(server.write(device, RECORDS + 1, &[]), Err(D_INVALID_RECNUM));
    assert_eq!(server.write(device, u64::MAX, &[5; 512]), Err(D_INVALID_RECNUM));
    assert_eq!(server.write(device, 0, &[5; 100]), Err(D_INVALID_SIZE));
    assert_eq!(server.write(device, RECORDS - 1, &[5; 512]), Ok(512));
    assert_eq!(read(&server, device, RECORDS - 2, 4096).unwrap().len(), 1024, "short at the end");
    assert_eq!(read(&server, device, RECORDS, 512).unwrap().len(), 0);
    assert_eq!(read(&server, device, RECORDS + 1, 512), Err(D_INVALID_RECNUM));
    assert_eq!(read(&server, device, 0, 1).unwrap(), [0], "partial records read through whole ones");
    assert_eq!(read(&server, device, 0, u64::MAX - 511).unwrap().len(), (RECORDS * 512) as usize);
}

#[test]
fn a_whole_request_is_one_backend_call_and_reads_fill_the_callers_buffer() {
    let (server, disk) = server();
    let device = open(&server, READ | WRITE);
    let data: Vec<u8> = (0..RECORDS * 512).map(|i| (i % 251) as u8).collect();
    assert_eq!(server.write(device, 0, &data), Ok(data.len()));
    assert_eq!(disk.contents(), data);
    let mut lengths = Vec::new();
    let got = server.read(device, 3, 2048, |n| {
        lengths.push(n);
        Ok(vec![0; n])
    });
    assert!(got.unwrap() == data[3 * 512..7 * 512]);
    assert_eq!(lengths, [2048], "allocated once, with the exact length");
    assert!(read(&server, device, 1, 700).unwrap() == data[512..1212]);
    assert_eq!(server.read(device, 0, 512, |_| Err::<Vec<u8>, _>(D_NO_MEMORY)), Err(D_NO_MEMORY));
    assert_eq!(server.read(device, 0, 1024, |_| Ok(vec![0; 512])), Err(D_NO_MEMORY), "buffer too small");
}

#[test]
fn a_waiting_flush_starts_at_the_write_bound_without_an_idle_moment() {
    let (server, disk) = server();
    let device = open(&server, READ | WRITE);
    let (waiter, answer) = reply();
    server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
    for i in 0..flush::GATHER_WRITES - 1 {
        assert_eq!(server.write(device, u64::from(i) % RECORDS, &[i as u8 + 1; 512]), Ok(512));
        assert!(answer.try_recv().is_err(), "still gathering after {} writes", i + 1);
    }
    assert_eq!(disk.flushes(), 0);
    assert_eq!(server.write(device, 63, &[0xEE; 512]), Ok(512));
    // The serving loop never went idle: the write that reached the bound ran the flush.
    assert_eq!(answer.try_recv(), Ok(Ok(())));
    assert_eq!(disk.flushes(), 1, "a real flush, not just an answer");
    assert_eq!(disk.durable()[63 * 512], 0xEE, "covering the writes before it");
    server.start_gathered_flushes();
    assert_eq!(disk.flushes(), 1, "nothing left for an idle moment to flush");
}

#[test]
fn a_waiting_flush_starts_once_the_bytes_bound_is_written() {
    let mut backend = MemoryBackend::default();
    let records = (flush::GATHER_BYTES / 512) as u64;
    let disk = backend.add(b"wd0", Geometry::new(512, records).unwrap()).unwrap();
    let server: Server<MemoryBackend, Reply> = Server::new(backend);
    let device = open(&server, READ | WRITE);
    let (waiter, answer) = reply();
    server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
    let half = vec![7; flush::GATHER_BYTES / 2];
    assert_eq!(server.write(device, 0, &half), Ok(half.len()));
    assert!(answer.try_recv().is_err());
    assert_eq!(server.write(device, records / 2, &half), Ok(half.len()));
    assert_eq!(answer.try_recv(), Ok(Ok(())));
    assert_eq!(disk.flushes(), 1);
}

/// The requests a backend got: (operation, record, bytes).
type Calls = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, u64, usize)>>>;

/// A disk that does no checking of its own: it records every request it gets.
struct Unchecked {
    geometry: Geometry,
    calls: Calls,
}

impl Backend for Unchecked {
    type Disk = Unchecked;

    fn open(&self, _name: &[u8], _access: crate::device::Access) -> Result<Unchecked, Error> {
        Ok(Unchecked { geometry: self.geometry, calls: self.calls.clone() })
    }
}

impl crate::backend::Disk for Unchecked {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.calls.lock().unwrap().push(("read", record, buf.len()));
        Ok(())
    }

    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        self.calls.lock().unwrap().push(("write", record, data.len()));
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }

    fn read_out_of_line(&self, record: u64, len: usize) -> core::result::Result<mach::ool::OolMemory, crate::device::Error> {
        crate::backend::read_into_fresh(self, record, len)
    }

    fn write_out_of_line(&self, record: u64, data: mach::ool::OolMemory) -> core::result::Result<(), crate::device::Error> {
        self.write(record, data.as_slice())
    }
}

#[test]
fn the_server_s_own_bounds_checks_keep_a_trusting_backend_inside_the_disk() {
    let calls = std::sync::Arc::default();
    let server: Server<Unchecked, Reply> = Server::new(Unchecked { geometry: Geometry::new(512, RECORDS).unwrap(), calls: std::sync::Arc::clone(&calls) });
    let device = match server.open(b"wd0", READ | WRITE) {
        Opened::Local { device } => device,
        other => panic!("{other:?}"),
    };
    let refused = [
        server.write(device, RECORDS - 1, &[5; 1024]),
        server.write(device, RECORDS, &[5; 512]),
        server.write(device, RECORDS + 1, &[]),
        server.write(device, u64::MAX, &[5; 512]),
        server.write(device, u64::MAX / 512 + 1, &[5; 512]),
        server.write(device, 0, &[5; 100]),
    ];
    assert!(refused.iter().all(Result::is_err), "{refused:?}");
    assert_eq!(server.read(device, RECORDS + 1, 512, |n| Ok(vec![0; n])), Err(D_INVALID_RECNUM));
    assert_eq!(server.read(device, u64::MAX, 512, |n| Ok(vec![0; n])), Err(D_INVALID_RECNUM));
    assert!(calls.lock().unwrap().is_empty(), "nothing out of range reached the backend");
    assert_eq!(server.read(device, RECORDS - 2, 4096, |n| Ok(vec![0; n])).map(|b| b.len()), Ok(1024));
    assert_eq!(server.write(device, RECORDS - 1, &[5; 512]), Ok(512));
    assert_eq!(*calls.lock().unwrap(), [("read", RECORDS - 2, 1024), ("write", RECORDS - 1, 512)], "cut at the end");
}

#[test]
fn backend_errors_reach_the_client() {
    let (server, disk) = server();
    let device = open(&server, READ | WRITE);
    disk.set_faults(Faults { read: Some(D_IO_ERROR), write: Some(Error::new(5).unwrap()), ..Faults::default() });
    assert_eq!(read(&server, device, 0, 512), Err(D_IO_ERROR));
    assert_eq!(server.write(device, 0, &[1; 512]), Err(Error::new(5).unwrap()));
}

#[test]
fn get_status_reports_sizes_and_set_status_knows_three_flavors() {
    let (server, disk) = server();
    let device = open(&server, READ);
    assert_eq!(server.get_status(device, flavor::DEV_GET_SIZE, 1024), Ok([RECORDS as i32 * 512, 512]));
    assert_eq!(server.get_status(device, flavor::DEV_GET_RECORDS, 2), Ok([RECORDS as i32, 512]));
    assert_eq!(server.get_status(DeviceId(999), flavor::DEV_GET_SIZE, 2), Err(D_NO_SUCH_DEVICE));
    let (waiter, answer) = reply();
    server.set_status(device, flavor::BLKRRPART, waiter);
    assert_eq!(answer.try_recv(), Ok(Ok(())));
    let (waiter, answer) = reply();
    server.set_status(device, 7, waiter);
    assert_eq!(answer.try_recv(), Ok(Err(D_INVALID_OPERATION)));
    assert_eq!(flush(&server, device), Ok(()));
    assert_eq!(disk.flushes(), 1);
}

#[test]
fn a_flush_makes_completed_writes_durable_and_a_failed_one_reports_its_error() {
    let (server, disk) = server();
    let device = open(&server, READ | WRITE);
    server.write(device, 2, &[9; 512]).unwrap();
    disk.set_faults(Faults { flush: Some(D_IO_ERROR), ..Faults::default() });
    assert_eq!(flush(&server, device), Err(D_IO_ERROR));
    assert_eq!(disk.durable()[1024], 0);
    disk.set_faults(Faults::default());
    assert_eq!(flush(&server, device), Ok(()));
    assert_eq!(disk.durable()[1024..1536], [9; 512]);
}

#[test]
fn flush_requests_of_a_device_closed_while_they_gather_are_still_flushed_and_answered() {
    let (server, disk) = server();
    let device = open(&server, READ | WRITE);
    server.write(device, 1, &[7; 512]).unwrap();
    let (waiter, answer) = reply();
    server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
    assert_eq!(server.close(device), Ok(Closed::Last));
    server.start_gathered_flushes();
    assert_eq!(answer.try_recv(), Ok(Ok(())));
    assert_eq!(disk.durable()[512..1024], [7; 512]);
}

/// Parks the first flush in the memory disk until the test lets it go, so requests can be
/// queued behind it deterministically.
fn park_first_flush(disk: &MemoryDisk) -> (Receiver<()>, Sender<()>) {
    let (started_tx, started) = channel();
    let (release, release_rx) = channel::<()>();
    let gate = std::sync::Mutex::new(Some((started_tx, release_rx)));
    disk.set_flush_hook(Some(std::boxed::Box::new(move || {
        if let Some((started, release)) = gate.lock().unwrap().take() {
            started.send(()).unwrap();
            release.recv_timeout(WAIT).unwrap();
        }
    })));
    (started, release)
}

/// Starts a flush on its own thread and returns once it is parked in the disk: the thread, the
/// answer its request will get, and the sender that lets the flush finish.
fn start_parked_flush(
    server: &Arc<Server<MemoryBackend, Reply>>,
    disk: &MemoryDisk,
    device: DeviceId,
) -> (thread::JoinHandle<()>, Receiver<Result<(), Error>>, Sender<()>) {
    let (started, release) = park_first_flush(disk);
    let (first, first_answer) = reply();
    let flusher = {
        let server = server.clone();
        thread::spawn(move || {
            server.set_status(device, flavor::DEV_FLUSH_CACHE, first);
            server.start_gathered_flushes();
        })
    };
    started.recv_timeout(WAIT).unwrap();
    (flusher, first_answer, release)
}

#[test]
fn requests_during_a_flush_wait_and_share_the_next_single_flush() {
    let (server, disk) = server();
    let server = Arc::new(server);
    let device = open(&server, READ | WRITE);
    let (flusher, first_answer, release) = start_parked_flush(&server, &disk, device);
    // Written after the running flush took its snapshot: only a later flush covers it.
    server.write(device, 0, &[3; 512]).unwrap();
    let mut later = Vec::new();
    for _ in 0..5 {
        let (waiter, answer) = reply();
        server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter); // returns at once: deferred
        assert!(answer.try_recv().is_err(), "not answered by the flush that started before it");
        later.push(answer);
    }
    assert_eq!(server.waiting_flushes(), 5);
    release.send(()).unwrap();
    flusher.join().unwrap();
    assert_eq!(first_answer.recv_timeout(WAIT), Ok(Ok(())));
    assert!(server.has_gathered_flushes(), "the five gather for the next flush");
    server.start_gathered_flushes();
    for answer in later {
        assert_eq!(answer.recv_timeout(WAIT), Ok(Ok(())));
    }
    assert_eq!(disk.flushes(), 2, "five waiting requests, one flush");
    assert_eq!(disk.durable()[..512], [3; 512]);
}

#[test]
fn a_failing_merged_flush_answers_every_waiter_with_the_error() {
    let (server, disk) = server();
    let server = Arc::new(server);
    let device = open(&server, READ | WRITE);
    let (flusher, first_answer, release) = start_parked_flush(&server, &disk, device);
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let (waiter, answer) = reply();
            server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
            answer
        })
        .collect();
    disk.set_faults(Faults { flush: Some(D_IO_ERROR), ..Faults::default() });
    release.send(()).unwrap();
    flusher.join().unwrap();
    // The parked flush read the faults after release: it failed too.
    assert_eq!(first_answer.recv_timeout(WAIT), Ok(Err(D_IO_ERROR)));
    server.start_gathered_flushes();
    for answer in waiting {
        assert_eq!(answer.recv_timeout(WAIT), Ok(Err(D_IO_ERROR)), "never success after a failed flush");
    }
    assert_eq!(disk.flushes(), 2);
}

#[test]
fn concurrent_clients_see_their_synced_writes_durable() {
    const CLIENTS: usize = 4;
    const ROUNDS: u8 = 50;
    let (server, disk) = server();
    let server = Arc::new(server);
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (server, disk, start) = (server.clone(), disk.clone(), start.clone());
            thread::spawn(move || {
                let device = open(&server, READ | WRITE);
                start.wait();
                for round in 1..=ROUNDS {
                    let record = (client * 8 + usize::from(round) % 8) as u64;
                    server.write(device, record, &[round; 512]).unwrap();
                    let (waiter, answer) = reply();
                    server.set_status(device, flavor::DEV_FLUSH_CACHE, waiter);
                    // This client's serving thread, idle until its answer comes.
                    let answered = loop {
                        server.start_gathered_flushes();
                        match answer.try_recv() {
                            Err(std::sync::mpsc::TryRecvError::Empty) => thread::yield_now(),
                            answered => break answered,
                        }
                    };
                    assert_eq!(answered, Ok(Ok(())));
                    let offset = record as usize * 512;
                    assert_eq!(disk.durable()[offset..offset + 512], [round; 512], "client {client} round {round}");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let flushes = disk.flushes();
    assert!(flushes <= CLIENTS as u64 * u64::from(ROUNDS), "{flushes} flushes");
}

mod group_commit;

/// The shutdown's flush of every disk (`startup_dosync`): one failing disk neither stops the
/// others' flushes nor hides its error, whichever disk comes first; a read-only open is left be.
#[test]
fn flush_all_flushes_every_writable_disk_and_reports_a_failure() {
    for failing in [&b"wd0"[..], b"wd1"] {
        let mut backend = MemoryBackend::default();
        let geometry = Geometry::new(512, RECORDS).unwrap();
        let disks: Vec<Arc<MemoryDisk>> = [&b"wd0"[..], b"wd1", b"wd2"].iter().map(|n| backend.add(n, geometry).unwrap()).collect();
        let server: Server<MemoryBackend, Reply> = Server::new(backend);
        let open_named = |name: &[u8], mode| match server.open(name, mode) {
            Opened::Local { device, .. } => device,
            other => panic!("not opened: {other:?}"),
        };
        let (wd0, wd1) = (open_named(b"wd0", READ | WRITE), open_named(b"wd1", READ | WRITE));
        open_named(b"wd2", READ);
        server.write(wd0, 1, &[0x10; 512]).unwrap();
        server.write(wd1, 1, &[0x11; 512]).unwrap();
        let index = if failing == b"wd0" { 0 } else { 1 };
        disks[index].set_faults(Faults { flush: Some(D_IO_ERROR), ..Faults::default() });
        assert_eq!(server.flush_all(), Err(D_IO_ERROR), "failing {failing:?}");
        let good = 1 - index;
        assert_eq!(disks[good].flushes(), 1, "the other disk is flushed too (failing {failing:?})");
        assert_eq!(disks[good].durable()[512..1024], [0x10 + good as u8; 512]);
        assert_eq!(disks[index].flushes(), 1, "the failing disk was asked once");
        assert_eq!(disks[2].flushes(), 0, "a read-only open wrote nothing to flush");
        disks[index].set_faults(Faults::default());
        assert_eq!(server.flush_all(), Ok(()));
        assert_eq!(disks[index].durable()[512..1024], [0x10 + index as u8; 512]);
    }
}
