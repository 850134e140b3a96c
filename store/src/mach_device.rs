//! The device class's RPCs over the generated `device` client stubs (`mach::interfaces::device`):
//! the real [`DeviceMaster`] and [`DevicePort`], on GNU Mach and on the host's simulated kernel.

use alloc::boxed::Box;
use alloc::vec::Vec;

use mach::interfaces::device as rpc;
use mach::port::SendRight;

use crate::class::device::{DeviceMaster, DevicePort, ReturnCode};
use crate::errno::DeviceCode;

/// A send right to a port that answers `device_open`: the kernel's device master, or a
/// translator (rumpdisk) standing in for it.
pub struct MachDeviceMaster(SendRight);

impl MachDeviceMaster {
    pub fn new(master: SendRight) -> MachDeviceMaster {
        MachDeviceMaster(master)
    }
}

impl DeviceMaster for MachDeviceMaster {
    fn open(&self, mode: u32, name: &str) -> Result<Box<dyn DevicePort>, ReturnCode> {
        let device = rpc::device_open(self.0.name(), mode, name.as_bytes()).map_err(|e| e.code())?;
        Ok(device_port(device))
    }
}

/// The device class's endpoint for an open device's port, however it was had: from
/// `device_open`, or in a storage-info answer (`query:` on a storeio node).
pub fn device_port(device: SendRight) -> Box<dyn DevicePort> {
    Box::new(MachDevice(device))
}

/// An open device; dropping it releases the send right (the server then sees no senders).
struct MachDevice(SendRight);

/// `recnum_t` is 64-bit on x86_64 and 32-bit on i686.
fn recnum_of<R: TryFrom<u64>>(recnum: u64) -> Result<R, ReturnCode> {
    R::try_from(recnum).map_err(|_| DeviceCode::INVALID_RECNUM.0)
}

impl DevicePort for MachDevice {
    fn read(&self, recnum: u64, buf: &mut [u8]) -> Result<usize, ReturnCode> {
        // One request asks for what an `int` can say; the class asks again for the rest.
        let wanted = i32::try_from(buf.len()).unwrap_or(i32::MAX & !0xfff);
        let data = rpc::device_read(self.0.name(), 0, recnum_of(recnum)?, wanted).map_err(|e| e.code())?;
        let got = data.len().min(buf.len());
        buf[..got].copy_from_slice(&data.as_slice()[..got]);
        Ok(got)
    }

    fn write(&self, recnum: u64, data: &[u8]) -> Result<usize, ReturnCode> {
        let data = &data[..data.len().min(i32::MAX as usize & !0xfff)];
        let written = rpc::device_write(self.0.name(), 0, recnum_of(recnum)?, data).map_err(|e| e.code())?;
        // A negative count is no count: report the write as failed rather than guess.
        usize::try_from(written).map_err(|_| DeviceCode::IO_ERROR.0)
    }

    fn get_status(&self, flavor: u32, capacity: usize) -> Result<Vec<i32>, ReturnCode> {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        let status = rpc::device_get_status(self.0.name(), flavor, capacity).map_err(|e| e.code())?;
        Ok(status.as_slice().to_vec())
    }

    fn set_status(&self, flavor: u32, status: &[i32]) -> Result<(), ReturnCode> {
        rpc::device_set_status(self.0.name(), flavor, status).map_err(|e| e.code())
    }

    fn port_name(&self) -> u32 {
        self.0.name().raw()
    }
}

#[cfg(test)]
mod tests {
    use crate::class::device::{D_READ, D_WRITE, DEV_FLUSH_CACHE, DEV_GET_RECORDS, DEV_GET_SIZE, DEV_STATUS_MAX};
    use crate::errno::DeviceCode;
    use mach::constants as header;

    /// The store's own copies (it builds without `mach`) against gnumach's headers.
    #[test]
    fn constants_match_gnumach_headers() {
        let codes = [
            (DeviceCode::IO_ERROR, header::D_IO_ERROR),
            (DeviceCode::WOULD_BLOCK, header::D_WOULD_BLOCK),
            (DeviceCode::NO_SUCH_DEVICE, header::D_NO_SUCH_DEVICE),
            (DeviceCode::ALREADY_OPEN, header::D_ALREADY_OPEN),
            (DeviceCode::DEVICE_DOWN, header::D_DEVICE_DOWN),
            (DeviceCode::INVALID_OPERATION, header::D_INVALID_OPERATION),
            (DeviceCode::INVALID_RECNUM, header::D_INVALID_RECNUM),
            (DeviceCode::INVALID_SIZE, header::D_INVALID_SIZE),
            (DeviceCode::NO_MEMORY, header::D_NO_MEMORY),
            (DeviceCode::READ_ONLY, header::D_READ_ONLY),
        ];
        for (ours, theirs) in codes {
            assert_eq!(ours.0 as u32, theirs, "{ours}");
        }
        assert_eq!((D_READ, D_WRITE), (header::D_READ, header::D_WRITE));
        assert_eq!((DEV_GET_SIZE, DEV_GET_RECORDS), (header::DEV_GET_SIZE, header::DEV_GET_RECORDS));
        // Trixie's header has no DEV_FLUSH_CACHE (mach defines it then); sid's i386 one has.
        assert_eq!(Some(DEV_FLUSH_CACHE), header::DEV_FLUSH_CACHE_IN_HEADERS, "sid's gnumach-dev header");
        assert_eq!(DEV_STATUS_MAX as u32, header::DEV_STATUS_MAX);
    }
}
