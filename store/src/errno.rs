//! Error numbers as the Hurd defines them, and the mapping from device return codes.
//!
//! The Hurd numbers errno values `0x4000_0000 | n` (glibc's `_HURD_ERRNO`), with BSD's `n`
//! (so `EAGAIN` is 35 and `EOPNOTSUPP` 45, unlike Linux). A Hurd server sends these values in the
//! same `RetCode` slot as Mach's `D_*` device codes, so the constants here are the Hurd's on
//! **every** build, the host included: they are values on the wire, not the host's errno.
//! Mach and MIG return codes are errno values on the Hurd too (glibc names them `EMACH_*`,
//! `EMIG_*`), so an unknown code passes through unchanged.

use core::fmt;

/// An errno value in the Hurd's numbering (or a Mach/MIG code passed through).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// glibc's `_HURD_ERRNO`: the Hurd's errno values live in error subsystem 0x10.
const fn hurd(n: i32) -> Errno {
    Errno(0x4000_0000 | n)
}

impl Errno {
    pub const EPERM: Errno = hurd(1);
    pub const ENOENT: Errno = hurd(2);
    pub const EIO: Errno = hurd(5);
    pub const ENXIO: Errno = hurd(6);
    pub const EBADF: Errno = hurd(9);
    pub const ENOMEM: Errno = hurd(12);
    pub const EACCES: Errno = hurd(13);
    pub const EBUSY: Errno = hurd(16);
    pub const ENODEV: Errno = hurd(19);
    pub const EINVAL: Errno = hurd(22);
    pub const EFBIG: Errno = hurd(27);
    pub const ENOSPC: Errno = hurd(28);
    pub const EROFS: Errno = hurd(30);
    pub const EAGAIN: Errno = hurd(35);
    pub const EOPNOTSUPP: Errno = hurd(45);

    const NAMED: [(Errno, &'static str, &'static str); 15] = [
        (Errno::EPERM, "EPERM", "operation not permitted"),
        (Errno::ENOENT, "ENOENT", "no such file or directory"),
        (Errno::EIO, "EIO", "input/output error"),
        (Errno::ENXIO, "ENXIO", "no such device or address"),
        (Errno::EBADF, "EBADF", "bad file descriptor"),
        (Errno::ENOMEM, "ENOMEM", "cannot allocate memory"),
        (Errno::EACCES, "EACCES", "permission denied"),
        (Errno::EBUSY, "EBUSY", "device or resource busy"),
        (Errno::ENODEV, "ENODEV", "no such device"),
        (Errno::EINVAL, "EINVAL", "invalid argument"),
        (Errno::EFBIG, "EFBIG", "file too large"),
        (Errno::ENOSPC, "ENOSPC", "no space left on device"),
        (Errno::EROFS, "EROFS", "read-only file system"),
        (Errno::EAGAIN, "EAGAIN", "resource temporarily unavailable"),
        (Errno::EOPNOTSUPP, "EOPNOTSUPP", "operation not supported"),
    ];

    /// The symbolic name (`"EIO"`), if this is one of the values above.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(e, _, _)| *e == self).map(|(_, name, _)| *name)
    }

    fn description(self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(e, _, _)| *e == self).map(|(_, _, text)| *text)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.description()) {
            (Some(name), Some(text)) => write!(f, "{name} ({text})"),
            _ => match DeviceCode::name_of(self.0) {
                Some(name) => write!(f, "{name}"),
                // MIG's codes are small negatives; Mach's and the Hurd's read best in hex.
                None if self.0 < 0 => write!(f, "error {}", self.0),
                None => write!(f, "error {:#x}", self.0),
            },
        }
    }
}

/// A return code from GNU Mach's device interface (`device/device_types.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceCode(pub i32);

impl DeviceCode {
    pub const IO_ERROR: DeviceCode = DeviceCode(2500);
    pub const WOULD_BLOCK: DeviceCode = DeviceCode(2501);
    pub const NO_SUCH_DEVICE: DeviceCode = DeviceCode(2502);
    pub const ALREADY_OPEN: DeviceCode = DeviceCode(2503);
    pub const DEVICE_DOWN: DeviceCode = DeviceCode(2504);
    pub const INVALID_OPERATION: DeviceCode = DeviceCode(2505);
    pub const INVALID_RECNUM: DeviceCode = DeviceCode(2506);
    pub const INVALID_SIZE: DeviceCode = DeviceCode(2507);
    pub const NO_MEMORY: DeviceCode = DeviceCode(2508);
    pub const READ_ONLY: DeviceCode = DeviceCode(2509);

    const NAMES: [&'static str; 10] = [
        "D_IO_ERROR",
        "D_WOULD_BLOCK",
        "D_NO_SUCH_DEVICE",
        "D_ALREADY_OPEN",
        "D_DEVICE_DOWN",
        "D_INVALID_OPERATION",
        "D_INVALID_RECNUM",
        "D_INVALID_SIZE",
        "D_NO_MEMORY",
        "D_READ_ONLY",
    ];

