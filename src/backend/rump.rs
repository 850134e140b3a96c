//! The Hurd's own driver stack: NetBSD's disk drivers in a rump kernel (AHCI, PIIX IDE, ATA,
//! SCSI, `wd`, `sd`, `cd`), reached through rump system calls on the raw devices.
//!
//! `wd0` is opened as `/dev/rwd0d` (the whole raw disk); its geometry comes from
//! `DIOCGSECTORSIZE` and `DIOCGMEDIASIZE`; `DEV_FLUSH_CACHE` becomes
//! `ioctl(fd, DIOCCACHESYNC, &1)`, which `wd` turns into ATA FLUSH CACHE (EXT) and `sd` into
//! SYNCHRONIZE CACHE. The rump kernel starts on the first open.

pub mod dma;
#[cfg(any(target_os = "hurd", test))]
pub mod ffi;
#[cfg(test)]
mod standin;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::CStr;

use dma::BounceMemory;
use spin::Once;

use mach::interfaces::device as device_iface;
use mach::port::PortName;

use super::{Backend, Disk, Geometry};
use crate::device::{mode, Access, Error, D_INVALID_RECNUM, D_IO_ERROR, D_NO_SUCH_DEVICE};

/// NetBSD's ioctl request encoding (`sys/ioccom.h`), which the rump kernel speaks whatever
/// the host's own encoding is.
const fn netbsd_ioctl(direction: u32, group: u8, number: u8, length: u32) -> u32 {
    direction | (length & 0x1FFF) << 16 | (group as u32) << 8 | number as u32
}
const IOC_OUT: u32 = 0x4000_0000;
const IOC_IN: u32 = 0x8000_0000;

/// `_IOR('d', 132, off_t)`: the media size in bytes.
pub const DIOCGMEDIASIZE: u32 = netbsd_ioctl(IOC_OUT, b'd', 132, 8);
/// `_IOR('d', 133, u_int)`: the sector size in bytes.
pub const DIOCGSECTORSIZE: u32 = netbsd_ioctl(IOC_OUT, b'd', 133, 4);
/// `_IOW('d', 118, int)`: flush the drive's write cache; the int is a "force" flag.
pub const DIOCCACHESYNC: u32 = netbsd_ioctl(IOC_IN, b'd', 118, 4);

/// NetBSD open flags.
pub const RUMP_O_RDONLY: i32 = 0;
pub const RUMP_O_WRONLY: i32 = 1;
pub const RUMP_O_RDWR: i32 = 2;

/// The rump system calls the backend makes. Errors are host errnos (already converted with
/// `rump_errno2host`, [`ffi::netbsd_errno_to_hurd`]). Implemented over the librump symbols by [`ffi::LinkedRump`].
pub trait RumpKernel: Clone + Send + Sync {
    fn init(&self) -> Result<(), Error>;
    /// Returns a rump file descriptor.
    fn open(&self, path: &CStr, flags: i32) -> Result<i32, Error>;
    /// Bytes read at `offset`, fewer only at the end of the device.
    fn pread(&self, fd: i32, buf: &mut [u8], offset: i64) -> Result<usize, Error>;
    fn pwrite(&self, fd: i32, data: &[u8], offset: i64) -> Result<usize, Error>;
    /// An ioctl whose argument is an `int`/`u_int` the kernel fills in.
    fn ioctl_read_u32(&self, fd: i32, request: u32) -> Result<u32, Error>;
    /// An ioctl whose argument is an `off_t` the kernel fills in.
    fn ioctl_read_i64(&self, fd: i32, request: u32) -> Result<i64, Error>;
    /// An ioctl whose argument is an `int` the kernel reads.
    fn ioctl_write_i32(&self, fd: i32, request: u32, value: i32) -> Result<(), Error>;
    fn close(&self, fd: i32);
}

/// The environment upstream's rumpdisk gives the rump kernel before starting it (its
/// `main.c`): one virtual CPU (the drivers' interrupt and I/O threads are serialised, which
/// they are tested with), a panic on a fatal error instead of a silent halt, a host name, and
/// the kernel's boot messages on the console. Set by the binary before any thread starts:
/// `rump_init` reads them, and changing the environment is not thread-safe.
pub const RUMP_ENVIRONMENT: [(&str, &str); 5] =
    [("RUMP_NCPU", "1"), ("RUMP_VERBOSE", "1"), ("RUMP_HOSTNAME", "HURD0"), ("HOSTNAME", "HURD0"), ("RUMP_PANIC", "1")];

