//! Out-of-line memory: whole pages the kernel mapped into this task, owned until dropped.
//! Memory that only a kernel call gives (physically contiguous, or a device's registers) is made
//! in `vm.rs`, above the generated stubs.

use crate::kern::{self, Error, Result, KERN_INVALID_ARGUMENT};
use crate::sys;

/// The page size of the kernels this runs on: out-of-line memory moves in whole pages of it.
pub const PAGE_SIZE: usize = 4096;

/// Out-of-line memory received in a message (or allocated to be sent); `vm_deallocate`d on
/// drop. `len` is the data length; the mapping covers it rounded up to whole pages.
#[derive(Debug)]
pub struct OolMemory {
    address: usize,
    len: usize,
}

impl OolMemory {
    /// Fresh zeroed memory of `len` bytes, e.g. to fill and send with the deallocate bit.
    pub fn new(len: usize) -> Result<OolMemory> {
        if len == 0 {
            return Ok(OolMemory { address: 0, len: 0 });
        }
        let mut address = 0;
        kern::check(sys::vm_allocate(sys::mach_task_self(), &mut address, len, true))?;
        Ok(OolMemory { address, len })
    }

    /// A copy of `data` in fresh memory.
    pub fn copy_from(data: &[u8]) -> Result<OolMemory> {
        let mut memory = OolMemory::new(data.len())?;
        memory.as_mut_slice().copy_from_slice(data);
        Ok(memory)
    }

    /// Take ownership of `len` bytes at `address` that the kernel delivered out of line in a
    /// message just received (the generated reply and request decoders are the only callers).
    /// Refuses a null address with a non-zero length.
    pub(crate) fn adopt(address: usize, len: usize) -> Result<OolMemory> {
        if address == 0 && len != 0 {
            return Err(Error::from_const(KERN_INVALID_ARGUMENT));
        }
        Ok(OolMemory { address, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the region is mapped, owned by `self` and at least `len` bytes long.
        unsafe { core::slice::from_raw_parts(self.address as *const u8, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: the region is mapped, owned exclusively by `self` and at least `len` bytes long.
        unsafe { core::slice::from_raw_parts_mut(self.address as *mut u8, self.len) }
    }

    /// Give up ownership: `(address, len)`, e.g. to send the region with the deallocate bit.
    pub fn into_raw(self) -> (usize, usize) {
        let raw = (self.address, self.len);
        core::mem::forget(self);
        raw
    }
}

impl Drop for OolMemory {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: the region is owned by `self` and no slice of it outlives `self`.
        let code = unsafe { sys::vm_deallocate(sys::mach_task_self(), self.address, self.len) };
        if let Err(error) = kern::check(code) {
            log::debug!("vm_deallocate({:#x}, {}): {:?}", self.address, self.len, error);
        }
    }
}

#[cfg(all(test, not(any(target_os = "none", target_os = "hurd"))))]
mod tests {
    use super::*;
    use crate::sim::Task;

    #[test]
    fn memory_is_released_on_drop_and_kept_by_into_raw() {
        let task = Task::current();
        let before = task.stats();
        let memory = OolMemory::copy_from(b"out of line").unwrap();
        assert_eq!(memory.as_slice(), b"out of line");
        assert_eq!(task.stats().regions, before.regions + 1);
        drop(memory);
        assert_eq!(task.stats(), before);

        let (address, len) = OolMemory::new(5000).unwrap().into_raw();
        assert_eq!(task.stats().region_bytes, before.region_bytes + 8192);
        drop(OolMemory::adopt(address, len).unwrap());
        assert_eq!(task.stats(), before);
    }

    #[test]
    fn empty_memory_owns_nothing_and_null_with_length_is_refused() {
        let memory = OolMemory::new(0).unwrap();
        assert!(memory.is_empty() && memory.as_slice().is_empty());
        assert_eq!(OolMemory::adopt(0, 4).unwrap_err().code(), KERN_INVALID_ARGUMENT);
    }
}
