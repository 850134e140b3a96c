//! `remap`: a store made of runs of another store's blocks (e.g. one partition of a disk).
//! Sync flushes the child.

use alloc::boxed::Box;
use alloc::vec::Vec;

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
}
