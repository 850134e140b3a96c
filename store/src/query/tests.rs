//! `query:` against a stand-in file system: storeio nodes answering with their device, plain
//! files, translators that answer garbage, nodes that refuse writing.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::*;
use crate::class::device::{DeviceMaster, DevicePort, D_READ, D_WRITE};
use crate::class::file::FileNode;
use crate::encoding::{STORAGE_DEVICE, STORAGE_ZERO};
use crate::error::Error;
use crate::open::{open as open_name, Opener};
use crate::testing::{CrashDisk, FakeFile, Master};

#[derive(Clone)]
enum Port {
    /// Node `n` of the file system.
    Node(usize),
    Disk(CrashDisk),
}

struct Node {
    path: &'static str,
    contents: FakeFile,
    /// What `file_get_storage_info` answers; `None`: the translator does not know the routine.
    info: Option<Encoding<Port>>,
    writable: bool,
}

#[derive(Default)]
struct FileSystem {
    nodes: Vec<Node>,
    /// Every lookup: (path, writable).
    lookups: RefCell<Vec<(String, bool)>>,
}

impl FileSystem {
    fn add(&mut self, path: &'static str, info: Option<Encoding<Port>>, writable: bool) -> FakeFile {
        let contents = FakeFile::new(4096);
        self.nodes.push(Node { path, contents: contents.clone(), info, writable });
        contents
    }
}

/// What storeio at `/dev/wd0` answers: the whole of device wd0.
fn storeio_info(disk: &CrashDisk, records: i64) -> Encoding<Port> {
    Encoding {
        ports: vec![Port::Disk(disk.clone())],
        ints: vec![STORAGE_DEVICE, 0, 512, 1, 4, 0],
        offsets: vec![0, records],
        data: b"wd0\0".to_vec(),
    }
}

impl LeafPorts<Port> for FileSystem {
    fn device(&self, port: Port) -> Result<Box<dyn DevicePort>> {
        let Port::Disk(disk) = port else { return Err(Error::class("device", Errno::EINVAL)) };
        Master::with("wd0", disk).open(D_READ | D_WRITE, "wd0").map_err(|_| Error::class("device", Errno::ENXIO))
    }

    fn file(&self, port: Port) -> Result<Box<dyn FileNode>> {
        let Port::Node(n) = port else { return Err(Error::class("file", Errno::EINVAL)) };
        Ok(Box::new(self.nodes[n].contents.clone()))
    }
}

impl Nodes for FileSystem {
    type Port = Port;

    fn lookup(&self, path: &str, writable: bool) -> Result<Port> {
        self.lookups.borrow_mut().push((path.to_string(), writable));
        let n = self.nodes.iter().position(|node| node.path == path).ok_or(Error::class("query", Errno::ENOENT))?;
        if writable && !self.nodes[n].writable {
            return Err(Error::class("query", Errno::EACCES));
        }
        Ok(Port::Node(n))
    }

    fn storage_info(&self, node: &Port) -> Result<Encoding<Port>> {
        let Port::Node(n) = node else { return Err(Error::class("query", Errno::EINVAL)) };
        // MIG_BAD_ID, as a translator without the routine answers.
        self.nodes[*n].info.clone().ok_or(Error::class("query", Errno(-303)))
    }
}

/// Typed names over the stand-in file system.
impl Opener for FileSystem {
    fn device_master(&self, _node: Option<&str>, _flags: Flags) -> Result<Rc<dyn DeviceMaster>> {
        Err(Error::class("device", Errno::EOPNOTSUPP))
    }

    fn file(&self, path: &str, flags: Flags) -> Result<Store> {
        open_file(self, path, flags)
    }

    fn query(&self, path: &str, flags: Flags) -> Result<Store> {
        open(self, path, flags)
    }
}

#[test]
fn a_storeio_node_is_its_device_and_sync_reaches_the_disk() {
    let disk = CrashDisk::new(16, 512);
    let mut fs = FileSystem::default();
    let contents = fs.add("/dev/wd0", Some(storeio_info(&disk, 16)), true);
    let mut store = open(&fs, "/dev/wd0", Flags::NONE).unwrap();
    assert_eq!((store.class_name(), store.name(), store.blocks()), ("device", Some("wd0"), 16));
    store.write(3, &[4; 512]).unwrap();
    store.sync().unwrap();
    disk.crash();
    assert_eq!(disk.durable()[3 * 512..4 * 512], [4; 512]);
    assert_eq!(contents.syncs(), 0, "the device was used, not the node's io");
    assert_eq!(*fs.lookups.borrow(), vec![("/dev/wd0".to_string(), true)]);
}

