//! `device`: a GNU Mach device reached through the device interface (`device.defs`).
//!
//! The RPCs sit behind [`DeviceMaster`] and [`DevicePort`] so the class logic is tested against
//! doubles; the real implementation over the generated stubs is `crate::mach_device`.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::encoding::{Encoding, STORAGE_DEVICE};
use crate::errno::{errno_of_device_code, DeviceCode, DeviceOp, Errno};
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{Class, Flags, Store};

/// `dev_mode_t` bits.
pub const D_READ: u32 = 1;
pub const D_WRITE: u32 = 2;

/// `device_get_status`/`device_set_status` flavors.
pub const DEV_GET_SIZE: u32 = 0;
pub const DEV_GET_RECORDS: u32 = 1;
/// Flush the device's volatile write cache. Defined here because Debian trixie's gnumach-dev
/// predates it (GNU Mach added it in 2026).
pub const DEV_FLUSH_CACHE: u32 = 2;
/// The capacity libstore asks with, larger than any answer, to catch drivers that ignore the
/// flavor (they answer with a count other than 2).
pub const DEV_STATUS_MAX: usize = 1024;

/// A non-zero return code as the device server or kernel sent it (`D_*`, errno, Mach, MIG).
pub type ReturnCode = i32;

/// The device routines the class uses, on one open device.
pub trait DevicePort {
    /// `device_read` at record `recnum` of `buf.len()` bytes; returns the bytes read into `buf`.
    fn read(&self, recnum: u64, buf: &mut [u8]) -> core::result::Result<usize, ReturnCode>;
    /// `device_write` (out-of-line data) at record `recnum`; returns the bytes written.
    fn write(&self, recnum: u64, data: &[u8]) -> core::result::Result<usize, ReturnCode>;
    /// `device_get_status` asking for up to `capacity` ints.
    fn get_status(&self, flavor: u32, capacity: usize) -> core::result::Result<Vec<i32>, ReturnCode>;
    /// `device_set_status`.
    fn set_status(&self, flavor: u32, status: &[i32]) -> core::result::Result<(), ReturnCode>;
    /// The port's name, for a storage-info encoding of this store (0, `MACH_PORT_NULL`, when the
    /// device is no Mach port).
    fn port_name(&self) -> u32 {
        0
    }
}

/// A port that opens devices by name: the kernel's device master, or a translator's.
pub trait DeviceMaster {
    fn open(&self, mode: u32, name: &str) -> core::result::Result<Box<dyn DevicePort>, ReturnCode>;
}

fn device_error(code: ReturnCode, op: DeviceOp) -> Error {
    let device_code = DeviceCode::name_of(code).map(|_| DeviceCode(code));
    Error::Class { class: "device", errno: errno_of_device_code(code, op), device_code }
}

struct Device {
    /// Where the device was opened, to reopen it; `None` for a port handed over in a
    /// storage-info encoding.
    master: Option<Rc<dyn DeviceMaster>>,
    name: String,
    /// `None` while the store is inactive.
    port: Option<Box<dyn DevicePort>>,
    /// The mode the device was opened with, to reopen it alike.
    mode: u32,
    record_size: u32,
}

/// Opens device `name` through `master`: read-write unless `flags` has
/// [`Flags::HARD_READONLY`], falling back to read-only (and hard read-only) when the device
/// answers `D_READ_ONLY`; sized from `DEV_GET_RECORDS`, else `DEV_GET_SIZE`.
pub fn open(master: Rc<dyn DeviceMaster>, name: &str, mut flags: Flags) -> Result<Store> {
    let (port, mode) = open_port(&*master, name, &mut flags)?;
    let (record_size, layout) = match geometry(&*port) {
        Some(Geometry { record_size, records }) => (record_size, Layout::new(vec![Run::new(0, records)])),
        // libstore treats a device that cannot tell its size as empty.
        None => (1, Layout::new(Vec::new())),
    };
    let class = Device { master: Some(master), name: name.to_string(), port: Some(port), mode, record_size };
    Store::new(Box::new(class), Some(name.to_string()), record_size, layout, flags | Flags::ENFORCED)
}

