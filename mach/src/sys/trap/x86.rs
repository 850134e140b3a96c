//! The i386 trap instruction: a far call through the call gate GNU Mach installs at LDT
//! selector 7 (`lcall $7, $0`, the `SVC` of gnumach's `mach/i386/asm.h`), the negative trap
//! number in eax, every argument on the user stack from esp+4 up (the kernel skips one slot, where
//! a C caller of a trap stub has its return address). The result is in eax. The kernel saves
//! and restores the other registers; ecx and edx, which a C trap stub may clobber, are declared
//! clobbered anyway. See docs/kernels.md.

use core::arch::asm;

#[inline(always)]
pub fn trap0(number: isize) -> usize {
    let result: usize;
    // SAFETY: a Mach trap without arguments reads no user stack and touches no user memory.
    unsafe {
        asm!("lcall $7, $0", inlateout("eax") number => result,
             lateout("ecx") _, lateout("edx") _, options(att_syntax, nostack));
    }
    result
}

/// # Safety
/// Pointer arguments must be valid for what the trap reads or writes through them.
#[inline(always)]
pub unsafe fn trap4(number: isize, [a1, a2, a3, a4]: [usize; 4]) -> usize {
    // SAFETY: per the caller; the kernel reads no more arguments than the trap takes.
    unsafe { trap7(number, [a1, a2, a3, a4, 0, 0, 0]) }
}

/// # Safety
/// As [`trap4`].
#[inline(always)]
pub unsafe fn trap7(number: isize, args: [usize; 7]) -> usize {
    let result: usize;
    // SAFETY: the caller guarantees the pointer arguments; the eight pushed words (the arguments
    // last to first, then the skipped slot) are popped before the stack is used again.
    unsafe {
        asm!("pushl 24({args})", "pushl 20({args})", "pushl 16({args})", "pushl 12({args})",
             "pushl 8({args})", "pushl 4({args})", "pushl ({args})", "pushl $0",
             "lcall $7, $0",
             "addl $32, %esp",
             args = in(reg) args.as_ptr(),
             inlateout("eax") number => result,
             lateout("ecx") _, lateout("edx") _,
             options(att_syntax));
    }
    result
}