#[test]
fn typed_names_reach_query_the_three_ways_and_part_works_on_top() {
    let disk = CrashDisk::new(64, 512);
    let mut table = vec![0u8; 512];
    table[446 + 4] = 0x83; // slot 1: sectors 8..40
    table[446 + 8] = 8;
    table[446 + 12] = 32;
    table[510..].copy_from_slice(&[0x55, 0xAA]);
    disk.open("wd0").write(0, &table).unwrap();
    let mut fs = FileSystem::default();
    fs.add("/dev/wd0", Some(storeio_info(&disk, 64)), true);
    for name in ["query:/dev/wd0", ":/dev/wd0", "/dev/wd0"] {
        assert_eq!(open_name(name, Flags::NONE, &fs).unwrap().class_name(), "device", "{name}");
    }
    let mut part = open_name("part:1:/dev/wd0", Flags::NONE, &fs).unwrap();
    assert_eq!((part.class_name(), part.runs()), ("remap", &[crate::Run::new(8, 32)][..]));
    part.write(0, &[1; 512]).unwrap();
    part.sync().unwrap();
    disk.crash();
    assert_eq!(disk.durable()[8 * 512..9 * 512], [1; 512]);
}

#[test]
fn a_node_that_cannot_describe_its_storage_is_used_through_its_io() {
    let mut fs = FileSystem::default();
    let plain = fs.add("/home/disk.img", None, true);
    let garbage = Encoding { ports: vec![], ints: vec![STORAGE_ZERO], offsets: vec![], data: vec![] };
    let odd = fs.add("/srv/odd", Some(garbage), true);
    for (path, file) in [("/home/disk.img", plain), ("/srv/odd", odd)] {
        let mut store = open(&fs, path, Flags::NONE).unwrap();
        assert_eq!((store.class_name(), store.name(), store.size()), ("file", Some(path), 4096));
        store.write(1, &[2; 512]).unwrap();
        store.sync().unwrap();
        assert_eq!((file.contents()[512..1024].to_vec(), file.syncs()), (vec![2; 512], 1));
    }
}

#[test]
fn a_node_refusing_writes_is_opened_read_only() {
    let disk = CrashDisk::new(16, 512);
    let mut fs = FileSystem::default();
    fs.add("/dev/cd0", Some(storeio_info(&disk, 16)), false);
    let mut store = open(&fs, "/dev/cd0", Flags::NONE).unwrap();
    assert_eq!(*fs.lookups.borrow(), vec![("/dev/cd0".to_string(), true), ("/dev/cd0".to_string(), false)]);
    assert_eq!(store.write(0, &[1; 512]).unwrap_err().errno(), Errno::EROFS);
    fs.lookups.borrow_mut().clear();
    open(&fs, "/dev/cd0", Flags::HARD_READONLY).unwrap();
    assert_eq!(*fs.lookups.borrow(), vec![("/dev/cd0".to_string(), false)], "asked read-only: one lookup");
}

#[test]
fn file_names_use_the_nodes_io_even_when_it_could_describe_its_storage() {
    let disk = CrashDisk::new(16, 512);
    let mut fs = FileSystem::default();
    let contents = fs.add("/dev/wd0", Some(storeio_info(&disk, 16)), false);
    let mut store = open_name("file:/dev/wd0", Flags::NONE, &fs).unwrap();
    assert_eq!((store.class_name(), store.block_size()), ("file", 512));
    assert!(store.flags().contains(Flags::HARD_READONLY), "the node refused writing");
    store.sync().unwrap();
    assert_eq!(contents.syncs(), 1);
}

#[test]
fn a_missing_node_is_enoent() {
    let fs = FileSystem::default();
    assert_eq!(open(&fs, "/dev/nothing", Flags::NONE).err().unwrap(), Error::class("query", Errno::ENOENT));
}
