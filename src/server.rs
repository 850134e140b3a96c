//! The device server's core, independent of message encoding: the open table, mode
//! enforcement, request checks, status flavors and flush merging over a [`Backend`].
//!
//! The adapter to the generated `device` server trait maps ports to [`DeviceId`]s and calls one
//! method here per routine; everything that decides an answer lives here.

mod extent;
mod status;

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use mach::ool::OolMemory;
use mach::sync::Mutex;

use crate::backend::{Backend, Disk};
use crate::device::{flavor, Access, Error, D_INVALID_OPERATION, D_NO_MEMORY, D_NO_SUCH_DEVICE};
use crate::flush::{self, FlushMerger, Waiter};

/// An open device as the server knows it (the adapter gives each one a port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub u32);

/// What `device_open` does with a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Served here (a second open of a name with the same access shares the device): the
    /// adapter hands out a send right to the device's port.
    Local { device: DeviceId },
    /// Not one of the backend's names (it answered `D_NO_SUCH_DEVICE`): the adapter forwards
    /// the open to the upstream device master, as libmachdev does.
    Forward,
    /// One of the backend's names, which it refused to open (say `D_READ_ONLY` for a
    /// read-write open): the adapter tries the upstream master too (as libmachdev does) and
    /// answers this when that fails as well.
    Refused(Error),
}

/// What `device_close` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// Other opens still use the device.
    StillOpen,
    /// That was the last open: the adapter destroys the device's port. The disk closes when
    /// requests still running on it end.
    Last,
}

/// The device server over backend `B`; `W` is how a deferred flush reply is answered.
pub struct Server<B: Backend, W> {
    backend: B,
    table: Mutex<Table<B::Disk, W>>,
    /// Devices whose flush requests gather (kept even if closed meanwhile, so that every
    /// request is answered).
    gathering: Mutex<Vec<SharedEntry<B::Disk, W>>>,
    /// Writes completed on every device: a flush request with none since the last good flush
    /// of its device needs no flush (see [`flush`]). Counted for the server, not per open, so
    /// that a write through another open of the same disk is seen.
    writes: AtomicU64,
}

struct Entry<D, W> {
    name: Vec<u8>,
    access: Access,
    disk: D,
    flush: Mutex<FlushMerger<W>>,
    /// Writes in progress: while one waits for its disk, its client's sync has not come yet,
    /// so the gathered flush waits for the write's end (see [`Server::has_gathered_flushes`]).
    writing: AtomicUsize,
}

/// An open device, held by the table and by requests running on it.
type SharedEntry<D, W> = Arc<Entry<D, W>>;

struct Table<D, W> {
    /// Each open device with its open count.
    devices: BTreeMap<DeviceId, (u32, Arc<Entry<D, W>>)>,
    next_id: u32,
}

impl<D, W> Table<D, W> {
    /// Counts another open of an existing device with the same name and access.
    fn share(&mut self, name: &[u8], access: Access) -> Option<DeviceId> {
        let (id, (opens, _)) = self
            .devices
            .iter_mut()
            .find(|(_, (_, entry))| entry.name == name && entry.access == access)?;
        *opens = opens.checked_add(1)?;
        Some(*id)
    }

    fn insert(&mut self, entry: Entry<D, W>) -> DeviceId {
        while self.devices.contains_key(&DeviceId(self.next_id)) {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = DeviceId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.devices.insert(id, (1, Arc::new(entry)));
        id
    }
}

impl<B: Backend, W: Waiter> Server<B, W> {
    pub fn new(backend: B) -> Self {
        Server {
            backend,
            table: Mutex::new(Table { devices: BTreeMap::new(), next_id: 1 }),
            gathering: Mutex::new(Vec::new()),
            writes: AtomicU64::new(0),
        }
    }

    /// The backend (for settings that change while the server runs).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// `device_open`: a second open of a name with the same access shares the device (counted);
    /// a different access gets a device of its own, so a read-only open can never write.
    pub fn open(&self, name: &[u8], mode: u32) -> Opened {
        let access = Access::from_mode(mode);
        if let Some(device) = self.table.lock().share(name, access) {
            return Opened::Local { device };
        }
        // Opening may be slow (rump starts lazily); other requests go on meanwhile.
        let disk = match self.backend.open(name, access) {
            Ok(disk) => disk,
            Err(D_NO_SUCH_DEVICE) => return Opened::Forward,
            Err(refusal) => return Opened::Refused(refusal),
        };
        let mut table = self.table.lock();
        if let Some(device) = table.share(name, access) {
            drop(table);
            drop(disk); // a concurrent open of the same name won the race
            return Opened::Local { device };
        }
        let entry = Entry { name: name.to_vec(), access, disk, flush: Mutex::default(), writing: AtomicUsize::new(0) };
        Opened::Local { device: table.insert(entry) }
    }

