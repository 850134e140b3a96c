//! Rust libstore: the GNU Hurd's storage abstraction, with a `sync` that carries the disk write
//! barrier (`DEV_FLUSH_CACHE`) through every class.
//!
//! A [`Store`] maps block addresses through runs onto a [`Class`]; leaves reach data
//! (`device`, `file`, `memory`, `zero`), composites arrange other stores (`remap` — and [`part`],
//! a partition found in an MBR or GPT — `concat`, `ileave`, `mvol`). [`query`] opens a file
//! system node the libstore way, decoding its `file_get_storage_info` answer ([`encoding`]). Errors are the Hurd's errno values ([`errno`]) with the class,
//! the failing children and the device's own return code ([`Error`]).
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod class;
pub mod decode;
pub mod encoding;
pub mod errno;
pub mod error;
#[cfg(all(target_os = "hurd", feature = "mach"))]
pub mod hurd;
#[cfg(feature = "mach")]
pub mod mach_device;
pub mod name;
pub mod open;
pub mod part;
pub mod query;
pub mod runs;
pub mod store;
#[cfg(test)]
mod testing;

pub use errno::{DeviceCode, Errno};
pub use error::{ChildFailure, Error, Result};
pub use open::{open, Opener};
pub use runs::Run;
pub use store::{Class, Flags, Store};
