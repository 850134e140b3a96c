//! `query:` on the Hurd: nodes as ports, so a node's translator can be asked what the node is
//! stored on (`file_get_storage_info`), as libstore's `store_open` does — storeio answers with
//! its device, whose port then carries reads, writes and `DEV_FLUSH_CACHE` straight to the disk
//! server. A translator that cannot say is used through the node's contents instead.

use std::fs::File;
use std::os::fd::FromRawFd;

use mach::port::SendRight;
use store::class::device::DevicePort;
use store::class::file::FileNode;
use store::decode::LeafPorts;
use store::encoding::Encoding;
use store::query::Nodes;
use store::Result;

use crate::file::{errno_of, StdFile};

/// `<fcntl.h>` on the Hurd: the descriptor may read and write; the node's own open modes (from
/// its lookup) decide what it really allows.
const O_RDWR: std::ffi::c_int = 3;

extern "C" {
    /// glibc: a descriptor over an io port, taking over one user reference of it.
    fn openport(port: u32, flags: std::ffi::c_int) -> std::ffi::c_int;
}

pub struct HurdNodes;

impl Nodes for HurdNodes {
    type Port = SendRight;

    fn lookup(&self, path: &str, writable: bool) -> Result<SendRight> {
        store::hurd::lookup(path, writable, "query")
    }

    fn storage_info(&self, node: &SendRight) -> Result<Encoding<SendRight>> {
        store::hurd::storage_info(node)
    }
}

impl LeafPorts<SendRight> for HurdNodes {
    fn device(&self, port: SendRight) -> Result<Box<dyn DevicePort>> {
        Ok(store::mach_device::device_port(port))
    }

    /// The node's contents through a descriptor, as `file:` uses them.
    fn file(&self, port: SendRight) -> Result<Box<dyn FileNode>> {
        // SAFETY: the port name is a send right we own; openport takes it over, also on failure.
        let fd = unsafe { openport(port.into_name().raw(), O_RDWR) };
        if fd < 0 {
            return Err(store::Error::class("file", errno_of(&std::io::Error::last_os_error())));
        }
        // SAFETY: `fd` was just made by openport and belongs to nothing else.
        Ok(Box::new(StdFile(unsafe { File::from_raw_fd(fd) })))
    }
}
