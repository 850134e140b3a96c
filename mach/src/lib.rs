//! no_std GNU Mach runtime: the only crate with inline assembly.
//!
//! `sys` is the trap layer and the one place that differs by target: inline-assembly
//! traps (freestanding `target_os = "none"`), glibc (`target_os = "hurd"`) or, on any other
//! host, a small simulated kernel used by the tests. Everything else is target-independent.
#![no_std]

extern crate alloc;
#[cfg(not(any(target_os = "none", target_os = "hurd")))]
extern crate std;

pub mod args;
pub mod constants;
pub mod interfaces;
pub mod console;
pub mod irq;
pub mod kern;
pub mod mig_rt;
pub mod msg;
pub mod ool;
pub mod port;
mod reply;
#[cfg(target_os = "none")]
mod rt;
#[cfg(target_os = "none")]
mod stack;
#[cfg(not(any(target_os = "none", target_os = "hurd")))]
pub mod sim;
pub mod sync;
pub mod sys;
mod task;
#[cfg(not(target_os = "hurd"))]
pub mod thread;
pub mod times;
pub mod vm;
pub mod wire;

pub use reply::reply_port;
#[cfg(target_os = "none")]
pub use rt::report_panics_to;
