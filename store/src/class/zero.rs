//! `zero`: reads as zeros, swallows writes. Nothing to flush.

use alloc::boxed::Box;
use alloc::vec;

use crate::encoding::{Encoding, STORAGE_ZERO};
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{Class, Flags, Store};

struct Zero;

/// A zero store of `size` bytes (block size 1, as libstore's).
pub fn create(size: u64) -> Result<Store> {
    Store::new(Box::new(Zero), None, 1, Layout::new(vec![Run::new(0, size)]), Flags::NONE)
}

impl Class for Zero {
    fn name(&self) -> &'static str {
        "zero"
    }

    fn read(&mut self, _addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }

    fn write(&mut self, _addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
        Ok(data.len())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn set_size(&mut self, _size: u64) -> Result<()> {
        Ok(())
    }

    /// TY FL and the size in bytes (the block size is 1) as the one offset.
    fn encode(&self, store: &Store, enc: &mut Encoding<u32>) -> Result<()> {
        store.encode_head(enc, STORAGE_ZERO);
        enc.offsets.push(i64::try_from(store.size()).map_err(|_| Error::class("zero", Errno::EINVAL))?);
        Ok(())
    }
}
