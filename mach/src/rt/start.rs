//! Task start: `_start` takes the boot-module stack (argc, argv..., NULL, envp..., NULL, in
//! words of the pointer's size: GNU Mach's `kern/bootstrap.c` lays it out the same way on i386
//! and x86_64, the stack pointer at argc), moves to a runtime stack, and calls the task's main
//! (declared with [`crate::task_main!`]).

use crate::stack;
use crate::args::{Args, Vectors};
use alloc::vec::Vec;

extern "Rust" {
    /// Defined by `task_main!` in the task's binary.
    fn __mach_task_main(args: Args<'static>) -> i32;
}

/// Declare the task's entry: `fn(Args<'static>) -> i32`. Returning ends the task.
#[macro_export]
macro_rules! task_main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __mach_task_main(args: $crate::args::Args<'static>) -> i32 {
            $main(args)
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    // r12 (callee-saved) keeps the boot stack pointer across the call that makes a new stack.
    core::arch::naked_asm!(
        "mov r12, rsp",
        "and rsp, -16",
        "call {new_stack}",
        "mov rsp, rax",
        "mov rdi, r12",
        "call {enter}",
        "ud2",
        new_stack = sym new_stack,
        enter = sym enter,
    );
}

#[cfg(target_arch = "x86")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    // edi (callee-saved) keeps the boot stack pointer across the call that makes a new stack;
    // `enter` takes it on the stack (cdecl), which is 16-aligned at the call as the ABI wants.
    core::arch::naked_asm!(
        "mov edi, esp",
        "and esp, -16",
        "call {new_stack}",
        "mov esp, eax",
        "sub esp, 12",
        "push edi",
        "call {enter}",
        "ud2",
        new_stack = sym new_stack,
        enter = sym enter,
    );
}

/// Allocate the first thread's stack; returns its top. Runs on the boot stack.
extern "C" fn new_stack() -> usize {
    match stack::allocate() {
        Ok(base) => stack::top(base),
        Err(_) => end_task(),
    }
}

/// The first Rust code on the runtime stack.
extern "C" fn enter(boot_stack: *const usize) -> ! {
    if super::guard_stack(stack::current_base()).is_err() {
        end_task();
    }
    // SAFETY: the kernel laid out argc, then argc argument pointers to NUL-terminated
    // strings, at the boot stack pointer; that memory stays mapped for the task's life.
    let (words, vectors) = unsafe { boot_words(boot_stack) };
    // SAFETY: `__mach_task_main` is the safe Rust function `task_main!` defines.
    let status = unsafe { __mach_task_main(Args::with_vectors(words, vectors)) };
    if status != 0 {
        log::error!("task main returned {status}");
    }
    end_task()
}

/// The arguments, and where their vector and the environment's (after argv's null) are.
///
/// # Safety
/// `boot_stack` must point at a valid argc/argv block (see `enter`).
unsafe fn boot_words(boot_stack: *const usize) -> (Vec<&'static [u8]>, Vectors) {
    // SAFETY: per the caller's guarantee.
    unsafe {
        let argc = *boot_stack;
        let argv = boot_stack.add(1) as *const *const core::ffi::c_char;
        let words = (0..argc).map(|i| core::ffi::CStr::from_ptr(*argv.add(i)).to_bytes()).collect();
        (words, Vectors { argv: argv as usize, envp: argv.add(argc + 1) as usize })
    }
}

/// End the task (nothing else runs after this).
pub(crate) fn end_task() -> ! {
    let task = crate::port::PortName::new(crate::sys::mach_task_self());
    let _ = crate::interfaces::mach::task_terminate(task);
    loop {
        crate::sys::swtch_pri(0);
    }
}
