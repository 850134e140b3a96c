//! An IDE channel's interrupt through GNU Mach's `irq` device, as the channel waits on it
//! ([`Line`]): the legacy channels' ISA lines, 14 and 15.

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

/// A channel's taken interrupt line. Says on the log how many interrupts it has taken at the
/// first and at each power of 4 (`ata: Primary channel: IRQ 14: 256 interrupts taken`), which
/// the VM scenarios check to know the driver completes by interrupt.
pub struct IrqLine {
    channel: IdeChannel,
    interrupt: Interrupt,
}

impl IrqLine {
    /// Takes `channel`'s line on `irq`.
    pub fn take(irq: &IrqDevice, channel: IdeChannel) -> mach::kern::Result<IrqLine> {
        Ok(IrqLine { channel, interrupt: irq.register(channel.irq())? })
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
                if came && taken.is_power_of_two() && taken.trailing_zeros() % 2 == 0 {
                    log::info!("ata: {:?} channel: IRQ {}: {taken} interrupts taken", self.channel, self.interrupt.line());
                }
                came
            }
            Err(error) => {
                log::warn!("ata: {:?} channel: waiting for IRQ {}: {error:?}", self.channel, self.interrupt.line());
                false
            }
        }
    }

    fn ack(&mut self) {
        if let Err(error) = self.interrupt.ack() {
            log::warn!("ata: {:?} channel: IRQ {} not acknowledged: {error:?}", self.channel, self.interrupt.line());
        }
    }
}
