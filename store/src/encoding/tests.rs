//! Encodings checked against layouts worked out from the C source, round trips, and garbage.
//!
//! How the expected arrays were derived (Hurd libstore at d80222b9):
//! - leaves (`store_std_leaf_encode`, encode.c): one port; ints class id, flags, block size,
//!   number of runs, name length counting the NUL, misc length; offsets start and length per
//!   run; data the name, its NUL, then misc.
//! - remap (`remap_encode`, remap.c): ints id, flags, number of runs; offsets the runs; then the
//!   child through `store_encode_children` (kids.c), which appends after the parent.
//! - concat (`concat_encode`, stripe.c): ints id, flags, number of children; then the children.
//! - ileave (`ileave_encode`): ints id, flags, interleave, number of children; then the children.
//!   The interleave is in bytes as `hurd_types.h` documents and `ileave_decode` reads it
//!   (upstream's encoder writes `wrap_dst`, the interleave in blocks, which agrees only for
//!   1-byte blocks; this store follows the decoder).
//! - zero (`zero_encode`, zero.c): ints id, flags; one offset, the size.
//! - class ids: `enum file_storage_class` in `hurd/hurd_types.h`, counted from 0 (OTHER).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

use super::*;
use crate::decode::{decode, LeafPorts};
use crate::store::Store;
use crate::class::device::{DeviceMaster, DevicePort, ReturnCode, D_READ, D_WRITE};
use crate::class::file::{self, FileNode};
use crate::class::{memory, mvol, remap, stripe, zero};
use crate::store::Flags;
use crate::testing::{CrashDisk, FakeFile, Master};

/// The encoding of `store` and everything under it.
fn encode(store: &Store) -> Result<Encoding<u32>> {
    let mut enc = Encoding::default();
    store.encode(&mut enc)?;
    Ok(enc)
}

/// A device port that reports a port name.
struct Named(u32, Box<dyn DevicePort>);

impl DevicePort for Named {
    fn read(&self, recnum: u64, buf: &mut [u8]) -> core::result::Result<usize, ReturnCode> {
        self.1.read(recnum, buf)
    }
    fn write(&self, recnum: u64, data: &[u8]) -> core::result::Result<usize, ReturnCode> {
        self.1.write(recnum, data)
    }
    fn get_status(&self, flavor: u32, capacity: usize) -> core::result::Result<Vec<i32>, ReturnCode> {
        self.1.get_status(flavor, capacity)
    }
    fn set_status(&self, flavor: u32, status: &[i32]) -> core::result::Result<(), ReturnCode> {
        self.1.set_status(flavor, status)
    }
    fn port_name(&self) -> u32 {
        self.0
    }
}

/// Port names 10, 11… are the disks, 20, 21… the files.
struct Ports {
    disks: Vec<CrashDisk>,
    files: Vec<FakeFile>,
}

impl Ports {
    fn new(disks: usize, files: usize) -> Ports {
        let files = (0..files)
            .map(|n| {
                let file = FakeFile::new(4096);
                file.set_port_name(20 + n as u32);
                file
            })
            .collect();
        Ports { disks: (0..disks).map(|_| CrashDisk::new(16, 512)).collect(), files }
    }

    /// Disk `n` as `device:wd0` with its port name.
    fn disk(&self, n: usize) -> Store {
        let port = self.device(10 + n as u32).unwrap();
        let store = device::from_port(port, Some("wd0".into()), 512, vec![Run::new(0, 16)], Flags::ENFORCED);
        store.unwrap()
    }

    fn file(&self, n: usize) -> Store {
        file::create(Box::new(self.files[n].clone()), Some("disk.img"), Flags::NONE).unwrap()
    }
}

use crate::class::device;

impl LeafPorts<u32> for Ports {
    fn device(&self, port: u32) -> Result<Box<dyn DevicePort>> {
        let disk = self.disks.get(port.wrapping_sub(10) as usize).ok_or(Error::class("device", Errno::ENXIO))?;
        let open = Master::with("wd0", disk.clone()).open(D_READ | D_WRITE, "wd0").unwrap();
        Ok(Box::new(Named(port, open)))
    }

