//! What `DEV_FLUSH_CACHE` does, chosen with `--flush=MODE`: `device` (the default) flushes the
//! drive's cache. The other two exist only to test clients and the barrier proof: `skip` answers
//! success without flushing — the negative control the write-log checker must reject — and
//! `refuse` answers `D_INVALID_OPERATION`, as a server that predates the flavor does. The mode
//! can change while the server runs (`fsysopts /dev/rumpdisk --flush=MODE`): every disk reads
//! it at each flush.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU8, Ordering};
use mach::ool::OolMemory;

use super::{Backend, Disk, Geometry};
use crate::device::{Access, Error, D_INVALID_OPERATION};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushMode {
    #[default]
    Device,
    Skip,
    Refuse,
}

impl FlushMode {
    /// Each mode and its word, in declaration order (a mode's index is `mode as usize`).
    const WORDS: [(FlushMode, &'static str); 3] = [(FlushMode::Device, "device"), (FlushMode::Skip, "skip"), (FlushMode::Refuse, "refuse")];

    pub fn parse(word: &[u8]) -> Option<FlushMode> {
        Self::WORDS.iter().find(|(_, name)| name.as_bytes() == word).map(|&(mode, _)| mode)
    }

    /// The word `parse` takes.
    pub fn name(self) -> &'static str {
        Self::WORDS[self as usize].1
    }
}

/// A backend whose disks flush as its mode says.
pub struct WithFlushMode<B> {
    pub backend: B,
    /// The mode, as its index in `FlushMode::WORDS`, shared with every open disk.
    mode: Arc<AtomicU8>,
}

impl<B> WithFlushMode<B> {
    pub fn new(backend: B, mode: FlushMode) -> Self {
        WithFlushMode { backend, mode: Arc::new(AtomicU8::new(mode as u8)) }
    }

    pub fn mode(&self) -> FlushMode {
        load(&self.mode)
    }

    /// From the next flush on, on every disk (open or not), flush as `mode` says.
    pub fn set_mode(&self, mode: FlushMode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }
}

fn load(mode: &AtomicU8) -> FlushMode {
    FlushMode::WORDS[usize::from(mode.load(Ordering::Relaxed))].0
}

impl<B: Backend> Backend for WithFlushMode<B> {
    type Disk = ModeDisk<B::Disk>;

    fn open(&self, name: &[u8], access: Access) -> Result<Self::Disk, Error> {
        Ok(ModeDisk { disk: self.backend.open(name, access)?, mode: self.mode.clone() })
    }
}

pub struct ModeDisk<D> {
    disk: D,
    mode: Arc<AtomicU8>,
}

impl<D: Disk> Disk for ModeDisk<D> {
    fn geometry(&self) -> Geometry {
        self.disk.geometry()
    }

    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.disk.read(record, buf)
    }

    fn read_out_of_line(&self, record: u64, len: usize) -> Result<OolMemory, Error> {
        self.disk.read_out_of_line(record, len)
    }

    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        self.disk.write(record, data)
    }

    fn write_out_of_line(&self, record: u64, data: OolMemory) -> Result<(), Error> {
        self.disk.write_out_of_line(record, data)
    }

    fn flush(&self) -> Result<(), Error> {
        match load(&self.mode) {
            FlushMode::Device => self.disk.flush(),
            FlushMode::Skip => Ok(()),
            FlushMode::Refuse => Err(D_INVALID_OPERATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    #[test]
    fn each_mode_flushes_as_named() {
        assert_eq!(FlushMode::parse(b"skip"), Some(FlushMode::Skip));
        assert_eq!(FlushMode::parse(b"sometimes"), None);
        for (mode, expect) in [(FlushMode::Device, Ok(())), (FlushMode::Skip, Ok(())), (FlushMode::Refuse, Err(D_INVALID_OPERATION))] {
            let mut backend = MemoryBackend::default();
            let memory = backend.add(b"wd0", Geometry::new(512, 8).unwrap()).unwrap();
            let disk = WithFlushMode::new(backend, mode).open(b"wd0", Access::from_mode(3)).unwrap();
            disk.write(0, &[7; 512]).unwrap();
            assert_eq!(disk.flush(), expect, "{mode:?}");
            assert_eq!(memory.flushes(), u64::from(mode == FlushMode::Device), "{mode:?}");
            assert_eq!(memory.durable()[0], if mode == FlushMode::Device { 7 } else { 0 }, "{mode:?}");
        }
    }

    #[test]
    fn a_mode_set_while_running_applies_to_disks_already_open() {
        let mut backend = MemoryBackend::default();
        let memory = backend.add(b"wd0", Geometry::new(512, 8).unwrap()).unwrap();
        let backend = WithFlushMode::new(backend, FlushMode::Device);
        let disk = backend.open(b"wd0", Access::from_mode(3)).unwrap();
        backend.set_mode(FlushMode::Refuse);
        assert_eq!(backend.mode(), FlushMode::Refuse);
        assert_eq!(disk.flush(), Err(D_INVALID_OPERATION));
        backend.set_mode(FlushMode::Device);
        assert_eq!(disk.flush(), Ok(()));
        assert_eq!(memory.flushes(), 1);
    }
}
