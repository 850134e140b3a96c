//! Test doubles: a disk with a volatile write cache that loses unflushed writes on `crash()`
//! (the LazyFS idea), served through the device RPC traits so every class is tested above the
//! real device class; and a file served through the file RPC trait.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::class::file::FileNode;
use crate::class::device::{self, DeviceMaster, DevicePort, ReturnCode, D_WRITE, DEV_FLUSH_CACHE, DEV_GET_RECORDS, DEV_GET_SIZE};
use crate::errno::DeviceCode;
use crate::store::{Flags, Store};

struct Disk {
    record_size: u32,
    /// What survives a power loss.
    durable: Vec<u8>,
    /// What reads see: the durable bytes plus the writes still in the cache.
    cached: Vec<u8>,
    /// The code every flush answers with instead of flushing.
    flush_failure: Option<ReturnCode>,
    /// The code every read and write answers with instead of transferring.
    io_failure: Option<ReturnCode>,
    flushes: usize,
    read_only: bool,
    knows_records: bool,
}

#[derive(Clone)]
pub struct CrashDisk(Rc<RefCell<Disk>>);

impl CrashDisk {
    pub fn new(records: usize, record_size: u32) -> CrashDisk {
        let bytes = records * record_size as usize;
        CrashDisk(Rc::new(RefCell::new(Disk {
            record_size,
            durable: vec![0; bytes],
            cached: vec![0; bytes],
            flush_failure: None,
            io_failure: None,
            flushes: 0,
            read_only: false,
            knows_records: true,
        })))
    }

    /// Power loss: every write not flushed is gone.
    pub fn crash(&self) {
        let mut disk = self.0.borrow_mut();
        disk.cached = disk.durable.clone();
    }

    pub fn durable(&self) -> Vec<u8> {
        self.0.borrow().durable.clone()
    }

    /// Every later flush answers `code` and flushes nothing.
    pub fn fail_flushes_with(&self, code: ReturnCode) {
        self.0.borrow_mut().flush_failure = Some(code);
    }

    /// Every later read and write answers `code`.
    pub fn fail_io_with(&self, code: ReturnCode) {
        self.0.borrow_mut().io_failure = Some(code);
    }

    /// Successful flushes so far.
    pub fn flushes(&self) -> usize {
        self.0.borrow().flushes
    }

    /// Refuse read-write opens with `D_READ_ONLY`.
    pub fn make_read_only(&self) {
        self.0.borrow_mut().read_only = true;
    }

    /// Answer `DEV_GET_RECORDS` with `D_INVALID_OPERATION`, as older drivers do.
    pub fn forget_records_flavor(&self) {
        self.0.borrow_mut().knows_records = false;
    }

    /// This disk as `device:NAME` through its own master.
    pub fn open(&self, name: &str) -> Store {
        device::open(Rc::new(Master::with(name, self.clone())), name, Flags::NONE).expect("open the test disk")
    }
}

/// A device master serving named crash disks.
#[derive(Default)]
pub struct Master {
    disks: RefCell<Vec<(String, CrashDisk)>>,
    pub opens: RefCell<Vec<u32>>,
}

impl Master {
    pub fn with(name: &str, disk: CrashDisk) -> Master {
        let master = Master::default();
        master.add(name, disk);
        master
    }

    pub fn add(&self, name: &str, disk: CrashDisk) {
        self.disks.borrow_mut().push((name.to_string(), disk));
    }
}

impl DeviceMaster for Master {
    fn open(&self, mode: u32, name: &str) -> Result<Box<dyn DevicePort>, ReturnCode> {
        self.opens.borrow_mut().push(mode);
        let disks = self.disks.borrow();
        let (_, disk) = disks.iter().find(|(n, _)| n == name).ok_or(DeviceCode::NO_SUCH_DEVICE.0)?;
        if mode & D_WRITE != 0 && disk.0.borrow().read_only {
            return Err(DeviceCode::READ_ONLY.0);
        }
        Ok(Box::new(Port { disk: disk.clone(), mode }))
    }
}

struct Port {
    disk: CrashDisk,
    mode: u32,
}

impl Port {
    /// The byte range of a transfer at `recnum`, cut at the end of the disk.
    fn range(disk: &Disk, recnum: u64, len: usize) -> Result<core::ops::Range<usize>, ReturnCode> {
        if let Some(code) = disk.io_failure {
            return Err(code);
        }
        let start = recnum as usize * disk.record_size as usize;
        if start > disk.cached.len() {
            return Err(DeviceCode::INVALID_RECNUM.0);
        }
        Ok(start..start + len.min(disk.cached.len() - start))
    }
}

