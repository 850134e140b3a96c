//! `concat` and `ileave` (interleave): stores spread over several children. Run `i` is child `i`;
//! an interleaved layout repeats the runs, one stripe per child per round. Sync flushes every
//! child, keeps going after a failure and names each child that failed — concat included, which
//! upstream libstore cannot sync at all.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::blocks_per;
use crate::encoding::{Encoding, STORAGE_CONCAT, STORAGE_INTERLEAVE};
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
    if interleave < bs || !interleave.is_multiple_of(bs) {
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

    /// concat: TY FL NC; ileave: TY FL IL NC with IL in bytes (one run's length is the
    /// stripe). Then the children.
    fn encode(&self, store: &Store, enc: &mut Encoding<u32>) -> Result<()> {
        if self.name == "ileave" {
            store.encode_head(enc, STORAGE_INTERLEAVE);
            let stripe = store.runs().first().map_or(0, |run| run.length);
            enc.int(self.name, stripe.saturating_mul(u64::from(self.block_size)))?;
        } else {
            store.encode_head(enc, STORAGE_CONCAT);
        }
        enc.int(self.name, self.children.len() as u64)?;
        store.encode_children(enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::{memory, zero};
    use crate::errno::DeviceCode;
    use crate::testing::CrashDisk;

    fn disks(n: usize, records: usize) -> Vec<CrashDisk> {
        (0..n).map(|_| CrashDisk::new(records, 512)).collect()
    }

    fn stores(disks: &[CrashDisk]) -> Vec<Store> {
        disks.iter().map(|d| d.open("wd")).collect()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i / 512 + 1) as u8).collect()
    }

    #[test]
    fn concat_syncs_every_child_and_data_survives() {
        let disks = disks(3, 4);
        let mut store = concat(stores(&disks)).unwrap();
        assert_eq!(store.blocks(), 12);
        let data = pattern(12 * 512);
        assert_eq!(store.write(0, &data).unwrap(), data.len());
        store.sync().unwrap();
        for disk in &disks {
            assert_eq!(disk.flushes(), 1);
            disk.crash();
        }
        assert_eq!(store.read_vec(0, data.len()).unwrap(), data);
        assert_eq!(disks[1].durable(), data[4 * 512..8 * 512]);
    }

    #[test]
    fn ileave_syncs_every_child_and_data_survives() {
        let disks = disks(2, 8);
        let mut store = ileave(stores(&disks), 1024).unwrap();
        assert_eq!(store.blocks(), 16);
        let data = pattern(16 * 512);
        store.write(0, &data).unwrap();
        store.sync().unwrap();
        disks.iter().for_each(CrashDisk::crash);
        assert_eq!(store.read_vec(0, data.len()).unwrap(), data);
        // Store blocks 2 and 3 are the first stripe of child 1.
        assert_eq!(disks[1].durable()[..1024], data[1024..2048]);
    }

    #[test]
    fn a_failing_child_fails_the_sync_and_the_others_are_still_flushed() {
        for make in [concat as fn(Vec<Store>) -> Result<Store>, |c| ileave(c, 512)] {
            let disks = disks(3, 4);
            let mut store = make(stores(&disks)).unwrap();
            let data = pattern(store.size() as usize);
            store.write(0, &data).unwrap();
            disks[1].fail_flushes_with(DeviceCode::IO_ERROR.0);
            let error = store.sync().unwrap_err();
            assert_eq!(error.errno(), Errno::EIO);
            assert_eq!(error.device_code(), Some(DeviceCode::IO_ERROR));
            let Error::Children { failures, .. } = &error else { panic!("{error:?}") };
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].index, 1);
            assert_eq!((disks[0].flushes(), disks[1].flushes(), disks[2].flushes()), (1, 0, 1));
        }
    }

    #[test]
    fn every_failure_is_named_and_a_real_one_outranks_cannot_flush() {
        let disks = disks(3, 4);
        let mut store = concat(stores(&disks)).unwrap();
        disks[0].fail_flushes_with(DeviceCode::INVALID_OPERATION.0);
        disks[2].fail_flushes_with(DeviceCode::IO_ERROR.0);
        let error = store.sync().unwrap_err();
        let Error::Children { failures, .. } = &error else { panic!("{error:?}") };
        let failed: Vec<_> = failures.iter().map(|f| (f.index, f.error.errno())).collect();
        assert_eq!(failed, vec![(0, Errno::EOPNOTSUPP), (2, Errno::EIO)]);
        assert_eq!(error.errno(), Errno::EIO);
        assert_eq!(disks[1].flushes(), 1);
    }

    #[test]
    fn only_cannot_flush_is_eopnotsupp() {
        let disks = disks(2, 4);
        let mut children = stores(&disks);
        children.push(zero::create(2048).unwrap());
        let mut store = concat(children).unwrap();
        disks[1].fail_flushes_with(DeviceCode::INVALID_OPERATION.0);
        assert_eq!(store.sync().unwrap_err().errno(), Errno::EOPNOTSUPP);
    }

    #[test]
    fn mixed_block_sizes_use_the_largest() {
        let small = memory::create(4096, 1).unwrap();
        let disk = CrashDisk::new(4, 1024);
        let mut store = concat(vec![small, disk.open("wd")]).unwrap();
        assert_eq!((store.block_size(), store.blocks()), (1024, 8));
        let data = pattern(2048);
        store.write(3, &data).unwrap(); // last block of memory, first of the disk
        assert_eq!(store.read_vec(3, 2048).unwrap(), data);
        store.sync().unwrap();
        disk.crash();
        assert_eq!(disk.durable()[..1024], data[1024..]);
    }

    #[test]
    fn ileave_uses_whole_stripes_of_the_smallest_child() {
        let disks = [CrashDisk::new(9, 512), CrashDisk::new(5, 512)];
        let store = ileave(stores(&disks), 1024).unwrap();
        assert_eq!(store.blocks(), 8, "two rounds of two 2-block stripes");
        let Err(error) = ileave(stores(&disks), 768) else { panic!() };
        assert_eq!(error.errno(), Errno::EINVAL);
        let Err(error) = concat(Vec::new()) else { panic!() };
        assert_eq!(error.errno(), Errno::EINVAL);
    }

    #[test]
    fn io_errors_name_the_child_and_later_ones_shorten_the_transfer() {
        let disks = disks(2, 4);
        let mut store = concat(stores(&disks)).unwrap();
        disks[1].fail_io_with(DeviceCode::IO_ERROR.0);
        let error = store.read_vec(4, 512).unwrap_err();
        let Error::Children { class: "concat", failures } = &error else { panic!("{error:?}") };
        assert_eq!((failures[0].index, error.errno()), (1, Errno::EIO));
        assert_eq!(store.read_vec(2, 2048).unwrap().len(), 1024, "short read up to the failing child");
        assert_eq!(store.write(2, &[1; 2048]).unwrap(), 1024, "short write up to the failing child");
    }
}
