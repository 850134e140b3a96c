//! Where a request lands on the disk: the record and size checks every read and write passes
//! before its one backend call. All arithmetic is checked; nothing wraps.

use crate::backend::Geometry;
use crate::device::{Error, D_INVALID_RECNUM, D_INVALID_SIZE};

/// A checked transfer: `len` bytes (whole records) from `record`, inside the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub record: u64,
    pub len: usize,
}

/// A read of `bytes_wanted` at `record`: short at the end of the disk, empty exactly at it.
/// Any byte count is allowed (a 1-byte inband read is a client's cheapest probe); the server
/// reads whole records underneath.
pub fn read(geometry: Geometry, record: u64, bytes_wanted: u64) -> Result<Extent, Error> {
    let left = bytes_left(geometry, record)?;
    let len = usize::try_from(bytes_wanted.min(left)).map_err(|_| D_INVALID_SIZE)?;
    Ok(Extent { record, len })
}

/// A write of `len` bytes at `record`: all of it inside the disk, or refused (never cut short,
/// so a client never mistakes a partial write for a whole one).
pub fn write(geometry: Geometry, record: u64, len: usize) -> Result<Extent, Error> {
    let wanted = u64::try_from(len).map_err(|_| D_INVALID_SIZE)?;
    whole_records(geometry, wanted)?;
    if wanted > bytes_left(geometry, record)? {
        return Err(D_INVALID_SIZE);
    }
    Ok(Extent { record, len })
}

fn whole_records(geometry: Geometry, bytes: u64) -> Result<(), Error> {
    if bytes.is_multiple_of(u64::from(geometry.record_size())) {
        Ok(())
    } else {
        Err(D_INVALID_SIZE)
    }
}

fn bytes_left(geometry: Geometry, record: u64) -> Result<u64, Error> {
    let records_left = geometry.records().checked_sub(record).ok_or(D_INVALID_RECNUM)?;
    // Cannot overflow: `Geometry` guarantees records × record size fits in 64 bits.
    Ok(records_left * u64::from(geometry.record_size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> Geometry {
        Geometry::new(512, 8).unwrap()
    }

    #[test]
    fn reads_are_cut_short_at_the_end_and_empty_exactly_there() {
        assert_eq!(read(disk(), 0, 4096), Ok(Extent { record: 0, len: 4096 }));
        assert_eq!(read(disk(), 6, 4096), Ok(Extent { record: 6, len: 1024 }));
        assert_eq!(read(disk(), 8, 512), Ok(Extent { record: 8, len: 0 }));
        assert_eq!(read(disk(), 9, 512), Err(D_INVALID_RECNUM));
        assert_eq!(read(disk(), u64::MAX, u64::MAX - 511), Err(D_INVALID_RECNUM));
        assert_eq!(read(disk(), 0, 0), Ok(Extent { record: 0, len: 0 }));
    }

    #[test]
    fn reads_may_end_inside_a_record_but_writes_may_not() {
        assert_eq!(read(disk(), 0, 100), Ok(Extent { record: 0, len: 100 }));
        assert_eq!(read(disk(), 7, 1000), Ok(Extent { record: 7, len: 512 }));
        assert_eq!(write(disk(), 0, 513), Err(D_INVALID_SIZE));
    }

    #[test]
    fn writes_must_fit_whole() {
        assert_eq!(write(disk(), 7, 512), Ok(Extent { record: 7, len: 512 }));
        assert_eq!(write(disk(), 7, 1024), Err(D_INVALID_SIZE));
        assert_eq!(write(disk(), 8, 0), Ok(Extent { record: 8, len: 0 }));
        assert_eq!(write(disk(), 9, 0), Err(D_INVALID_RECNUM));
        assert_eq!(write(disk(), u64::MAX, 512), Err(D_INVALID_RECNUM));
    }

    #[test]
    fn huge_disks_do_not_overflow() {
        let huge = Geometry::new(1 << 30, u64::MAX >> 30).unwrap();
        let last = huge.records() - 1;
        assert_eq!(read(huge, last, u64::MAX - ((1 << 30) - 1)).map(|e| e.len), Ok(1 << 30));
    }
}