/// A device store over an open `port` whose layout someone else gives (a decoded storage-info
/// encoding: a file's blocks on a disk, a partition): records of `block_size` bytes.
pub fn from_port(
    port: Box<dyn DevicePort>,
    name: Option<String>,
    block_size: u32,
    runs: Vec<Run>,
    flags: Flags,
) -> Result<Store> {
    let mode = if flags.contains(Flags::HARD_READONLY) { D_READ } else { D_READ | D_WRITE };
    let label = name.clone().unwrap_or_default();
    let class = Device { master: None, name: label, port: Some(port), mode, record_size: block_size };
    Store::new(Box::new(class), name, block_size, Layout::new(runs), flags)
}

/// Opens the port and returns it with the mode it was opened with.
fn open_port(master: &dyn DeviceMaster, name: &str, flags: &mut Flags) -> Result<(Box<dyn DevicePort>, u32)> {
    let read_only = |flags: &mut Flags| {
        let port = master.open(D_READ, name).map_err(|c| device_error(c, DeviceOp::Open))?;
        *flags |= Flags::HARD_READONLY;
        Ok((port, D_READ))
    };
    if flags.contains(Flags::HARD_READONLY) {
        return read_only(flags);
    }
    match master.open(D_READ | D_WRITE, name) {
        Ok(port) => Ok((port, D_READ | D_WRITE)),
        Err(code) if code == DeviceCode::READ_ONLY.0 => read_only(flags),
        Err(code) => Err(device_error(code, DeviceOp::Open)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    record_size: u32,
    records: u64,
}

/// The device's record size and count, when it tells them consistently.
fn geometry(port: &dyn DevicePort) -> Option<Geometry> {
    let two = |flavor| port.get_status(flavor, DEV_STATUS_MAX).ok().filter(|s| s.len() == 2);
    // Both flavors answer ints; records and bytes are unsigned counts.
    let geometry = if let Some(records) = two(DEV_GET_RECORDS) {
        Geometry { record_size: records[1] as u32, records: u64::from(records[0] as u32) }
    } else {
        let size = two(DEV_GET_SIZE)?;
        let (bytes, record_size) = (u64::from(size[0] as u32), size[1] as u32);
        if record_size == 0 || bytes % u64::from(record_size) != 0 {
            return None;
        }
        Geometry { record_size, records: bytes / u64::from(record_size) }
    };
    (geometry.record_size.is_power_of_two()).then_some(geometry)
}

impl Device {
    fn port(&self) -> Result<&dyn DevicePort> {
        self.port.as_deref().ok_or(Error::class("device", Errno::ENXIO))
    }
}

/// Repeats a transfer that made progress but stopped short (a server may cap one request),
/// until it is done or the device gives nothing more. An error after progress ends it short.
fn transfer(
    len: usize,
    record_size: u32,
    addr: u64,
    mut step: impl FnMut(u64, usize) -> core::result::Result<usize, ReturnCode>,
) -> Result<usize> {
    let mut done = 0;
    while done < len {
        let recnum = addr + (done / record_size as usize) as u64;
        match step(recnum, done) {
            Ok(0) => break,
            Ok(n) => done += n.min(len - done),
            Err(code) if done == 0 => return Err(device_error(code, DeviceOp::ReadWrite)),
            Err(_) => break,
        }
        if done % record_size as usize != 0 {
            break;
        }
    }
    Ok(done)
}

impl Class for Device {
    fn name(&self) -> &'static str {
        "device"
    }

    fn read(&mut self, addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
        let port = self.port()?;
        let len = buf.len();
        transfer(len, self.record_size, addr, |recnum, done| port.read(recnum, &mut buf[done..]))
    }

    fn write(&mut self, addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
        let port = self.port()?;
        transfer(data.len(), self.record_size, addr, |recnum, done| port.write(recnum, &data[done..]))
    }

    /// `device_set_status(DEV_FLUSH_CACHE)` with no status words: the server flushes the disk's
    /// write cache before it answers. A server that does not know the flavor answers
    /// `D_INVALID_OPERATION`, which becomes `EOPNOTSUPP`; a failed flush is never success.
    fn sync(&mut self) -> Result<()> {
        self.port()?.set_status(DEV_FLUSH_CACHE, &[]).map_err(|c| device_error(c, DeviceOp::Sync))
    }

    /// The standard leaf encoding with the device port (null while inactive) and name.
    fn encode(&self, store: &Store, enc: &mut Encoding<u32>) -> Result<()> {
        let port = self.port.as_deref().map_or(0, DevicePort::port_name);
        store.encode_leaf(enc, STORAGE_DEVICE, port)
    }

    fn set_flags(&mut self, new: Flags, layout: &Layout, block_size: u32) -> Result<()> {
        if !(Flags::INACTIVE | Flags::ENFORCED).contains(new) {
            return Err(Error::class("device", Errno::EINVAL));
        }
        if new.contains(Flags::ENFORCED) && !new.contains(Flags::INACTIVE) {
            // The device enforces only the whole device, as it reports it.
            let whole = |g: Geometry| g.record_size == block_size && layout.runs() == [Run::new(0, g.records)];
            if !geometry(self.port()?).is_some_and(whole) {
                return Err(Error::class("device", Errno::EINVAL));
            }
        }
        if new.contains(Flags::INACTIVE) {
            self.port = None;
        }
        Ok(())
    }

    fn clear_flags(&mut self, kill: Flags) -> Result<()> {
        if !(Flags::INACTIVE | Flags::ENFORCED).contains(kill) {
            return Err(Error::class("device", Errno::EINVAL));
        }
        if kill.contains(Flags::INACTIVE) && self.port.is_none() {
            let master = self.master.as_ref().ok_or(Error::class("device", Errno::ENXIO))?;
            let port = master.open(self.mode, &self.name);
            self.port = Some(port.map_err(|c| device_error(c, DeviceOp::Open))?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CrashDisk, Master};
    use core::cell::Cell;

    fn master_of(disk: &CrashDisk) -> Rc<Master> {
        Rc::new(Master::with("wd0", disk.clone()))
    }

    #[test]
    fn opens_read_write_sized_from_records() {
        let disk = CrashDisk::new(64, 512);
        let master = master_of(&disk);
        let store = open(master.clone(), "wd0", Flags::NONE).unwrap();
        assert_eq!(*master.opens.borrow(), vec![D_READ | D_WRITE]);
        assert_eq!((store.block_size(), store.blocks(), store.size()), (512, 64, 64 * 512));
        assert_eq!(store.name(), Some("wd0"));
        assert!(store.flags().contains(Flags::ENFORCED));
        assert!(!store.flags().contains(Flags::READONLY));
    }

    #[test]
    fn falls_back_to_read_only_and_stays_there() {
        let disk = CrashDisk::new(8, 512);
        disk.make_read_only();
        let master = master_of(&disk);
        let mut store = open(master.clone(), "wd0", Flags::NONE).unwrap();
        assert_eq!(*master.opens.borrow(), vec![D_READ | D_WRITE, D_READ]);
        assert!(store.flags().contains(Flags::HARD_READONLY | Flags::READONLY));
        assert_eq!(store.write(0, &[1; 512]).unwrap_err().errno(), Errno::EROFS);
        assert_eq!(store.clear_flags(Flags::READONLY).unwrap_err().errno(), Errno::EROFS);
        assert_eq!(store.read_vec(0, 512).unwrap(), vec![0; 512]);
    }

    #[test]
    fn hard_read_only_request_opens_for_reading_only() {
        let disk = CrashDisk::new(8, 512);
        let master = master_of(&disk);
        open(master.clone(), "wd0", Flags::HARD_READONLY).unwrap();
        assert_eq!(*master.opens.borrow(), vec![D_READ]);
    }

    #[test]
    fn open_errors_are_errnos_with_the_device_code() {
        let disk = CrashDisk::new(8, 512);
        let Err(error) = open(master_of(&disk), "wd9", Flags::NONE) else { panic!("opened wd9") };
        assert_eq!(error.errno(), Errno::ENXIO);
        assert_eq!(error.device_code(), Some(DeviceCode::NO_SUCH_DEVICE));
    }

    #[test]
    fn size_falls_back_to_dev_get_size() {
        let disk = CrashDisk::new(10, 2048);
        disk.forget_records_flavor();
        let store = disk.open("wd0");
        assert_eq!((store.block_size(), store.blocks()), (2048, 10));
    }

    /// A port whose status answers and transfers a test chooses.
    struct Odd {
        status: fn(u32, usize) -> core::result::Result<Vec<i32>, ReturnCode>,
        /// Bytes one read answers at most.
        cap: usize,
        reads: Cell<usize>,
        write_answer: ReturnCode,
    }

    impl DevicePort for Odd {
        fn read(&self, _recnum: u64, buf: &mut [u8]) -> core::result::Result<usize, ReturnCode> {
            self.reads.set(self.reads.get() + 1);
            let n = buf.len().min(self.cap);
            buf[..n].fill(7);
            Ok(n)
        }
        fn write(&self, _recnum: u64, _data: &[u8]) -> core::result::Result<usize, ReturnCode> {
            Err(self.write_answer)
        }
        fn get_status(&self, flavor: u32, capacity: usize) -> core::result::Result<Vec<i32>, ReturnCode> {
            (self.status)(flavor, capacity)
        }
        fn set_status(&self, _flavor: u32, _status: &[i32]) -> core::result::Result<(), ReturnCode> {
            Ok(())
        }
    }

    struct OddMaster(fn(u32, usize) -> core::result::Result<Vec<i32>, ReturnCode>);

    impl DeviceMaster for OddMaster {
        fn open(&self, _mode: u32, _name: &str) -> core::result::Result<Box<dyn DevicePort>, ReturnCode> {
            let port = Odd { status: self.0, cap: 1024, reads: Cell::new(0), write_answer: DeviceCode::IO_ERROR.0 };
            Ok(Box::new(port))
        }
    }

    fn open_odd(status: fn(u32, usize) -> core::result::Result<Vec<i32>, ReturnCode>) -> Store {
        open(Rc::new(OddMaster(status)), "odd", Flags::NONE).unwrap()
    }

    #[test]
    fn a_driver_ignoring_the_flavor_is_caught_by_the_count() {
        // Fills the whole capacity libstore offers: neither answer has exactly two values.
        let store = open_odd(|_, capacity| {
            assert_eq!(capacity, DEV_STATUS_MAX);
            Ok(vec![4096; capacity])
        });
        assert_eq!(store.size(), 0);
    }

    #[test]
    fn bogus_byte_size_means_unknown_size() {
        let store = open_odd(|flavor, _| match flavor {
            DEV_GET_SIZE => Ok(vec![1000, 512]),
            _ => Err(DeviceCode::INVALID_OPERATION.0),
        });
        assert_eq!(store.size(), 0);
        let store = open_odd(|flavor, _| match flavor {
            DEV_GET_SIZE => Ok(vec![4096, 512]),
            _ => Err(DeviceCode::INVALID_OPERATION.0),
        });
        assert_eq!((store.block_size(), store.blocks()), (512, 8));
    }

    #[test]
    fn capped_reads_are_continued_and_write_errors_mapped() {
        let mut store = open_odd(|flavor, _| match flavor {
            DEV_GET_RECORDS => Ok(vec![64, 512]),
            _ => Err(DeviceCode::INVALID_OPERATION.0),
        });
        let data = store.read_vec(0, 8 * 512).unwrap();
        assert_eq!(data, vec![7; 8 * 512], "four capped reads stitched");
        let error = store.write(0, &[0; 512]).unwrap_err();
        assert_eq!((error.errno(), error.device_code()), (Errno::EIO, Some(DeviceCode::IO_ERROR)));
    }

    #[test]
    fn write_on_a_port_without_write_access_is_ebadf() {
        let port = Odd {
            status: |_, _| Ok(vec![]),
            cap: 0,
            reads: Cell::new(0),
            write_answer: DeviceCode::INVALID_OPERATION.0,
        };
        let error = transfer(512, 512, 0, |recnum, _| port.write(recnum, &[0; 512])).unwrap_err();
        assert_eq!(error.errno(), Errno::EBADF);
    }

    #[test]
    fn sync_sends_flush_cache_and_makes_writes_durable() {
        let disk = CrashDisk::new(8, 512);
        let mut store = disk.open("wd0");
        store.write(2, &[0xab; 1024]).unwrap();
        store.sync().unwrap();
        assert_eq!(disk.flushes(), 1);
        disk.crash();
        assert_eq!(store.read_vec(2, 1024).unwrap(), vec![0xab; 1024]);
    }

    #[test]
    fn unflushed_writes_are_lost_in_a_crash() {
        let disk = CrashDisk::new(8, 512);
        let mut store = disk.open("wd0");
        store.write(2, &[0xab; 512]).unwrap();
        disk.crash();
        assert_eq!(store.read_vec(2, 512).unwrap(), vec![0; 512]);
    }

    #[test]
    fn unknown_flavor_is_eopnotsupp_and_failed_flush_is_eio() {
        let disk = CrashDisk::new(8, 512);
        let mut store = disk.open("wd0");
        disk.fail_flushes_with(DeviceCode::INVALID_OPERATION.0);
        let unsupported = store.sync().unwrap_err();
        assert_eq!(unsupported.errno(), Errno::EOPNOTSUPP);
        assert_eq!(unsupported.device_code(), Some(DeviceCode::INVALID_OPERATION));
        disk.fail_flushes_with(DeviceCode::IO_ERROR.0);
        let failed = store.sync().unwrap_err();
        assert_eq!((failed.errno(), failed.device_code()), (Errno::EIO, Some(DeviceCode::IO_ERROR)));
        disk.fail_flushes_with(Errno::EIO.0);
        let failed = store.sync().unwrap_err();
        assert_eq!((failed.errno(), failed.device_code()), (Errno::EIO, None));
        assert_eq!(disk.flushes(), 0);
    }

    #[test]
    fn inactive_closes_and_reopens_with_the_same_mode() {
        let disk = CrashDisk::new(8, 512);
        disk.make_read_only();
        let master = master_of(&disk);
        let mut store = open(master.clone(), "wd0", Flags::NONE).unwrap();
        store.set_flags(Flags::INACTIVE).unwrap();
        assert_eq!(store.read_vec(0, 512).unwrap_err().errno(), Errno::ENXIO);
        assert_eq!(store.sync().unwrap_err().errno(), Errno::ENXIO);
        store.clear_flags(Flags::INACTIVE).unwrap();
        assert_eq!(master.opens.borrow().last(), Some(&D_READ));
        assert_eq!(store.read_vec(0, 512).unwrap().len(), 512);
    }

    #[test]
    fn enforced_only_for_the_whole_device() {
        let disk = CrashDisk::new(8, 512);
        let mut store = disk.open("wd0");
        store.clear_flags(Flags::ENFORCED).unwrap();
        store.set_flags(Flags::ENFORCED).unwrap();
        let mut part = crate::class::remap::create(store, vec![Run::new(2, 4)]).unwrap();
        // A remap passes the flag to its child, which still is the whole device.
        part.set_flags(Flags::ENFORCED).unwrap();
        let wrong = Layout::new(vec![Run::new(0, 4)]);
        let mut class = Device {
            master: Some(master_of(&disk)),
            name: "wd0".to_string(),
            port: Some(master_of(&disk).open(D_READ, "wd0").unwrap()),
            mode: D_READ,
            record_size: 512,
        };
        assert_eq!(class.set_flags(Flags::ENFORCED, &wrong, 512).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(class.set_flags(Flags(0x10000), &wrong, 512).unwrap_err().errno(), Errno::EINVAL);
    }
}
