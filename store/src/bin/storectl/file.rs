//! What `storectl` opens leaves with: files through the file system, and on the Hurd devices
//! through the kernel's device master or a translator node.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use store::class::device::DeviceMaster;
use store::runs::Layout;
use store::{Class, Errno, Error, Flags, Opener, Result, Run, Store};

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
        let writable = !flags.contains(Flags::HARD_READONLY);
        let mut file = OpenOptions::new().read(true).write(writable).open(path).map_err(fail)?;
        // Seeking gives block devices' sizes too, which their metadata does not.
        let size = file.seek(SeekFrom::End(0)).map_err(fail)?;
        let flags = if writable { Flags::NONE } else { Flags::HARD_READONLY };
        let layout = Layout::new(vec![Run::new(0, size)]);
        Store::new(Box::new(FileClass { file }), Some(path.to_string()), 1, layout, flags)
    }
}

fn fail(error: io::Error) -> Error {
    Error::class("file", errno_of(&error))
}

/// On the Hurd an I/O error carries the Hurd's errno already.
#[cfg(target_os = "hurd")]
fn errno_of(error: &io::Error) -> Errno {
    error.raw_os_error().map_or(Errno::EIO, Errno)
}

/// Elsewhere the host's errno numbering is not the Hurd's: translate the kind.
#[cfg(not(target_os = "hurd"))]
fn errno_of(error: &io::Error) -> Errno {
    match error.kind() {
        io::ErrorKind::NotFound => Errno::ENOENT,
        io::ErrorKind::PermissionDenied => Errno::EPERM,
        io::ErrorKind::ReadOnlyFilesystem => Errno::EROFS,
        io::ErrorKind::StorageFull => Errno::ENOSPC,
        io::ErrorKind::InvalidInput => Errno::EINVAL,
        _ => Errno::EIO,
    }
}

/// A file as a store of 1-byte blocks; sync is `fsync` (on the Hurd, `file_sync` with wait).
struct FileClass {
    file: File,
}

impl Class for FileClass {
    fn name(&self) -> &'static str {
        "file"
    }

    fn read(&mut self, addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], addr + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if done == 0 => return Err(fail(e)),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    fn write(&mut self, addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
        self.file.write_all_at(data, addr).map_err(fail)?;
        Ok(data.len())
    }

    fn sync(&mut self) -> Result<()> {
        self.file.sync_all().map_err(fail)
    }
}
