//! What `DEV_FLUSH_CACHE` does, chosen with `--flush=MODE`: `device` (the default) flushes the
//! drive's cache. The others exist only to test clients and the barrier proof: `skip` answers
//! success without flushing — the negative control the write-log checker must reject —,
//! `skip-one=K` does so for the Kth flush alone (counted over every disk from the moment the
//! mode was set, and logged when it happens) — the control that one missing flush among many
//! is caught, and caught exactly —, and `refuse` answers `D_INVALID_OPERATION`, as a server that
//! predates the flavor does. The mode can change while the server runs (`fsysopts
//! /dev/rumpdisk --flush=MODE`): every disk reads it at each flush.

use alloc::sync::Arc;
use core::fmt;
use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use mach::ool::OolMemory;

use super::{Backend, Disk, Geometry};
use crate::device::{Access, Error, D_INVALID_OPERATION};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushMode {
    #[default]
    Device,
    Skip,
    Refuse,
    /// Answer the Kth flush (from 1) without flushing, flush every other.
    SkipOne(NonZeroU32),
}

impl FlushMode {
    /// The modes without a value, and their words.
    const WORDS: [(FlushMode, &'static str); 3] = [(FlushMode::Device, "device"), (FlushMode::Skip, "skip"), (FlushMode::Refuse, "refuse")];
    /// What `skip-one=K` starts with.
    const SKIP_ONE: &'static str = "skip-one=";

    pub fn parse(word: &[u8]) -> Option<FlushMode> {
        if let Some(k) = word.strip_prefix(Self::SKIP_ONE.as_bytes()) {
            // Digits only, as `Display` writes them: no sign, no blanks.
            if k.is_empty() || !k.iter().all(u8::is_ascii_digit) {
                return None;
            }
            return core::str::from_utf8(k).ok()?.parse().ok().map(FlushMode::SkipOne);
        }
        Self::WORDS.iter().find(|(_, name)| name.as_bytes() == word).map(|&(mode, _)| mode)
    }

    /// The mode in one word: the tag in the low byte, K above it.
    fn pack(self) -> u64 {
        match self {
            FlushMode::Device => 0,
            FlushMode::Skip => 1,
            FlushMode::Refuse => 2,
            FlushMode::SkipOne(k) => 3 | u64::from(k.get()) << 8,
        }
    }

    fn unpack(word: u64) -> FlushMode {
        match (word & 0xff, NonZeroU32::new((word >> 8) as u32)) {
            (1, _) => FlushMode::Skip,
            (2, _) => FlushMode::Refuse,
            (3, Some(k)) => FlushMode::SkipOne(k),
            _ => FlushMode::Device,
        }
    }
}

/// The word `parse` takes.
impl fmt::Display for FlushMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushMode::SkipOne(k) => write!(f, "{}{k}", Self::SKIP_ONE),
            mode => {
                let word = Self::WORDS.iter().find(|(m, _)| m == mode).map_or("device", |&(_, word)| word);
                f.write_str(word)
            }
        }
    }
}

/// The mode every disk reads at each flush, and the flushes counted since it was set.
struct Shared {
    mode: AtomicU64,
    flushes: AtomicU32,
}

/// A backend whose disks flush as its mode says.
pub struct WithFlushMode<B> {
    pub backend: B,
    shared: Arc<Shared>,
}

impl<B> WithFlushMode<B> {
    pub fn new(backend: B, mode: FlushMode) -> Self {
        WithFlushMode { backend, shared: Arc::new(Shared { mode: AtomicU64::new(mode.pack()), flushes: AtomicU32::new(0) }) }
    }

    pub fn mode(&self) -> FlushMode {
        FlushMode::unpack(self.shared.mode.load(Ordering::Acquire))
    }

    /// From the next flush on, on every disk (open or not), flush as `mode` says; `skip-one`
    /// counts flushes from here.
    pub fn set_mode(&self, mode: FlushMode) {
        self.shared.flushes.store(0, Ordering::Release);
        self.shared.mode.store(mode.pack(), Ordering::Release);
    }
}

