//! The store: a block size, a layout of runs over a class, flags, and I/O at block addresses.
//!
//! The generic part (this file) checks the request, splits it into per-run segments and stitches
//! the results; a [`Class`] does the I/O of one segment and knows how to flush.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::{BitOr, BitOrAssign, Range};

use crate::encoding::Encoding;
use crate::errno::Errno;
use crate::error::{ChildFailure, Error, Result};
use crate::runs::{Layout, Run};

/// Store flags, with libstore's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u32);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// No writing allowed (the generic layer enforces it).
    pub const READONLY: Flags = Flags(0x100);
    /// Cannot be made writable (e.g. the device refused a read-write open).
    pub const HARD_READONLY: Flags = Flags(0x1000);
    /// The device itself enforces the store's range.
    pub const ENFORCED: Flags = Flags(0x2000);
    /// Not in a usable state (a device store closed its port).
    pub const INACTIVE: Flags = Flags(0x4000);
    /// Flags a class implements; the others are the generic layer's.
    pub const BACKEND: Flags = Flags(0x1000 | 0x2000 | 0x4000);

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersection(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }

    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, other: Flags) {
        self.0 |= other.0;
    }
}

/// What a kind of store does with one segment of a request (libstore's `struct store_class`).
pub trait Class {
    /// The class name as typed names spell it (`"device"`, `"remap"`…).
    fn name(&self) -> &'static str;

    /// Reads `buf.len()` bytes at class address `addr` of run `index`; returns how many were
    /// read (short at the end of the class's storage).
    fn read(&mut self, addr: u64, index: usize, buf: &mut [u8]) -> Result<usize>;

    /// Writes `data` at class address `addr` of run `index`; returns how many bytes were written.
    fn write(&mut self, addr: u64, index: usize, data: &[u8]) -> Result<usize>;

    /// Makes every completed write durable (a write barrier), or says why it cannot. A class
    /// that has no way to flush says `EOPNOTSUPP` (libstore's `store_sync` without a method).
    fn sync(&mut self) -> Result<()> {
        Err(Error::class(self.name(), Errno::EOPNOTSUPP))
    }

    /// Appends the `file_get_storage_info` encoding of `store` (the store this class serves)
    /// to `enc`, as libstore's `allocate_encoding` and `encode` methods together. A class
    /// upstream has no encoding for says `EOPNOTSUPP`.
    fn encode(&self, _store: &Store, _enc: &mut Encoding<u32>) -> Result<()> {
        Err(Error::class(self.name(), Errno::EOPNOTSUPP))
    }

    /// Resizes a single-run store to `size` bytes.
    fn set_size(&mut self, _size: u64) -> Result<()> {
        Err(Error::class(self.name(), Errno::EOPNOTSUPP))
    }

    /// Turns on backend flags (`new` holds only flags not yet set).
    fn set_flags(&mut self, _new: Flags, _layout: &Layout, _block_size: u32) -> Result<()> {
        Err(Error::class(self.name(), Errno::EINVAL))
    }

    /// Turns off backend flags (`kill` holds only flags currently set).
    fn clear_flags(&mut self, _kill: Flags) -> Result<()> {
        Err(Error::class(self.name(), Errno::EINVAL))
    }

    fn children(&self) -> &[Store] {
        &[]
    }
}

pub struct Store {
    class: Box<dyn Class>,
    /// The class-specific name (`wd0` for `device:wd0`), when the store has one.
    name: Option<String>,
    block_size: u32,
    layout: Layout,
    flags: Flags,
}

impl Store {
    /// A store over `class`. `block_size` must be a power of two; a hard-read-only store is
    /// read-only.
    pub fn new(
        class: Box<dyn Class>,
        name: Option<String>,
        block_size: u32,
        layout: Layout,
        mut flags: Flags,
    ) -> Result<Store> {
        if !block_size.is_power_of_two() {
            return Err(Error::class(class.name(), Errno::EINVAL));
        }
        if flags.contains(Flags::HARD_READONLY) {
            flags |= Flags::READONLY;
        }
        Ok(Store { class, name, block_size, layout, flags })
    }

    pub fn class_name(&self) -> &'static str {
        self.class.name()
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Addressable blocks.
    pub fn blocks(&self) -> u64 {
        self.layout.end()
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.layout.end().saturating_mul(u64::from(self.block_size))
    }

    pub fn runs(&self) -> &[Run] {
        self.layout.runs()
    }

    pub fn flags(&self) -> Flags {
        self.flags
    }

    pub fn children(&self) -> &[Store] {
        self.class.children()
    }

    fn fail(&self, errno: Errno) -> Error {
        Error::class(self.class.name(), errno)
    }

