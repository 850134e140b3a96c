//! `file`: the contents of a Hurd file, read and written through the io interface (`io_read`,
//! `io_write`) and flushed with `file_sync`, as libstore's file class does.
//!
//! The RPCs sit behind [`FileNode`] so the class is tested against doubles; a port to a real
//! file needs the io and fs client stubs (see the design notes).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::class::byte_offset;
use crate::class::device::ReturnCode;
use crate::encoding::{Encoding, STORAGE_HURD_FILE};
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{Class, Flags, Store};

/// MIG's answer when the server has no such routine (an old server without `file_sync`).
const MIG_BAD_ID: ReturnCode = -303;
/// Files whose size is a whole number of these get it as their block size (libstore's choice).
const SECTOR: u64 = 512;

/// The file routines the class uses, on one open file (a Hurd `file_t`).
pub trait FileNode {
    /// `io_read` of up to `buf.len()` bytes at byte `offset`; returns the bytes read (0 at the end).
    fn read(&self, offset: u64, buf: &mut [u8]) -> core::result::Result<usize, ReturnCode>;
    /// `io_write` at byte `offset`; returns the bytes written.
    fn write(&self, offset: u64, data: &[u8]) -> core::result::Result<usize, ReturnCode>;
    /// The file's size in bytes (`io_stat`'s `st_size`).
    fn size(&self) -> core::result::Result<u64, ReturnCode>;
    /// `file_sync` with `wait` set and metadata included: returns once the file's data (and the
    /// writes below it) are durable.
    fn sync(&self) -> core::result::Result<(), ReturnCode>;
    /// The port's name, for a storage-info encoding of this store (0, `MACH_PORT_NULL`, when the
    /// node is no Mach port).
    fn port_name(&self) -> u32 {
        0
    }
}

/// A file server answers with errno values (and Mach or MIG codes, which are errno values on
/// the Hurd too); only "no such routine" needs translating, for sync.
fn file_error(code: ReturnCode, sync: bool) -> Error {
    let errno = if sync && code == MIG_BAD_ID { Errno::EOPNOTSUPP } else { Errno(code) };
    Error::class("file", errno)
}

struct File {
    node: Box<dyn FileNode>,
    block_size: u32,
}

/// The whole of the file `node` (named `name`, for messages and encodings): blocks of 512 bytes
/// when its size allows, else of 1 byte; enforced, since it is the whole file.
pub fn create(node: Box<dyn FileNode>, name: Option<&str>, flags: Flags) -> Result<Store> {
    let size = node.size().map_err(|code| file_error(code, false))?;
    let block_size = if size.is_multiple_of(SECTOR) { SECTOR } else { 1 };
    let runs = vec![Run::new(0, size / block_size)];
    from_parts(node, name.map(ToString::to_string), block_size as u32, runs, flags | Flags::ENFORCED)
}

/// A file store with a layout given by someone else (a decoded storage-info encoding).
pub fn from_parts(
    node: Box<dyn FileNode>,
    name: Option<String>,
    block_size: u32,
    runs: Vec<Run>,
    flags: Flags,
) -> Result<Store> {
    Store::new(Box::new(File { node, block_size }), name, block_size, Layout::new(runs), flags)
}

impl File {
    /// Repeats an io call that made progress but stopped short (a server may cap one request)
    /// until done or the file gives nothing more; an error after progress ends it short.
    fn transfer(
        &self,
        addr: u64,
        len: usize,
        mut step: impl FnMut(u64, usize) -> core::result::Result<usize, ReturnCode>,
    ) -> Result<usize> {
        let start = byte_offset(addr, self.block_size).ok_or(Error::class("file", Errno::EINVAL))? as u64;
        let mut done = 0;
        while done < len {
            match step(start + done as u64, done) {
                Ok(0) => break,
                Ok(n) => done += n.min(len - done),
                Err(code) if done == 0 => return Err(file_error(code, false)),
                Err(_) => break,
            }
        }
        Ok(done)
    }
}

impl Class for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn read(&mut self, addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
        let node = &*self.node;
        let len = buf.len();
        self.transfer(addr, len, |offset, done| node.read(offset, &mut buf[done..]))
    }

    fn write(&mut self, addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
        let node = &*self.node;
        self.transfer(addr, data.len(), |offset, done| node.write(offset, &data[done..]))
    }

    /// `file_sync(wait)`: the file server writes the file back and, below it, syncs its own
    /// store — the barrier reaches the disk through the server.
    fn sync(&mut self) -> Result<()> {
        self.node.sync().map_err(|code| file_error(code, true))
    }

    /// The standard leaf encoding with the file's port and name.
    fn encode(&self, store: &Store, enc: &mut Encoding<u32>) -> Result<()> {
        store.encode_leaf(enc, STORAGE_HURD_FILE, self.node.port_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeFile;

    #[test]
    fn sized_in_sectors_when_it_can_be() {
        let store = create(Box::new(FakeFile::new(4096)), Some("disk.img"), Flags::NONE).unwrap();
        assert_eq!((store.block_size(), store.blocks(), store.name()), (512, 8, Some("disk.img")));
        assert!(store.flags().contains(Flags::ENFORCED));
        let odd = create(Box::new(FakeFile::new(1000)), None, Flags::NONE).unwrap();
        assert_eq!((odd.block_size(), odd.blocks()), (1, 1000));
    }

    #[test]
    fn reads_and_writes_at_byte_offsets_of_blocks_and_continue_short_answers() {
        let file = FakeFile::new(4096);
        file.cap_transfers(100);
        let mut store = create(Box::new(file.clone()), None, Flags::NONE).unwrap();
        let data: Vec<u8> = (0..1024).map(|i| i as u8).collect();
        assert_eq!(store.write(3, &data).unwrap(), 1024);
        assert_eq!(file.contents()[3 * 512..5 * 512], data[..]);
        assert_eq!(store.read_vec(3, 1024).unwrap(), data);
        assert_eq!(store.read_vec(7, 1024).unwrap().len(), 512, "short at the end");
    }

    #[test]
    fn sync_is_file_sync_and_its_errors_are_mapped() {
        let file = FakeFile::new(1024);
        let mut store = create(Box::new(file.clone()), None, Flags::NONE).unwrap();
        store.write(0, &[5; 512]).unwrap();
        store.sync().unwrap();
        assert_eq!(file.syncs(), 1);
        file.fail_syncs_with(MIG_BAD_ID);
        assert_eq!(store.sync().unwrap_err(), Error::class("file", Errno::EOPNOTSUPP));
        file.fail_syncs_with(Errno::EIO.0);
        assert_eq!(store.sync().unwrap_err(), Error::class("file", Errno::EIO));
    }

    #[test]
    fn io_errors_are_the_servers_errno() {
        let file = FakeFile::new(1024);
        let mut store = create(Box::new(file.clone()), None, Flags::NONE).unwrap();
        file.fail_io_with(Errno::EROFS.0);
        assert_eq!(store.write(0, &[1; 512]).unwrap_err(), Error::class("file", Errno::EROFS));
        assert_eq!(store.read_vec(0, 512).unwrap_err(), Error::class("file", Errno::EROFS));
        let Err(error) = create(Box::new(file), None, Flags::NONE) else { panic!("sized a failing file") };
        assert_eq!(error.errno(), Errno::EROFS);
    }
}
