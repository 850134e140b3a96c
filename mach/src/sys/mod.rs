//! The trap layer: the only code that differs by target.
//!
//! Every backend offers the same functions over raw names (`u32`) and raw `kern_return_t`s
//! (`i32`); the layers above wrap them in owned types and `kern::Result`.
//!
//! - `target_os = "none"` (x86_64, i686): GNU Mach traps (inline assembly: `syscall`, the i386
//!   call gate).
//! - `target_os = "hurd"`: glibc's `mach_msg` and friends (x86_64 and i686).
//! - anything else: calls into [`crate::sim`], a simulated kernel in `std` for host tests. It
//!   stands for GNU Mach, and is built from the runtime above this layer (the generated
//!   demuxes, the message parser): the one use of a module above by one below, on the host only.

#[cfg(target_os = "none")]
mod trap;
#[cfg(target_os = "none")]
pub use trap::*;

#[cfg(target_os = "hurd")]
mod glibc;
#[cfg(target_os = "hurd")]
pub use glibc::*;

#[cfg(not(any(target_os = "none", target_os = "hurd")))]
pub use crate::sim::traps::*;

/// `mach_msg` option bits (`mach/message.h`).
pub use crate::constants::{MACH_RCV_LARGE, MACH_RCV_MSG, MACH_RCV_TIMEOUT, MACH_SEND_MSG, MACH_SEND_TIMEOUT};

/// Port right kinds for `port_allocate` (`mach/port.h` defines them with casts bindgen cannot
/// evaluate).
pub const MACH_PORT_RIGHT_SEND: u32 = 0;
pub const MACH_PORT_RIGHT_RECEIVE: u32 = 1;
pub const MACH_PORT_RIGHT_SEND_ONCE: u32 = 2;
pub const MACH_PORT_RIGHT_PORT_SET: u32 = 3;
pub const MACH_PORT_RIGHT_DEAD_NAME: u32 = 4;