impl<B: Backend> Backend for WithFlushMode<B> {
    type Disk = ModeDisk<B::Disk>;

    fn open(&self, name: &[u8], access: Access) -> Result<Self::Disk, Error> {
        Ok(ModeDisk { disk: self.backend.open(name, access)?, shared: self.shared.clone() })
    }
}

pub struct ModeDisk<D> {
    disk: D,
    shared: Arc<Shared>,
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
        let mode = FlushMode::unpack(self.shared.mode.load(Ordering::Acquire));
        match mode {
            FlushMode::Device => self.disk.flush(),
            FlushMode::Skip => Ok(()),
            FlushMode::Refuse => Err(D_INVALID_OPERATION),
            FlushMode::SkipOne(k) => {
                let n = self.shared.flushes.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                if n != k.get() {
                    return self.disk.flush();
                }
                log::warn!("rumpdisk: --flush={mode}: flush {n} answered without flushing");
                Ok(())
            }
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

    fn skip_one(k: u32) -> FlushMode {
        FlushMode::SkipOne(NonZeroU32::new(k).unwrap())
    }

    /// `skip-one=3` over two disks: flushes 1, 2, 4, 5 reach a drive, flush 3 (the second
    /// disk's second) does not and answers success; what it should have covered stays volatile.
    #[test]
    fn skip_one_skips_exactly_the_kth_flush_over_every_disk() {
        let mut backend = MemoryBackend::default();
        let a = backend.add(b"wd0", Geometry::new(512, 8).unwrap()).unwrap();
        let b = backend.add(b"wd1", Geometry::new(512, 8).unwrap()).unwrap();
        let backend = WithFlushMode::new(backend, skip_one(3));
        let (wd0, wd1) = (backend.open(b"wd0", Access::from_mode(3)).unwrap(), backend.open(b"wd1", Access::from_mode(3)).unwrap());
        assert_eq!(wd0.flush(), Ok(()));
        assert_eq!(wd1.flush(), Ok(()));
        assert_eq!((a.flushes(), b.flushes()), (1, 1));
        wd1.write(1, &[9; 512]).unwrap();
        assert_eq!(wd1.flush(), Ok(()), "the skipped flush answers success");
        assert_eq!((a.flushes(), b.flushes()), (1, 1), "flush 3 reached no drive");
        assert_eq!(b.durable()[512], 0, "what flush 3 should have covered is not durable");
        for n in 4..=5 {
            assert_eq!(wd0.flush(), Ok(()), "flush {n}");
        }
        assert_eq!((a.flushes(), b.flushes()), (3, 1), "every flush after the Kth is real");
        assert_eq!(backend.mode(), skip_one(3));
    }

    #[test]
    fn skip_one_counts_from_when_the_mode_is_set() {
        let mut backend = MemoryBackend::default();
        let memory = backend.add(b"wd0", Geometry::new(512, 8).unwrap()).unwrap();
        let backend = WithFlushMode::new(backend, FlushMode::Device);
        let disk = backend.open(b"wd0", Access::from_mode(3)).unwrap();
        for _ in 0..3 {
            disk.flush().unwrap();
        }
        backend.set_mode(skip_one(1));
        disk.flush().unwrap();
        assert_eq!(memory.flushes(), 3, "the first flush after the mode was set is skipped");
        disk.flush().unwrap();
        assert_eq!(memory.flushes(), 4);
        backend.set_mode(skip_one(2));
        disk.flush().unwrap();
        disk.flush().unwrap();
        disk.flush().unwrap();
        assert_eq!(memory.flushes(), 6, "set again: the count starts again");
    }

    #[test]
    fn every_mode_round_trips_through_its_word() {
        for mode in [FlushMode::Device, FlushMode::Skip, FlushMode::Refuse, skip_one(1), skip_one(17), skip_one(u32::MAX)] {
            let word = alloc::format!("{mode}");
            assert_eq!(FlushMode::parse(word.as_bytes()), Some(mode), "{word}");
            assert_eq!(FlushMode::unpack(mode.pack()), mode, "{word}");
        }
        assert_eq!(alloc::format!("{}", skip_one(12)), "skip-one=12");
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
