//! The device class end to end on the host: store → generated client stubs → simulated kernel →
//! the project's rumpdisk device server → memory disk with a volatile cache, and back.

use std::rc::Rc;
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::thread::JoinHandle;

use mach::kern::Error as KernError;
use mach::port::SendRight;
use mach::sim::Task;
use rumpdisk::backend::memory::{Faults, MemoryBackend, MemoryDisk};
use rumpdisk::backend::Geometry;
use rumpdisk::device::{D_INVALID_OPERATION, D_IO_ERROR};
use rumpdisk::device_server::DeviceServer;
use store::class::device::DeviceMaster;
use store::mach_device::MachDeviceMaster;
use store::open::WithMaster;
use store::{open, DeviceCode, Errno, Error, Flags};

const RECORDS: u64 = 4096; // 2 MiB per disk

/// A rumpdisk server task with disks `wd0` and `wd1`; its master port is named in this task.
struct Server {
    task: Task,
    master: SendRight,
    disks: [Arc<MemoryDisk>; 2],
    thread: JoinHandle<KernError>,
}

impl Server {
    fn start() -> Server {
        let mut backend = MemoryBackend::default();
        let disks = [b"wd0", b"wd1"].map(|name| backend.add(name, Geometry::new(512, RECORDS).unwrap()).unwrap());
        let client = Task::current();
        let task = Task::new();
        let (tx, rx) = channel();
        task.spawn(move || {
            let server = DeviceServer::new(backend, None).unwrap();
            let master = client.insert_send_right(server.master().name()).unwrap();
            tx.send((Arc::new(server), master)).unwrap();
        })
        .join()
        .unwrap();
        let (server, master) = rx.recv().unwrap();
        let thread = task.spawn(move || server.serve());
        Server { task, master: SendRight::from_name(master), disks, thread }
    }

    /// An opener holding a reference of its own to the master.
    fn opener(&self) -> WithMaster {
        let master: Rc<dyn DeviceMaster> = Rc::new(MachDeviceMaster::new(self.master.try_clone().unwrap()));
        WithMaster(master)
    }

    fn fail_flushes(&self, disk: usize, error: KernError) {
        self.disks[disk].set_faults(Faults { flush: Some(error), ..Faults::default() });
    }

    fn stop(self) {
        drop(self.master);
        self.task.terminate();
        self.thread.join().unwrap();
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed)).collect()
}

#[test]
fn write_sync_read_back_through_the_server() {
    let server = Server::start();
    let mut store = open("device:wd0", Flags::NONE, &server.opener()).unwrap();
    assert_eq!((store.block_size(), store.blocks()), (512, RECORDS));
    assert!(store.flags().contains(Flags::ENFORCED));
    // More than one megabyte: out-of-line data both ways.
    let data = pattern(3 << 19, 1);
    assert_eq!(store.write(100, &data).unwrap(), data.len());
    assert!(server.disks[0].durable()[100 * 512..][..data.len()] != data[..], "still in the volatile cache");
    store.sync().unwrap();
    assert_eq!(server.disks[0].flushes(), 1);
    assert!(server.disks[0].durable()[100 * 512..][..data.len()] == data[..], "durable after the sync");
    assert!(store.read_vec(100, data.len()).unwrap() == data);
    assert_eq!(store.read_vec(RECORDS - 1, 4096).unwrap().len(), 512, "short at the end");
    drop(store);
    server.stop();
}

#[test]
fn a_server_without_the_flavor_is_eopnotsupp_and_a_failed_flush_is_eio() {
    let server = Server::start();
    let mut store = open("device:wd0", Flags::NONE, &server.opener()).unwrap();
    server.fail_flushes(0, D_INVALID_OPERATION);
    let unsupported = store.sync().unwrap_err();
    assert_eq!(unsupported.errno(), Errno::EOPNOTSUPP);
    assert_eq!(unsupported.device_code(), Some(DeviceCode::INVALID_OPERATION));
    server.fail_flushes(0, D_IO_ERROR);
    let failed = store.sync().unwrap_err();
    assert_eq!((failed.errno(), failed.device_code()), (Errno::EIO, Some(DeviceCode::IO_ERROR)));
    drop(store);
    server.stop();
}

#[test]
fn concat_of_two_server_disks_flushes_both_and_names_the_failing_one() {
    let server = Server::start();
    let mut store = open("concat:device:@wd0@wd1", Flags::NONE, &server.opener()).unwrap();
    assert_eq!(store.blocks(), 2 * RECORDS);
    let data = pattern(8192, 2);
    store.write(RECORDS - 8, &data).unwrap(); // the last 4 KiB of wd0, the first of wd1
    store.sync().unwrap();
    assert!(server.disks[0].durable()[(RECORDS as usize - 8) * 512..] == data[..4096]);
    assert!(server.disks[1].durable()[..4096] == data[4096..]);
    server.fail_flushes(0, D_IO_ERROR);
    let error = store.sync().unwrap_err();
    let Error::Children { class: "concat", failures } = &error else { panic!("{error}") };
    assert_eq!((failures.len(), failures[0].index, error.errno()), (1, 0, Errno::EIO));
    assert_eq!(server.disks[1].flushes(), 2, "the other disk is still flushed");
    drop(store);
    server.stop();
}

#[test]
fn device_errors_come_back_as_errnos() {
    let server = Server::start();
    let Err(missing) = open("device:wd7", Flags::NONE, &server.opener()) else { panic!("opened wd7") };
    assert_eq!((missing.errno(), missing.device_code()), (Errno::ENXIO, Some(DeviceCode::NO_SUCH_DEVICE)));
    let mut store = open("remap:8+8:device:wd1", Flags::NONE, &server.opener()).unwrap();
    server.disks[1].set_faults(Faults { write: Some(D_IO_ERROR), ..Faults::default() });
    let error = store.write(0, &[1; 512]).unwrap_err();
    assert_eq!((error.errno(), error.device_code()), (Errno::EIO, Some(DeviceCode::IO_ERROR)));
    drop(store);
    server.stop();
}
