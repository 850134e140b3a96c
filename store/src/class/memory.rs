//! `memory`: a store held in this task's memory (for tests and tools). Nothing to flush.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::byte_offset;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{Class, Flags, Store};

struct Memory {
    data: Vec<u8>,
    block_size: u32,
}

/// A zero-filled memory store of `size` bytes in blocks of `block_size` bytes.
pub fn create(size: u64, block_size: u32) -> Result<Store> {
    let bytes = usize::try_from(size).map_err(|_| Error::class("memory", Errno::ENOMEM))?;
    if block_size == 0 || !size.is_multiple_of(u64::from(block_size)) {
        return Err(Error::class("memory", Errno::EINVAL));
    }
    let class = Memory { data: vec![0; bytes], block_size };
    let layout = Layout::new(vec![Run::new(0, size / u64::from(block_size))]);
    Store::new(Box::new(class), None, block_size, layout, Flags::NONE)
}

impl Memory {
    fn range(&self, addr: u64, len: usize) -> Result<core::ops::Range<usize>> {
        let start = byte_offset(addr, self.block_size)
            .filter(|start| *start <= self.data.len())
            .ok_or(Error::class("memory", Errno::EIO))?;
        Ok(start..start + len.min(self.data.len() - start))
    }
}

impl Class for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn read(&mut self, addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
        let range = self.range(addr, buf.len())?;
        buf[..range.len()].copy_from_slice(&self.data[range.clone()]);
        Ok(range.len())
    }

    fn write(&mut self, addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
        let range = self.range(addr, data.len())?;
        let len = range.len();
        self.data[range].copy_from_slice(&data[..len]);
        Ok(len)
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn set_size(&mut self, size: u64) -> Result<()> {
        let bytes = usize::try_from(size).map_err(|_| Error::class("memory", Errno::ENOMEM))?;
        self.data.resize(bytes, 0);
        Ok(())
    }
}
