//! The Hurd's errno values as they travel in a `RetCode` (glibc's `_HURD_ERRNO`): what the
//! translator's node and control port, the boot hand-off and the rump backend answer beside the
//! device interface's `D_*` codes ([`crate::device`]).

use mach::kern::Error;

/// glibc's `_HURD_ERRNO(n)`: the Hurd's errno `n` as it travels in a `RetCode`.
pub(crate) const fn hurd_errno(n: i32) -> Error {
    Error::from_const(0x4000_0000 | n)
}

/// Not permitted: `file_getcontrol` by an unprivileged user.
pub const EPERM: Error = hurd_errno(1);
/// An I/O error (NetBSD's disk drivers' failed transfer or flush; a root lookup answered with a
/// retry).
pub const EIO: Error = hurd_errno(5);
/// Permission denied: the caller may not open the node so.
pub const EACCES: Error = hurd_errno(13);
/// Devices or nodes are open and the goaway did not force; a flush mode that drops barriers
/// while a disk is open for writing.
pub const EBUSY: Error = hurd_errno(16);
/// A malformed option, or one that cannot change while running.
pub const EINVAL: Error = hurd_errno(22);
/// A request on a port that is no node port, a routine the node does not support, a lookup
/// retry that cannot be followed, a second `fsys_init`.
pub const EOPNOTSUPP: Error = hurd_errno(45);
/// Too many lookup retries: a loop of links or translators.
pub const ELOOP: Error = hurd_errno(62);
