//! Out-of-line memory: whole pages the kernel mapped into this task, owned until dropped.

use crate::kern::{self, Error, Result, KERN_INVALID_ARGUMENT};
use crate::port::PortName;
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

    /// Memory of `len` bytes, physically contiguous, wired and wholly below the physical address
    /// `limit` (gnumach's `vm_allocate_contiguous`, asked with the host privileged port): for a
    /// device that reads or writes it by physical address in one piece. The kernel does not
    /// zero these pages: the first `len` bytes hold whatever the pages last held, and must be
    /// filled before they leave the task (the rest of the last page is cleared here).
    pub fn contiguous(host_priv: PortName, len: usize, limit: u64) -> Result<OolMemory> {
        if len == 0 {
            return Ok(OolMemory { address: 0, len: 0 });
        }
        Self::contiguous_at(host_priv, len, limit).map(|(memory, _physical)| memory)
    }

    /// As [`contiguous`](Self::contiguous), with the physical address of its first byte, for a
    /// device told where the memory is; `len` must not be 0.
    pub fn contiguous_at(host_priv: PortName, len: usize, limit: u64) -> Result<(OolMemory, u64)> {
        let invalid = || Error::from_const(KERN_INVALID_ARGUMENT);
        if len == 0 {
            return Err(invalid());
        }
        let task = PortName::new(sys::mach_task_self());
        let size = len.try_into().map_err(|_| invalid())?;
        let (address, physical) = crate::interfaces::gnumach::vm_allocate_contiguous(host_priv, task, size, 0, limit, 0)?;
        let memory = OolMemory { address: usize::try_from(address).map_err(|_| invalid())?, len };
        let mapped = len.next_multiple_of(PAGE_SIZE);
        if mapped > len {
            // SAFETY: the kernel mapped whole pages, `mapped` bytes from `address`, owned by
            // `memory` and not yet shared.
            unsafe { core::ptr::write_bytes((memory.address + len) as *mut u8, 0, mapped - len) };
        }
        Ok((memory, physical))
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

/// Physical memory that is not RAM (a PCI device's registers) mapped into this task from GNU
/// Mach's `mem` device: `device_map` of the device gives its pager, whose offsets are physical
/// addresses (gnumach's `memmmap` refuses RAM), and `vm_map` maps the pages at an offset. GNU
/// Mach's `pmap_enter` maps pages outside physical memory uncached and write-through, as device
/// registers need. Unmapped when dropped.
#[derive(Debug)]
pub struct DeviceMemory {
    /// The mapping's first page.
    mapped: usize,
    mapped_len: usize,
    /// `physical`'s place in the mapping.
    offset: usize,
}

/// `mach/vm_prot.h` and `mach/vm_inherit.h`.
const VM_PROT_READ_WRITE: i32 = 0x1 | 0x2;
const VM_INHERIT_NONE: i32 = 2;

impl DeviceMemory {
    /// Maps `len` bytes from `physical` through `device_master` (the kernel's, so `mem` is
    /// GNU Mach's own device).
    #[allow(clippy::useless_conversion)] // offsets and sizes are u32 on i686
    pub fn map(device_master: PortName, physical: u64, len: usize) -> Result<DeviceMemory> {
        use crate::interfaces::{device, mach};
        let invalid = || Error::from_const(KERN_INVALID_ARGUMENT);
        let page = PAGE_SIZE as u64;
        let first = physical / page * page;
        let end = physical.checked_add(len as u64).and_then(|end| end.checked_next_multiple_of(page)).ok_or_else(invalid)?;
        let mem = device::device_open(device_master, crate::constants::D_READ | crate::constants::D_WRITE, b"mem")?;
        // GNU Mach 1.x ignores device_map's offset and size (libstore's dev_map says so): the
        // offset goes to vm_map. The memory object outlives the device port.
        let pager = device::device_map(mem.name(), VM_PROT_READ_WRITE, 0, end.try_into().map_err(|_| invalid())?, 0)?;
        let task = PortName::new(sys::mach_task_self());
        let size = end - first;
        let address = mach::vm_map(
            task,
            0,
            size.try_into().map_err(|_| invalid())?,
            0,
            true,
            pager.name(),
            first.try_into().map_err(|_| invalid())?,
            false,
            VM_PROT_READ_WRITE,
            VM_PROT_READ_WRITE,
            VM_INHERIT_NONE,
        )?;
        Ok(DeviceMemory {
            mapped: usize::try_from(address).map_err(|_| invalid())?,
            mapped_len: usize::try_from(size).map_err(|_| invalid())?,
            offset: (physical - first) as usize,
        })
    }

    /// The address `physical` is mapped at; `len` bytes from it stay mapped while `self` lives.
    pub fn base(&self) -> *mut u8 {
        (self.mapped + self.offset) as *mut u8
    }
}

impl Drop for DeviceMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by `self`; pointers from `base` do not outlive it.
        let code = unsafe { sys::vm_deallocate(sys::mach_task_self(), self.mapped, self.mapped_len) };
        if let Err(error) = kern::check(code) {
            log::debug!("vm_deallocate({:#x}, {}): {:?}", self.mapped, self.mapped_len, error);
        }
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
    use crate::sys::sim::Task;

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

    /// GNU Mach's `vm_allocate_contiguous` as it behaves: whole pages, not zeroed (here they
    /// hold a stale byte, as reused physical memory would).
    struct StaleHost;

    const STALE: u8 = 0xA5;

    impl crate::interfaces::gnumach::Server for StaleHost {
        fn vm_allocate_contiguous(
            &mut self,
            _reply_to: crate::mig_rt::ReplyPort<'_>,
            _host_priv: PortName,
            target_task: crate::port::SendRight,
            size: u64,
            _pmin: u64,
            _pmax: u64,
            _palign: u64,
        ) -> Result<(u64, u64)> {
            let address = crate::interfaces::mach::vm_allocate(target_task.name(), 0, size, true)?;
            let pages = (size as usize).next_multiple_of(PAGE_SIZE);
            let mut stale = OolMemory::adopt(address as usize, pages)?;
            stale.as_mut_slice().fill(STALE);
            let _ = stale.into_raw();
            Ok((address, 0x20_0000))
        }
    }

    /// Memory handed to a client out of line is whole pages: past a reply's length, in its last
    /// page, the client must find zeros, never what the kernel's contiguous memory held before
    /// (another task's data). Read here through a second view of the whole page.
    #[test]
    fn contiguous_memory_past_its_length_is_zero_in_its_last_page() {
        let host = crate::port::ReceiveRight::new().unwrap();
        let host_name = host.name();
        let _send = host.make_send().unwrap();
        Task::current().spawn(move || {
            let _host = host;
            crate::msg::serve(host_name, &mut |request: &[u8], reply: &mut [u8]| {
                crate::interfaces::gnumach::demux(&mut StaleHost, request, reply).disposition()
            })
        });
        for len in [1, 512, 4095, 4096, 4097, 3 * 4096 - 512] {
            let (memory, physical) = OolMemory::contiguous_at(host_name, len, u64::MAX).unwrap();
            assert_eq!((memory.len(), physical), (len, 0x20_0000));
            // What the device would fill: left as the kernel gave it.
            assert!(memory.as_slice().iter().all(|&b| b == STALE), "{len}: the data part is the device's to fill");
            let (address, _) = memory.into_raw();
            let pages = len.next_multiple_of(PAGE_SIZE);
            let whole = OolMemory::adopt(address, pages).unwrap();
            let tail = &whole.as_slice()[len..];
            assert!(tail.iter().all(|&b| b == 0), "{len}: {} stale bytes past the length", tail.iter().filter(|&&b| b != 0).count());
        }
    }

    #[test]
    fn empty_memory_owns_nothing_and_null_with_length_is_refused() {
        let memory = OolMemory::new(0).unwrap();
        assert!(memory.is_empty() && memory.as_slice().is_empty());
        assert_eq!(OolMemory::adopt(0, 4).unwrap_err().code(), KERN_INVALID_ARGUMENT);
    }
}
