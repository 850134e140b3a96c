//! Why a `part:` store could not be opened: the partition table's problem, with the partition
//! asked for. Here, below both, because the store error carries it and `part` makes it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use super::Error;
use crate::errno::Errno;

/// A partition table's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Mbr,
    Gpt,
}

/// Why partition `number` could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionError {
    pub number: u32,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Sector 0 does not end in 0x55 0xAA.
    NoTable,
    /// The table (or a structure it points to) lies past the end of the child.
    Truncated,
    /// An MBR slot's boot indicator is neither 0x00 nor 0x80: not a partition table.
    BadBootIndicator { slot: u8, value: u8 },
    /// More than one extended partition in the MBR.
    TwoExtended,
    /// The chain of extended boot records is broken or loops.
    BadChain(&'static str),
    /// A protective MBR (type 0xEE) with no GPT header at sector 1.
    ProtectiveWithoutGpt,
    /// The GPT header or entry array is damaged.
    BadGpt(&'static str),
    /// A partition ends before it starts.
    Inverted { number: u32 },
    /// A partition ends past the end of the child (`end` and `sectors` in sectors).
    PastEnd { number: u32, end: u64, sectors: u64 },
    /// A partition covers sector 0, where the table is.
    OverTable { number: u32 },
    Overlap { first: u32, second: u32 },
    NotFound { scheme: Scheme, available: Vec<u32> },
    /// The partition does not start and end on a block of the child.
    Misaligned { block_size: u32 },
}

impl PartitionError {
    /// As upstream: a table libparted rejects is `EIO`; a block size it cannot use `EINVAL`.
    pub fn errno(&self) -> Errno {
        match self.problem {
            Problem::Misaligned { .. } => Errno::EINVAL,
            _ => Errno::EIO,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Mbr => "MBR",
            Scheme::Gpt => "GPT",
        })
    }
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "part: partition {}: ", self.number)?;
        match &self.problem {
            Problem::NoTable => f.write_str("no partition table (sector 0 does not end in 55 aa)"),
            Problem::Truncated => f.write_str("the partition table lies past the end of the store"),
            Problem::BadBootIndicator { slot, value } => {
                write!(f, "not a partition table (MBR slot {slot} has boot indicator {value:#04x})")
            }
            Problem::TwoExtended => f.write_str("the MBR has more than one extended partition"),
            Problem::BadChain(what) => write!(f, "broken chain of logical partitions: {what}"),
            Problem::ProtectiveWithoutGpt => f.write_str("a protective MBR but no GPT header at sector 1"),
            Problem::BadGpt(what) => write!(f, "bad GPT: {what}"),
            Problem::Inverted { number } => write!(f, "partition {number} ends before it starts"),
            Problem::PastEnd { number, end, sectors } => {
                write!(f, "partition {number} ends at sector {end}, past the end of the store ({sectors} sectors)")
            }
            Problem::OverTable { number } => write!(f, "partition {number} covers the partition table"),
            Problem::Overlap { first, second } => write!(f, "partitions {first} and {second} overlap"),
            Problem::NotFound { scheme, available } => {
                write!(f, "no such partition in the {scheme} (it has")?;
                if available.is_empty() {
                    f.write_str(" none")?;
                }
                for (n, number) in available.iter().enumerate() {
                    write!(f, "{}{number}", if n == 0 { " " } else { ", " })?;
                }
                f.write_str(")")
            }
            Problem::Misaligned { block_size } => {
                write!(f, "does not start and end on a block of the store ({block_size} bytes)")
            }
        }
    }
}

impl From<PartitionError> for Error {
    fn from(error: PartitionError) -> Error {
        Error::Partition(Box::new(error))
    }
}