    /// The `D_*` name of a raw return code, if it is one.
    pub fn name_of(code: i32) -> Option<&'static str> {
        usize::try_from(code - Self::IO_ERROR.0).ok().and_then(|i| Self::NAMES.get(i)).copied()
    }
}

impl fmt::Display for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::name_of(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "return code {:#x}", self.0),
        }
    }
}

/// What the device was asked to do: `D_INVALID_OPERATION` means different things to a caller
/// of read/write (the port does not allow it) and of sync (the server does not know the flavor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp {
    Open,
    ReadWrite,
    Status,
    Sync,
}

/// The errno a caller sees for a non-zero device return code (libstore's `dev_error`, completed:
/// upstream leaves `D_INVALID_RECNUM`, `D_INVALID_SIZE` and `D_READ_ONLY` raw, and its sync
/// returns every code raw).
pub fn errno_of_device_code(code: i32, op: DeviceOp) -> Errno {
    match DeviceCode(code) {
        DeviceCode::IO_ERROR => Errno::EIO,
        DeviceCode::WOULD_BLOCK => Errno::EAGAIN,
        DeviceCode::NO_SUCH_DEVICE | DeviceCode::DEVICE_DOWN => Errno::ENXIO,
        DeviceCode::ALREADY_OPEN => Errno::EBUSY,
        DeviceCode::INVALID_OPERATION if op == DeviceOp::Sync => Errno::EOPNOTSUPP,
        DeviceCode::INVALID_OPERATION => Errno::EBADF,
        DeviceCode::INVALID_RECNUM | DeviceCode::INVALID_SIZE => Errno::EINVAL,
        DeviceCode::NO_MEMORY => Errno::ENOMEM,
        DeviceCode::READ_ONLY => Errno::EROFS,
        // errno values sent by Hurd servers, and Mach/MIG codes, are errno values already.
        _ => Errno(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hurd_numbering_not_linux() {
        assert_eq!(Errno::EIO.0, 0x4000_0005);
        assert_eq!(Errno::EAGAIN.0, 0x4000_0023);
        assert_eq!(Errno::EOPNOTSUPP.0, 0x4000_002d);
        assert_eq!(Errno::EROFS.0, 0x4000_001e);
    }

    #[test]
    fn every_device_code_maps_to_an_errno() {
        let rw = |c: DeviceCode| errno_of_device_code(c.0, DeviceOp::ReadWrite);
        assert_eq!(rw(DeviceCode::IO_ERROR), Errno::EIO);
        assert_eq!(rw(DeviceCode::WOULD_BLOCK), Errno::EAGAIN);
        assert_eq!(rw(DeviceCode::NO_SUCH_DEVICE), Errno::ENXIO);
        assert_eq!(rw(DeviceCode::ALREADY_OPEN), Errno::EBUSY);
        assert_eq!(rw(DeviceCode::DEVICE_DOWN), Errno::ENXIO);
        assert_eq!(rw(DeviceCode::INVALID_OPERATION), Errno::EBADF);
        assert_eq!(rw(DeviceCode::INVALID_RECNUM), Errno::EINVAL);
        assert_eq!(rw(DeviceCode::INVALID_SIZE), Errno::EINVAL);
        assert_eq!(rw(DeviceCode::NO_MEMORY), Errno::ENOMEM);
        assert_eq!(rw(DeviceCode::READ_ONLY), Errno::EROFS);
        for code in 2500..=2509 {
            let errno = errno_of_device_code(code, DeviceOp::Sync);
            assert_ne!(errno.0, code, "{code} left raw");
            assert!(errno.name().is_some());
        }
    }

    #[test]
    fn sync_unknown_flavor_is_eopnotsupp_and_errno_passes_through() {
        let sync = |c| errno_of_device_code(c, DeviceOp::Sync);
        assert_eq!(sync(DeviceCode::INVALID_OPERATION.0), Errno::EOPNOTSUPP);
        assert_eq!(sync(DeviceCode::IO_ERROR.0), Errno::EIO);
        assert_eq!(sync(Errno::EIO.0), Errno::EIO);
        assert_eq!(sync(-308), Errno(-308), "MIG_SERVER_DIED passes through");
    }

    #[test]
    fn display_names() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(Errno::EIO.to_string(), "EIO (input/output error)");
        assert_eq!(Errno(2505).to_string(), "D_INVALID_OPERATION");
        assert_eq!(DeviceCode(2509).to_string(), "D_READ_ONLY");
        assert_eq!(Errno(-308).to_string(), "error -308");
        assert_eq!(Errno(0x1000_0003).to_string(), "error 0x10000003");
    }
}
