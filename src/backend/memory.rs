//! A RAM disk with a volatile write cache, for host tests and fuzzing: writes land in the cache,
//! a flush makes what was written before it started durable, and failures can be injected.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use mach::sync::Mutex;

use super::{Backend, Disk, Geometry};
use crate::device::{Access, Error, D_INVALID_RECNUM, D_INVALID_SIZE, D_NO_SUCH_DEVICE};

/// Runs when a flush or a write starts, outside the disk's lock (tests park one there).
pub type Hook = Box<dyn Fn() + Send + Sync>;

/// Named RAM disks.
#[derive(Default)]
pub struct MemoryBackend {
    disks: Vec<(Vec<u8>, Arc<MemoryDisk>)>,
}

impl MemoryBackend {
    /// Adds a disk called `name`; `None` if the geometry is invalid or the name is taken.
    pub fn add(&mut self, name: &[u8], geometry: Geometry) -> Option<Arc<MemoryDisk>> {
        let size = usize::try_from(geometry.bytes()).ok()?;
        if self.disk(name).is_some() {
            return None;
        }
        let disk = Arc::new(MemoryDisk {
            geometry,
            state: Mutex::new(State {
                cache: vec![0; size],
                durable: vec![0; size],
                faults: Faults::default(),
                flushes: 0,
            }),
            flush_hook: Mutex::new(None),
            write_hook: Mutex::new(None),
        });
        self.disks.push((name.to_vec(), disk.clone()));
        Some(disk)
    }

    pub fn disk(&self, name: &[u8]) -> Option<&Arc<MemoryDisk>> {
        self.disks.iter().find(|(own, _)| own == name).map(|(_, disk)| disk)
    }
}

impl Backend for MemoryBackend {
    type Disk = Arc<MemoryDisk>;

    fn open(&self, name: &[u8], _access: Access) -> Result<Arc<MemoryDisk>, Error> {
        let disk = self.disk(name).ok_or(D_NO_SUCH_DEVICE)?;
        match disk.state.lock().faults.open {
            Some(error) => Err(error),
            None => Ok(disk.clone()),
        }
    }
}

/// One RAM disk; shared by every open of its name.
pub struct MemoryDisk {
    geometry: Geometry,
    state: Mutex<State>,
    flush_hook: Mutex<Option<Hook>>,
    /// Called as a write starts, before it lands (a test holds a write in progress with it).
    write_hook: Mutex<Option<Hook>>,
}

struct State {
    /// What reads see: every completed write.
    cache: Vec<u8>,
    /// What survives a power loss: the cache as it was when the last successful flush started.
    durable: Vec<u8>,
    faults: Faults,
    flushes: u64,
}

/// Injected failures: each `Some` makes every such operation fail with that error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub open: Option<Error>,
    pub read: Option<Error>,
    pub write: Option<Error>,
    pub flush: Option<Error>,
}

impl MemoryDisk {
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    pub fn set_flush_hook(&self, hook: Option<Hook>) {
        *self.flush_hook.lock() = hook;
    }

    pub fn set_write_hook(&self, hook: Option<Hook>) {
        *self.write_hook.lock() = hook;
    }

    /// Every completed write.
    pub fn contents(&self) -> Vec<u8> {
        self.state.lock().cache.clone()
    }

    /// What a power loss now would leave.
    pub fn durable(&self) -> Vec<u8> {
        self.state.lock().durable.clone()
    }

    /// Flushes started, failed ones included.
    pub fn flushes(&self) -> u64 {
        self.state.lock().flushes
    }

    fn range(&self, record: u64, len: usize) -> Result<core::ops::Range<usize>, Error> {
        let start = record
            .checked_mul(u64::from(self.geometry.record_size()))
            .and_then(|start| usize::try_from(start).ok())
            .ok_or(D_INVALID_RECNUM)?;
        let end = start.checked_add(len).ok_or(D_INVALID_SIZE)?;
        if end as u64 > self.geometry.bytes() {
            return Err(D_INVALID_SIZE);
        }
        Ok(start..end)
    }
}

