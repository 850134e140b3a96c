//! Self-describing sector patterns for the write-barrier workload.
//!
//! Every sector the workload writes says who wrote it (client, round, place in the round), where it
//! was meant to land and what kind it is, and ends in a checksum. The host-side checker can then
//! rebuild the workload from the device write log alone, and tell an intact sector from a torn,
//! stale or misplaced one, without sharing any other state with the guest.
#![no_std]

/// Bytes in one pattern sector (the ATA sector size).
pub const SECTOR: usize = 512;

const MAGIC: [u8; 8] = *b"RDRSPAT1";
const CHECKSUM_AT: usize = SECTOR - 8;

/// What a pattern sector records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Data of a round.
    Data,
    /// Written by a client after the sync of `round` returned: "everything of this round is durable".
    Commit,
}

/// The identity of one pattern sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub kind: Kind,
    pub client: u32,
    pub round: u32,
    /// Index of this sector within its round's data (0 for a commit record).
    pub index: u32,
    /// Number of data sectors in the round.
    pub count: u32,
    /// The disk sector the pattern was written to.
    pub lba: u64,
}

impl Stamp {
    /// Fills `sector` with this stamp, a deterministic body and the checksum.
    pub fn write(&self, sector: &mut [u8; SECTOR]) {
        sector[..8].copy_from_slice(&MAGIC);
        let kind: u32 = match self.kind {
            Kind::Data => 0,
            Kind::Commit => 1,
        };
        let fields = [kind, self.client, self.round, self.index, self.count];
        for (i, v) in fields.iter().enumerate() {
            sector[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        sector[28..36].copy_from_slice(&self.lba.to_le_bytes());
        let mut state = self.seed();
        for chunk in sector[36..CHECKSUM_AT].chunks_mut(8) {
            state = xorshift(state);
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let sum = fnv1a(&sector[..CHECKSUM_AT]);
        sector[CHECKSUM_AT..].copy_from_slice(&sum.to_le_bytes());
    }

    /// Reads the stamp of a sector, or `None` if the sector is not an intact pattern sector
    /// (zeroes, torn, or corrupted anywhere, body included).
    pub fn read(sector: &[u8]) -> Option<Stamp> {
        if sector.len() != SECTOR || sector[..8] != MAGIC {
            return None;
        }
        let sum = u64::from_le_bytes(sector[CHECKSUM_AT..].try_into().ok()?);
        if fnv1a(&sector[..CHECKSUM_AT]) != sum {
            return None;
        }
        let word = |i: usize| u32::from_le_bytes(sector[8 + 4 * i..12 + 4 * i].try_into().unwrap_or_default());
        let kind = match word(0) {
            0 => Kind::Data,
            1 => Kind::Commit,
            _ => return None,
        };
        let stamp = Stamp {
            kind,
            client: word(1),
            round: word(2),
            index: word(3),
            count: word(4),
            lba: u64::from_le_bytes(sector[28..36].try_into().ok()?),
        };
        // The body is a function of the stamp: regenerate it so a stale body under a valid header
        // (impossible with one checksum, but cheap to rule out) is caught too.
        let mut expect = [0u8; SECTOR];
        stamp.write(&mut expect);
        (expect[..] == *sector).then_some(stamp)
    }

    fn seed(&self) -> u64 {
        let mixed = (u64::from(self.client) << 40) ^ (u64::from(self.round) << 16) ^ u64::from(self.index) ^ self.lba;
        mixed | 1
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp { kind: Kind::Data, client: 3, round: 17, index: 2, count: 8, lba: 4242 }
    }

    #[test]
    fn round_trips() {
        let mut s = [0u8; SECTOR];
        stamp().write(&mut s);
        assert_eq!(Stamp::read(&s), Some(stamp()));
    }

    #[test]
    fn rejects_any_flipped_byte_and_zeroes() {
        let mut s = [0u8; SECTOR];
        assert_eq!(Stamp::read(&s), None);
        stamp().write(&mut s);
        for i in 0..SECTOR {
            let mut t = s;
            t[i] ^= 0x40;
            assert_eq!(Stamp::read(&t), None, "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn different_stamps_differ() {
        let (mut a, mut b) = ([0u8; SECTOR], [0u8; SECTOR]);
        stamp().write(&mut a);
        Stamp { round: 18, ..stamp() }.write(&mut b);
        assert_ne!(a[36..CHECKSUM_AT], b[36..CHECKSUM_AT]);
    }
}
