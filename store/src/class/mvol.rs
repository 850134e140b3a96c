//! `mvol`: several volumes (floppies, tapes) used one at a time in one drive, seen as one store.
//! Run `i` is volume `i`; before the drive changes volume, the one leaving is flushed, so a
//! barrier is not lost with the medium. Sync flushes the drive.

use alloc::boxed::Box;
use alloc::vec;

use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::{Layout, Run};
use crate::store::{self, Class, Flags, Store};

/// Makes volume `new` the one in the drive, replacing `old` (`None` before the first).
pub type SwapVolumes = Box<dyn FnMut(&mut Store, usize, Option<usize>) -> Result<()>>;

struct Mvol {
    drive: [Store; 1],
    current: Option<usize>,
    swap: SwapVolumes,
}

/// A store of `volumes` volumes, each the size of `drive`, changed by `swap`.
pub fn create(drive: Store, volumes: usize, swap: SwapVolumes) -> Result<Store> {
    if volumes == 0 {
        return Err(Error::class("mvol", Errno::EINVAL));
    }
    let layout = Layout::new(vec![Run::new(0, drive.blocks()); volumes]);
    let block_size = drive.block_size();
    let flags = drive.flags().intersection(Flags::READONLY | Flags::HARD_READONLY);
    let class = Mvol { drive: [drive], current: None, swap };
    Store::new(Box::new(class), None, block_size, layout, flags)
}

impl Mvol {
    fn ensure_volume(&mut self, volume: usize) -> Result<()> {
        if self.current == Some(volume) {
            return Ok(());
        }
        if self.current.is_some() {
            // A drive that cannot flush at all leaves nothing more to do; a failed flush stops
            // the change so the caller learns of it while the volume is still in the drive.
            match self.drive[0].sync() {
                Err(e) if e.errno() != Errno::EOPNOTSUPP => return Err(Error::child("mvol", 0, e)),
                _ => {}
            }
        }
        (self.swap)(&mut self.drive[0], volume, self.current)?;
        self.current = Some(volume);
        Ok(())
    }
}

impl Class for Mvol {
    fn name(&self) -> &'static str {
        "mvol"
    }

    fn read(&mut self, addr: u64, index: usize, buf: &mut [u8]) -> Result<usize> {
        self.ensure_volume(index)?;
        self.drive[0].read(addr, buf).map_err(|e| Error::child("mvol", 0, e))
    }

    fn write(&mut self, addr: u64, index: usize, data: &[u8]) -> Result<usize> {
        self.ensure_volume(index)?;
        self.drive[0].write(addr, data).map_err(|e| Error::child("mvol", 0, e))
    }

    fn sync(&mut self) -> Result<()> {
        store::sync_children("mvol", &mut self.drive)
    }

    fn set_flags(&mut self, new: Flags, _layout: &Layout, _block_size: u32) -> Result<()> {
        store::set_children_flags("mvol", &mut self.drive, new)
    }

    fn clear_flags(&mut self, kill: Flags) -> Result<()> {
        store::clear_children_flags("mvol", &mut self.drive, kill)
    }

    fn children(&self) -> &[Store] {
        &self.drive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::DeviceCode;
    use crate::testing::CrashDisk;
    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use core::cell::Cell;

    /// A drive: the volume in it is the crash disk `inserted` names.
    struct Drive {
        volumes: Vec<Store>,
        inserted: Rc<Cell<usize>>,
    }

    impl Class for Drive {
        fn name(&self) -> &'static str {
            "drive"
        }
        fn read(&mut self, addr: u64, _index: usize, buf: &mut [u8]) -> Result<usize> {
            self.volumes[self.inserted.get()].read(addr, buf)
        }
        fn write(&mut self, addr: u64, _index: usize, data: &[u8]) -> Result<usize> {
            self.volumes[self.inserted.get()].write(addr, data)
        }
        fn sync(&mut self) -> Result<()> {
            self.volumes[self.inserted.get()].sync()
        }
    }

    fn multivolume(disks: &[CrashDisk]) -> Store {
        let inserted = Rc::new(Cell::new(0));
        let volumes = disks.iter().map(|d| d.open("fd0")).collect();
        let drive = Drive { volumes, inserted: inserted.clone() };
        let blocks = disks[0].durable().len() as u64 / 512;
        let drive = Store::new(Box::new(drive), None, 512, Layout::new(vec![Run::new(0, blocks)]), Flags::NONE).unwrap();
        let swap: SwapVolumes = Box::new(move |_drive, new, _old| {
            inserted.set(new);
            Ok(())
        });
        create(drive, disks.len(), swap).unwrap()
    }

    #[test]
    fn changing_volume_flushes_the_one_leaving_and_sync_flushes_the_drive() {
        let disks = [CrashDisk::new(4, 512), CrashDisk::new(4, 512)];
        let mut store = multivolume(&disks);
        assert_eq!(store.blocks(), 8);
        store.write(1, &[1; 512]).unwrap(); // volume 0
        store.write(5, &[2; 512]).unwrap(); // volume 1: volume 0 is flushed before it leaves
        assert_eq!((disks[0].flushes(), disks[1].flushes()), (1, 0));
        store.sync().unwrap();
        disks.iter().for_each(CrashDisk::crash);
        assert_eq!(disks[0].durable()[512..1024], [1; 512]);
        assert_eq!(disks[1].durable()[512..1024], [2; 512]);
    }

    #[test]
    fn without_sync_the_last_volume_loses_its_writes() {
        let disks = [CrashDisk::new(4, 512), CrashDisk::new(4, 512)];
        let mut store = multivolume(&disks);
        store.write(5, &[2; 512]).unwrap();
        disks[1].crash();
        assert_eq!(disks[1].durable()[512..1024], [0; 512]);
    }

    #[test]
    fn a_failed_flush_stops_the_volume_change_and_fails_sync() {
        let disks = [CrashDisk::new(4, 512), CrashDisk::new(4, 512)];
        let mut store = multivolume(&disks);
        store.write(0, &[1; 512]).unwrap();
        disks[0].fail_flushes_with(DeviceCode::IO_ERROR.0);
        assert_eq!(store.write(4, &[2; 512]).unwrap_err().errno(), Errno::EIO);
        let error = store.sync().unwrap_err();
        assert_eq!(error.errno(), Errno::EIO);
        assert!(matches!(error, Error::Children { class: "mvol", .. }));
        assert_eq!(disks[1].flushes(), 0);
    }
}
