//! `concat` and `ileave` (interleave): stores spread over several children. Run `i` is child `i`;
//! an interleaved layout repeats the runs, one stripe per child per round. Sync flushes every
//! child, keeps going after a failure and names each child that failed — concat included, which
//! upstream libstore cannot sync at all.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::blocks_per;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{self, Class, Flags, Store};

struct Stripe {
    name: &'static str,
    children: Vec<Store>,
    /// The composite's block size: the largest child's (block sizes are powers of two).
    block_size: u32,
}

fn common_block_size(name: &'static str, children: &[Store]) -> Result<u32> {
    children.iter().map(Store::block_size).max().ok_or(Error::class(name, Errno::EINVAL))
}

/// Backend flags the composite has only when every child has them (libstore's rule).
fn common_flags(children: &[Store]) -> Flags {
    let all = children.iter().fold(Flags::BACKEND, |acc, child| acc.intersection(child.flags()));
    all.intersection(Flags::HARD_READONLY)
}

/// The children one after the other.
pub fn concat(children: Vec<Store>) -> Result<Store> {
    let block_size = common_block_size("concat", &children)?;
    let runs = children.iter().map(|c| Run::new(0, c.blocks() / blocks_per(block_size, c))).collect();
    let flags = common_flags(&children);
    let class = Stripe { name: "concat", children, block_size };
    Store::new(Box::new(class), None, block_size, Layout::new(runs), flags)
}

/// The children interleaved every `interleave` bytes (a multiple of every child's block size),
/// using as much of each child as the smallest one has.
pub fn ileave(children: Vec<Store>, interleave: u64) -> Result<Store> {
    let block_size = common_block_size("ileave", &children)?;
    let bs = u64::from(block_size);
    if interleave < bs || interleave % bs != 0 {
        return Err(Error::class("ileave", Errno::EINVAL));
    }
    let stripe = interleave / bs;
    let smallest = children.iter().map(|c| c.blocks() / blocks_per(block_size, c)).min().unwrap_or(0);
    let rounds = smallest / stripe;
    let end = rounds * stripe * children.len() as u64;
    let layout = Layout::repeating(vec![Run::new(0, stripe); children.len()], stripe, end);
    let flags = common_flags(&children);
    let class = Stripe { name: "ileave", children, block_size };
    Store::new(Box::new(class), None, block_size, layout, flags)
}

impl Stripe {
    /// The child of run `index` and `addr` in its own blocks.
    fn locate(&mut self, addr: u64, index: usize) -> (&mut Store, u64) {
        let child = &mut self.children[index];
        let scale = blocks_per(self.block_size, child);
        (child, addr * scale)
    }
}

impl Class for Stripe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read(&mut self, addr: u64, index: usize, buf: &mut [u8]) -> Result<usize> {
        let name = self.name;
        let (child, child_addr) = self.locate(addr, index);
        child.read(child_addr, buf).map_err(|e| Error::child(name, index, e))
    }

    fn write(&mut self, addr: u64, index: usize, data: &[u8]) -> Result<usize> {
        let name = self.name;
        let (child, child_addr) = self.locate(addr, index);
        child.write(child_addr, data).map_err(|e| Error::child(name, index, e))
    }

    fn sync(&mut self) -> Result<()> {
        store::sync_children(self.name, &mut self.children)
    }

    fn set_flags(&mut self, new: Flags, _layout: &Layout, _block_size: u32) -> Result<()> {
        store::set_children_flags(self.name, &mut self.children, new)
    }

    fn clear_flags(&mut self, kill: Flags) -> Result<()> {
        store::clear_children_flags(self.name, &mut self.children, kill)
    }

    fn children(&self) -> &[Store] {
        &self.children
    }
}
