//! Disk names as NetBSD attaches them, which is how the Hurd's rumpdisk names them: `wd` units
//! are numbered in attach order over every controller the server drives — the IDE channels
//! (primary master, primary slave, secondary master, secondary slave), then the AHCI
//! controller's ports in order — counting only the ATA disks found there. Disks on the primary
//! and secondary masters are `wd0` and `wd1`; a packet device (a CD) is no `wd`.

use alloc::vec::Vec;

use super::registers::Registers;
use super::{Channel, Clock, Drive};
use crate::backend::Backend;
use crate::device::{Access, Error, D_NO_SUCH_DEVICE};

/// Which of `channel`'s positions (master, slave) hold an ATA disk: IDENTIFY DEVICE answered
/// (an empty position, a packet device or a drive that does not answer is no `wd`).
pub fn disks_on<R: Registers, C: Clock>(channel: &mut Channel<R, C>) -> [bool; 2] {
    [Drive::Master, Drive::Slave].map(|drive| channel.identify(drive).is_ok())
}

/// `wd` unit names, by unit number.
const WD: [&[u8]; 16] = [
    b"wd0", b"wd1", b"wd2", b"wd3", b"wd4", b"wd5", b"wd6", b"wd7", b"wd8", b"wd9", b"wd10", b"wd11", b"wd12", b"wd13", b"wd14", b"wd15",
];

/// The names of the positions in attach order, given whether an ATA disk answers at each: the
/// `n`th disk found is `wdn` (positions past the 16th disk get none), an empty position none.
pub fn attach_names(present: impl IntoIterator<Item = bool>) -> Vec<Option<&'static [u8]>> {
    let mut next = 0;
    present
        .into_iter()
        .map(|here| {
            here.then(|| {
                next += 1;
                WD.get(next - 1).copied()
            })
            .flatten()
        })
        .collect()
}

/// Several backends (channels, ports) as one: each opens only its own names, and the first that
/// does not answer `D_NO_SUCH_DEVICE` answers.
pub struct Units<B>(pub Vec<B>);

impl<B: Backend> Backend for Units<B> {
    type Disk = B::Disk;

    fn open(&self, name: &[u8], access: Access) -> Result<B::Disk, Error> {
        for unit in &self.0 {
            match unit.open(name, access) {
                Err(D_NO_SUCH_DEVICE) => continue,
                opened => return opened,
            }
        }
        Err(D_NO_SUCH_DEVICE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::Geometry;

    #[test]
    fn disks_are_numbered_in_attach_order_and_empty_positions_skipped() {
        // Primary master and secondary master: wd0 and wd1, as upstream names them.
        assert_eq!(attach_names([true, false, true, false]), [Some(&b"wd0"[..]), None, Some(b"wd1"), None]);
        assert_eq!(attach_names([false, false, false, true, true]), [None, None, None, Some(&b"wd0"[..]), Some(b"wd1")]);
        assert_eq!(attach_names([true; 17])[16], None, "more disks than names");
    }

    /// Two simulated IDE channels: a disk on each master, a CD (a packet device) on the
    /// secondary slave, as the VM has them: the secondary master is `wd1`, as upstream names it.
    #[test]
    fn the_masters_of_both_channels_are_wd0_and_wd1() {
        use super::super::sim::{SimChannel, SimDrive, StepClock};
        use super::super::{AtaBackend, Timeouts, TransferMode};
        let timeouts = Timeouts { command: 1000, flush: 1000 };
        let cd = SimDrive { packet: true, ..SimDrive::new(0, false) };
        let mut channels = [
            Channel::new(SimChannel::new(Some(SimDrive::new(4096, true)), None), StepClock::new(1), timeouts),
            Channel::new(SimChannel::new(Some(SimDrive::new(8192, true)), Some(cd)), StepClock::new(1), timeouts),
        ];
        let present: alloc::vec::Vec<bool> = channels.iter_mut().flat_map(disks_on).collect();
        assert_eq!(present, [true, false, true, false]);
        let names = attach_names(present);
        let [primary, secondary] = channels;
        let units = Units(alloc::vec![
            AtaBackend::named(primary, [names[0], names[1]], TransferMode::Auto),
            AtaBackend::named(secondary, [names[2], names[3]], TransferMode::Auto),
        ]);
        let rw = Access { read: true, write: true };
        let records = |name: &[u8]| units.open(name, rw).map(|disk| crate::backend::Disk::geometry(&disk).records());
        assert_eq!(records(b"wd0"), Ok(4096), "the primary master");
        assert_eq!(records(b"wd1"), Ok(8192), "the secondary master");
        assert_eq!(records(b"wd2").err(), Some(D_NO_SUCH_DEVICE), "the CD is no wd");
    }

    #[test]
    fn each_unit_opens_its_own_names() {
        let (mut first, mut second) = (MemoryBackend::default(), MemoryBackend::default());
        first.add(b"wd0", Geometry::new(512, 8).unwrap());
        second.add(b"wd1", Geometry::new(512, 16).unwrap());
        let units = Units(alloc::vec![first, second]);
        let rw = Access { read: true, write: true };
        assert_eq!(units.open(b"wd1", rw).map(|disk| disk.contents().len()).ok(), Some(16 * 512));
        assert_eq!(units.open(b"wd0", rw).map(|disk| disk.contents().len()).ok(), Some(8 * 512));
        assert_eq!(units.open(b"wd2", rw).err(), Some(D_NO_SUCH_DEVICE));
    }
}
