//! File name lookup from a root directory, for a task without glibc's `file_name_lookup`
//! (`rumpdisk.static`, and the Hurd build before it has a root of its own): `dir_lookup`,
//! following the retries a filesystem answers with — a translator or a mount point on the way
//! (`FS_RETRY_NORMAL` with the rest of the name) and absolute symbolic links
//! (`FS_RETRY_MAGICAL` with a name starting `/`, looked up again from the root).

use alloc::vec::Vec;
use mach::interfaces::fs;
use mach::kern::Result;
use mach::port::{PortName, SendRight};

use crate::errno::{ELOOP, EOPNOTSUPP};
use crate::hurd_fs::{FS_RETRY_MAGICAL, FS_RETRY_NORMAL};

/// Retries followed before giving up with [`ELOOP`] (glibc allows as many links).
const MAX_RETRIES: usize = 32;

/// Looks `path` up from `root` (a leading `/` means `root` too), opening the result with
/// `flags` (`O_*`; `0` opens it for nothing but RPCs).
pub fn lookup(root: PortName, path: &[u8], flags: i32) -> Result<SendRight> {
    // `None`: from the root.
    let mut directory: Option<SendRight> = None;
    let mut name: Vec<u8> = without_leading_slashes(path).to_vec();
    for _ in 0..MAX_RETRIES {
        let start = directory.as_ref().map_or(root, SendRight::name);
        let (retry, retry_name, result) = fs::dir_lookup(start, &name, flags, 0)?;
        let retry_name = retry_name.as_slice();
        match retry {
            FS_RETRY_NORMAL if retry_name.is_empty() => return Ok(result),
            FS_RETRY_NORMAL => directory = Some(result),
            FS_RETRY_MAGICAL if retry_name.starts_with(b"/") => directory = None,
            _ => return Err(EOPNOTSUPP),
        }
        name = without_leading_slashes(retry_name).to_vec();
    }
    Err(ELOOP)
}

fn without_leading_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&byte| byte != b'/').unwrap_or(path.len());
    &path[start..]
}

#[cfg(test)]
mod tests;