    /// `device_close`: drops one open.
    pub fn close(&self, device: DeviceId) -> Result<Closed, Error> {
        let mut table = self.table.lock();
        let (opens, _) = table.devices.get_mut(&device).ok_or(D_NO_SUCH_DEVICE)?;
        *opens -= 1;
        if *opens > 0 {
            return Ok(Closed::StillOpen);
        }
        let removed = table.devices.remove(&device);
        drop(table);
        drop(removed); // may close the disk: outside the lock
        Ok(Closed::Last)
    }

    /// Flush requests waiting for the next flush, over all devices (for monitoring and tests).
    pub fn waiting_flushes(&self) -> usize {
        let table = self.table.lock();
        table.devices.values().map(|(_, entry)| entry.flush.lock().queued()).sum()
    }

    /// Open devices (each counted once however often it was opened).
    pub fn open_devices(&self) -> usize {
        self.table.lock().devices.len()
    }

    /// Whether a client has a disk open for writing (a mounted file system, say).
    pub fn open_for_writing(&self) -> bool {
        self.table.lock().devices.values().any(|(_, entry)| entry.access.write)
    }

    /// `device_read`: reads up to `bytes_wanted` at `record` into a buffer from `allocate`
    /// (called with the exact length, so an out-of-line reply of whole records needs no extra
    /// copy). Short at the end of the disk.
    pub fn read<Buf: AsMut<[u8]>>(
        &self,
        device: DeviceId,
        record: u64,
        bytes_wanted: u64,
        allocate: impl FnOnce(usize) -> Result<Buf, Error>,
    ) -> Result<Buf, Error> {
        let (entry, extent) = self.read_extent(device, record, bytes_wanted)?;
        let mut buf = allocate(extent.len)?;
        let target = buf.as_mut().get_mut(..extent.len).ok_or(D_NO_MEMORY)?;
        let record_size = entry.disk.geometry().record_size() as usize;
        if extent.len % record_size == 0 {
            if extent.len > 0 {
                entry.disk.read(extent.record, target)?;
            }
        } else {
            // Ends inside a record: read whole records aside, still in one call.
            let mut whole = Vec::new();
            whole.try_reserve_exact(extent.len.next_multiple_of(record_size)).map_err(|_| D_NO_MEMORY)?;
            whole.resize(extent.len.next_multiple_of(record_size), 0);
            entry.disk.read(extent.record, &mut whole)?;
            target.copy_from_slice(&whole[..extent.len]);
        }
        Ok(buf)
    }

    /// `device_read` into out-of-line memory for the reply: whole records come in memory the
    /// disk provides ([`Disk::read_out_of_line`]), the rest as [`Server::read`] does.
    pub fn read_out_of_line(&self, device: DeviceId, record: u64, bytes_wanted: u64) -> Result<OolMemory, Error> {
        let (entry, extent) = self.read_extent(device, record, bytes_wanted)?;
        if extent.len > 0 && extent.len % entry.disk.geometry().record_size() as usize == 0 {
            return entry.disk.read_out_of_line(extent.record, extent.len);
        }
        Ok(self.read(device, record, bytes_wanted, |len| OolMemory::new(len).map(OutOfLine))?.0)
    }

    /// A read's open device and extent, once its checks passed.
    fn read_extent(&self, device: DeviceId, record: u64, bytes_wanted: u64) -> Result<(SharedEntry<B::Disk, W>, extent::Extent), Error> {
        let entry = self.entry(device)?;
        if !entry.access.read {
            return Err(D_INVALID_OPERATION);
        }
        let extent = extent::read(entry.disk.geometry(), record, bytes_wanted)?;
        Ok((entry, extent))
    }

    /// `device_write`: all of `data` at `record` in one backend call, or an error.
    pub fn write(&self, device: DeviceId, record: u64, data: &[u8]) -> Result<usize, Error> {
        self.write_with(device, record, data.len(), |disk, record| disk.write(record, data))
    }

    /// `device_write` of data received out of line: as [`Server::write`], through
    /// [`Disk::write_out_of_line`].
    pub fn write_out_of_line(&self, device: DeviceId, record: u64, data: OolMemory) -> Result<usize, Error> {
        self.write_with(device, record, data.len(), |disk, record| disk.write_out_of_line(record, data))
    }

