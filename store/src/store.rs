//! The store: a block size, a layout of runs over a class, flags, and I/O at block addresses.
//!
//! The generic part (this file) checks the request, splits it into per-run segments and stitches
//! the results; a [`Class`] does the I/O of one segment and knows how to flush.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::{BitOr, BitOrAssign};

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

    /// Makes every completed write durable (a write barrier), or says why it cannot.
    fn sync(&mut self) -> Result<()>;

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
        if len % self.block_size as usize != 0 {
            return Err(self.fail(Errno::EINVAL));
        }
        Ok((len / self.block_size as usize) as u64)
    }

    /// Reads `buf.len()` bytes (a whole number of blocks) at block `addr`. Returns how many were
    /// read: fewer at the end of the store, at a hole, or when a later run fails. An error is
    /// returned only when nothing could be read (`EIO` when `addr` is past the end or in a hole).
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let blocks = self.request_blocks(buf.len())?;
        if blocks == 0 {
            return Ok(0);
        }
        let bs = self.block_size as usize;
        let mut done = 0;
        let segments: Vec<_> = self.layout.segments(addr, blocks).collect();
        for segment in segments.iter() {
            let Some(start) = segment.start else { break };
            let want = segment.blocks as usize * bs;
            match self.class.read(start, segment.index, &mut buf[done..done + want]) {
                Ok(got) => {
                    done += got;
                    if got < want {
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
        let blocks = self.request_blocks(data.len())?;
        if blocks == 0 {
            return Ok(0);
        }
        let bs = self.block_size as usize;
        let mut done = 0;
        let segments: Vec<_> = self.layout.segments(addr, blocks).collect();
        for segment in segments.iter() {
            let Some(start) = segment.start else { break };
            let want = segment.blocks as usize * bs;
            match self.class.write(start, segment.index, &data[done..done + want]) {
                Ok(put) => {
                    done += put;
                    if put < want {
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
        if size % u64::from(self.block_size) != 0 {
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
