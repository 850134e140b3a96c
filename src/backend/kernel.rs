//! A kernel device passed through (e.g. GNU Mach's RAM disk `rd0`): the names given at start
//! are opened on the kernel's device master and every request is relayed to it.

use alloc::vec::Vec;
use mach::interfaces::device as iface;
use mach::port::SendRight;

use super::{Backend, Disk, Geometry};
use crate::device::{flavor, mode, Access, Error, D_INVALID_RECNUM, D_IO_ERROR, D_NO_SUCH_DEVICE};

/// Record numbers as the target's ABI carries them (`recnum_t`).
#[cfg(target_pointer_width = "64")]
type RecNum = u64;
#[cfg(not(target_pointer_width = "64"))]
type RecNum = u32;

/// Largest transfer relayed in one message (the interface's byte counts are `int`s).
const MAX_TRANSFER: usize = 1 << 30;

/// Kernel devices served under their own names.
pub struct KernelBackend {
    master: SendRight,
    names: Vec<Vec<u8>>,
}

impl KernelBackend {
    pub fn new(master: SendRight, names: &[&[u8]]) -> Self {
        KernelBackend { master, names: names.iter().map(|name| name.to_vec()).collect() }
    }
}

impl Backend for KernelBackend {
    type Disk = KernelDisk;

    fn open(&self, name: &[u8], access: Access) -> Result<KernelDisk, Error> {
        if !self.names.iter().any(|own| own == name) {
            return Err(D_NO_SUCH_DEVICE);
        }
        let bits = if access.read { mode::READ } else { 0 } | if access.write { mode::WRITE } else { 0 };
        // Closed (and the right released) on every path from here.
        let device = OpenDevice(iface::device_open(self.master.name(), bits, name)?);
        let status = iface::device_get_status(device.0.name(), flavor::DEV_GET_RECORDS, 2)?;
        let [records, record_size] = *status.as_slice() else { return Err(D_IO_ERROR) };
        let geometry = u32::try_from(record_size)
            .ok()
            .zip(u64::try_from(records).ok())
            .and_then(|(size, records)| Geometry::new(size, records))
            .ok_or(D_IO_ERROR)?;
        Ok(KernelDisk { device, geometry })
    }
}

/// A kernel device port, closed on drop.
struct OpenDevice(SendRight);

impl Drop for OpenDevice {
    fn drop(&mut self) {
        // A close error leaves nothing to undo; the right itself goes with the `SendRight`.
        let _ = iface::device_close(self.0.name());
    }
}

/// An open kernel device.
pub struct KernelDisk {
    device: OpenDevice,
    geometry: Geometry,
}

impl KernelDisk {
    fn recnum(&self, record: u64, done: usize) -> Result<RecNum, Error> {
        let records = (done / self.geometry.record_size() as usize) as u64;
        record.checked_add(records).and_then(|r| RecNum::try_from(r).ok()).ok_or(D_INVALID_RECNUM)
    }
}

impl Disk for KernelDisk {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        for chunk in buf.chunks_mut(MAX_TRANSFER) {
            let data = iface::device_read(self.device.0.name(), 0, self.recnum(record, done)?, chunk.len() as i32)?;
            if data.len() != chunk.len() {
                return Err(D_IO_ERROR); // the device ended before its reported size
            }
            chunk.copy_from_slice(data.as_slice());
            done += chunk.len();
        }
        Ok(())
    }

    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        let mut done = 0;
        for chunk in data.chunks(MAX_TRANSFER) {
            let written = iface::device_write(self.device.0.name(), 0, self.recnum(record, done)?, chunk)?;
            if usize::try_from(written) != Ok(chunk.len()) {
                return Err(D_IO_ERROR);
            }
            done += chunk.len();
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        iface::device_set_status(self.device.0.name(), flavor::DEV_FLUSH_CACHE, &[])
    }

    fn read_out_of_line(&self, record: u64, len: usize) -> core::result::Result<mach::ool::OolMemory, crate::device::Error> {
        crate::backend::read_into_fresh(self, record, len)
    }

    fn write_out_of_line(&self, record: u64, data: mach::ool::OolMemory) -> core::result::Result<(), crate::device::Error> {
        self.write(record, data.as_slice())
    }
}
