//! `device_get_status` answers. Status words are 32-bit signed `int`s: a size that does not fit
//! is clamped to the largest whole number of records that does (and stays positive for clients
//! that read the words as signed), never wrapped. So `DEV_GET_SIZE` reports at most
//! 2 GiB − one record and `DEV_GET_RECORDS` at most 2³¹ − 1 records (1 TiB of 512-byte
//! records); clients that need the whole size of a bigger disk must ask for `DEV_GET_RECORDS`.

use crate::backend::Geometry;
use crate::device::{flavor, Error, D_INVALID_OPERATION, D_INVALID_SIZE};

/// Words every size flavor returns.
pub const SIZE_WORDS: usize = 2;

/// The status words for `flavor`, given room for `capacity` words.
pub fn get(geometry: Geometry, flavor: u32, capacity: usize) -> Result<[i32; SIZE_WORDS], Error> {
    let largest = i32::MAX as u64;
    let record_size = u64::from(geometry.record_size());
    let size = match flavor {
        flavor::DEV_GET_SIZE => geometry.bytes().min(largest / record_size * record_size),
        flavor::DEV_GET_RECORDS => geometry.records().min(largest),
        _ => return Err(D_INVALID_OPERATION),
    };
    if capacity < SIZE_WORDS {
        return Err(D_INVALID_SIZE);
    }
    // Both values are ≤ i32::MAX by construction (record sizes are at most 2³⁰).
    Ok([size as i32, geometry.record_size() as i32])
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
    fn sizes_beyond_32_bits_are_clamped_to_whole_records() {
        let disk = Geometry::new(512, 10 << 30).unwrap(); // 5 TiB
        assert_eq!(get(disk, flavor::DEV_GET_SIZE, 2), Ok([i32::MAX - 511, 512]));
        assert_eq!(get(disk, flavor::DEV_GET_RECORDS, 2), Ok([i32::MAX, 512]));
        let exactly_2g = Geometry::new(512, 1 << 22).unwrap();
        assert_eq!(get(exactly_2g, flavor::DEV_GET_SIZE, 2), Ok([i32::MAX - 511, 512]));
        assert_eq!(get(exactly_2g, flavor::DEV_GET_RECORDS, 2), Ok([1 << 22, 512]));
    }

    #[test]
    fn unknown_flavors_and_small_capacities_are_refused() {
        let disk = Geometry::new(512, 1).unwrap();
        assert_eq!(get(disk, flavor::DEV_FLUSH_CACHE, 2), Err(D_INVALID_OPERATION));
        assert_eq!(get(disk, 99, 2), Err(D_INVALID_OPERATION));
        assert_eq!(get(disk, flavor::DEV_GET_SIZE, 1), Err(D_INVALID_SIZE));
    }
}