impl DevicePort for Port {
    fn read(&self, recnum: u64, buf: &mut [u8]) -> Result<usize, ReturnCode> {
        let disk = self.disk.0.borrow();
        let range = Port::range(&disk, recnum, buf.len())?;
        buf[..range.len()].copy_from_slice(&disk.cached[range.clone()]);
        Ok(range.len())
    }

    fn write(&self, recnum: u64, data: &[u8]) -> Result<usize, ReturnCode> {
        if self.mode & D_WRITE == 0 {
            return Err(DeviceCode::INVALID_OPERATION.0);
        }
        let mut disk = self.disk.0.borrow_mut();
        let range = Port::range(&disk, recnum, data.len())?;
        let len = range.len();
        disk.cached[range].copy_from_slice(&data[..len]);
        Ok(len)
    }

    fn get_status(&self, flavor: u32, capacity: usize) -> Result<Vec<i32>, ReturnCode> {
        let disk = self.disk.0.borrow();
        let answer = match flavor {
            DEV_GET_RECORDS if disk.knows_records => {
                vec![(disk.cached.len() / disk.record_size as usize) as i32, disk.record_size as i32]
            }
            DEV_GET_SIZE => vec![disk.cached.len() as i32, disk.record_size as i32],
            _ => return Err(DeviceCode::INVALID_OPERATION.0),
        };
        assert!(capacity >= answer.len());
        Ok(answer)
    }

    fn set_status(&self, flavor: u32, status: &[i32]) -> Result<(), ReturnCode> {
        let mut disk = self.disk.0.borrow_mut();
        if flavor != DEV_FLUSH_CACHE || !status.is_empty() {
            return Err(DeviceCode::INVALID_OPERATION.0);
        }
        if let Some(code) = disk.flush_failure {
            return Err(code);
        }
        disk.durable = disk.cached.clone();
        disk.flushes += 1;
        Ok(())
    }
}

struct FileState {
    contents: Vec<u8>,
    /// Bytes one read or write moves at most.
    cap: usize,
    syncs: usize,
    sync_failure: Option<ReturnCode>,
    io_failure: Option<ReturnCode>,
    port: u32,
}

/// A file answering the io and fs routines the file class uses.
#[derive(Clone)]
pub struct FakeFile(Rc<RefCell<FileState>>);

impl FakeFile {
    pub fn new(size: usize) -> FakeFile {
        FakeFile(Rc::new(RefCell::new(FileState {
            contents: vec![0; size],
            cap: usize::MAX,
            syncs: 0,
            sync_failure: None,
            io_failure: None,
            port: 0,
        })))
    }

    pub fn contents(&self) -> Vec<u8> {
        self.0.borrow().contents.clone()
    }

    pub fn cap_transfers(&self, cap: usize) {
        self.0.borrow_mut().cap = cap;
    }

    pub fn syncs(&self) -> usize {
        self.0.borrow().syncs
    }

    pub fn fail_syncs_with(&self, code: ReturnCode) {
        self.0.borrow_mut().sync_failure = Some(code);
    }

    pub fn fail_io_with(&self, code: ReturnCode) {
        self.0.borrow_mut().io_failure = Some(code);
    }

    /// The port name the file reports for encodings.
    pub fn set_port_name(&self, port: u32) {
        self.0.borrow_mut().port = port;
    }
}

impl FakeFile {
    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, ReturnCode> {
        let file = self.0.borrow();
        if let Some(code) = file.io_failure {
            return Err(code);
        }
        let start = (offset as usize).min(file.contents.len());
        Ok(start..start + len.min(file.cap).min(file.contents.len() - start))
    }
}

impl FileNode for FakeFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, ReturnCode> {
        let range = self.range(offset, buf.len())?;
        buf[..range.len()].copy_from_slice(&self.0.borrow().contents[range.clone()]);
        Ok(range.len())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, ReturnCode> {
        let range = self.range(offset, data.len())?;
        let len = range.len();
        self.0.borrow_mut().contents[range].copy_from_slice(&data[..len]);
        Ok(len)
    }

    fn size(&self) -> Result<u64, ReturnCode> {
        let file = self.0.borrow();
        file.io_failure.map_or(Ok(file.contents.len() as u64), Err)
    }

    fn sync(&self) -> Result<(), ReturnCode> {
        let mut file = self.0.borrow_mut();
        if let Some(code) = file.sync_failure {
            return Err(code);
        }
        file.syncs += 1;
        Ok(())
    }

    fn port_name(&self) -> u32 {
        self.0.borrow().port
    }
}
