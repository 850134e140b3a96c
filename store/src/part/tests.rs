//! Partition tables built byte by byte in the tests, on memory stores and crash disks.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

use super::crc32::crc32;
use super::*;
use crate::class::memory;
use crate::testing::CrashDisk;

const SECTORS: u64 = 128;

/// A memory store of `SECTORS` sectors in blocks of `block_size`, with `pieces` written at their
/// sectors.
fn disk_with(block_size: u32, pieces: &[(u64, Vec<u8>)]) -> Store {
    let mut store = memory::create(SECTORS * SECTOR, block_size).unwrap();
    let mut image = vec![0; (SECTORS * SECTOR) as usize];
    for (lba, bytes) in pieces {
        let at = (*lba * SECTOR) as usize;
        image[at..at + bytes.len()].copy_from_slice(bytes);
    }
    store.write(0, &image).unwrap();
    store
}

fn disk(pieces: &[(u64, Vec<u8>)]) -> Store {
    disk_with(512, pieces)
}

/// A boot sector whose four slots are `(boot, type, start, sectors)`.
fn mbr(slots: &[(u8, u8, u32, u32)]) -> Vec<u8> {
    let mut sector = vec![0; 512];
    for (index, (boot, kind, start, sectors)) in slots.iter().enumerate() {
        let at = 446 + 16 * index;
        sector[at] = *boot;
        sector[at + 4] = *kind;
        sector[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        sector[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
    }
    sector[510] = 0x55;
    sector[511] = 0xAA;
    sector
}

const EMPTY: (u8, u8, u32, u32) = (0, 0, 0, 0);
const LINUX: u8 = 0x83;

/// A sector of `fill` bytes marking where a partition starts.
fn marker(fill: u8) -> Vec<u8> {
    vec![fill; 512]
}

fn open(store: Store, number: u32) -> Result<Store> {
    create(store, number)
}

fn problem(result: Result<Store>) -> Problem {
    match result {
        Err(Error::Partition(error)) => error.problem,
        Err(other) => panic!("not a partition error: {other}"),
        Ok(_) => panic!("opened"),
    }
}

/// A device that answers every read with half the bytes asked for, and no error.
struct ShortDevice;

impl crate::class::device::DevicePort for ShortDevice {
    fn read(&self, _recnum: u64, buf: &mut [u8]) -> core::result::Result<usize, i32> {
        Ok(buf.len() / 2)
    }
    fn write(&self, _recnum: u64, _data: &[u8]) -> core::result::Result<usize, i32> {
        Ok(0)
    }
    fn get_status(&self, _flavor: u32, _capacity: usize) -> core::result::Result<Vec<i32>, i32> {
        Ok(Vec::new())
    }
    fn set_status(&self, _flavor: u32, _status: &[i32]) -> core::result::Result<(), i32> {
        Ok(())
    }
}

#[test]
fn a_short_read_of_the_table_is_an_io_error_not_a_truncated_table() {
    let runs = vec![Run::new(0, SECTORS)];
    let short = crate::class::device::from_port(alloc::boxed::Box::new(ShortDevice), None, 512, runs, crate::store::Flags::NONE);
    let error = open(short.unwrap(), 1).err().unwrap();
    assert!(!matches!(error, Error::Partition(_)), "{error}");
    assert_eq!(error.errno(), Errno::EIO, "{error}");
}

#[test]
fn mbr_primary_partitions_are_numbered_by_slot() {
    let table = mbr(&[(0x80, LINUX, 8, 16), EMPTY, (0, LINUX, 30, 10), EMPTY]);
    let pieces = [(0, table), (8, marker(1)), (23, marker(2)), (30, marker(3))];
    let mut first = open(disk(&pieces), 1).unwrap();
    assert_eq!((first.class_name(), first.blocks()), ("remap", 16));
    assert_eq!(first.runs(), [Run::new(8, 16)]);
    assert_eq!(first.read_vec(0, 512).unwrap(), marker(1), "the partition starts at its first sector");
    assert_eq!(first.read_vec(15, 512).unwrap(), marker(2), "and ends at its last");
    let mut third = open(disk(&pieces), 3).unwrap();
    assert_eq!(third.read_vec(0, 512).unwrap(), marker(3));
    let Problem::NotFound { scheme, available } = problem(open(disk(&pieces), 2)) else { panic!() };
    assert_eq!((scheme, available), (Scheme::Mbr, vec![1, 3]), "an empty slot keeps its number");
}

/// An extended partition at 40 (60 sectors) with two logical partitions, after a primary one.
fn with_logicals() -> Vec<(u64, Vec<u8>)> {
    let table = mbr(&[(0, LINUX, 2, 30), (0, 0x0F, 40, 60), EMPTY, EMPTY]);
    // EBR 1 at 40: a partition 2 sectors on, 5 long; the next EBR 20 sectors into the extended one.
    let ebr1 = mbr(&[(0, LINUX, 2, 5), (0, 0x05, 20, 30), EMPTY, EMPTY]);
    // EBR 2 at 60: a partition 1 sector on, 4 long; the end of the chain.
    let ebr2 = mbr(&[(0, LINUX, 1, 4), EMPTY, EMPTY, EMPTY]);
    vec![(0, table), (40, ebr1), (42, marker(5)), (60, ebr2), (61, marker(6))]
}

#[test]
fn logical_partitions_are_numbered_from_5_and_the_extended_one_has_no_number() {
    let pieces = with_logicals();
    let mut fifth = open(disk(&pieces), 5).unwrap();
    assert_eq!(fifth.runs(), [Run::new(42, 5)]);
    assert_eq!(fifth.read_vec(0, 512).unwrap(), marker(5));
    let mut sixth = open(disk(&pieces), 6).unwrap();
    assert_eq!(sixth.runs(), [Run::new(61, 4)]);
    assert_eq!(sixth.read_vec(0, 512).unwrap(), marker(6));
    let Problem::NotFound { available, .. } = problem(open(disk(&pieces), 2)) else { panic!() };
    assert_eq!(available, vec![1, 5, 6]);
}

#[test]
fn a_looping_or_escaping_ebr_chain_is_refused() {
    let mut pieces = with_logicals();
    // EBR 2 links back to EBR 1.
    pieces[3].1 = mbr(&[(0, LINUX, 1, 4), (0, 0x05, 0, 30), EMPTY, EMPTY]);
    assert!(matches!(problem(open(disk(&pieces), 5)), Problem::BadChain(_)));
    // EBR 2 links to a well-formed EBR past the end of the extended partition (40..100).
    pieces[3].1 = mbr(&[(0, LINUX, 1, 4), (0, 0x05, 70, 30), EMPTY, EMPTY]);
    pieces.push((110, mbr(&[(0, LINUX, 1, 4), EMPTY, EMPTY, EMPTY])));
    let escaping = problem(open(disk(&pieces), 5));
    assert_eq!(escaping, Problem::BadChain("a link points outside the extended partition"));
    // EBR 2 links to a blank sector inside it.
    pieces[3].1 = mbr(&[(0, LINUX, 1, 4), (0, 0x05, 50, 5), EMPTY, EMPTY]);
    let unsigned = problem(open(disk(&pieces), 5));
    assert_eq!(unsigned, Problem::BadChain("an extended boot record does not end in 55 aa"));
}

#[test]
fn partitions_past_the_end_or_overlapping_are_refused() {
    let last = mbr(&[(0, LINUX, 100, 28), EMPTY, EMPTY, EMPTY]);
    assert_eq!(open(disk(&[(0, last)]), 1).unwrap().blocks(), 28, "ending at the last sector is fine");
    let past = mbr(&[(0, LINUX, 100, 29), EMPTY, EMPTY, EMPTY]);
    assert_eq!(problem(open(disk(&[(0, past)]), 1)), Problem::PastEnd { number: 1, end: 129, sectors: 128 });
    let huge = mbr(&[(0, LINUX, u32::MAX, u32::MAX), EMPTY, EMPTY, EMPTY]);
    assert!(matches!(problem(open(disk(&[(0, huge)]), 1)), Problem::PastEnd { number: 1, .. }));
    let overlap = mbr(&[(0, LINUX, 10, 20), EMPTY, EMPTY, (0, LINUX, 29, 5)]);
    assert_eq!(problem(open(disk(&[(0, overlap)]), 1)), Problem::Overlap { first: 1, second: 4 });
    let touching = mbr(&[(0, LINUX, 10, 20), (0, LINUX, 30, 5), EMPTY, EMPTY]);
    assert!(open(disk(&[(0, touching)]), 2).is_ok(), "adjacent partitions do not overlap");
    let over_table = mbr(&[(0, LINUX, 0, 20), EMPTY, EMPTY, EMPTY]);
    assert_eq!(problem(open(disk(&[(0, over_table)]), 1)), Problem::OverTable { number: 1 });
}

#[test]
fn no_table_and_garbage_are_told_apart() {
    assert_eq!(problem(open(disk(&[]), 1)), Problem::NoTable);
    let garbage = mbr(&[(0, LINUX, 2, 4), (0x13, LINUX, 8, 4), EMPTY, EMPTY]);
    assert_eq!(problem(open(disk(&[(0, garbage)]), 1)), Problem::BadBootIndicator { slot: 2, value: 0x13 });
    let two = mbr(&[(0, 0x05, 2, 4), (0, 0x0F, 8, 4), EMPTY, EMPTY]);
    assert_eq!(problem(open(disk(&[(0, two)]), 1)), Problem::TwoExtended);
    let tiny = memory::create(256, 1).unwrap();
    assert_eq!(problem(open(tiny, 1)), Problem::Truncated);
}

/// A GUID partition table with `entries` (`(index, first, last)`) of the 128 slots.
fn gpt(entries: &[(usize, u64, u64)]) -> Vec<(u64, Vec<u8>)> {
    let protective = mbr(&[(0, 0xEE, 1, SECTORS as u32 - 1), EMPTY, EMPTY, EMPTY]);
    let mut array = vec![0u8; 128 * 128];
    for (index, first, last) in entries {
        let entry = &mut array[index * 128..][..128];
        entry[..16].copy_from_slice(&[0xAF; 16]); // any non-zero type GUID
        entry[16..32].copy_from_slice(&[*index as u8 + 1; 16]);
        entry[32..40].copy_from_slice(&first.to_le_bytes());
        entry[40..48].copy_from_slice(&last.to_le_bytes());
    }
    let mut header = vec![0u8; 512];
    header[..8].copy_from_slice(b"EFI PART");
    header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    header[12..16].copy_from_slice(&92u32.to_le_bytes());
    header[24..32].copy_from_slice(&1u64.to_le_bytes());
    header[32..40].copy_from_slice(&(SECTORS - 1).to_le_bytes());
    header[40..48].copy_from_slice(&34u64.to_le_bytes());
    header[48..56].copy_from_slice(&(SECTORS - 34).to_le_bytes());
    header[56..72].copy_from_slice(&[0x5A; 16]);
    header[72..80].copy_from_slice(&2u64.to_le_bytes());
    header[80..84].copy_from_slice(&128u32.to_le_bytes());
    header[84..88].copy_from_slice(&128u32.to_le_bytes());
    header[88..92].copy_from_slice(&crc32(&array).to_le_bytes());
    let crc = crc32(&header[..92]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    vec![(0, protective), (1, header), (2, array)]
}

fn gpt_disk() -> Vec<(u64, Vec<u8>)> {
    let mut pieces = gpt(&[(0, 40, 59), (2, 60, 99)]);
    pieces.extend([(40, marker(1)), (59, marker(2)), (60, marker(3)), (99, marker(4))]);
    pieces
}

#[test]
fn gpt_partitions_are_numbered_by_entry_and_end_at_their_last_sector() {
    let mut first = open(disk(&gpt_disk()), 1).unwrap();
    assert_eq!(first.runs(), [Run::new(40, 20)]);
    assert_eq!(first.read_vec(0, 512).unwrap(), marker(1));
    assert_eq!(first.read_vec(19, 512).unwrap(), marker(2));
    let mut third = open(disk(&gpt_disk()), 3).unwrap();
    assert_eq!(third.runs(), [Run::new(60, 40)]);
    assert_eq!(third.read_vec(39, 512).unwrap(), marker(4));
    let Problem::NotFound { scheme, available } = problem(open(disk(&gpt_disk()), 2)) else { panic!() };
    assert_eq!((scheme, available), (Scheme::Gpt, vec![1, 3]));
}

#[test]
fn gpt_crcs_are_checked() {
    let mut pieces = gpt_disk();
    pieces[1].1[60] ^= 1; // the disk GUID, covered by the header CRC
    assert_eq!(problem(open(disk(&pieces), 1)), Problem::BadGpt("header CRC mismatch"));
    let mut pieces = gpt_disk();
    pieces[2].1[5 * 128 + 40] = 1; // an unused entry, covered by the array CRC
    assert_eq!(problem(open(disk(&pieces), 1)), Problem::BadGpt("entry array CRC mismatch"));
}

#[test]
fn a_protective_mbr_needs_a_gpt() {
    let mut pieces = gpt_disk();
    pieces[1].1[..8].copy_from_slice(b"NOT PART");
    assert_eq!(problem(open(disk(&pieces), 1)), Problem::ProtectiveWithoutGpt);
}

#[test]
fn gpt_entries_are_checked_like_mbr_ones() {
    let past = gpt(&[(0, 40, SECTORS)]);
    assert_eq!(problem(open(disk(&past), 1)), Problem::PastEnd { number: 1, end: SECTORS + 1, sectors: SECTORS });
    let inverted = gpt(&[(0, 50, 40)]);
    assert_eq!(problem(open(disk(&inverted), 1)), Problem::Inverted { number: 1 });
    let overlap = gpt(&[(0, 40, 60), (1, 60, 70)]);
    assert_eq!(problem(open(disk(&overlap), 2)), Problem::Overlap { first: 1, second: 2 });
}

#[test]
fn other_block_sizes_are_converted_or_refused() {
    // Block size 1 (a file): sector 40 is byte 20480.
    let mut bytes = open(disk_with(1, &gpt_disk()), 1).unwrap();
    assert_eq!(bytes.runs(), [Run::new(40 * 512, 20 * 512)]);
    assert_eq!(bytes.read_vec(0, 512).unwrap(), marker(1));
    // Block size 2048: sector 40 is block 10, 20 sectors are 5 blocks.
    let mut big = open(disk_with(2048, &gpt_disk()), 1).unwrap();
    assert_eq!(big.runs(), [Run::new(10, 5)]);
    assert_eq!(big.read_vec(0, 2048).unwrap()[..512], marker(1));
    // Sector 41 is in the middle of a 2048-byte block; so is the end of sectors 40..=58.
    for misaligned in [(0, 41, 60), (0, 40, 58)] {
        let error = open(disk_with(2048, &gpt(&[misaligned])), 1).err().unwrap();
        assert_eq!(error.errno(), Errno::EINVAL);
        assert_eq!(
            error.to_string(),
            "part: partition 1: does not start and end on a block of the store (2048 bytes)"
        );
    }
}

#[test]
fn errors_read_well_and_are_eio() {
    let error = open(disk(&gpt_disk()), 7).err().unwrap();
    assert_eq!(error.errno(), Errno::EIO);
    assert_eq!(error.to_string(), "part: partition 7: no such partition in the GPT (it has 1, 3)");
    let error = open(disk(&[]), 1).err().unwrap();
    assert_eq!(error.to_string(), "part: partition 1: no partition table (sector 0 does not end in 55 aa)");
}

#[test]
fn a_read_error_of_the_child_is_the_childs() {
    let disk = CrashDisk::new(64, 512);
    disk.fail_io_with(crate::errno::DeviceCode::IO_ERROR.0);
    let error = open(disk.open("wd0"), 1).err().unwrap();
    assert!(matches!(&error, Error::Children { class: "part", .. }), "{error:?}");
    assert_eq!(error.errno(), Errno::EIO);
}

#[test]
fn sync_through_a_partition_reaches_the_disk() {
    let disk = CrashDisk::new(SECTORS as usize, 512);
    let mut whole = disk.open("wd0");
    whole.write(0, &mbr(&[(0, LINUX, 8, 16), EMPTY, EMPTY, EMPTY])).unwrap();
    let mut part = open(whole, 1).unwrap();
    part.write(0, &marker(9)).unwrap();
    part.sync().unwrap();
    disk.crash();
    assert_eq!(disk.durable()[8 * 512..9 * 512], marker(9));
}

fn arb_sector() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 512)
}

proptest! {
    /// Random sectors 0–3, made to look like a table often enough to reach deep into the parsers:
    /// the signature, a protective or extended slot, a GPT signature, entry counts and sizes.
    #[test]
    fn garbage_tables_never_panic(
        mut sectors in prop::collection::vec(arb_sector(), 4),
        signature in any::<bool>(),
        slot_kind in prop::sample::select(vec![0u8, 0x05, 0x0F, 0x83, 0xEE]),
        efi in any::<bool>(),
        entries in 0u32..300,
        entry_size in prop::sample::select(vec![0u32, 8, 128, 136, 256, 4096]),
        number in 0u32..10,
        block_size in prop::sample::select(vec![1u32, 512, 2048]),
    ) {
        if signature {
            sectors[0][510] = 0x55;
            sectors[0][511] = 0xAA;
            sectors[0][446] = 0;
            sectors[0][450] = slot_kind;
        }
        if efi {
            sectors[1][..8].copy_from_slice(b"EFI PART");
            sectors[1][80..84].copy_from_slice(&entries.to_le_bytes());
            sectors[1][84..88].copy_from_slice(&entry_size.to_le_bytes());
        }
        let pieces: Vec<(u64, Vec<u8>)> = sectors.into_iter().enumerate().map(|(i, s)| (i as u64, s)).collect();
        if let Ok(store) = open(disk_with(block_size, &pieces), number) {
            prop_assert!(store.blocks() > 0);
        }
    }
}
