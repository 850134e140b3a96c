//! The librump symbols (the Hurd's rump libraries), and [`LinkedRump`], the safe
//! [`RumpKernel`] over them. In host tests the symbols come from a recording stand-in.

use core::ffi::{c_int, c_ulong, c_void, CStr};

use super::RumpKernel;
use crate::device::{Error, D_IO_ERROR};

// On the Hurd these come from the rump libraries the package's build script links. The rump
// headers rename each `rump_sys_NAME` to `rump___sysimpl_NAME` (`RUMP_SYS_RENAME_*`), the
// names librump exports.
extern "C" {
    fn rump_init() -> c_int;
    fn rump___sysimpl_open(path: *const core::ffi::c_char, flags: c_int, ...) -> c_int;
    fn rump___sysimpl_pread(fd: c_int, buf: *mut c_void, len: usize, offset: i64) -> isize;
    fn rump___sysimpl_pwrite(fd: c_int, buf: *const c_void, len: usize, offset: i64) -> isize;
    fn rump___sysimpl_ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn rump___sysimpl_close(fd: c_int) -> c_int;
    /// glibc's per-thread `errno` (the Hurd's and Linux's alike).
    fn __errno_location() -> *mut c_int;
}

/// The Hurd's errno `n` as the integer glibc keeps in `errno`.
const fn hurd_errno(n: c_int) -> c_int {
    crate::errno::hurd_errno(n).code()
}

/// NetBSD's errno values past ENEEDAUTH (81) and the Hurd's for the same names (glibc's
/// `sysdeps/mach/hurd/bits/errno.h`), which diverge there: EIDRM .. EPROTO.
const NETBSD_82_TO_96: [(c_int, c_int); 14] = [
    (82, hurd_errno(108)), // EIDRM
    (83, hurd_errno(112)), // ENOMSG
    (84, hurd_errno(115)), // EOVERFLOW
    (85, hurd_errno(106)), // EILSEQ
    (86, hurd_errno(118)), // ENOTSUP
    (87, hurd_errno(119)), // ECANCELED
    (88, hurd_errno(107)), // EBADMSG
    (89, hurd_errno(110)), // ENODATA
    (90, hurd_errno(113)), // ENOSR
    (91, hurd_errno(114)), // ENOSTR
    (92, hurd_errno(117)), // ETIME
    (94, hurd_errno(109)), // EMULTIHOP
    (95, hurd_errno(111)), // ENOLINK
    (96, hurd_errno(116)), // EPROTO
];

/// What `rump_errno2host` (a `static inline` in `<rump/rumperrno2host.h>`, no library symbol)
/// does, for the Hurd: a NetBSD errno — what a failed rump call leaves in the host's `errno`,
/// and what `rump_init` returns — as the Hurd's. 1 to 81 are 4.4BSD's numbers on both; a number
/// the Hurd has no name for (ENOATTR, 93) or NetBSD does not define becomes EINVAL, as the
/// header's default.
pub fn netbsd_errno_to_hurd(netbsd: c_int) -> c_int {
    match netbsd {
        0 => 0,
        1..=81 => hurd_errno(netbsd),
        other => NETBSD_82_TO_96
            .iter()
            .find(|&&(n, _)| n == other)
            .map_or(hurd_errno(22), |&(_, hurd)| hurd),
    }
}

/// The rump kernel linked into this program.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkedRump;

/// The host errno of the failed rump call just made on this thread.
fn last_error() -> Error {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for the thread's life.
    let netbsd = unsafe { *__errno_location() };
    Error::new(netbsd_errno_to_hurd(netbsd)).unwrap_or(D_IO_ERROR)
}

fn check(result: c_int) -> Result<c_int, Error> {
    if result < 0 {
        Err(last_error())
    } else {
        Ok(result)
    }
}

fn check_size(result: isize) -> Result<usize, Error> {
    usize::try_from(result).map_err(|_| last_error())
}

impl RumpKernel for LinkedRump {
    fn init(&self) -> Result<(), Error> {
        // SAFETY: `rump_init` takes no arguments; the backend calls it once.
        match unsafe { rump_init() } {
            0 => Ok(()),
            code => Err(Error::new(netbsd_errno_to_hurd(code)).unwrap_or(D_IO_ERROR)),
        }
    }

    fn open(&self, path: &CStr, flags: c_int) -> Result<c_int, Error> {
        // SAFETY: `path` is NUL-terminated and outlives the call; no mode argument is read
        // without O_CREAT.
        check(unsafe { rump___sysimpl_open(path.as_ptr(), flags) })
    }

    fn pread(&self, fd: c_int, buf: &mut [u8], offset: i64) -> Result<usize, Error> {
        // SAFETY: the kernel writes at most `buf.len()` bytes into the exclusively borrowed buffer.
        check_size(unsafe { rump___sysimpl_pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) })
    }

    fn pwrite(&self, fd: c_int, data: &[u8], offset: i64) -> Result<usize, Error> {
        // SAFETY: the kernel reads at most `data.len()` bytes of the borrowed buffer.
        check_size(unsafe { rump___sysimpl_pwrite(fd, data.as_ptr().cast(), data.len(), offset) })
    }

    fn ioctl_read_u32(&self, fd: c_int, request: u32) -> Result<u32, Error> {
        let mut value: u32 = 0;
        // SAFETY: `request` encodes a 4-byte out argument; `value` is 4 writable bytes.
        check(unsafe { rump___sysimpl_ioctl(fd, c_ulong::from(request), &mut value as *mut u32) })?;
        Ok(value)
    }

    fn ioctl_read_i64(&self, fd: c_int, request: u32) -> Result<i64, Error> {
        let mut value: i64 = 0;
        // SAFETY: `request` encodes an 8-byte out argument; `value` is 8 writable bytes.
        check(unsafe { rump___sysimpl_ioctl(fd, c_ulong::from(request), &mut value as *mut i64) })?;
        Ok(value)
    }

    fn ioctl_write_i32(&self, fd: c_int, request: u32, value: i32) -> Result<(), Error> {
        let mut value = value;
        // SAFETY: `request` encodes a 4-byte in argument; `value` lives across the call.
        check(unsafe { rump___sysimpl_ioctl(fd, c_ulong::from(request), &mut value as *mut i32) })?;
        Ok(())
    }

    fn close(&self, fd: c_int) {
        // SAFETY: `fd` came from `rump_sys_open` and is closed once, by its owner's drop.
        // A close error leaves nothing to undo.
        unsafe { rump___sysimpl_close(fd) };
    }
}
