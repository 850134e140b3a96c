//! Opening a store from a typed name: parse it whole, then open the leaves and build the
//! composites around them.

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::class::{device, memory, remap, stripe, zero};
use crate::part;
use crate::class::device::DeviceMaster;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::name::{self, Spec};
use crate::runs::Run;
use crate::store::{Flags, Store};

/// Where leaves come from: device masters and, for tools with a file system, files.
pub trait Opener {
    /// The device master for names under translator `node` (`device:@NODE:NAME`), or the
    /// kernel's device master (`None`). `flags` says whether the device will be written
    /// ([`Flags::HARD_READONLY`] when not), for looking `node` up with the right access.
    fn device_master(&self, node: Option<&str>, flags: Flags) -> Result<Rc<dyn DeviceMaster>>;

    /// A store over the contents of file `path` (`file:PATH`).
    fn file(&self, _path: &str, _flags: Flags) -> Result<Store> {
        Err(Error::class("file", Errno::EOPNOTSUPP))
    }

    /// The store under the node at `path`, as its translator describes it (`query:PATH`).
    fn query(&self, _path: &str, _flags: Flags) -> Result<Store> {
        Err(Error::class("query", Errno::EOPNOTSUPP))
    }
}

/// Opens the store a typed name describes (see [`crate::name`]). `flags` may ask for
/// [`Flags::READONLY`] and [`Flags::HARD_READONLY`] (devices are then opened for reading only).
pub fn open(name: &str, flags: Flags, opener: &dyn Opener) -> Result<Store> {
    let spec = name::parse(name)?;
    let mut store = open_spec(&spec, flags, opener)?;
    store.set_flags(flags.intersection(Flags::READONLY))?;
    Ok(store)
}

/// Opens a parsed name.
pub fn open_spec(spec: &Spec<'_>, flags: Flags, opener: &dyn Opener) -> Result<Store> {
    let leaf_flags = flags.intersection(Flags::HARD_READONLY);
    let children = |specs: &[Spec<'_>]| -> Result<Vec<Store>> {
        specs.iter().map(|child| open_spec(child, flags, opener)).collect()
    };
    match spec {
        Spec::Device { node, name } => device::open(opener.device_master(*node, leaf_flags)?, name, leaf_flags),
        Spec::File { path } => opener.file(path, leaf_flags),
        Spec::Query { path } => opener.query(path, leaf_flags),
        Spec::Part { number, child } => part::create(open_spec(child, flags, opener)?, *number),
        Spec::Memory { size } => memory::create(*size, 1),
        Spec::Zero { size } => zero::create(*size),
        Spec::Remap { runs, child } => {
            let child = open_spec(child, flags, opener)?;
            let runs = runs
                .iter()
                .map(|run| {
                    let to_end = child.blocks().checked_sub(run.start);
                    run.length.or(to_end).map(|length| Run::new(run.start, length))
                })
                .collect::<Option<Vec<Run>>>()
                .ok_or(Error::class("remap", Errno::EINVAL))?;
            remap::create(child, runs)
        }
        Spec::Concat { children: specs } => stripe::concat(children(specs)?),
        Spec::Ileave { interleave, children: specs } => stripe::ileave(children(specs)?, *interleave),
    }
}

/// An opener with one device master and no file system (a boot-time task, a test).
pub struct WithMaster(pub Rc<dyn DeviceMaster>);

