//! The freestanding task runtime (`target_os = "none"`): task start, thread stacks and the
//! per-thread block, the global allocator, the panic handler.

mod heap;
mod panic;
pub(crate) mod stack;
mod start;

pub use panic::report_panics_to;
