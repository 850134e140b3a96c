//! The only `in`/`out` instructions in the crate: a legacy IDE channel's registers through x86
//! port I/O, and the time-stamp counter the driver's deadlines use.

use core::arch::asm;

use mach::interfaces::mach_i386;
use mach::kern::Result;
use mach::port::PortName;

use super::registers::{Reg, Registers};
use super::{AtaBackend, Channel, Clock, Timeouts, TransferMode};
use crate::backend::flush_mode::{FlushMode, WithFlushMode};

/// The two legacy IDE channels of a PC, at their fixed I/O ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdeChannel {
    /// Command block at 0x1F0–0x1F7, device control / alternate status at 0x3F6.
    #[default]
    Primary,
    /// Command block at 0x170–0x177, device control / alternate status at 0x376.
    Secondary,
}

impl IdeChannel {
    pub const fn command_block(self) -> u16 {
        match self {
            IdeChannel::Primary => 0x1F0,
            IdeChannel::Secondary => 0x170,
        }
    }

    pub const fn control(self) -> u16 {
        match self {
            IdeChannel::Primary => 0x3F6,
            IdeChannel::Secondary => 0x376,
        }
    }

    /// The names of the channel's master and slave drives, as the Hurd's rumpdisk (NetBSD's
    /// `wd` driver) names the drives of a PC's two channels.
    pub const fn drive_names(self) -> [&'static [u8]; 2] {
        match self {
            IdeChannel::Primary => [b"wd0", b"wd1"],
            IdeChannel::Secondary => [b"wd2", b"wd3"],
        }
    }
}

/// One channel's registers. Exists only where the task may touch those ports.
pub struct LegacyPorts {
    channel: IdeChannel,
}

impl LegacyPorts {
    /// # Safety
    /// The task must have I/O permission for the channel's command block and control port
    /// (granted by `i386_io_perm_modify`), or the first access faults; and no one else may drive
    /// the channel.
    pub unsafe fn assume_enabled(channel: IdeChannel) -> LegacyPorts {
        LegacyPorts { channel }
    }
}

/// Asks GNU Mach, through a device master, for `channel`'s I/O ports and enables them for this
/// task (`i386_io_perm_create`, `i386_io_perm_modify`); then the registers are ours. The caller
/// must be the channel's only driver.
pub fn enable_channel(device_master: PortName, channel: IdeChannel) -> Result<LegacyPorts> {
    let task = PortName::new(mach::sys::mach_task_self());
    let (block, control) = (channel.command_block(), channel.control());
    for (from, to) in [(block, block + 7), (control, control)] {
        // The port numbers are below 0x8000, so they fit the interface's 16-bit signed type.
        let permission = mach_i386::i386_io_perm_create(device_master, from as i16, to as i16)?;
        mach_i386::i386_io_perm_modify(task, permission.name(), true)?;
    }
    // SAFETY: the kernel has just enabled the channel's ports for this task.
    Ok(unsafe { LegacyPorts::assume_enabled(channel) })
}

/// Deadlines for a real (or emulated) drive, in TSC ticks: long, since an emulator may stall.
pub const TIMEOUTS: Timeouts = Timeouts { command: 10 * Tsc::TICKS_PER_SECOND, flush: 30 * Tsc::TICKS_PER_SECOND };

impl Registers for LegacyPorts {
    fn read(&mut self, reg: Reg) -> u8 {
        // SAFETY: a `LegacyPorts` exists only with permission for its command block.
        unsafe { inb(self.channel.command_block() + reg as u16) }
    }

    fn write(&mut self, reg: Reg, value: u8) {
        // SAFETY: as in `read`.
        unsafe { outb(self.channel.command_block() + reg as u16, value) }
    }

    fn alt_status(&mut self) -> u8 {
        // SAFETY: a `LegacyPorts` exists only with permission for its control port.
        unsafe { inb(self.channel.control()) }
    }

    fn set_control(&mut self, value: u8) {
        // SAFETY: as in `alt_status`.
        unsafe { outb(self.channel.control(), value) }
    }

    fn read_block(&mut self, block: &mut [u8]) {
        let data = self.channel.command_block();
        let words = block.len() / 2;
        // SAFETY: the data register is in the permitted block; `rep insw` stores `words` 16-bit
        // words, no more than the exclusively borrowed buffer holds (x86 allows any alignment).
        unsafe {
            asm!("rep insw", in("dx") data, inout("di") block.as_mut_ptr() => _,
                 inout("cx") words => _, options(nostack, preserves_flags));
        }
    }

    fn write_block(&mut self, block: &[u8]) {
        let data = self.channel.command_block();
        let words = block.len() / 2;
        // SAFETY: as in `read_block`; `rep outsw` only reads `words` words of the buffer.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            asm!("rep outsw", in("dx") data, inout("rsi") block.as_ptr() => _,
                 inout("rcx") words => _, options(nostack, preserves_flags, readonly));
        }
        // SAFETY: as above; LLVM reserves esi on i686, so it is saved and restored by hand.
        #[cfg(target_arch = "x86")]
        unsafe {
            asm!("xchg {source}, esi", "rep outsw", "mov esi, {source}",
                 source = inout(reg) block.as_ptr() => _, in("dx") data,
                 inout("ecx") words => _, options(nostack, preserves_flags, readonly));
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

/// The native driver on `channel` as both binaries run it: the channel's I/O ports from GNU Mach
/// through `device_master`, its drives under the Hurd's names, and the `--flush` mode (anything but
/// [`FlushMode::Device`] is for tests only and says so on the log), moving data as `transfer` asks.
pub fn native_backend(
    device_master: PortName,
    channel: IdeChannel,
    flush: FlushMode,
    transfer: TransferMode,
) -> Result<WithFlushMode<AtaBackend<LegacyPorts, Tsc>>> {
    let ports = enable_channel(device_master, channel)?;
    let ata = AtaBackend::named(Channel::new(ports, Tsc, TIMEOUTS), channel.drive_names(), transfer);
    if flush != FlushMode::Device {
        log::warn!("rumpdisk: --flush={flush:?}: DEV_FLUSH_CACHE does not flush (for tests only)");
    }
    Ok(WithFlushMode { backend: ata, mode: flush })
}