    fn file(&self, port: u32) -> Result<Box<dyn FileNode>> {
        let file = self.files.get(port.wrapping_sub(20) as usize).ok_or(Error::class("file", Errno::ENXIO))?;
        Ok(Box::new(file.clone()))
    }
}

const ENFORCED: i32 = 0x2000;

#[test]
fn a_device_leaf() {
    let ports = Ports::new(1, 0);
    let enc = encode(&ports.disk(0)).unwrap();
    assert_eq!(enc.ports, [10]);
    assert_eq!(enc.ints, [STORAGE_DEVICE, ENFORCED, 512, 1, 4, 0]);
    assert_eq!(enc.offsets, [0, 16]);
    assert_eq!(enc.data, b"wd0\0");
}

#[test]
fn a_file_leaf() {
    let ports = Ports::new(0, 1);
    let enc = encode(&ports.file(0)).unwrap();
    assert_eq!(enc.ports, [20]);
    assert_eq!(enc.ints, [STORAGE_HURD_FILE, ENFORCED, 512, 1, 9, 0]);
    assert_eq!(enc.offsets, [0, 8]);
    assert_eq!(enc.data, b"disk.img\0");
}

#[test]
fn a_remap_with_a_hole_then_its_child() {
    let ports = Ports::new(1, 0);
    let part = remap::create(ports.disk(0), vec![Run::new(4, 8), Run::hole(2)]).unwrap();
    let enc = encode(&part).unwrap();
    assert_eq!(enc.ints, [STORAGE_REMAP, 0, 2, STORAGE_DEVICE, ENFORCED, 512, 1, 4, 0]);
    assert_eq!(enc.offsets, [4, 8, -1, 2, 0, 16]);
    assert_eq!((enc.ports, enc.data), (vec![10], b"wd0\0".to_vec()));
}

#[test]
fn concat_and_ileave_then_their_children_in_order() {
    let ports = Ports::new(2, 0);
    let both = stripe::concat(vec![zero::create(1024).unwrap(), ports.disk(1)]).unwrap();
    let enc = encode(&both).unwrap();
    assert_eq!(enc.ints, [STORAGE_CONCAT, 0, 2, STORAGE_ZERO, 0, STORAGE_DEVICE, ENFORCED, 512, 1, 4, 0]);
    assert_eq!(enc.offsets, [1024, 0, 16]);
    assert_eq!(enc.ports, [11]);
    let striped = stripe::ileave(vec![ports.disk(0), ports.disk(1)], 2048).unwrap();
    let enc = encode(&striped).unwrap();
    assert_eq!(enc.ints[..4], [STORAGE_INTERLEAVE, 0, 2048, 2]);
    assert_eq!(enc.ints.len(), 4 + 6 + 6);
    assert_eq!(enc.ports, [10, 11]);
    assert_eq!(enc.data, b"wd0\0wd0\0");
}

#[test]
fn read_only_is_on_the_wire() {
    let mut store = zero::create(512).unwrap();
    store.set_flags(Flags::READONLY).unwrap();
    assert_eq!(encode(&store).unwrap().ints, [STORAGE_ZERO, 0x100]);
    let back = decode(encode(&store).unwrap(), &Ports::new(0, 0)).unwrap();
    assert!(back.flags().contains(Flags::READONLY));
}

#[test]
fn what_upstream_cannot_encode_is_refused() {
    let memory = memory::create(4096, 512).unwrap();
    assert_eq!(encode(&memory).unwrap_err(), Error::class("memory", Errno::EOPNOTSUPP));
    let inside = stripe::concat(vec![zero::create(512).unwrap(), memory::create(512, 512).unwrap()]).unwrap();
    assert_eq!(encode(&inside).unwrap_err().errno(), Errno::EOPNOTSUPP);
    let volumes = mvol::create(zero::create(512).unwrap(), 2, Box::new(|_, _, _| Ok(()))).unwrap();
    assert_eq!(encode(&volumes).unwrap_err(), Error::class("mvol", Errno::EOPNOTSUPP));
}