/// The disk drivers of upstream's rumpdisk build (`wd`: ATA/AHCI disks, `cd`: ATAPI drives).
/// The USB build (rumpusbdisk: `sd`, `cd`) is not built here.
const DISK_DRIVERS: [&[u8]; 2] = [b"wd", b"cd"];

/// The kernel's own SATA disks: if it drives one, it drives the controllers, and starting
/// NetBSD's drivers on them too would have two drivers programming one device (upstream's
/// start-up probe).
const KERNEL_DISKS: [&[u8]; 4] = [b"sd0", b"sd1", b"sd2", b"sd3"];

/// Disks of a rump kernel, started on first use; `M` gives the bounce buffers of transfers
/// over memory NetBSD's DMA code mishandles (see [`dma`]).
pub struct RumpBackend<K, M> {
    kernel: K,
    memory: Arc<M>,
    started: Once<Result<(), Error>>,
    /// Off when the kernel drives the disk controllers: every name is forwarded.
    enabled: bool,
}

impl<K: RumpKernel, M: BounceMemory> RumpBackend<K, M> {
    pub fn new(kernel: K, memory: M) -> Self {
        RumpBackend { kernel, memory: Arc::new(memory), started: Once::new(), enabled: true }
    }

    /// As [`RumpBackend::new`], unless the kernel behind `master` already drives the disk
    /// controllers (it opens one of its own SATA disks): then the backend stays off and the
    /// rump kernel is never started.
    pub fn beside_kernel(kernel: K, memory: M, master: PortName) -> Self {
        let kernel_disk = KERNEL_DISKS.iter().find(|name| match device_iface::device_open(master, mode::READ, name) {
            Ok(device) => {
                let _ = device_iface::device_close(device.name());
                true
            }
            Err(_) => false,
        });
        if let Some(name) = kernel_disk {
            log::warn!("rumpdisk: the kernel drives {}: not starting the rump disk drivers", core::str::from_utf8(name).unwrap_or("?"));
        }
        RumpBackend { enabled: kernel_disk.is_none(), ..RumpBackend::new(kernel, memory) }
    }

    /// Starts the rump kernel (NetBSD's boot: every controller attached and probed) now, as
    /// upstream's rumpdisk does before it serves, rather than at the first open: a failure is
    /// told at start-up with the Hurd's errno, and no open spins while another starts it. Once
    /// only; nothing when the backend is off.
    pub fn start(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        *self.started.call_once(|| self.kernel.init())
    }
}

/// `wd0` → `/dev/rwd0d`: one of [`DISK_DRIVERS`] and a unit number; anything else is not a
/// rump disk (and is forwarded by the server before the rump kernel is started for it).
fn raw_device_path(name: &[u8]) -> Option<Vec<u8>> {
    let letters = name.iter().take_while(|b| b.is_ascii_lowercase()).count();
    let (driver, unit) = name.split_at(letters);
    let valid = DISK_DRIVERS.contains(&driver) && !unit.is_empty() && unit.len() <= 3;
    if !valid || !unit.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut path = Vec::with_capacity(name.len() + 8);
    path.extend_from_slice(b"/dev/r");
    path.extend_from_slice(name);
    path.extend_from_slice(b"d\0");
    Some(path)
}

fn open_flags(access: Access) -> i32 {
    match (access.read, access.write) {
        (true, true) => RUMP_O_RDWR,
        (false, true) => RUMP_O_WRONLY,
        _ => RUMP_O_RDONLY,
    }
}

impl<K: RumpKernel, M: BounceMemory> Backend for RumpBackend<K, M> {
    type Disk = RumpDisk<K, M>;

    fn open(&self, name: &[u8], access: Access) -> Result<RumpDisk<K, M>, Error> {
        let path = raw_device_path(name).filter(|_| self.enabled).ok_or(D_NO_SUCH_DEVICE)?;
        let path = CStr::from_bytes_with_nul(&path).map_err(|_| D_NO_SUCH_DEVICE)?;
        self.start()?;
        // Closed on every path from here, errors included (the C server leaked it).
        let descriptor = Descriptor { fd: self.kernel.open(path, open_flags(access))?, kernel: self.kernel.clone() };
        let sector_size = self.kernel.ioctl_read_u32(descriptor.fd, DIOCGSECTORSIZE)?;
        let media_size = self.kernel.ioctl_read_i64(descriptor.fd, DIOCGMEDIASIZE)?;
        let records = u64::try_from(media_size).map_err(|_| D_IO_ERROR)? / u64::from(sector_size.max(1));
        let geometry = Geometry::new(sector_size, records).ok_or(D_IO_ERROR)?;
        Ok(RumpDisk { descriptor, geometry, memory: self.memory.clone() })
    }
}

