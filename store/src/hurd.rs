//! The Hurd's file system from the store: device masters — the kernel's, through the task's
//! privileged ports, and a translator's (`device:@/dev/disk:wd0`), by looking its node up, as
//! libstore's `dopen` does — and a node's storage, asked for with `file_get_storage_info` as
//! libstore's `store_create` does (`query:`).

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void};

use mach::port::{PortName, SendRight};

use crate::class::device::DeviceMaster;
use crate::encoding::Encoding;
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
    /// libhurduser: GNU MIG's client stub of `file_get_storage_info`. Each array is passed as a
    /// buffer and its capacity in elements; an answer that does not fit it (or came out of line)
    /// is returned in memory the stub mapped, which the caller unmaps.
    fn file_get_storage_info(
        file: u32,
        ports: *mut *mut u32,
        ports_len: *mut u32,
        ints: *mut *mut c_int,
        ints_len: *mut u32,
        offsets: *mut *mut i64,
        offsets_len: *mut u32,
        data: *mut *mut u8,
        data_len: *mut u32,
    ) -> c_int;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn __errno_location() -> *mut c_int;
}

/// The device master for `node` (looked up for reading, and writing unless `flags` is hard
/// read-only), or the kernel's (`None`).
pub fn device_master(node: Option<&str>, flags: Flags) -> Result<Rc<dyn DeviceMaster>> {
    let port = match node {
        None => kernel_master()?,
        Some(node) => lookup(node, !flags.contains(Flags::HARD_READONLY), "device")?,
    };
    Ok(Rc::new(MachDeviceMaster::new(port)))
}

fn kernel_master() -> Result<SendRight> {
    let mut master = 0u32;
    // SAFETY: the host-priv pointer may be null; `master` is a valid place for one port name.
    let err = unsafe { get_privileged_ports(core::ptr::null_mut(), &mut master) };
    if err != 0 {
        return Err(Error::class("device", Errno(err)));
    }
    Ok(SendRight::from_name(PortName::new(master)))
}

/// A send right to the node at `path`, opened for reading and, when `writable`, writing;
/// failures are errors of store class `class`.
pub fn lookup(path: &str, writable: bool, class: &'static str) -> Result<SendRight> {
    if path.as_bytes().contains(&0) {
        return Err(Error::class(class, Errno::EINVAL));
    }
    let mut name: Vec<u8> = path.as_bytes().to_vec();
    name.push(0);
    let mode = if writable { O_READ | O_WRITE } else { O_READ };
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let port = unsafe { file_name_lookup(name.as_ptr().cast(), mode, 0) };
    if port == 0 {
        // SAFETY: glibc's errno location is valid for the calling thread.
        let errno = unsafe { *__errno_location() };
        return Err(Error::class(class, Errno(errno)));
    }
    Ok(SendRight::from_name(PortName::new(port)))
}

/// What `node`'s translator says the node is stored on (`file_get_storage_info`), with the
/// ports it sent as owned send rights.
pub fn storage_info(node: &SendRight) -> Result<Encoding<SendRight>> {
    // Room for a device or a small composite, as libstore's `store_create` gives.
    let (mut ports_buf, mut ints_buf, mut offsets_buf, mut data_buf) = ([0u32; 10], [0 as c_int; 60], [0i64; 60], [0u8; 100]);
    let (mut ports, mut ints, mut offsets, mut data) =
        (ports_buf.as_mut_ptr(), ints_buf.as_mut_ptr(), offsets_buf.as_mut_ptr(), data_buf.as_mut_ptr());
    let (mut ports_len, mut ints_len, mut offsets_len, mut data_len) = (10u32, 60u32, 60u32, 100u32);
    // SAFETY: each array pointer names a buffer of the capacity passed beside it.
    let err = unsafe {
        file_get_storage_info(
            node.name().raw(),
            &mut ports,
            &mut ports_len,
            &mut ints,
            &mut ints_len,
            &mut offsets,
            &mut offsets_len,
            &mut data,
            &mut data_len,
        )
    };
    if err != 0 {
        return Err(Error::class("query", Errno(err)));
    }
    // SAFETY (each): the stub left the pointer at our buffer, filled to the length it returned,
    // or pointed it at memory it mapped for that many elements.
    let (ports, ints, offsets, data) = unsafe {
        (
            take(ports, ports_len, ports_buf.as_mut_ptr()),
            take(ints, ints_len, ints_buf.as_mut_ptr()),
            take(offsets, offsets_len, offsets_buf.as_mut_ptr()),
            take(data, data_len, data_buf.as_mut_ptr()),
        )
    };
    // Each port arrived as a send right of ours (the reply's COPY_SEND).
    let ports = ports.into_iter().map(|name| SendRight::from_name(PortName::new(name))).collect();
    Ok(Encoding { ports, ints, offsets, data })
}

/// Copies the `len` elements a MIG stub returned at `at`, unmapping them when the stub mapped
/// them rather than filling `buffer`.
///
/// # Safety
/// `at` is `buffer` holding `len` elements, or memory the stub mapped for `len` elements.
unsafe fn take<T: Copy>(at: *mut T, len: u32, buffer: *mut T) -> Vec<T> {
    let len = len as usize;
    // An empty array may come back as a null pointer, which no slice may have.
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: as the function's contract says.
    let elements = unsafe { core::slice::from_raw_parts(at, len) }.to_vec();
    if at != buffer {
        // SAFETY: the stub mapped this region for us and nothing else refers to it.
        unsafe { munmap(at.cast(), len * core::mem::size_of::<T>()) };
    }
    elements
}