/// Every store tree this store can encode, over `ports`.
fn trees(ports: &Ports) -> Vec<Store> {
    vec![
        ports.disk(0),
        ports.file(0),
        zero::create(4096).unwrap(),
        remap::create(ports.disk(0), vec![Run::new(2, 3), Run::hole(1), Run::new(9, 4)]).unwrap(),
        stripe::concat(vec![ports.disk(0), ports.file(0), zero::create(512).unwrap()]).unwrap(),
        stripe::ileave(vec![ports.disk(0), remap::create(ports.disk(1), vec![Run::new(0, 8)]).unwrap()], 1024).unwrap(),
    ]
}

#[test]
fn round_trips_keep_the_shape_and_reach_the_same_data() {
    let ports = Ports::new(2, 1);
    for (n, mut store) in trees(&ports).into_iter().enumerate() {
        let data: Vec<u8> = (0..store.size() as usize).map(|i| (i / 512 + n) as u8).collect();
        let written = store.write(0, &data).unwrap_or(0);
        let enc = encode(&store).unwrap();
        let mut back = decode(enc.clone(), &ports).unwrap();
        assert_eq!(encode(&back).unwrap(), enc, "tree {n}");
        assert_eq!((back.class_name(), back.block_size(), back.runs()), (store.class_name(), store.block_size(), store.runs()));
        assert_eq!(back.read_vec(0, written).unwrap(), store.read_vec(0, written).unwrap(), "tree {n}");
        back.sync().unwrap();
    }
}

/// An encoding built by hand, as a server would send it.
fn by_hand(ints: &[i32], offsets: &[i64], data: &[u8], ports: &[u32]) -> Encoding<u32> {
    Encoding { ports: ports.to_vec(), ints: ints.to_vec(), offsets: offsets.to_vec(), data: data.to_vec() }
}

#[test]
fn a_file_on_a_disk_decodes_to_the_disks_blocks() {
    // What ext2fs answers for a file: its blocks on the device, with a hole.
    let ports = Ports::new(1, 0);
    let enc = by_hand(&[STORAGE_DEVICE, 0, 512, 2, 4, 0], &[3, 2, -1, 1], b"wd0\0", &[10]);
    let mut store = decode(enc, &ports).unwrap();
    assert_eq!((store.class_name(), store.blocks(), store.name()), ("device", 3, Some("wd0")));
    store.write(0, &[6; 1024]).unwrap();
    store.sync().unwrap();
    ports.disks[0].crash();
    assert_eq!(ports.disks[0].durable()[3 * 512..5 * 512], [6; 1024]);
    assert_eq!(store.read_vec(2, 512).unwrap_err().errno(), Errno::EIO, "the hole");
}

#[test]
fn misc_data_is_skipped_and_a_name_ends_at_its_nul() {
    let ports = Ports::new(2, 0);
    // Two leaves: "wd0" with 3 bytes of misc, then "wd1\0x" (upstream's strdup stops at the NUL).
    let ints = [STORAGE_CONCAT, 0, 2, STORAGE_DEVICE, 0, 512, 1, 4, 3, STORAGE_DEVICE, 0, 512, 1, 6, 0];
    let enc = by_hand(&ints, &[0, 16, 0, 16], b"wd0\0abcwd1\0x\0", &[10, 11]);
    let store = decode(enc, &ports).unwrap();
    let names: Vec<_> = store.children().iter().map(Store::name).collect();
    assert_eq!(names, [Some("wd0"), Some("wd1")]);
}