    /// A write of `len` bytes at `record` by `write(disk, record)`, once its checks passed.
    fn write_with(
        &self,
        device: DeviceId,
        record: u64,
        len: usize,
        write: impl FnOnce(&B::Disk, u64) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let entry = self.entry(device)?;
        if !entry.access.write {
            return Err(D_INVALID_OPERATION);
        }
        let extent = extent::write(entry.disk.geometry(), record, len)?;
        if extent.len > 0 {
            // A gathering flush may start once enough writes completed (see `flush`).
            entry.writing.fetch_add(1, Ordering::AcqRel);
            let write = || {
                let written = write(&entry.disk, extent.record);
                entry.writing.fetch_sub(1, Ordering::AcqRel);
                written
            };
            let (written, gathering) = flush::write_counted(&entry.flush, &self.writes, extent.len, write, || entry.disk.flush());
            self.note_gathering(&entry, gathering);
            written?;
        }
        Ok(extent.len)
    }

    /// `device_get_status` with room for `capacity` words.
    /// A size that does not fit the status word is refused, and logged.
    pub fn get_status(&self, device: DeviceId, flavor: u32, capacity: usize) -> Result<[i32; 2], Error> {
        let entry = self.entry(device)?;
        let geometry = entry.disk.geometry();
        let answer = status::get(geometry, flavor, capacity);
        if answer == Err(crate::device::D_INVALID_SIZE) && capacity >= status::SIZE_WORDS {
            log::warn!(
                "rumpdisk: {}: {} records of {} bytes do not fit device_get_status's 32-bit word (flavor {flavor}): refused",
                entry.name.escape_ascii(),
                geometry.records(),
                geometry.record_size()
            );
        }
        answer
    }

    /// `device_set_status`: answers `waiter` exactly once — at once, or for `DEV_FLUSH_CACHE`
    /// from the thread that runs the flush it waits for (see [`Server::start_gathered_flushes`]).
    pub fn set_status(&self, device: DeviceId, flavor: u32, waiter: W) {
        let entry = match self.entry(device) {
            Ok(entry) => entry,
            Err(error) => return waiter.answer(Err(error)),
        };
        match flavor {
            flavor::DEV_FLUSH_CACHE => self.note_gathering(&entry, flush::request(&entry.flush, &self.writes, waiter)),
            flavor::BLKRRPART => waiter.answer(Ok(())),
            _ => waiter.answer(Err(D_INVALID_OPERATION)),
        }
    }

    /// Flushes the cache of every device open for writing now, outside the flush merger: for a
    /// shutdown, when no client will ask any more (read-only opens wrote nothing, and some
    /// drivers refuse a flush on them). Every device is flushed even after one fails; the last
    /// failure is returned.
    pub fn flush_all(&self) -> Result<(), Error> {
        let table = self.table.lock();
        let entries: Vec<_> = table.devices.values().map(|(_, entry)| entry.clone()).filter(|entry| entry.access.write).collect();
        drop(table);
        // Outside the table's lock: a flush takes long, and opens and closes go on meanwhile.
        let mut outcome = Ok(());
        for entry in &entries {
            if let Err(error) = entry.disk.flush() {
                outcome = Err(error);
            }
        }
        outcome
    }

    /// Whether flush requests gather on a device with no write in progress: the serving loop
    /// must call [`Server::start_gathered_flushes`] when no request is left to take. A device
    /// with a write in progress waits for its end: the thread that answers it comes back to the
    /// serving loop, and the writer's sync, usually next, joins the gathering (with completion
    /// by interrupt the other threads run meanwhile and would start the flush too early).
    pub fn has_gathered_flushes(&self) -> bool {
        self.gathering.lock().iter().any(|entry| entry.writing.load(Ordering::Acquire) == 0)
    }

    /// Starts the flush of every device whose flush requests gather and that has no write in
    /// progress, and answers them. Called when the server has no request left to take, so those
    /// requests have gathered all they could.
    pub fn start_gathered_flushes(&self) {
        let entries = {
            let mut gathering = self.gathering.lock();
            let (writing, ready) = core::mem::take(&mut *gathering).into_iter().partition(|entry| entry.writing.load(Ordering::Acquire) > 0);
            *gathering = writing;
            ready
        };
        for entry in entries {
            let again = flush::start_gathered(&entry.flush, &self.writes, || entry.disk.flush());
            self.note_gathering(&entry, again);
        }
    }

    fn note_gathering(&self, entry: &SharedEntry<B::Disk, W>, gathering: bool) {
        if !gathering {
            return;
        }
        let mut list = self.gathering.lock();
        if !list.iter().any(|listed| Arc::ptr_eq(listed, entry)) {
            list.push(entry.clone());
        }
    }

    fn entry(&self, device: DeviceId) -> Result<Arc<Entry<B::Disk, W>>, Error> {
        let table = self.table.lock();
        let (_, entry) = table.devices.get(&device).ok_or(D_NO_SUCH_DEVICE)?;
        Ok(entry.clone())
    }
}

/// Out-of-line memory as [`Server::read`]'s buffer.
struct OutOfLine(OolMemory);

impl AsMut<[u8]> for OutOfLine {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

#[cfg(test)]
mod tests;
