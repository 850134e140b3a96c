//! `remap`: a store made of runs of another store's blocks (e.g. one partition of a disk).
//! Sync flushes the child.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::encoding::{Encoding, STORAGE_REMAP};
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{self, Class, Flags, Store};

struct Remap {
    child: [Store; 1],
}

/// A store whose blocks are `runs` of `child`'s blocks (holes allowed). Every run must lie
/// inside the child.
pub fn create(child: Store, runs: Vec<Run>) -> Result<Store> {
    let inside = |run: &Run| match run.start {
        Some(start) => start.checked_add(run.length).is_some_and(|end| end <= child.blocks()),
        None => true,
    };
    if !runs.iter().all(inside) {
        return Err(Error::class("remap", Errno::EINVAL));
    }
    let block_size = child.block_size();
    let flags = child.flags().intersection(Flags::READONLY | Flags::HARD_READONLY);
    Store::new(Box::new(Remap { child: [child] }), None, block_size, Layout::new(runs), flags)
}

impl Class for Remap {
    fn name(&self) -> &'static str {
        "remap"
    }

    fn read(&mut self, addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
        self.child[0].read(addr, buf).map_err(|e| Error::child("remap", 0, e))
    }

    fn write(&mut self, addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
        self.child[0].write(addr, data).map_err(|e| Error::child("remap", 0, e))
    }

    fn sync(&mut self) -> Result<()> {
        store::sync_children("remap", &mut self.child)
    }

    fn set_flags(&mut self, new: Flags, _layout: &Layout, _block_size: u32) -> Result<()> {
        store::set_children_flags("remap", &mut self.child, new)
    }

    fn clear_flags(&mut self, kill: Flags) -> Result<()> {
        store::clear_children_flags("remap", &mut self.child, kill)
    }

    fn children(&self) -> &[Store] {
        &self.child
    }

    /// TY FL NR, the runs, then the child.
    fn encode(&self, store: &Store, enc: &mut Encoding<u32>) -> Result<()> {
        store.encode_head(enc, STORAGE_REMAP);
        enc.int("remap", store.runs().len() as u64)?;
        enc.runs("remap", store.runs())?;
        store.encode_children(enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::DeviceCode;
    use crate::testing::CrashDisk;
    use alloc::vec;

    #[test]
    fn synced_data_survives_a_crash_through_remap() {
        let disk = CrashDisk::new(16, 512);
        let mut part = create(disk.open("wd0"), vec![Run::new(8, 4), Run::new(2, 2)]).unwrap();
        part.write(3, &[5; 1024]).unwrap(); // last block of run 0, first of run 1
        part.sync().unwrap();
        part.write(0, &[9; 512]).unwrap(); // after the barrier: may be lost
        disk.crash();
        assert_eq!(disk.durable()[11 * 512..12 * 512], [5; 512]);
        assert_eq!(disk.durable()[2 * 512..3 * 512], [5; 512]);
        assert_eq!(part.read_vec(3, 1024).unwrap(), vec![5; 1024]);
        assert_eq!(part.read_vec(0, 512).unwrap(), vec![0; 512], "unsynced write lost");
    }

    #[test]
    fn a_failed_flush_of_the_child_fails_the_remap() {
        let disk = CrashDisk::new(16, 512);
        let mut part = create(disk.open("wd0"), vec![Run::new(0, 4)]).unwrap();
        disk.fail_flushes_with(DeviceCode::IO_ERROR.0);
        let error = part.sync().unwrap_err();
        assert_eq!(error.errno(), Errno::EIO);
        let Error::Children { class: "remap", failures } = error else { panic!("{error:?}") };
        assert_eq!(failures[0].index, 0);
    }

    #[test]
    fn runs_must_lie_inside_the_child() {
        let disk = CrashDisk::new(16, 512);
        let Err(error) = create(disk.open("wd0"), vec![Run::new(10, 7)]) else { panic!() };
        assert_eq!(error.errno(), Errno::EINVAL);
    }

    #[test]
    fn inherits_read_only() {
        let disk = CrashDisk::new(16, 512);
        disk.make_read_only();
        let mut part = create(disk.open("wd0"), vec![Run::new(0, 4)]).unwrap();
        assert_eq!(part.write(0, &[1; 512]).unwrap_err().errno(), Errno::EROFS);
    }
}
