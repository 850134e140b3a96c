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