    /// Checks a request of `len` bytes and returns its length in blocks.
    fn request_blocks(&self, len: usize) -> Result<u64> {
        if self.flags.contains(Flags::INACTIVE) {
            return Err(self.fail(Errno::ENXIO));
        }
        if !len.is_multiple_of(self.block_size as usize) {
            return Err(self.fail(Errno::EINVAL));
        }
        Ok((len / self.block_size as usize) as u64)
    }

    /// Reads `buf.len()` bytes (a whole number of blocks) at block `addr`. Returns how many were
    /// read: fewer at the end of the store, at a hole, or when a later run fails. An error is
    /// returned only when nothing could be read (`EIO` when `addr` is past the end or in a hole).
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        self.transfer(addr, buf.len(), |class, start, index, range| class.read(start, index, &mut buf[range]))
    }

    /// Reads up to `amount` bytes at block `addr` into a new buffer, as [`Store::read`].
    pub fn read_vec(&mut self, addr: u64, amount: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; amount];
        let got = self.read(addr, &mut buf)?;
        buf.truncate(got);
        Ok(buf)
    }

    /// Writes `data` (a whole number of blocks) at block `addr`. Returns how many bytes were
    /// written, fewer at the end of the store, at a hole, or when a later run fails; `EROFS` on a
    /// read-only store.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<usize> {
        if self.flags.contains(Flags::READONLY) {
            return Err(self.fail(Errno::EROFS));
        }
        self.transfer(addr, data.len(), |class, start, index, range| class.write(start, index, &data[range]))
    }

    /// Runs `step` on each run-sized piece of a `len`-byte transfer at block `addr` (class
    /// address, run index, byte range of the caller's buffer) and stitches the results.
    fn transfer(
        &mut self,
        addr: u64,
        len: usize,
        mut step: impl FnMut(&mut dyn Class, u64, usize, Range<usize>) -> Result<usize>,
    ) -> Result<usize> {
        let blocks = self.request_blocks(len)?;
        if blocks == 0 {
            return Ok(0);
        }
        let mut done = 0;
        for segment in self.layout.segments(addr, blocks) {
            let Some(start) = segment.start else { break };
            let want = segment.blocks as usize * self.block_size as usize;
            match step(&mut *self.class, start, segment.index, done..done + want) {
                Ok(moved) => {
                    done += moved;
                    if moved < want {
                        break;
                    }
                }
                Err(error) if done == 0 => return Err(error),
                Err(_) => break,
            }
        }
        if done == 0 {
            return Err(self.fail(Errno::EIO));
        }
        Ok(done)
    }

    /// Appends this store's `file_get_storage_info` encoding to `enc` (see [`crate::encoding`]).
    pub fn encode(&self, enc: &mut Encoding<u32>) -> Result<()> {
        self.class.encode(self, enc)
    }

    /// Appends this store's class id and flags, the ints every encoding starts with.
    pub(crate) fn encode_head(&self, enc: &mut Encoding<u32>, class: i32) {
        // Flags are libstore's bit values, which fit an int.
        enc.ints.extend([class, self.flags.0 as i32]);
    }

    /// Appends libstore's standard leaf encoding (device, file): `port`, then TY FL BS NR NL ML,
    /// the runs, the name with its NUL. This store keeps no misc data: ML is 0.
    pub(crate) fn encode_leaf(&self, enc: &mut Encoding<u32>, class: i32, port: u32) -> Result<()> {
        let name = self.class_name();
        let name_len = self.name().map_or(0, |n| n.len() + 1);
        enc.ports.push(port);
        self.encode_head(enc, class);
        enc.int(name, u64::from(self.block_size()))?;
        enc.int(name, self.runs().len() as u64)?;
        enc.int(name, name_len as u64)?;
        enc.ints.push(0);
        enc.runs(name, self.runs())?;
        if let Some(text) = self.name() {
            enc.data.extend_from_slice(text.as_bytes());
            enc.data.push(0);
        }
        Ok(())
    }

    /// Appends the encodings of this composite's children, in order.
    pub(crate) fn encode_children(&self, enc: &mut Encoding<u32>) -> Result<()> {
        self.children().iter().try_for_each(|child| child.encode(enc))
    }

    /// Asks for every completed write to be made durable, down to the physical medium.
    /// `EOPNOTSUPP` when some part cannot flush and nothing failed; any other error means a
    /// flush failed.
    pub fn sync(&mut self) -> Result<()> {
        if self.flags.contains(Flags::INACTIVE) {
            return Err(self.fail(Errno::ENXIO));
        }
        self.class.sync()
    }

    /// Resizes the store to `size` bytes (a whole number of blocks), where the class can.
    pub fn set_size(&mut self, size: u64) -> Result<()> {
        if !size.is_multiple_of(u64::from(self.block_size)) {
            return Err(self.fail(Errno::EINVAL));
        }
        self.class.set_size(size)?;
        self.layout = Layout::new(vec![Run::new(0, size / u64::from(self.block_size))]);
        Ok(())
    }

    /// Adds `flags`; backend flags go through the class, which may refuse them.
    pub fn set_flags(&mut self, flags: Flags) -> Result<()> {
        let new = flags.without(self.flags);
        let backend = new.intersection(Flags::BACKEND);
        if !backend.is_empty() {
            self.class.set_flags(backend, &self.layout, self.block_size)?;
        }
        self.flags |= new;
        Ok(())
    }

    /// Removes `flags`; read-only cannot be removed from a hard-read-only store.
    pub fn clear_flags(&mut self, flags: Flags) -> Result<()> {
        let kill = flags.intersection(self.flags);
        if kill.contains(Flags::READONLY) && self.flags.contains(Flags::HARD_READONLY) {
            return Err(self.fail(Errno::EROFS));
        }
        let backend = kill.intersection(Flags::BACKEND);
        if !backend.is_empty() {
            self.class.clear_flags(backend)?;
        }
        self.flags = self.flags.without(kill);
        Ok(())
    }
}