/// A rump file descriptor, closed on drop.
struct Descriptor<K: RumpKernel> {
    kernel: K,
    fd: i32,
}

impl<K: RumpKernel> Drop for Descriptor<K> {
    fn drop(&mut self) {
        self.kernel.close(self.fd);
    }
}

/// A disk's I/O error as the device interface names it (`D_IO_ERROR`, what GNU Mach's own
/// drivers and our native one answer, and what libstore's clients print as "hardware IO
/// error"); any other error passes as it is. Upstream's C rumpdisk answers the errno.
fn device_error(error: Error) -> Error {
    // EIO, which NetBSD's disk drivers return for a failed transfer or cache flush.
    if error == crate::errno::EIO {
        D_IO_ERROR
    } else {
        error
    }
}

/// An open raw rump device.
pub struct RumpDisk<K: RumpKernel, M> {
    descriptor: Descriptor<K>,
    geometry: Geometry,
    memory: Arc<M>,
}

impl<K: RumpKernel, M> RumpDisk<K, M> {
    fn offset(&self, record: u64, done: usize) -> Result<i64, Error> {
        record
            .checked_mul(u64::from(self.geometry.record_size()))
            .and_then(|start| start.checked_add(done as u64))
            .and_then(|offset| i64::try_from(offset).ok())
            .ok_or(D_INVALID_RECNUM)
    }
}

impl<K: RumpKernel, M: BounceMemory> Disk for RumpDisk<K, M> {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Through [`dma::read`]: page by page, or through a bounce buffer.
    fn read(&self, record: u64, buf: &mut [u8]) -> Result<(), Error> {
        dma::read(&*self.memory, buf, |part, at| {
            let mut done = 0;
            while done < part.len() {
                match self.descriptor.kernel.pread(self.descriptor.fd, &mut part[done..], self.offset(record, at + done)?).map_err(device_error)? {
                    0 => return Err(D_IO_ERROR), // the device ended before its reported size
                    n => done += n,
                }
            }
            Ok(())
        })
    }

    /// Through [`dma::write`]: page by page, or through a bounce buffer.
    fn write(&self, record: u64, data: &[u8]) -> Result<(), Error> {
        dma::write(&*self.memory, data, |part, at| {
            let mut done = 0;
            while done < part.len() {
                match self.descriptor.kernel.pwrite(self.descriptor.fd, &part[done..], self.offset(record, at + done)?).map_err(device_error)? {
                    0 => return Err(D_IO_ERROR),
                    n => done += n,
                }
            }
            Ok(())
        })
    }

    fn flush(&self) -> Result<(), Error> {
        // force = 1: `sd` only flushes a clean cache when forced.
        self.descriptor.kernel.ioctl_write_i32(self.descriptor.fd, DIOCCACHESYNC, 1).map_err(device_error)
    }

    fn read_out_of_line(&self, record: u64, len: usize) -> core::result::Result<mach::ool::OolMemory, crate::device::Error> {
        crate::backend::read_into_fresh(self, record, len)
    }

