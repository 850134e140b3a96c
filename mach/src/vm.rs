//! Memory only a kernel call gives: physically contiguous memory for a device that reads and
//! writes by physical address, and a device's registers mapped from GNU Mach's `mem` device.
//! Both are messages built by the generated stubs, so they sit above them (plain out-of-line
//! memory, which the stubs carry, is `ool.rs`, below).

use crate::constants::{D_READ, D_WRITE};
use crate::interfaces::{device, gnumach, mach};
use crate::kern::{self, Error, Result, KERN_INVALID_ARGUMENT};
use crate::ool::{OolMemory, PAGE_SIZE};
use crate::port::PortName;
use crate::sys;

impl OolMemory {
    /// Memory of `len` bytes, physically contiguous, wired and wholly below the physical address
    /// `limit` (gnumach's `vm_allocate_contiguous`, asked with the host privileged port): for a
    /// device that reads or writes it by physical address in one piece. The kernel does not
    /// zero these pages: the first `len` bytes hold whatever the pages last held, and must be
    /// filled before they leave the task (the rest of the last page is cleared here).
    pub fn contiguous(host_priv: PortName, len: usize, limit: u64) -> Result<OolMemory> {
        if len == 0 {
            return OolMemory::new(0);
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
        let (address, physical) = gnumach::vm_allocate_contiguous(host_priv, task, size, 0, limit, 0)?;
        let address = usize::try_from(address).map_err(|_| invalid())?;
        let memory = OolMemory::adopt(address, len)?;
        let mapped = len.next_multiple_of(PAGE_SIZE);
        if mapped > len {
            // SAFETY: the kernel mapped whole pages, `mapped` bytes from `address`, owned by
            // `memory` and not yet shared.
            unsafe { core::ptr::write_bytes((address + len) as *mut u8, 0, mapped - len) };
        }
        Ok((memory, physical))
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
        let invalid = || Error::from_const(KERN_INVALID_ARGUMENT);
        let page = PAGE_SIZE as u64;
        let first = physical / page * page;
        let end = physical.checked_add(len as u64).and_then(|end| end.checked_next_multiple_of(page)).ok_or_else(invalid)?;
        let mem = device::device_open(device_master, D_READ | D_WRITE, b"mem")?;
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

#[cfg(all(test, not(any(target_os = "none", target_os = "hurd"))))]
mod tests {
    use super::*;
    use crate::sim::Task;

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
}
