//! The storage-info encoding: how `file_get_storage_info` describes a store in four arrays —
//! ports, ints, offsets (`loff_t`, 64-bit) and data bytes — as libstore's `store_encode` writes
//! them and `store_decode` reads them (the table in the Hurd's `hurd/hurd_types.h`).
//!
//! Every store appends to the four arrays in turn, a composite's children after it, in order; its
//! first int is its class id. Per class (TY type, FL flags, BS block size, NR runs, NL name length
//! with its NUL, ML misc length, NC children, IL interleave in bytes, SIZE in bytes):
//!
//! | class | ports | ints | offsets | data |
//! |---|---|---|---|---|
//! | device, file | the port | TY FL BS NR NL ML | NR × (start, length) | name, NUL, misc |
//! | zero | | TY FL | SIZE | |
//! | remap (and `part`) | | TY FL NR | NR × (start, length) | |
//! | concat | | TY FL NC | | |
//! | ileave | | TY FL IL NC | | |
//!
//! Runs are in the store's blocks; a hole's start is -1. `memory` (this task's memory, no port to
//! hand out) and `mvol` (no encoding upstream) cannot be encoded: `EOPNOTSUPP`.

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::Run;

/// `enum file_storage_class` in `hurd/hurd_types.h`.
pub const STORAGE_OTHER: i32 = 0;
pub const STORAGE_DEVICE: i32 = 1;
pub const STORAGE_HURD_FILE: i32 = 2;
pub const STORAGE_NETWORK: i32 = 3;
pub const STORAGE_MEMORY: i32 = 4;
pub const STORAGE_TASK: i32 = 5;
pub const STORAGE_ZERO: i32 = 6;
pub const STORAGE_CONCAT: i32 = 7;
pub const STORAGE_INTERLEAVE: i32 = 8;
pub const STORAGE_LAYER: i32 = 9;
pub const STORAGE_REMAP: i32 = 10;
pub const STORAGE_COPY: i32 = 11;

/// The four arrays of a `file_get_storage_info` reply. `P` is a port: a name borrowed from the
/// store when encoding (`u32`), a received right when decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoding<P> {
    pub ports: Vec<P>,
    pub ints: Vec<i32>,
    pub offsets: Vec<i64>,
    pub data: Vec<u8>,
}

/// A value the wire's `int` cannot hold.
fn too_big(class: &'static str) -> Error {
    Error::class(class, Errno::EINVAL)
}

impl Encoding<u32> {
    /// An int field of class `class`.
    pub(crate) fn int(&mut self, class: &'static str, value: u64) -> Result<()> {
        self.ints.push(i32::try_from(value).map_err(|_| too_big(class))?);
        Ok(())
    }

    /// Runs as (start, length) offset pairs, -1 starting a hole.
    pub(crate) fn runs(&mut self, class: &'static str, runs: &[Run]) -> Result<()> {
        for run in runs {
            let start = run.start.map_or(Ok(-1), i64::try_from).map_err(|_| too_big(class))?;
            let length = i64::try_from(run.length).map_err(|_| too_big(class))?;
            self.offsets.extend([start, length]);
        }
        Ok(())
    }
}
