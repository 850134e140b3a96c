//! rumpdisk: GNU Mach's device interface for disks, over a driver backend, with
//! `DEV_FLUSH_CACHE` as a physical write barrier.
//!
//! - [`server`]: the protocol core (open table, modes, bounds, status flavors);
//! - [`flush`]: the flush merger behind `DEV_FLUSH_CACHE`;
//! - [`backend`]: the operations table and the drivers (`memory`, `ata`, `rump`);
//! - [`translator`]: the translator-node role (`fsys_startup`, `fsys_getroot`, `fsys_goaway`);
//! - [`boot`]: the boot server role (`fsys_getpriv`, `fsys_startup`, `fsys_init`, then
//!   `/dev/rumpdisk`, the startup server and its shutdown notice).
#![no_std]
#![cfg_attr(test, feature(c_variadic))]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod backend;
pub mod boot;
pub mod device;
pub mod device_server;
pub mod errno;
pub mod flush;
pub mod hurd_fs;
pub mod node;
pub mod options;
pub mod server;
pub mod settings;
pub mod translator;