impl Disk for Arc<MemoryDisk> {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        let range = self.range(record, buf.len())?;
        let state = self.state.lock();
        if let Some(error) = state.faults.read {
            return Err(error);
        }
        buf.copy_from_slice(&state.cache[range]);
        Ok(())
    }

    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        let range = self.range(record, data.len())?;
        if let Some(hook) = &*self.write_hook.lock() {
            hook();
        }
        let mut state = self.state.lock();
        if let Some(error) = state.faults.write {
            return Err(error);
        }
        state.cache[range].copy_from_slice(data);
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        let snapshot = {
            let mut state = self.state.lock();
            state.flushes += 1;
            state.cache.clone()
        };
        if let Some(hook) = &*self.flush_hook.lock() {
            hook();
        }
        let mut state = self.state.lock();
        if let Some(error) = state.faults.flush {
            return Err(error);
        }
        state.durable = snapshot;
        Ok(())
    }

    fn read_out_of_line(&self, record: u64, len: usize) -> core::result::Result<mach::ool::OolMemory, crate::device::Error> {
        crate::backend::read_into_fresh(self, record, len)
    }

    fn write_out_of_line(&self, record: u64, data: mach::ool::OolMemory) -> core::result::Result<(), crate::device::Error> {
        self.write(record, data.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{D_DEVICE_DOWN, D_IO_ERROR};

    fn backend() -> (MemoryBackend, Arc<MemoryDisk>) {
        let mut backend = MemoryBackend::default();
        let disk = backend.add(b"wd0", Geometry::new(512, 4).unwrap()).unwrap();
        (backend, disk)
    }

    #[test]
    fn only_named_disks_open() {
        let (mut backend, _) = backend();
        let rw = Access { read: true, write: true };
        assert!(backend.open(b"wd0", rw).is_ok());
        assert_eq!(backend.open(b"wd1", rw).err(), Some(D_NO_SUCH_DEVICE));
        assert!(backend.add(b"wd0", Geometry::new(512, 1).unwrap()).is_none(), "name taken");
    }

    #[test]
    fn writes_become_durable_only_at_a_successful_flush() {
        let (backend, disk) = backend();
        let handle = backend.open(b"wd0", Access { read: true, write: true }).unwrap();
        handle.write(1, &[7; 512]).unwrap();
        let mut buf = [0; 512];
        handle.read(1, &mut buf).unwrap();
        assert_eq!(buf, [7; 512]);
        assert_eq!(disk.durable()[512], 0);
        disk.set_faults(Faults { flush: Some(D_IO_ERROR), ..Faults::default() });
        assert_eq!(handle.flush(), Err(D_IO_ERROR));
        assert_eq!(disk.durable()[512], 0, "a failed flush makes nothing durable");
        disk.set_faults(Faults::default());
        handle.flush().unwrap();
        assert_eq!(disk.durable()[512..1024], [7; 512]);
        assert_eq!(disk.flushes(), 2);
    }

    #[test]
    fn injected_faults_and_out_of_range_requests_fail() {
        let (backend, disk) = backend();
        let handle = backend.open(b"wd0", Access { read: true, write: true }).unwrap();
        assert_eq!(handle.write(4, &[0; 512]), Err(D_INVALID_SIZE));
        assert_eq!(handle.read(u64::MAX, &mut [0; 512]), Err(D_INVALID_RECNUM));
        disk.set_faults(Faults { write: Some(D_IO_ERROR), ..Faults::default() });
        assert_eq!(handle.write(0, &[1; 512]), Err(D_IO_ERROR));
        assert_eq!(disk.contents()[0], 0, "a failed write changes nothing");
        disk.set_faults(Faults { open: Some(D_DEVICE_DOWN), ..Faults::default() });
        assert_eq!(backend.open(b"wd0", Access { read: true, write: false }).err(), Some(D_DEVICE_DOWN));
    }
}
