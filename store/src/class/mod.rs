//! The store classes: leaves that hold or reach data (`device`, `file`, `memory`, `zero`) and composites
//! that arrange other stores (`remap`, `concat`, `ileave`, `mvol`).

pub mod device;
pub mod file;
pub mod memory;
pub mod mvol;
pub mod remap;
pub mod stripe;
pub mod zero;

use crate::store::Store;

/// Byte offset of block `addr` in a class whose blocks are `block_size` bytes, if it fits.
fn byte_offset(addr: u64, block_size: u32) -> Option<usize> {
    addr.checked_mul(u64::from(block_size)).and_then(|offset| usize::try_from(offset).ok())
}

/// How many of `store`'s blocks make one block of `common` bytes (children of a composite may
/// have smaller blocks than the composite).
fn blocks_per(common: u32, store: &Store) -> u64 {
    u64::from(common / store.block_size())
}
