//! The x86_64 trap instruction: `syscall` with the negative trap number in rax, arguments in
//! rdi, rsi, rdx, r10, r8, r9; the kernel reads arguments 7 and up from the user stack at rsp+8
//! (one slot skipped as if a return address were there). The result is in rax; rcx and r11 are
//! clobbered.

use core::arch::asm;

#[inline(always)]
pub fn trap0(number: isize) -> usize {
    let result: usize;
    // SAFETY: a Mach trap without arguments touches no user memory.
    unsafe {
        asm!("syscall", inlateout("rax") number => result,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    result
}

/// # Safety
/// Pointer arguments must be valid for what the trap reads or writes through them.
#[inline(always)]
pub unsafe fn trap4(number: isize, [a1, a2, a3, a4]: [usize; 4]) -> usize {
    let result: usize;
    // SAFETY: the caller guarantees the pointer arguments (see above).
    unsafe {
        asm!("syscall", inlateout("rax") number => result,
             in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    result
}

/// # Safety
/// As [`trap4`].
#[inline(always)]
pub unsafe fn trap7(number: isize, [a1, a2, a3, a4, a5, a6, a7]: [usize; 7]) -> usize {
    let result: usize;
    // SAFETY: the caller guarantees the pointer arguments; the seventh argument sits at rsp+8
    // while the trap runs and both pushed slots are popped before the stack is used again.
    unsafe {
        asm!("push {a7}", "push 0", "syscall", "add rsp, 16",
             a7 = in(reg) a7,
             inlateout("rax") number => result,
             in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
             lateout("rcx") _, lateout("r11") _);
    }
    result
}
