//! The device interface's vocabulary as the server sees it: return codes, open modes and
//! status flavors (values from GNU Mach's `device/device_types.h`, hurd-facts §2).

/// A non-zero return code: a `D_*` code, or a host errno a backend passes through the same
/// `RetCode` slot (as the Hurd's servers do).
pub use mach::kern::Error;

pub const D_IO_ERROR: Error = Error::from_const(2500);
pub const D_WOULD_BLOCK: Error = Error::from_const(2501);
pub const D_NO_SUCH_DEVICE: Error = Error::from_const(2502);
pub const D_ALREADY_OPEN: Error = Error::from_const(2503);
pub const D_DEVICE_DOWN: Error = Error::from_const(2504);
pub const D_INVALID_OPERATION: Error = Error::from_const(2505);
pub const D_INVALID_RECNUM: Error = Error::from_const(2506);
pub const D_INVALID_SIZE: Error = Error::from_const(2507);
pub const D_NO_MEMORY: Error = Error::from_const(2508);
pub const D_READ_ONLY: Error = Error::from_const(2509);

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
    fn access_ignores_the_non_access_bits() {
        let rw = Access::from_mode(mode::READ | mode::WRITE | mode::NOWAIT);
        assert_eq!(rw, Access { read: true, write: true });
        assert_eq!(Access::from_mode(mode::NODELAY), Access { read: false, write: false });
    }
}
