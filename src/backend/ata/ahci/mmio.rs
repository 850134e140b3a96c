//! The only accesses to an AHCI controller's memory-mapped registers: ABAR mapped from GNU
//! Mach's `mem` device (uncached: GNU Mach maps pages outside RAM with caching disabled), read
//! and written a 32-bit register at a time with volatile accesses.

use mach::vm::DeviceMemory;
use mach::port::PortName;

use super::{reg, Hba};

/// The HBA's registers, mapped.
pub struct MappedHba {
    registers: DeviceMemory,
}

impl MappedHba {
    /// Maps the registers at physical `abar` through `device_master`.
    pub fn map(device_master: PortName, abar: u64) -> mach::kern::Result<MappedHba> {
        Ok(MappedHba { registers: DeviceMemory::map(device_master, abar, reg::ABAR_BYTES)? })
    }

    fn register(&self, offset: u32) -> *mut u32 {
        assert!((offset as usize) + 4 <= reg::ABAR_BYTES && offset.is_multiple_of(4), "AHCI register {offset:#x}");
        // In bounds of the mapping, as just checked.
        self.registers.base().wrapping_add(offset as usize).cast()
    }
}

impl Hba for MappedHba {
    fn read(&mut self, offset: u32) -> u32 {
        // SAFETY: `register` points at an aligned register inside the live mapping of ABAR.
        unsafe { self.register(offset).read_volatile() }
    }

    fn write(&mut self, offset: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe { self.register(offset).write_volatile(value) }
    }
}
