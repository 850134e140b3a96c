//! What `storectl` opens leaves with: files through the file system (`file:`, and `query:`,
//! which here falls back to the file's contents; on the Hurd it asks the node's translator, see
//! `hurd.rs`), and on the Hurd devices through the kernel's device master or a translator node.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use store::class::device::{DeviceMaster, DevicePort, ReturnCode};
use store::class::file::FileNode;
use store::decode::LeafPorts;
use store::encoding::Encoding;
use store::query::{self, Nodes};
use store::{Errno, Error, Flags, Opener, Result, Store};

pub struct HostOpener;

impl Opener for HostOpener {
    #[cfg(all(target_os = "hurd", feature = "mach"))]
    fn device_master(&self, node: Option<&str>, flags: Flags) -> Result<Rc<dyn DeviceMaster>> {
        store::hurd::device_master(node, flags)
    }

    #[cfg(not(all(target_os = "hurd", feature = "mach")))]
    fn device_master(&self, _node: Option<&str>, _flags: Flags) -> Result<Rc<dyn DeviceMaster>> {
        eprintln!("storectl: device stores need GNU Mach's device master, which this system does not have");
        Err(Error::class("device", Errno::ENODEV))
    }

    fn file(&self, path: &str, flags: Flags) -> Result<Store> {
        query::open_file(&HostFiles, path, flags)
    }

    #[cfg(all(target_os = "hurd", feature = "mach"))]
    fn query(&self, path: &str, flags: Flags) -> Result<Store> {
        query::open(&crate::hurd::HurdNodes, path, flags)
    }

    #[cfg(not(all(target_os = "hurd", feature = "mach")))]
    fn query(&self, path: &str, flags: Flags) -> Result<Store> {
        query::open(&HostFiles, path, flags)
    }
}

/// The file system through `std` (glibc's `open`, `pread`, `pwrite`, `fsync`, which on the Hurd
/// are `file_name_lookup`, `io_read`, `io_write`, `file_sync`).
struct HostFiles;

impl Nodes for HostFiles {
    type Port = File;

    fn lookup(&self, path: &str, writable: bool) -> Result<File> {
        OpenOptions::new().read(true).write(writable).open(path).map_err(|e| Error::class("query", errno_of(&e)))
    }

    /// `std` has no `file_get_storage_info`: every node is used through its contents.
    fn storage_info(&self, _node: &File) -> Result<Encoding<File>> {
        Err(Error::class("query", Errno::EOPNOTSUPP))
    }
}

impl LeafPorts<File> for HostFiles {
    fn device(&self, _port: File) -> Result<Box<dyn DevicePort>> {
        Err(Error::class("device", Errno::EOPNOTSUPP))
    }

    fn file(&self, port: File) -> Result<Box<dyn FileNode>> {
        Ok(Box::new(StdFile(port)))
    }
}

/// On the Hurd an I/O error carries the Hurd's errno already.
#[cfg(target_os = "hurd")]
pub(crate) fn errno_of(error: &io::Error) -> Errno {
    error.raw_os_error().map_or(Errno::EIO, Errno)
}

/// Elsewhere the host's errno numbering is not the Hurd's: translate the kind.
#[cfg(not(target_os = "hurd"))]
pub(crate) fn errno_of(error: &io::Error) -> Errno {
    match error.kind() {
        io::ErrorKind::NotFound => Errno::ENOENT,
        io::ErrorKind::PermissionDenied => Errno::EACCES,
        io::ErrorKind::ReadOnlyFilesystem => Errno::EROFS,
        io::ErrorKind::StorageFull => Errno::ENOSPC,
        io::ErrorKind::InvalidInput => Errno::EINVAL,
        _ => Errno::EIO,
    }
}

fn code_of(error: &io::Error) -> ReturnCode {
    errno_of(error).0
}

/// An open file as the file class's node; interrupted calls are retried here.
pub(crate) struct StdFile(pub(crate) File);

impl FileNode for StdFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<usize, ReturnCode> {
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other.map_err(|e| code_of(&e)),
            }
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<usize, ReturnCode> {
        loop {
            match self.0.write_at(data, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other.map_err(|e| code_of(&e)),
            }
        }
    }

    /// Seeking gives block devices' sizes too, which their metadata does not.
    fn size(&self) -> std::result::Result<u64, ReturnCode> {
        (&self.0).seek(SeekFrom::End(0)).map_err(|e| code_of(&e))
    }

    fn sync(&self) -> std::result::Result<(), ReturnCode> {
        self.0.sync_all().map_err(|e| code_of(&e))
    }
}
