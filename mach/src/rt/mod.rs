//! The freestanding task runtime (`target_os = "none"`): task start, the guard page of each
//! thread's stack, the global allocator, the panic handler.

mod heap;
mod panic;
mod start;

pub use panic::report_panics_to;

use crate::kern::Result;
use crate::port::PortName;
use crate::stack::BLOCK_PAGE;
use crate::sys;

/// `mach/vm_prot.h` (defined with a cast bindgen cannot evaluate).
const VM_PROT_NONE: i32 = 0;

/// Make the page above the thread block of the stack at `base` inaccessible, so an overflow
/// faults instead of overwriting the block or the memory below. An RPC: the caller must run on a
/// runtime stack.
pub(crate) fn guard_stack(base: usize) -> Result<()> {
    let task = PortName::new(sys::mach_task_self());
    // `as _`: the ABI's vm_address_t and vm_size_t, as wide as usize.
    crate::interfaces::mach::vm_protect(task, (base + BLOCK_PAGE) as _, BLOCK_PAGE as _, false, VM_PROT_NONE)
}
