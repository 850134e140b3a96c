//! `device_get_status` answers. Status words are 32-bit signed `int`s (gnumach's
//! `dev_status_t`), and libstore reads them as such: a count of 2³¹ or more would reach it
//! negative, or wrapped. So a size is answered only when it fits: `DEV_GET_SIZE` up to
//! 2³¹ − 1 bytes, `DEV_GET_RECORDS` up to 2³¹ − 1 records (1 TiB of 512-byte records; libstore
//! asks for it first). A size that does not fit is refused with `D_INVALID_SIZE` and logged
//! (see `Server::get_status`), never clamped or truncated: a client told a smaller disk would
//! place a file system on part of it. (Upstream's rumpdisk stores the 64-bit size into the
//! word, truncating it; gnumach's header allows 0, "unknown", which libstore takes for an
//! empty device.)

use crate::backend::Geometry;
use crate::device::{flavor, Error, D_INVALID_OPERATION, D_INVALID_SIZE};

/// Words every size flavor returns.
pub const SIZE_WORDS: usize = 2;

/// The status words for `flavor`, given room for `capacity` words.
pub fn get(geometry: Geometry, flavor: u32, capacity: usize) -> Result<[i32; SIZE_WORDS], Error> {
    let size = match flavor {
        flavor::DEV_GET_SIZE => geometry.bytes(),
        flavor::DEV_GET_RECORDS => geometry.records(),
        _ => return Err(D_INVALID_OPERATION),
    };
    if capacity < SIZE_WORDS {
        return Err(D_INVALID_SIZE);
    }
    let size = i32::try_from(size).map_err(|_| D_INVALID_SIZE)?;
    // Record sizes are at most 2³⁰.
    Ok([size, geometry.record_size() as i32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_disks_report_exact_sizes() {
        let disk = Geometry::new(512, 2048).unwrap();
        assert_eq!(get(disk, flavor::DEV_GET_SIZE, 1024), Ok([1 << 20, 512]));
        assert_eq!(get(disk, flavor::DEV_GET_RECORDS, 2), Ok([2048, 512]));
    }

    #[test]
    fn sizes_that_do_not_fit_a_signed_word_are_refused_never_clamped() {
        let disk = Geometry::new(512, 6 << 30).unwrap(); // 3 TiB
        assert_eq!(get(disk, flavor::DEV_GET_SIZE, 2), Err(D_INVALID_SIZE));
        assert_eq!(get(disk, flavor::DEV_GET_RECORDS, 2), Err(D_INVALID_SIZE));
        let largest = Geometry::new(512, i32::MAX as u64).unwrap(); // 1 TiB − 512
        assert_eq!(get(largest, flavor::DEV_GET_RECORDS, 2), Ok([i32::MAX, 512]));
        let one_more = Geometry::new(512, 1 << 31).unwrap();
        assert_eq!(get(one_more, flavor::DEV_GET_RECORDS, 2), Err(D_INVALID_SIZE));
        let exactly_2g = Geometry::new(512, 1 << 22).unwrap();
        assert_eq!(get(exactly_2g, flavor::DEV_GET_SIZE, 2), Err(D_INVALID_SIZE), "2 GiB is one byte too many");
        assert_eq!(get(exactly_2g, flavor::DEV_GET_RECORDS, 2), Ok([1 << 22, 512]));
        let under_2g = Geometry::new(512, (1 << 22) - 1).unwrap();
        assert_eq!(get(under_2g, flavor::DEV_GET_SIZE, 2), Ok([i32::MAX - 511, 512]));
    }

    #[test]
    fn unknown_flavors_and_small_capacities_are_refused() {
        let disk = Geometry::new(512, 1).unwrap();
        assert_eq!(get(disk, flavor::DEV_FLUSH_CACHE, 2), Err(D_INVALID_OPERATION));
        assert_eq!(get(disk, 99, 2), Err(D_INVALID_OPERATION));
        assert_eq!(get(disk, flavor::DEV_GET_SIZE, 1), Err(D_INVALID_SIZE));
    }
}