    fn write_out_of_line(&self, record: u64, data: mach::ool::OolMemory) -> core::result::Result<(), crate::device::Error> {
        self.write(record, data.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::ffi::LinkedRump;
    use super::standin::{self, Call, RecordedBounce, Script};
    use super::*;
    use std::string::ToString;
    use std::vec;

    const RW: Access = Access { read: true, write: true };

    type Rump = RumpBackend<LinkedRump, RecordedBounce>;

    fn open_wd0(backend: &Rump, access: Access) -> Result<RumpDisk<LinkedRump, RecordedBounce>, Error> {
        backend.open(b"wd0", access)
    }

    #[test]
    fn ioctl_numbers_are_netbsds() {
        assert_eq!(DIOCCACHESYNC, 0x8004_6476);
        assert_eq!(DIOCGMEDIASIZE, 0x4008_6484);
        assert_eq!(DIOCGSECTORSIZE, 0x4004_6485);
    }

    #[test]
    fn names_map_to_raw_whole_disk_devices() {
        assert_eq!(raw_device_path(b"wd0").as_deref(), Some(&b"/dev/rwd0d\0"[..]));
        assert_eq!(raw_device_path(b"cd12").as_deref(), Some(&b"/dev/rcd12d\0"[..]));
        let not_disks = [&b"eth0"[..], b"hd0", b"com0", b"sd0", b"rd0", b"console", b"wdc0"];
        for bad in not_disks.into_iter().chain([&b""[..], b"0", b"wd", b"wd0s1", b"wd\0", b"WD0", b"wd1234", b"../wd0"]) {
            assert_eq!(raw_device_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn other_names_are_refused_at_once_without_starting_rump() {
        standin::reset(Script::default());
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        for name in [&b"eth0"[..], b"hd0", b"com0", b"sd0"] {
            assert_eq!(backend.open(name, RW).err(), Some(D_NO_SUCH_DEVICE), "{name:?}: forwarded by the server");
        }
        assert!(standin::calls().is_empty(), "no rump kernel started, no device probed");
    }

    #[test]
    fn the_environment_is_upstream_s() {
        let environment: std::collections::BTreeMap<_, _> = RUMP_ENVIRONMENT.into_iter().collect();
        assert_eq!(environment["RUMP_NCPU"], "1");
        assert_eq!(environment["RUMP_PANIC"], "1");
        assert_eq!(environment["RUMP_VERBOSE"], "1");
        assert_eq!(environment["RUMP_HOSTNAME"], "HURD0");
        assert_eq!(environment["HOSTNAME"], "HURD0");
    }

    /// A kernel device master that has the disks `names` (a device server over memory disks).
    fn kernel_master(names: &[&[u8]]) -> (std::sync::Arc<crate::device_server::DeviceServer<crate::backend::memory::MemoryBackend>>, PortName) {
        let mut disks = crate::backend::memory::MemoryBackend::default();
        for name in names {
            disks.add(name, Geometry::new(512, 8).unwrap()).unwrap();
        }
        let server = std::sync::Arc::new(crate::device_server::DeviceServer::new(disks, None).unwrap());
        let master = server.master().make_send().unwrap().into_name();
        let serving = server.clone();
        mach::sim::Task::current().spawn(move || serving.serve());
        (server, master)
    }

    #[test]
    fn rump_stays_off_when_the_kernel_drives_the_disks() {
        standin::reset(Script::default());
        let (kernel, master) = kernel_master(&[b"hd0", b"sd2"]);
        let backend = RumpBackend::beside_kernel(LinkedRump, RecordedBounce, master);
        assert_eq!(kernel.core().open_devices(), 0, "the probe closed what it opened");
        assert_eq!(open_wd0(&backend, RW).err(), Some(D_NO_SUCH_DEVICE), "forwarded: the kernel's device");
        assert_eq!(backend.start(), Ok(()));
        assert!(standin::calls().is_empty(), "rump never started");
        let (_, master) = kernel_master(&[b"hd0"]);
        let backend = RumpBackend::beside_kernel(LinkedRump, RecordedBounce, master);
        assert!(open_wd0(&backend, RW).is_ok(), "no kernel SATA disk: rump drives wd0");
    }

    #[test]
    fn open_starts_rump_once_and_reads_the_geometry() {
        standin::reset(Script::default());
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        assert!(standin::calls().is_empty(), "rump starts lazily");
        let disk = open_wd0(&backend, RW).unwrap();
        assert_eq!(disk.geometry(), Geometry::new(512, 64).unwrap());
        let _read_only = open_wd0(&backend, Access { read: true, write: false }).unwrap();
        let _write_only = open_wd0(&backend, Access { read: false, write: true }).unwrap();
        let open = |flags| Call::Open { path: "/dev/rwd0d".to_string(), flags };
        let sizes = [
            Call::Ioctl { fd: 7, request: u64::from(DIOCGSECTORSIZE), argument: None },
            Call::Ioctl { fd: 7, request: u64::from(DIOCGMEDIASIZE), argument: None },
        ];
        let mut expected = vec![Call::Init, open(RUMP_O_RDWR)];
        expected.extend(sizes.clone());
        expected.push(open(RUMP_O_RDONLY));
        expected.extend(sizes.clone());
        expected.push(open(RUMP_O_WRONLY));
        expected.extend(sizes);
        assert_eq!(standin::calls(), expected);
    }

    #[test]
    fn flush_is_diocachesync_with_force_and_errors_go_through_errno2host() {
        standin::reset(Script::default());
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        let disk = open_wd0(&backend, RW).unwrap();
        disk.flush().unwrap();
        let sync = Call::Ioctl { fd: 7, request: 0x8004_6476, argument: Some(1) };
        assert_eq!(standin::calls().last(), Some(&sync));
        standin::reset(Script { fail: Some((|call| matches!(call, Call::Ioctl { request: 0x8004_6476, .. }), 35)), ..Script::default() });
        assert_eq!(disk.flush(), Err(Error::new(0x4000_0023).unwrap()), "NetBSD's EAGAIN (35) became the Hurd's");
        standin::reset(Script { fail: Some((|call| matches!(call, Call::Ioctl { request: 0x8004_6476, .. }), 5)), ..Script::default() });
        assert_eq!(disk.flush(), Err(D_IO_ERROR), "the drive's failed flush (NetBSD's EIO) is the device interface's I/O error");
        drop(disk);
        assert_eq!(standin::calls().last(), Some(&Call::Close { fd: 7 }));
    }

    /// NetBSD's numbers as the Hurd's glibc names them: equal to 81, apart from there on.
    #[test]
    fn netbsd_errnos_become_the_hurds() {
        use super::ffi::netbsd_errno_to_hurd as hurd;
        assert_eq!(hurd(0), 0);
        assert_eq!(hurd(1), 0x4000_0001, "EPERM");
        assert_eq!(hurd(5), 0x4000_0005, "EIO");
        assert_eq!(hurd(35), 0x4000_0023, "EAGAIN");
        assert_eq!(hurd(81), 0x4000_0051, "ENEEDAUTH");
        assert_eq!(hurd(82), 0x4000_006c, "EIDRM");
        assert_eq!(hurd(86), 0x4000_0076, "ENOTSUP");
        assert_eq!(hurd(96), 0x4000_0074, "EPROTO");
        for unnamed in [93, 97, 1000, -1] {
            assert_eq!(hurd(unnamed), 0x4000_0016, "{unnamed} is EINVAL, as rump_errno2host's default");
        }
    }

    #[test]
    fn a_failing_size_ioctl_closes_the_descriptor() {
        for failing in [
            (|call: &Call| matches!(call, Call::Ioctl { request: 0x4008_6484, .. })) as fn(&Call) -> bool,
            |call: &Call| matches!(call, Call::Ioctl { request: 0x4004_6485, .. }),
        ] {
            standin::reset(Script { fail: Some((failing, 19)), ..Script::default() });
            let backend = RumpBackend::new(LinkedRump, RecordedBounce);
            assert_eq!(open_wd0(&backend, RW).err(), Some(Error::new(0x4000_0013).unwrap()), "ENODEV");
            assert_eq!(standin::calls().last(), Some(&Call::Close { fd: 7 }), "no descriptor leaked");
        }
        standin::reset(Script { media_size: -1, ..Script::default() });
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        assert_eq!(open_wd0(&backend, RW).err(), Some(D_IO_ERROR));
        assert_eq!(standin::calls().last(), Some(&Call::Close { fd: 7 }));
    }

    #[test]
    fn start_boots_the_kernel_once_before_any_open() {
        standin::reset(Script::default());
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        assert_eq!(backend.start(), Ok(()));
        assert_eq!(standin::calls(), [Call::Init]);
        assert_eq!(backend.start(), Ok(()));
        open_wd0(&backend, RW).unwrap();
        assert_eq!(standin::calls().iter().filter(|call| **call == Call::Init).count(), 1, "started once");
        standin::reset(Script { fail: Some((|call| *call == Call::Init, 5)), ..Script::default() });
        let failing = RumpBackend::new(LinkedRump, RecordedBounce);
        assert_eq!(failing.start(), Err(Error::new(0x4000_0005).unwrap()), "rump_init's EIO, told at start");
    }

    #[test]
    fn a_failed_start_or_open_is_reported_and_not_retried_blindly() {
        standin::reset(Script { fail: Some((|call| *call == Call::Init, 5)), ..Script::default() });
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        assert_eq!(open_wd0(&backend, RW).err(), Some(Error::new(0x4000_0005).unwrap()), "rump_init's EIO");
        assert_eq!(open_wd0(&backend, RW).err(), Some(Error::new(0x4000_0005).unwrap()));
        assert_eq!(standin::calls(), [Call::Init], "rump_init runs once");
        standin::reset(Script { fail: Some((|call| matches!(call, Call::Open { .. }), 6)), ..Script::default() });
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        assert_eq!(open_wd0(&backend, RW).err(), Some(Error::new(0x4000_0006).unwrap()), "ENXIO");
        assert!(!standin::calls().contains(&Call::Close { fd: 7 }), "nothing to close");
    }

    #[test]
    fn transfers_are_whole_and_continue_after_short_counts() {
        standin::reset(Script { max_transfer: 1024, ..Script::default() });
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        let disk = open_wd0(&backend, RW).unwrap();
        let data: Vec<u8> = (0..4096).map(|i| i as u8).collect();
        disk.write(2, &data).unwrap();
        assert!(standin::data()[1024..5120] == data[..]);
        let mut back = vec![0; 4096];
        disk.read(2, &mut back).unwrap();
        assert!(back == data);
        let pwrites: Vec<_> = standin::calls().into_iter().filter(|c| matches!(c, Call::Pwrite { .. })).collect();
        assert_eq!(pwrites[0], Call::Pwrite { fd: 7, len: 4096, offset: 1024 });
        assert_eq!(pwrites[3], Call::Pwrite { fd: 7, len: 1024, offset: 4096 });
        standin::reset(Script { media_size: 64 * 512, data: vec![0; 512], ..Script::default() });
        assert_eq!(disk.read(1, &mut [0; 512]), Err(D_IO_ERROR), "device shorter than reported");
    }

    /// The transfers (length, offset) and bounce buffers the stand-in saw.
    fn transfers() -> Vec<Call> {
        standin::calls().into_iter().filter(|c| matches!(c, Call::Pread { .. } | Call::Pwrite { .. } | Call::Bounce { .. })).collect()
    }

    #[test]
    fn page_aligned_buffers_go_page_by_page_and_others_through_one_contiguous_bounce_buffer() {
        use mach::ool::OolMemory;
        standin::reset(Script::default());
        let backend = RumpBackend::new(LinkedRump, RecordedBounce);
        let disk = open_wd0(&backend, RW).unwrap();
        // Page-aligned (out-of-line memory, as device_read and device_write carry): no page
        // crosses a transfer, and no bounce buffer.
        let mut aligned = OolMemory::new(3 * dma::PAGE_SIZE + 512).unwrap();
        aligned.as_mut_slice().iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
        standin::reset(Script::default());
        disk.write(2, aligned.as_slice()).unwrap();
        let pages = |make: fn(i32, usize, i64) -> Call| {
            [(4096, 1024), (4096, 5120), (4096, 9216), (512, 13312)].map(|(len, offset)| make(7, len, offset)).to_vec()
        };
        let pwrite = |fd, len, offset| Call::Pwrite { fd, len, offset };
        let pread = |fd, len, offset| Call::Pread { fd, len, offset };
        assert_eq!(transfers(), pages(pwrite));
        assert!(standin::data()[1024..1024 + aligned.len()] == *aligned.as_slice());
        let mut back = OolMemory::new(aligned.len()).unwrap();
        standin::reset(Script { data: standin::data(), ..Script::default() });
        disk.read(2, back.as_mut_slice()).unwrap();
        assert_eq!(transfers(), pages(pread));
        assert!(back.as_slice() == aligned.as_slice());
        // Not page-aligned (a part of a record, an inline buffer): copied through one bounce
        // buffer, one transfer.
        standin::reset(Script::default());
        disk.write(1, &aligned.as_slice()[8..8 + 1024]).unwrap();
        assert_eq!(transfers(), [Call::Bounce { len: 1024 }, Call::Pwrite { fd: 7, len: 1024, offset: 512 }]);
        assert!(standin::data()[512..1536] == aligned.as_slice()[8..1032]);
        standin::reset(Script { data: standin::data(), ..Script::default() });
        let mut unaligned = OolMemory::new(2048).unwrap();
        disk.read(1, &mut unaligned.as_mut_slice()[8..8 + 1024]).unwrap();
        assert_eq!(transfers(), [Call::Bounce { len: 1024 }, Call::Pread { fd: 7, len: 1024, offset: 512 }]);
        assert!(unaligned.as_slice()[8..1032] == aligned.as_slice()[8..1032]);
    }
}