#[test]
fn bad_encodings_are_einval_and_foreign_classes_eopnotsupp() {
    let ports = Ports::new(1, 1);
    let error = |ints: &[i32], offsets: &[i64], data: &[u8], port: &[u32]| {
        decode(by_hand(ints, offsets, data, port), &ports).err().expect("decoded garbage")
    };
    let leaf = [STORAGE_DEVICE, 0, 512, 1, 4, 0];
    assert_eq!(error(&leaf, &[0, 16], b"wd0x", &[10]), Error::class("device", Errno::EINVAL), "no NUL");
    assert_eq!(error(&leaf, &[0, 16], b"wd0\0", &[]), Error::class("device", Errno::EINVAL), "no port");
    assert_eq!(error(&leaf, &[0], b"wd0\0", &[10]), Error::class("device", Errno::EINVAL), "half a run");
    assert_eq!(error(&[STORAGE_DEVICE, 0, 500, 1, 0, 0], &[0, 16], b"", &[10]).errno(), Errno::EINVAL);
    assert_eq!(error(&[STORAGE_DEVICE, 0, 512, 1, 0, 0], &[-2, 16], b"", &[10]).errno(), Errno::EINVAL);
    assert_eq!(error(&[STORAGE_REMAP, 0, 1], &[8, 9], b"", &[]), Error::class("storage info", Errno::EINVAL));
    let past_child = [STORAGE_REMAP, 0, 1, STORAGE_DEVICE, 0, 512, 1, 0, 0];
    assert_eq!(error(&past_child, &[8, 9, 0, 16], b"", &[10]), Error::class("remap", Errno::EINVAL));
    assert_eq!(error(&[STORAGE_CONCAT, 0, 1000, STORAGE_ZERO, 0], &[1], b"", &[]).errno(), Errno::EINVAL);
    assert_eq!(error(&[STORAGE_TASK, 0, 1, 1, 0, 0], &[0, 1], b"", &[1]), Error::class("task", Errno::EOPNOTSUPP));
    assert_eq!(error(&[STORAGE_LAYER, 0, 0], &[], b"", &[]), Error::class("layer", Errno::EINVAL));
    assert_eq!(error(&[99, 0], &[], b"", &[]), Error::class("storage info", Errno::EINVAL));
    assert_eq!(error(&[], &[], b"", &[]), Error::class("storage info", Errno::EINVAL));
    let deep: Vec<i32> = [STORAGE_CONCAT, 0, 1].repeat(40).into_iter().chain([STORAGE_ZERO, 0]).collect();
    assert_eq!(error(&deep, &[1], b"", &[]).errno(), Errno::EINVAL, "nesting is bounded");
}

#[test]
fn every_truncation_of_a_good_encoding_is_refused() {
    let ports = Ports::new(2, 1);
    for store in trees(&ports) {
        let enc = encode(&store).unwrap();
        for cut in 0..enc.ints.len() {
            let short = Encoding { ints: enc.ints[..cut].to_vec(), ..enc.clone() };
            assert_eq!(decode(short, &ports).err().map(|e| e.errno()), Some(Errno::EINVAL));
        }
        for cut in 0..enc.offsets.len() {
            let short = Encoding { offsets: enc.offsets[..cut].to_vec(), ..enc.clone() };
            assert_eq!(decode(short, &ports).err().map(|e| e.errno()), Some(Errno::EINVAL));
        }
    }
}

fn arb_encoding() -> impl Strategy<Value = Encoding<u32>> {
    let int = prop_oneof![0i32..12, -2i32..1100, any::<i32>()];
    let offset = prop_oneof![-2i64..40, any::<i64>()];
    (
        prop::collection::vec(10u32..24, 0..4),
        prop::collection::vec(int, 0..40),
        prop::collection::vec(offset, 0..20),
        prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..20),
    )
        .prop_map(|(ports, ints, offsets, data)| Encoding { ports, ints, offsets, data })
}

proptest! {
    #[test]
    fn garbage_never_panics(enc in arb_encoding()) {
        let ports = Ports::new(2, 2);
        if let Ok(store) = decode(enc, &ports) {
            // Whatever decodes encodes again.
            prop_assert!(encode(&store).is_ok());
        }
    }
}

#[test]
fn a_received_port_that_is_not_used_is_dropped() {
    // Ports are taken in order; the ones left over go out of scope with the encoding.
    struct Counted(Rc<core::cell::Cell<usize>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    struct NoLeaves;
    impl LeafPorts<Counted> for NoLeaves {
        fn device(&self, _port: Counted) -> Result<Box<dyn DevicePort>> {
            Err(Error::class("device", Errno::ENXIO))
        }
        fn file(&self, _port: Counted) -> Result<Box<dyn FileNode>> {
            Err(Error::class("file", Errno::ENXIO))
        }
    }
    let dropped = Rc::new(core::cell::Cell::new(0));
    let ports = (0..3).map(|_| Counted(dropped.clone())).collect();
    let enc = Encoding { ports, ints: vec![STORAGE_ZERO, 0], offsets: vec![512], data: vec![] };
    assert!(decode(enc, &NoLeaves).is_ok());
    assert_eq!(dropped.get(), 3);
}