/// Flushes every child, continuing after a failure, and reports every child that failed.
pub(crate) fn sync_children(class: &'static str, children: &mut [Store]) -> Result<()> {
    let failures: Vec<ChildFailure> = children
        .iter_mut()
        .enumerate()
        .filter_map(|(index, child)| child.sync().err().map(|error| ChildFailure { index, error }))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Children { class, failures })
    }
}

/// Sets backend flags on every child, undoing the change on the others if one refuses.
pub(crate) fn set_children_flags(class: &'static str, children: &mut [Store], flags: Flags) -> Result<()> {
    let before: Vec<Flags> = children.iter().map(Store::flags).collect();
    for index in 0..children.len() {
        if let Err(error) = children[index].set_flags(flags) {
            for (child, old) in children[..index].iter_mut().zip(&before) {
                // Best effort: the refusal below is the error the caller needs.
                let _ = child.clear_flags(flags.without(*old));
            }
            return Err(Error::child(class, index, error));
        }
    }
    Ok(())
}

/// Clears backend flags on every child, stopping at the first that refuses.
pub(crate) fn clear_children_flags(class: &'static str, children: &mut [Store], flags: Flags) -> Result<()> {
    for (index, child) in children.iter_mut().enumerate() {
        child.clear_flags(flags).map_err(|error| Error::child(class, index, error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::{memory, remap};
    use alloc::string::ToString;
    use proptest::prelude::*;

    const BS: usize = 4;

    /// Remap over a memory child: `runs` and a byte model of the child.
    struct Model {
        table: Vec<Option<u64>>,
        child: Vec<u8>,
    }

    impl Model {
        fn new(runs: &[Run], child_blocks: u64) -> Model {
            let table = runs.iter().flat_map(|r| (0..r.length).map(move |b| r.start.map(|s| s + b))).collect();
            Model { table, child: vec![0; child_blocks as usize * BS] }
        }

        /// Blocks a transfer at `addr` of `blocks` reaches before a hole or the end.
        fn reach(&self, addr: u64, blocks: u64) -> Option<Vec<u64>> {
            let first = *self.table.get(addr as usize)?;
            first?;
            Some(
                self.table[addr as usize..]
                    .iter()
                    .take(blocks as usize)
                    .map_while(|b| *b)
                    .collect(),
            )
        }
    }

    fn arb_runs(child_blocks: u64) -> impl Strategy<Value = Vec<Run>> {
        prop::collection::vec(
            (0..child_blocks).prop_flat_map(move |start| {
                (prop::bool::weighted(0.8), Just(start), 1..=child_blocks - start)
                    .prop_map(|(backed, start, length)| if backed { Run::new(start, length) } else { Run::hole(length) })
            }),
            1..6,
        )
    }

    #[derive(Clone, Debug)]
    enum Op {
        Read { addr: u64, blocks: u64 },
        Write { addr: u64, blocks: u64, byte: u8 },
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..24, 0u64..12).prop_map(|(addr, blocks)| Op::Read { addr, blocks }),
            (0u64..24, 0u64..12, any::<u8>()).prop_map(|(addr, blocks, byte)| Op::Write { addr, blocks, byte }),
        ]
    }

    proptest! {
        #[test]
        fn reads_and_writes_follow_the_runs(runs in arb_runs(10), ops in prop::collection::vec(arb_op(), 1..20)) {
            let child = memory::create(10 * BS as u64, BS as u32).unwrap();
            let mut store = remap::create(child, runs.clone()).unwrap();
            let mut model = Model::new(&runs, 10);
            prop_assert_eq!(store.blocks(), model.table.len() as u64);
            for op in ops {
                match op {
                    Op::Read { addr, blocks } => {
                        let got = store.read_vec(addr, blocks as usize * BS);
                        match (blocks, model.reach(addr, blocks)) {
                            (0, _) => prop_assert_eq!(got.unwrap().len(), 0),
                            (_, None) => prop_assert_eq!(got.unwrap_err().errno(), Errno::EIO),
                            (_, Some(reached)) => {
                                let expected: Vec<u8> = reached
                                    .iter()
                                    .flat_map(|b| model.child[*b as usize * BS..][..BS].to_vec())
                                    .collect();
                                prop_assert_eq!(got.unwrap(), expected);
                            }
                        }
                    }
                    Op::Write { addr, blocks, byte } => {
                        let put = store.write(addr, &vec![byte; blocks as usize * BS]);
                        match (blocks, model.reach(addr, blocks)) {
                            (0, _) => prop_assert_eq!(put.unwrap(), 0),
                            (_, None) => prop_assert_eq!(put.unwrap_err().errno(), Errno::EIO),
                            (_, Some(reached)) => {
                                prop_assert_eq!(put.unwrap(), reached.len() * BS);
                                for b in reached {
                                    model.child[b as usize * BS..][..BS].fill(byte);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lengths_must_be_whole_blocks() {
        let mut store = memory::create(4096, 512).unwrap();
        assert_eq!(store.read_vec(0, 100).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(store.write(0, &[0; 513]).unwrap_err().errno(), Errno::EINVAL);
    }

    #[test]
    fn read_only_refuses_writes_until_cleared() {
        let mut store = memory::create(4096, 512).unwrap();
        store.set_flags(Flags::READONLY).unwrap();
        assert_eq!(store.write(0, &[0; 512]).unwrap_err().errno(), Errno::EROFS);
        store.clear_flags(Flags::READONLY).unwrap();
        assert_eq!(store.write(0, &[0; 512]).unwrap(), 512);
    }

    #[test]
    fn short_at_the_end_and_eio_past_it() {
        let mut store = memory::create(4096, 512).unwrap();
        assert_eq!(store.write(6, &[3; 1536]).unwrap(), 1024);
        assert_eq!(store.read_vec(7, 1024).unwrap(), vec![3; 512]);
        assert_eq!(store.read_vec(8, 512).unwrap_err().errno(), Errno::EIO);
        assert_eq!(store.write(8, &[0; 512]).unwrap_err().errno(), Errno::EIO);
    }

    #[test]
    fn set_size_where_the_class_can() {
        let mut store = memory::create(4096, 512).unwrap();
        store.set_size(8192).unwrap();
        assert_eq!(store.blocks(), 16);
        assert_eq!(store.set_size(1000).unwrap_err().errno(), Errno::EINVAL);
        let mut part = remap::create(store, vec![Run::new(0, 2)]).unwrap();
        assert_eq!(part.set_size(512).unwrap_err().errno(), Errno::EOPNOTSUPP);
        assert_eq!(part.blocks(), 2);
    }

    #[test]
    fn block_size_must_be_a_power_of_two() {
        let Err(error) = memory::create(3000, 300) else { panic!() };
        assert_eq!(error.errno(), Errno::EINVAL);
    }

    /// A class with reads and writes but no way to flush.
    struct Unflushable;

    impl Class for Unflushable {
        fn name(&self) -> &'static str {
            "unflushable"
        }
        fn read(&mut self, _addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
            Ok(buf.len())
        }
        fn write(&mut self, _addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
            Ok(data.len())
        }
    }

    #[test]
    fn a_class_that_cannot_flush_says_eopnotsupp_even_inside_a_composite() {
        let leaf = || Store::new(Box::new(Unflushable), None, 512, Layout::new(vec![Run::new(0, 4)]), Flags::NONE).unwrap();
        assert_eq!(leaf().sync().unwrap_err().errno(), Errno::EOPNOTSUPP);
        let mut both = crate::class::stripe::concat(vec![leaf(), memory::create(2048, 512).unwrap()]).unwrap();
        let error = both.sync().unwrap_err();
        assert_eq!(error.errno(), Errno::EOPNOTSUPP);
        assert_eq!(error.to_string(), "concat: child 0 failed: unflushable: EOPNOTSUPP (operation not supported)");
    }

    #[test]
    fn backend_flags_a_class_lacks_are_refused() {
        let mut store = memory::create(4096, 512).unwrap();
        assert_eq!(store.set_flags(Flags::ENFORCED).unwrap_err().errno(), Errno::EINVAL);
        assert!(!store.flags().contains(Flags::ENFORCED));
    }
}
