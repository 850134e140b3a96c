//! A recording stand-in for the librump symbols (no librump exists on the build host): it
//! defines `rump_init` and the `rump___sysimpl_*` system calls for the test binary, records every
//! call on the calling thread, and serves a scripted raw device.

use core::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::cell::RefCell;
use std::string::String;
use std::vec::Vec;

use super::{DIOCCACHESYNC, DIOCGMEDIASIZE, DIOCGSECTORSIZE};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Init,
    Open { path: String, flags: i32 },
    Pread { fd: i32, len: usize, offset: i64 },
    Pwrite { fd: i32, len: usize, offset: i64 },
    /// `argument`: the int an in-ioctl passed, `None` for out-ioctls.
    Ioctl { fd: i32, request: u64, argument: Option<i32> },
    Close { fd: i32 },
    /// A bounce buffer from [`RecordedBounce`].
    Bounce { len: usize },
}

/// Bounce buffers of fresh memory, each recorded as a call.
pub struct RecordedBounce;

impl super::dma::BounceMemory for RecordedBounce {
    fn allocate(&self, len: usize) -> Result<mach::ool::OolMemory, crate::device::Error> {
        record(Call::Bounce { len });
        mach::ool::OolMemory::new(len).map_err(|_| crate::device::D_NO_MEMORY)
    }
}

/// Which calls fail, and the NetBSD errno they leave.
pub type Failure = (fn(&Call) -> bool, c_int);

/// What the stand-in's device does.
pub struct Script {
    pub sector_size: u32,
    pub media_size: i64,
    pub data: Vec<u8>,
    /// The calls that fail, and how.
    pub fail: Option<Failure>,
    /// Largest transfer one pread/pwrite does (raw devices may return short counts).
    pub max_transfer: usize,
}

impl Default for Script {
    fn default() -> Self {
        Script { sector_size: 512, media_size: 64 * 512, data: std::vec![0; 64 * 512], fail: None, max_transfer: usize::MAX }
    }
}

std::thread_local! {
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
    static SCRIPT: RefCell<Script> = RefCell::new(Script::default());
}

/// Starts a test: this thread's log emptied, its device set to `script`.
pub fn reset(script: Script) {
    CALLS.with(|calls| calls.borrow_mut().clear());
    SCRIPT.with(|s| *s.borrow_mut() = script);
}

pub fn calls() -> Vec<Call> {
    CALLS.with(|calls| calls.borrow().clone())
}

pub fn data() -> Vec<u8> {
    SCRIPT.with(|s| s.borrow().data.clone())
}

const FD: c_int = 7;

extern "C" {
    fn __errno_location() -> *mut c_int;
}

/// Records `call`; if the script fails it, sets errno and returns `false`.
fn record(call: Call) -> bool {
    let failure = SCRIPT.with(|s| s.borrow().fail.filter(|(failing, _)| failing(&call)).map(|(_, errno)| errno));
    CALLS.with(|calls| calls.borrow_mut().push(call));
    match failure {
        Some(errno) => {
            // SAFETY: this thread's errno slot.
            unsafe { *__errno_location() = errno };
            false
        }
        None => true,
    }
}

#[no_mangle]
extern "C" fn rump_init() -> c_int {
    if record(Call::Init) {
        0
    } else {
        5
    }
}

#[no_mangle]
unsafe extern "C" fn rump___sysimpl_open(path: *const c_char, flags: c_int, _: ...) -> c_int {
    // SAFETY: the caller passes a NUL-terminated path.
    let path = unsafe { CStr::from_ptr(path) }.to_string_lossy().into_owned();
    if record(Call::Open { path, flags }) {
        FD
    } else {
        -1
    }
}

fn transfer(len: usize, offset: i64, copy: impl FnOnce(&mut Vec<u8>, core::ops::Range<usize>)) -> isize {
    SCRIPT.with(|s| {
        let mut script = s.borrow_mut();
        let start = (offset as usize).min(script.data.len());
        let end = (start + len.min(script.max_transfer)).min(script.data.len());
        copy(&mut script.data, start..end);
        (end - start) as isize
    })
}

#[no_mangle]
unsafe extern "C" fn rump___sysimpl_pread(fd: c_int, buf: *mut c_void, len: usize, offset: i64) -> isize {
    if !record(Call::Pread { fd, len, offset }) {
        return -1;
    }
    transfer(len, offset, |data, range| {
        // SAFETY: the caller's buffer holds `len` ≥ range.len() writable bytes.
        unsafe { core::ptr::copy_nonoverlapping(data[range.clone()].as_ptr(), buf.cast(), range.len()) }
    })
}

#[no_mangle]
unsafe extern "C" fn rump___sysimpl_pwrite(fd: c_int, buf: *const c_void, len: usize, offset: i64) -> isize {
    if !record(Call::Pwrite { fd, len, offset }) {
        return -1;
    }
    transfer(len, offset, |data, range| {
        // SAFETY: the caller's buffer holds `len` ≥ range.len() readable bytes.
        unsafe { core::ptr::copy_nonoverlapping(buf.cast(), data[range.clone()].as_mut_ptr(), range.len()) }
    })
}

#[no_mangle]
unsafe extern "C" fn rump___sysimpl_ioctl(fd: c_int, request: c_ulong, mut args: ...) -> c_int {
    #[allow(clippy::useless_conversion)] // `c_ulong` is 32-bit on 32-bit hosts
    let request = u64::from(request);
    let (sector_size, media_size) = SCRIPT.with(|s| (s.borrow().sector_size, s.borrow().media_size));
    // SAFETY (each arm): the one variadic argument points at the object type the request encodes.
    let (argument, answer): (Option<i32>, Option<&dyn Fn()>) = match request {
        r if r == u64::from(DIOCCACHESYNC) => (Some(unsafe { *args.next_arg::<*mut i32>() }), None),
        r if r == u64::from(DIOCGSECTORSIZE) => {
            let out = unsafe { args.next_arg::<*mut u32>() };
            (None, Some(&move || unsafe { *out = sector_size }))
        }
        r if r == u64::from(DIOCGMEDIASIZE) => {
            let out = unsafe { args.next_arg::<*mut i64>() };
            (None, Some(&move || unsafe { *out = media_size }))
        }
        _ => (None, None),
    };
    if !record(Call::Ioctl { fd, request, argument }) {
        return -1;
    }
    if let Some(answer) = answer {
        answer();
    }
    0
}

#[no_mangle]
extern "C" fn rump___sysimpl_close(fd: c_int) -> c_int {
    record(Call::Close { fd });
    0
}

