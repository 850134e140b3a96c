//! The device interface's vocabulary as the server sees it: return codes, open modes and
//! status flavors (values from GNU Mach's `device/device_types.h`, hurd-facts §2).

use core::fmt;
use core::num::NonZeroI32;

/// A device-interface return code that is not success: a `D_*` code, or a host errno that a
/// backend passes through the same `RetCode` slot (as the Hurd's servers do).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error(NonZeroI32);

impl Error {
    pub const IO_ERROR: Error = Error::known(2500);
    pub const WOULD_BLOCK: Error = Error::known(2501);
    pub const NO_SUCH_DEVICE: Error = Error::known(2502);
    pub const ALREADY_OPEN: Error = Error::known(2503);
    pub const DEVICE_DOWN: Error = Error::known(2504);
    pub const INVALID_OPERATION: Error = Error::known(2505);
    pub const INVALID_RECNUM: Error = Error::known(2506);
    pub const INVALID_SIZE: Error = Error::known(2507);
    pub const NO_MEMORY: Error = Error::known(2508);
    pub const READ_ONLY: Error = Error::known(2509);

    const fn known(code: i32) -> Error {
        match NonZeroI32::new(code) {
            Some(code) => Error(code),
            None => panic!("a return code of 0 is success, not an error"),
        }
    }

    /// The error for a return code, `None` for `D_SUCCESS` (0).
    pub fn from_code(code: i32) -> Option<Error> {
        NonZeroI32::new(code).map(Error)
    }

    pub fn code(self) -> i32 {
        self.0.get()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.code() {
            2500 => "D_IO_ERROR",
            2501 => "D_WOULD_BLOCK",
            2502 => "D_NO_SUCH_DEVICE",
            2503 => "D_ALREADY_OPEN",
            2504 => "D_DEVICE_DOWN",
            2505 => "D_INVALID_OPERATION",
            2506 => "D_INVALID_RECNUM",
            2507 => "D_INVALID_SIZE",
            2508 => "D_NO_MEMORY",
            2509 => "D_READ_ONLY",
            code => return write!(f, "Error({code})"),
        };
        f.write_str(name)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `dev_mode_t` bits of `device_open`.
pub mod mode {
    pub const READ: u32 = 1;
    pub const WRITE: u32 = 2;
    pub const NODELAY: u32 = 4;
    pub const NOWAIT: u32 = 8;
}

/// `device_get_status` / `device_set_status` flavors the server knows.
pub mod flavor {
    /// `[size in bytes, record size]`.
    pub const DEV_GET_SIZE: u32 = 0;
    /// `[size in records, record size]`.
    pub const DEV_GET_RECORDS: u32 = 1;
    /// Write the device's volatile cache to stable storage (sent with an empty status array).
    pub const DEV_FLUSH_CACHE: u32 = 2;
    /// Linux's "re-read the partition table"; partitions are libstore's business, so it succeeds.
    pub const BLKRRPART: u32 = 0x125F;
}

/// What an open grants: the read/write bits of the mode; the other bits do not change access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

impl Access {
    pub fn from_mode(mode: u32) -> Access {
        Access { read: mode & mode::READ != 0, write: mode & mode::WRITE != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_name_themselves() {
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(2505), Some(Error::INVALID_OPERATION));
        assert_eq!(alloc::format!("{:?}", Error::IO_ERROR), "D_IO_ERROR");
        assert_eq!(alloc::format!("{:?}", Error::from_code(5).unwrap()), "Error(5)");
    }

    #[test]
    fn access_ignores_the_non_access_bits() {
        let rw = Access::from_mode(mode::READ | mode::WRITE | mode::NOWAIT);
        assert_eq!(rw, Access { read: true, write: true });
        assert_eq!(Access::from_mode(mode::NODELAY), Access { read: false, write: false });
    }
}
