//! A controller's interrupt through GNU Mach's `irq` device, as its driver waits on it
//! ([`Line`]): the legacy IDE channels' ISA lines, 14 and 15, or an AHCI controller's PCI line.

use alloc::string::String;
use mach::irq::{Interrupt, IrqDevice};

use super::channel::Line;
use super::port_io::{IdeChannel, Tsc};

impl IdeChannel {
    /// The ISA interrupt line of the channel in legacy mode (how QEMU's PIIX and the Hurd's
    /// boot run it).
    pub const fn irq(self) -> u32 {
        match self {
            IdeChannel::Primary => 14,
            IdeChannel::Secondary => 15,
        }
    }
}

/// A taken interrupt line. Says on the log how many interrupts it has taken at the first and
/// at each power of 4 (`ata: Primary channel: IRQ 14: 256 interrupts taken`), which the VM
/// scenarios check to know the driver completes by interrupt.
pub struct IrqLine {
    /// Who took it, as the log names it (`ata: Primary channel`, `ahci: port 0`).
    owner: String,
    interrupt: Interrupt,
}

impl IrqLine {
    /// Takes `line` on `irq` for `owner`.
    pub fn take(irq: &IrqDevice, line: u32, owner: String) -> mach::kern::Result<IrqLine> {
        Ok(IrqLine { owner, interrupt: irq.register(line)? })
    }
}

/// TSC ticks per millisecond, as the deadlines count them.
const TICKS_PER_MS: u64 = Tsc::TICKS_PER_SECOND / 1000;

impl Line for IrqLine {
    fn wait(&mut self, ticks: u64) -> bool {
        let ms = (ticks / TICKS_PER_MS).clamp(1, u32::MAX.into()) as u32;
        match self.interrupt.wait(ms) {
            Ok(came) => {
                let taken = self.interrupt.taken();
                if came && taken.is_power_of_two() && taken.trailing_zeros().is_multiple_of(2) {
                    log::info!("{}: IRQ {}: {taken} interrupts taken", self.owner, self.interrupt.line());
                }
                came
            }
            Err(error) => {
                log::warn!("{}: waiting for IRQ {}: {error:?}", self.owner, self.interrupt.line());
                false
            }
        }
    }

    fn ack(&mut self) {
        if let Err(error) = self.interrupt.ack() {
            log::warn!("{}: IRQ {} not acknowledged: {error:?}", self.owner, self.interrupt.line());
        }
    }
}
