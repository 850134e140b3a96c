//! The only `in`/`out` instructions in the crate: the primary IDE channel's registers through
//! x86 port I/O, and the time-stamp counter the driver's deadlines use.

use core::arch::asm;

use mach::interfaces::mach_i386;
use mach::kern::Result;
use mach::port::PortName;

use super::registers::{Reg, Registers, SECTOR};
use super::{Clock, Timeouts};

/// Primary channel: command block at 0x1F0–0x1F7, device control / alternate status at 0x3F6.
pub const COMMAND_BLOCK: u16 = 0x1F0;
pub const CONTROL: u16 = 0x3F6;

/// The primary channel's registers. Exists only where the task may touch those ports.
pub struct LegacyPorts {
    _private: (),
}

impl LegacyPorts {
    /// # Safety
    /// The task must have I/O permission for ports 0x1F0–0x1F7 and 0x3F6 (granted by
    /// `i386_io_perm_modify`), or the first access faults; and no one else may drive the channel.
    pub unsafe fn assume_enabled() -> LegacyPorts {
        LegacyPorts { _private: () }
    }
}

/// Asks GNU Mach, through its device master, for the primary channel's I/O ports and enables
/// them for this task (`i386_io_perm_create`, `i386_io_perm_modify`); then the registers are ours.
/// The caller must be the channel's only driver.
pub fn enable_primary_channel(device_master: PortName) -> Result<LegacyPorts> {
    let task = PortName::new(mach::sys::mach_task_self());
    for (from, to) in [(COMMAND_BLOCK, COMMAND_BLOCK + 7), (CONTROL, CONTROL)] {
        // The port numbers are below 0x8000, so they fit the interface's 16-bit signed type.
        let permission = mach_i386::i386_io_perm_create(device_master, from as i16, to as i16)?;
        mach_i386::i386_io_perm_modify(task, permission.name(), true)?;
    }
    // SAFETY: the kernel has just enabled 0x1F0–0x1F7 and 0x3F6 for this task.
    Ok(unsafe { LegacyPorts::assume_enabled() })
}

/// Deadlines for a real (or emulated) drive, in TSC ticks: long, since an emulator may stall.
pub const TIMEOUTS: Timeouts = Timeouts { command: 10 * Tsc::TICKS_PER_SECOND, flush: 30 * Tsc::TICKS_PER_SECOND };

impl Registers for LegacyPorts {
    fn read(&mut self, reg: Reg) -> u8 {
        // SAFETY: a `LegacyPorts` exists only with permission for the command block.
        unsafe { inb(COMMAND_BLOCK + reg as u16) }
    }

    fn write(&mut self, reg: Reg, value: u8) {
        // SAFETY: as in `read`.
        unsafe { outb(COMMAND_BLOCK + reg as u16, value) }
    }

    fn alt_status(&mut self) -> u8 {
        // SAFETY: a `LegacyPorts` exists only with permission for the control port.
        unsafe { inb(CONTROL) }
    }

    fn set_control(&mut self, value: u8) {
        // SAFETY: as in `alt_status`.
        unsafe { outb(CONTROL, value) }
    }

    fn read_sector(&mut self, sector: &mut [u8; SECTOR]) {
        // SAFETY: the data register is in the permitted block; `rep insw` stores exactly
        // SECTOR bytes into the exclusively borrowed buffer (x86 allows any alignment).
        unsafe {
            asm!("rep insw", in("dx") COMMAND_BLOCK, inout("di") sector.as_mut_ptr() => _,
                 inout("cx") SECTOR / 2 => _, options(nostack, preserves_flags));
        }
    }

    fn write_sector(&mut self, sector: &[u8; SECTOR]) {
        // SAFETY: as in `read_sector`; `rep outsw` only reads SECTOR bytes of the buffer.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            asm!("rep outsw", in("dx") COMMAND_BLOCK, inout("rsi") sector.as_ptr() => _,
                 inout("rcx") SECTOR / 2 => _, options(nostack, preserves_flags, readonly));
        }
        // SAFETY: as above; LLVM reserves esi on i686, so it is saved and restored by hand.
        #[cfg(target_arch = "x86")]
        unsafe {
            asm!("xchg {source}, esi", "rep outsw", "mov esi, {source}",
                 source = inout(reg) sector.as_ptr() => _, in("dx") COMMAND_BLOCK,
                 inout("ecx") SECTOR / 2 => _, options(nostack, preserves_flags, readonly));
        }
    }
}

/// # Safety
/// The task must have permission for `port`.
unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller guarantees the permission; `in` touches no memory.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// The task must have permission for `port`.
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the permission; `out` touches no memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// The time-stamp counter. Under QEMU's TCG it runs at the host's TSC rate; GNU Mach's
/// `host_get_time` ran about twice too fast there, so deadlines use this instead.
pub struct Tsc;

impl Tsc {
    /// Ticks per second assumed when turning seconds into deadlines: a nominal 3 GHz. On a
    /// slower counter a deadline lasts proportionally longer, never shorter than meant below it.
    pub const TICKS_PER_SECOND: u64 = 3_000_000_000;
}

impl Clock for Tsc {
    fn now(&self) -> u64 {
        let (low, high): (u32, u32);
        // SAFETY: `rdtsc` only reads the counter into edx:eax; user mode may run it (CR4.TSD
        // is clear on GNU Mach).
        unsafe { asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags)) };
        u64::from(high) << 32 | u64::from(low)
    }
}
