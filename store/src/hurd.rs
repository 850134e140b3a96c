//! Device masters on the Hurd: the kernel's, through the task's privileged ports, and a
//! translator's (`device:@/dev/disk:wd0`), by looking its node up — as libstore's `dopen` does.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int};

use mach::port::{PortName, SendRight};

use crate::class::device::DeviceMaster;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::mach_device::MachDeviceMaster;
use crate::store::Flags;

/// `<fcntl.h>` on the Hurd.
const O_READ: c_int = 1;
const O_WRITE: c_int = 2;

extern "C" {
    /// libhurd: send rights to the host-priv and device-master ports (either pointer may be null).
    fn get_privileged_ports(host_priv: *mut u32, device_master: *mut u32) -> c_int;
    /// libhurd: a port to the node at `name`, or `MACH_PORT_NULL` with `errno` set.
    fn file_name_lookup(name: *const c_char, flags: c_int, mode: u32) -> u32;
    fn __errno_location() -> *mut c_int;
}

/// The device master for `node` (looked up for reading, and writing unless `flags` is hard
/// read-only), or the kernel's (`None`).
pub fn device_master(node: Option<&str>, flags: Flags) -> Result<Rc<dyn DeviceMaster>> {
    let port = match node {
        None => kernel_master()?,
        Some(node) => lookup(node, flags)?,
    };
    Ok(Rc::new(MachDeviceMaster::new(SendRight::from_name(PortName::new(port)))))
}

fn kernel_master() -> Result<u32> {
    let mut master = 0u32;
    // SAFETY: the host-priv pointer may be null; `master` is a valid place for one port name.
    let err = unsafe { get_privileged_ports(core::ptr::null_mut(), &mut master) };
    if err != 0 {
        return Err(Error::class("device", Errno(err)));
    }
    Ok(master)
}

fn lookup(node: &str, flags: Flags) -> Result<u32> {
    if node.as_bytes().contains(&0) {
        return Err(Error::class("device", Errno::EINVAL));
    }
    let mut path: Vec<u8> = node.as_bytes().to_vec();
    path.push(0);
    let mode = if flags.contains(Flags::HARD_READONLY) { O_READ } else { O_READ | O_WRITE };
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let port = unsafe { file_name_lookup(path.as_ptr().cast(), mode, 0) };
    if port == 0 {
        // SAFETY: glibc's errno location is valid for the calling thread.
        let errno = unsafe { *__errno_location() };
        return Err(Error::class("device", Errno(errno)));
    }
    Ok(port)
}