impl Opener for WithMaster {
    fn device_master(&self, node: Option<&str>, _flags: Flags) -> Result<Rc<dyn DeviceMaster>> {
        match node {
            None => Ok(self.0.clone()),
            // Reaching a translator needs a file system to look its node up in.
            Some(_) => Err(Error::class("device", Errno::EOPNOTSUPP)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::DeviceCode;
    use crate::testing::{CrashDisk, Master};
    use alloc::vec;

    fn two_disks() -> (WithMaster, [CrashDisk; 2]) {
        let disks = [CrashDisk::new(16, 512), CrashDisk::new(16, 512)];
        let master = Master::default();
        master.add("wd0", disks[0].clone());
        master.add("wd1", disks[1].clone());
        (WithMaster(Rc::new(master)), disks)
    }

    #[test]
    fn a_typed_name_becomes_the_store_tree_and_sync_reaches_every_disk() {
        let (opener, disks) = two_disks();
        let mut store = open("concat:,remap:4+:device:wd0,ileave:1024:device:@wd1", Flags::NONE, &opener).unwrap();
        assert_eq!(store.class_name(), "concat");
        assert_eq!(store.blocks(), 12 + 16);
        let kids: Vec<_> = store.children().iter().map(Store::class_name).collect();
        assert_eq!(kids, vec!["remap", "ileave"]);
        let data: Vec<u8> = (0..store.size() as usize).map(|i| (i / 512) as u8).collect();
        store.write(0, &data).unwrap();
        store.sync().unwrap();
        disks.iter().for_each(CrashDisk::crash);
        assert_eq!(store.read_vec(0, data.len()).unwrap(), data);
        assert_eq!(disks[0].durable()[4 * 512..], data[..12 * 512]);
    }

    #[test]
    fn a_partition_by_typed_name() {
        let (opener, disks) = two_disks();
        let mut table = vec![0u8; 512];
        table[446 + 4] = 0x83; // slot 1: Linux, sectors 4..12
        table[446 + 8] = 4;
        table[446 + 12] = 8;
        table[510..].copy_from_slice(&[0x55, 0xAA]);
        let mut whole = open("device:wd0", Flags::NONE, &opener).unwrap();
        whole.write(0, &table).unwrap();
        let mut part = open("part:1:device:wd0", Flags::NONE, &opener).unwrap();
        assert_eq!((part.class_name(), part.blocks()), ("remap", 8));
        part.write(0, &[7; 512]).unwrap();
        part.sync().unwrap();
        disks[0].crash();
        assert_eq!(disks[0].durable()[4 * 512..5 * 512], [7; 512]);
        let missing = open("part:2:device:wd0", Flags::NONE, &opener).err().unwrap();
        assert!(matches!(missing, Error::Partition(_)));
    }

    #[test]
    fn open_errors() {
        let (opener, disks) = two_disks();
        let missing = open("concat:@device:wd0@device:wd7", Flags::NONE, &opener).err().unwrap();
        assert_eq!(missing.device_code(), Some(DeviceCode::NO_SUCH_DEVICE));
        let node = open("device:@/dev/disk:wd0", Flags::NONE, &opener).err().unwrap();
        assert_eq!(node.errno(), Errno::EOPNOTSUPP);
        let file = open("file:x", Flags::NONE, &opener).err().unwrap();
        assert_eq!(file.errno(), Errno::EOPNOTSUPP);
        let query = open("/dev/wd0", Flags::NONE, &opener).err().unwrap();
        assert_eq!(query, Error::class("query", Errno::EOPNOTSUPP));
        let past_end = open("remap:17+:device:wd0", Flags::NONE, &opener).err().unwrap();
        assert_eq!(past_end.errno(), Errno::EINVAL);
        let bad = open("remap:x:device:wd0", Flags::NONE, &opener).err().unwrap();
        assert!(matches!(bad, Error::Name(_)));
        assert_eq!(disks[0].flushes(), 0);
    }

    #[test]
    fn read_only_request() {
        let (opener, _) = two_disks();
        let mut store = open("remap:0+2:device:wd0", Flags::READONLY, &opener).unwrap();
        assert_eq!(store.write(0, &[0; 512]).unwrap_err().errno(), Errno::EROFS);
        let mut hard = open("device:wd1", Flags::HARD_READONLY, &opener).unwrap();
        assert_eq!(hard.clear_flags(Flags::READONLY).unwrap_err().errno(), Errno::EROFS);
    }
}
