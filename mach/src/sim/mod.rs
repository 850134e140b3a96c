//! A **simulated** GNU Mach kernel, for host tests only.
//!
//! It models what the runtime, the generated stubs and the servers rely on: one port name space
//! per simulated task, send / send-once / receive rights and port sets with user references,
//! message queues, right transfer in headers and bodies (copy, move, make), out-of-line memory
//! copied into a fresh region of the receiver (and deallocated from the sender when asked),
//! receive with timeout and `MACH_RCV_LARGE`, send-once notifications for rights destroyed
//! unused, no-senders notifications, and leak accounting. It is not GNU Mach: queues are unbounded
//! (a send never blocks), `vm_deallocate` takes whole regions only, out-of-line port arrays are
//! refused, there are no thread ports, and the message layout is the 64-bit one.
//!
//! Kernel calls without a trap (`mach_port_mod_refs`, `mach_port_names`, `vm_allocate`, ...)
//! are messages to the task port, which a kernel task receives; the sending thread serves each
//! as that task right after sending it (as GNU Mach does), through the generated `mach_port` and
//! `mach` server demuxes; routines it does not implement answer `MIG_BAD_ID`.
//!
//! Each OS thread belongs to one simulated task: a thread starts in a task of its own (created on
//! first use); [`Task::spawn`] starts a thread in a given task, as `thread_create` would.

pub mod irq;
mod kernel;
mod kernel_calls;
mod layout;
pub mod traps;

pub use kernel::{Stats, Task};
