//! Constants and C types from gnumach's headers (bindgen at build time): `KERN_*`, `MACH_*`,
//! `MIG_*`, `D_*`, `DEV_*`, `TASK_*`, `VM_*`, and the target ABI's `i386_thread_state`.
#![allow(non_upper_case_globals, non_camel_case_types, dead_code, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/constants.rs"));

/// The header defines it as `sizeof (struct i386_thread_state) / sizeof (unsigned int)`,
/// which bindgen cannot evaluate: the same arithmetic on the bound struct.
pub const i386_THREAD_STATE_COUNT: u32 =
    (core::mem::size_of::<i386_thread_state>() / core::mem::size_of::<u32>()) as u32;
