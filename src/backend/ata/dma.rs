//! Bus-master DMA of a PCI IDE controller (SFF-8038i, as QEMU's PIIX emulates it): a table of
//! physical region descriptors (PRDs) tells the controller where in memory a command's data go;
//! the driver starts the engine after issuing READ/WRITE DMA and polls its status until it stops.
//! The data pass straight to or from a request's own memory when the kernel gives it as wired
//! pages below 4 GiB (the PRDs' addresses are 32-bit): a read's fresh reply memory, a large
//! write's received pages wired in place, both from [`DirectMemory`]. Anything else passes
//! through one bounce buffer of physically contiguous
//! memory below 4 GiB, allocated once with the table and kept for the channel's life.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use mach::interfaces::{gnumach, mach as vm, mach_host};
use mach::ool::OolMemory;
use mach::port::PortName;
use mach::sync::Mutex;

use super::AtaError;

/// Bus-master register bits.
pub mod bm {
    /// Command register: the engine runs.
    pub const START: u8 = 0x01;
    /// Command register: the device writes memory (a READ DMA); clear for WRITE DMA.
    pub const TO_MEMORY: u8 = 0x08;
    /// Status register: the engine is moving data.
    pub const ACTIVE: u8 = 0x01;
    /// Status register (write 1 to clear): the transfer failed on the bus.
    pub const ERROR: u8 = 0x02;
    /// Status register (write 1 to clear): the drive raised its interrupt.
    pub const INTERRUPT: u8 = 0x04;
}

/// One channel's bus-master registers (offset 0: command, 2: status, 4: the PRD table's address).
pub trait BusMaster {
    fn command(&mut self, value: u8);
    fn status(&mut self) -> u8;
    fn set_status(&mut self, value: u8);
    fn set_table(&mut self, physical: u32);
}

/// Physically contiguous memory a device reaches by physical address.
pub trait DmaMemory {
    /// The physical address of the first byte.
    fn physical(&self) -> u64;
    fn size(&self) -> usize;
    /// Copies `data` in at `offset`.
    fn copy_in(&mut self, offset: usize, data: &[u8]);
    /// Copies `buf.len()` bytes out from `offset`.
    fn copy_out(&self, offset: usize, buf: &mut [u8]);
}

/// Which way a DMA command moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// READ DMA: the drive writes memory.
    ToMemory,
    /// WRITE DMA: the drive reads memory.
    FromMemory,
}

/// Where a DMA command's data are in memory.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The engine's bounce buffer, from its start.
    Bounce,
    /// A request's own pages.
    Pages(Pages<'a>),
}

/// The physical pages of memory a device may reach: each whole, page-aligned and below 4 GiB
/// (or what the controller reaches, [`Pages::below`]), and wired by their owner until the command has ended; the data start `offset` bytes into
/// the first (memory received out of line keeps its sender's offset in the page). One command
/// takes at most [`MAX_PAGES`] of them (a page never crosses a 64 KiB boundary, so each takes
/// one PRD at most).
#[derive(Clone, Copy, Debug)]
pub struct Pages<'a> {
    physical: &'a [u64],
    offset: usize,
}

/// Pages one command reaches at most: one PRD each fills the table.
pub const MAX_PAGES: usize = TABLE_BYTES / PRD_BYTES;

impl<'a> Pages<'a> {
    /// `None` unless the pages qualify (see [`Pages`]) and `offset` is even and inside the first
    /// page (PRDs address 16-bit words).
    pub fn new(physical: &'a [u64], offset: usize) -> Option<Pages<'a>> {
        Self::below(DMA_LIMIT, physical, offset)
    }

    /// As [`Pages::new`] for a controller that reaches physical addresses below `reach` (an
    /// AHCI HBA with 64-bit addressing reaches every one).
    pub fn below(reach: u64, physical: &'a [u64], offset: usize) -> Option<Pages<'a>> {
        let reachable = |&page: &u64| page.is_multiple_of(PAGE) && page.checked_add(PAGE).is_some_and(|end| end <= reach);
        let offset_fits = offset.is_multiple_of(2) && (offset as u64) < PAGE;
        (offset_fits && physical.iter().all(reachable)).then_some(Pages { physical, offset })
    }

    /// Bytes a part may span so that its pages fit `descriptors` descriptors of one page each,
    /// wherever in its first page it starts (a part not page-aligned touches one page more).
    pub const fn reach_of(descriptors: usize) -> usize {
        (descriptors - 1) * PAGE as usize
    }

    /// The data from byte `from` on, as far as `bytes` further reach.
    pub fn part(&self, from: usize, bytes: usize) -> Pages<'a> {
        let start = self.offset + from;
        let first = (start / PAGE as usize).min(self.physical.len());
        let last = (start + bytes).div_ceil(PAGE as usize).min(self.physical.len());
        Pages { physical: &self.physical[first..last.max(first)], offset: start % PAGE as usize }
    }

    /// Bytes of data the pages hold.
    pub fn bytes(&self) -> usize {
        (self.physical.len() * PAGE as usize).saturating_sub(self.offset)
    }

    /// The first `bytes` as `(address, bytes)` runs of physically consecutive pages.
    pub fn runs(&self, bytes: usize) -> impl Iterator<Item = (u64, u64)> + 'a {
        let mut pages = self.physical.iter().copied().peekable();
        let mut skip = self.offset as u64;
        let mut left = bytes as u64;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let start = pages.next()?;
            let mut len = PAGE;
            while pages.next_if_eq(&(start + len)).is_some() {
                len += PAGE;
            }
            let take = (len - skip).min(left);
            let run = (start + skip, take);
            skip = 0;
            left -= take;
            Some(run)
        })
    }

    /// The PRDs for the first `bytes`: its runs, split at 64 KiB boundaries.
    fn regions(&self, bytes: usize) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.runs(bytes).flat_map(|(start, len)| regions(start, len as usize))
    }
}

/// Page size of the physical pages [`Pages`] names.
const PAGE: u64 = mach::ool::PAGE_SIZE as u64;

/// Memory a request's data reach the device in without a copy: from GNU Mach (the host
/// privileged port) in the server, simulated in tests.
pub trait DirectMemory: Send + Sync {
    /// Fresh memory for `len` bytes of a read's reply, wired, with the physical address of
    /// each page; `None` when none can be had or it would not qualify as [`Pages`].
    fn fresh(&self, len: usize) -> Option<Wired>;
    /// Gets memory for a read of `len` bytes ready for the next [`fresh`](Self::fresh) of that
    /// length, or does nothing: called while the device moves a read's data, when the
    /// processor would only wait for it.
    fn prepare(&self, len: usize);
    /// The memory, once the device filled it, as the reply carries it away.
    fn filled(&self, wired: Wired) -> OolMemory;
    /// A write's data, received out of line, wired in place read-only (so wiring copies no
    /// page), with the physical address of each page; the memory back when that cannot be
    /// done or the pages would not qualify as [`Pages`].
    fn pin(&self, data: OolMemory) -> Result<Wired, OolMemory>;
}

/// Reads larger than this get no memory made ahead (the memory waits, wired, between reads).
pub const AHEAD_MAX: usize = 1 << 20;

/// Direct memory that makes one read's memory ahead: [`DirectMemory::prepare`] asks `M` for it
/// while the device moves the current read's data, so that a stream of reads of one length
/// never waits for the kernel's allocation (a fifth of a 1 MiB read's time in the server,
/// measured under TCG). Memory made ahead is fresh: never sent before. A read of another length
/// leaves it be, and the next `prepare` replaces it, releasing it while the device works too.
pub struct Ahead<M> {
    memory: M,
    spare: Mutex<Option<Wired>>,
}

impl<M> Ahead<M> {
    pub fn new(memory: M) -> Self {
        Ahead { memory, spare: Mutex::new(None) }
    }
}

impl<M: DirectMemory> DirectMemory for Ahead<M> {
    fn fresh(&self, len: usize) -> Option<Wired> {
        let spare = self.spare.lock().take_if(|wired| wired.memory.len() == len);
        spare.or_else(|| self.memory.fresh(len))
    }

    fn prepare(&self, len: usize) {
        if len > AHEAD_MAX {
            return;
        }
        let old = {
            let mut spare = self.spare.lock();
            if spare.as_ref().is_some_and(|wired| wired.memory.len() == len) {
                return;
            }
            spare.take()
        };
        // Not under the lock: the kernel calls are the slow part.
        drop(old);
        let made = self.memory.fresh(len);
        *self.spare.lock() = made;
    }

    fn filled(&self, wired: Wired) -> OolMemory {
        self.memory.filled(wired)
    }

    fn pin(&self, data: OolMemory) -> Result<Wired, OolMemory> {
        self.memory.pin(data)
    }
}

/// Memory wired in place, with its pages' physical addresses and where in the first page it
/// starts; dropping it releases it.
pub struct Wired {
    pub memory: OolMemory,
    pub pages: Vec<u64>,
    pub offset: usize,
}

/// What the channel needs of a DMA engine: a bounce buffer to fill or empty, and the engine's
/// start, status and stop.
pub trait DmaEngine {
    /// Bytes one command can move at most (the bounce buffer's size, whole sectors).
    fn capacity(&self) -> usize;
    /// Copies a write's data into the bounce buffer.
    fn load(&mut self, data: &[u8]);
    /// Copies a read's data out of the bounce buffer.
    fn store(&self, buf: &mut [u8]);
    /// Describes the first `bytes` of `target` in the PRD table and programs the engine
    /// (stopped) for `direction`, its old status bits cleared.
    fn prepare(&mut self, target: Target<'_>, bytes: usize, direction: Direction);
    /// Starts the engine (after the command is issued).
    fn start(&mut self, direction: Direction);
    fn status(&mut self) -> u8;
    /// Stops the engine; returns its status at that moment and clears the error and interrupt
    /// bits.
    fn stop(&mut self) -> u8;
}

/// A channel's DMA engine, if it has one.
pub type Engine = Option<Box<dyn DmaEngine + Send>>;

/// A PRD covers at most 64 KiB and may not cross a 64 KiB boundary.
const PRD_LIMIT: u64 = 1 << 16;
/// Bytes of one PRD: address, byte count, end-of-table flag.
const PRD_BYTES: usize = 8;
const END_OF_TABLE: u16 = 0x8000;

/// The PRDs for `bytes` from `physical`: `(address, bytes)` pieces, each within one 64 KiB
/// window.
pub fn regions(physical: u64, bytes: usize) -> impl Iterator<Item = (u32, u32)> {
    let end = physical + bytes as u64;
    let mut at = physical;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let window_end = (at / PRD_LIMIT + 1) * PRD_LIMIT;
        let piece = (window_end.min(end) - at) as u32;
        let region = (at as u32, piece);
        at += u64::from(piece);
        Some(region)
    })
}

/// The PRD table's entries for `regions`, the last marked end of table.
fn table_entries(regions: impl Iterator<Item = (u32, u32)>) -> impl Iterator<Item = [u8; PRD_BYTES]> {
    let mut regions = regions.peekable();
    core::iter::from_fn(move || {
        let (address, bytes) = regions.next()?;
        let flags = if regions.peek().is_none() { END_OF_TABLE } else { 0 };
        let mut entry = [0; PRD_BYTES];
        entry[..4].copy_from_slice(&address.to_le_bytes());
        // A byte count of 0 means 64 KiB.
        entry[4..6].copy_from_slice(&(bytes as u16).to_le_bytes());
        entry[6..].copy_from_slice(&flags.to_le_bytes());
        Some(entry)
    })
}

/// Bounce buffers reach at most this physical address: the PRDs' addresses are 32-bit.
pub const DMA_LIMIT: u64 = 1 << 32;
/// Physical bounce-buffer sizes the engine is made with: big enough for a 1 MiB request in one
/// command.
pub const BOUNCE_BYTES: usize = 1 << 20;
/// The PRD table: one page, so it never crosses a 64 KiB boundary; it has room for the PRDs of
/// the bounce buffer, one per 64 KiB window it touches.
pub const TABLE_BYTES: usize = 4096;

/// A bus master with its PRD table and bounce buffer.
pub struct BusMasterDma<B, M> {
    bus_master: B,
    table: M,
    buffer: M,
}

impl<B: BusMaster, M: DmaMemory> BusMasterDma<B, M> {
    /// Refuses memory the controller cannot use: beyond 32-bit addresses, a table that is not
    /// 4-byte aligned, crosses a 64 KiB boundary or is too small for the buffer's PRDs, a buffer
    /// not at an even address or smaller than a sector.
    pub fn new(bus_master: B, table: M, buffer: M) -> Result<Self, AtaError> {
        let fits = |memory: &M| memory.physical().checked_add(memory.size() as u64).is_some_and(|end| end <= DMA_LIMIT);
        if !fits(&table) || !fits(&buffer) {
            return Err(AtaError::Unsupported("DMA memory above 4 GiB"));
        }
        let table_start = table.physical();
        let table_end = table_start + table.size() as u64 - 1;
        if !table_start.is_multiple_of(4) || table_start / PRD_LIMIT != table_end / PRD_LIMIT {
            return Err(AtaError::Unsupported("a PRD table not 4-byte aligned within 64 KiB"));
        }
        if table.size() < TABLE_BYTES || regions(buffer.physical(), buffer.size()).count() * PRD_BYTES > table.size() {
            return Err(AtaError::Unsupported("a PRD table under a page or too small for its bounce buffer"));
        }
        if !buffer.physical().is_multiple_of(2) || buffer.size() < super::SECTOR {
            return Err(AtaError::Unsupported("a bounce buffer at an odd address or under a sector"));
        }
        Ok(BusMasterDma { bus_master, table, buffer })
    }
}

impl<B: BusMaster, M: DmaMemory> DmaEngine for BusMasterDma<B, M> {
    fn capacity(&self) -> usize {
        self.buffer.size() / super::SECTOR * super::SECTOR
    }

    fn load(&mut self, data: &[u8]) {
        self.buffer.copy_in(0, data);
    }

    fn store(&self, buf: &mut [u8]) {
        self.buffer.copy_out(0, buf);
    }

    fn prepare(&mut self, target: Target<'_>, bytes: usize, direction: Direction) {
        match target {
            Target::Bounce => self.describe(regions(self.buffer.physical(), bytes)),
            Target::Pages(pages) => self.describe(pages.regions(bytes)),
        }
        self.bus_master.command(direction_bits(direction));
        self.bus_master.set_status(bm::ERROR | bm::INTERRUPT);
        // `new` checked the table lies below 4 GiB.
        self.bus_master.set_table(self.table.physical() as u32);
    }

    fn start(&mut self, direction: Direction) {
        // The bounce buffer's and table's stores before the device reads them.
        fence(Ordering::SeqCst);
        self.bus_master.command(direction_bits(direction) | bm::START);
    }

    fn status(&mut self) -> u8 {
        self.bus_master.status()
    }

    fn stop(&mut self) -> u8 {
        self.bus_master.command(0);
        let status = self.bus_master.status();
        self.bus_master.set_status(bm::ERROR | bm::INTERRUPT);
        // The bounce buffer's loads after the device wrote it.
        fence(Ordering::SeqCst);
        status
    }
}

impl<B, M: DmaMemory> BusMasterDma<B, M> {
    fn describe(&mut self, regions: impl Iterator<Item = (u32, u32)>) {
        for (i, entry) in table_entries(regions).enumerate() {
            self.table.copy_in(i * PRD_BYTES, &entry);
        }
    }
}

/// Wired, physically contiguous memory below 4 GiB from gnumach's `vm_allocate_contiguous`;
/// released when dropped.
pub struct Contiguous {
    memory: OolMemory,
    physical: u64,
}

impl Contiguous {
    pub fn allocate(host_priv: PortName, len: usize) -> mach::kern::Result<Contiguous> {
        let (memory, physical) = OolMemory::contiguous_at(host_priv, len, DMA_LIMIT)?;
        Ok(Contiguous { memory, physical })
    }
}

impl DmaMemory for Contiguous {
    fn physical(&self) -> u64 {
        self.physical
    }

    fn size(&self) -> usize {
        self.memory.len()
    }

    fn copy_in(&mut self, offset: usize, data: &[u8]) {
        self.memory.as_mut_slice()[offset..offset + data.len()].copy_from_slice(data);
    }

    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.memory.as_slice()[offset..offset + buf.len()]);
    }
}

/// Direct memory from GNU Mach: a read's reply in fresh contiguous memory below 4 GiB (one
/// kernel call, wired, no page faults), which the reply's send then moves to the client
/// (`vm_map_copyin` with the deallocate bit moves a temporary object, wired or not).
pub struct KernelMemory {
    host_priv: PortName,
}

impl KernelMemory {
    pub fn new(host_priv: PortName) -> Self {
        KernelMemory { host_priv }
    }
}

impl DirectMemory for KernelMemory {
    fn fresh(&self, len: usize) -> Option<Wired> {
        let (memory, physical) = OolMemory::contiguous_at(self.host_priv, len, DMA_LIMIT).ok()?;
        let pages = (0..(len as u64).div_ceil(PAGE)).map(|i| physical + i * PAGE).collect();
        Some(Wired { memory, pages, offset: 0 })
    }

    /// Nothing: each read asks the kernel (see [`Ahead`]).
    fn prepare(&self, _len: usize) {}

    fn filled(&self, wired: Wired) -> OolMemory {
        // The device's stores before the memory is read or sent.
        fence(Ordering::SeqCst);
        wired.memory
    }

    /// `vm_protect` to read-only first: wiring a copy-on-write mapping that may be written
    /// copies every page. Deallocating the memory unwires it.
    fn pin(&self, data: OolMemory) -> Result<Wired, OolMemory> {
        let task = PortName::new(mach::sys::mach_task_self());
        // Received memory keeps the sender's offset in the page: the pages the data touch,
        // which the mapping owns whole.
        let start = data.as_slice().as_ptr() as u64;
        let address = start / PAGE * PAGE;
        let size = (start + data.len() as u64).next_multiple_of(PAGE) - address;
        let wired = vm::vm_protect(task, address as _, size as _, false, VM_PROT_READ)
            .and_then(|()| mach_host::vm_wire(self.host_priv, task, address as _, size as _, VM_PROT_READ))
            .and_then(|()| gnumach::vm_pages_phys(self.host_priv, task, address as _, size as _));
        let Ok(table) = wired else { return Err(data) };
        let pages: Vec<u64> = table.as_slice().chunks_exact(8).map(|entry| u64::from_ne_bytes(entry.try_into().unwrap_or_default())).collect();
        // A page the kernel did not name (0) or a short table: not reachable.
        if pages.len() as u64 != size / PAGE || pages.contains(&0) {
            return Err(data);
        }
        Ok(Wired { memory: data, pages, offset: (start - address) as usize })
    }
}

/// `vm_prot_t`'s read permission.
const VM_PROT_READ: i32 = 1;

fn direction_bits(direction: Direction) -> u8 {
    match direction {
        Direction::ToMemory => bm::TO_MEMORY,
        Direction::FromMemory => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Memory that counts the reads' memory it makes.
    struct Counted(core::sync::atomic::AtomicUsize);

    impl DirectMemory for Counted {
        fn fresh(&self, len: usize) -> Option<Wired> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Some(Wired { memory: OolMemory::new(len).ok()?, pages: Vec::new(), offset: 0 })
        }
        fn prepare(&self, _len: usize) {}
        fn filled(&self, wired: Wired) -> OolMemory {
            wired.memory
        }
        fn pin(&self, data: OolMemory) -> Result<Wired, OolMemory> {
            Err(data)
        }
    }

    /// Memory is made ahead for reads up to 1 MiB (docs/design.md: "one spare at most, up to
    /// 1 MiB"), stated as a number: a page below, exactly 1 MiB, and a page above.
    #[test]
    fn memory_is_made_ahead_for_reads_up_to_1_mib() {
        for (len, made) in [((1 << 20) - 4096, 1), (1 << 20, 1), ((1 << 20) + 4096, 0)] {
            let ahead = Ahead::new(Counted(Default::default()));
            ahead.prepare(len);
            assert_eq!(ahead.memory.0.load(Ordering::Relaxed), made, "{len} bytes");
            // What was made is what the read of that length then takes, without asking again.
            let taken = ahead.fresh(len).map(|w| w.memory.len());
            assert_eq!((taken, ahead.memory.0.load(Ordering::Relaxed)), (Some(len), 1), "{len} bytes");
        }
    }

    #[test]
    fn regions_split_at_64_kib_boundaries_only() {
        let within: Vec<_> = regions(0x1_0000, 0x1_0000).collect();
        assert_eq!(within, [(0x1_0000, 0x1_0000)]);
        // 1 MiB from 4 KiB below a boundary: a short piece, 15 whole windows, the rest.
        let crossing: Vec<_> = regions(0x2_F000, 1 << 20).collect();
        assert_eq!(crossing.len(), 17);
        assert_eq!(crossing[0], (0x2_F000, 0x1000));
        assert_eq!(crossing[1], (0x3_0000, 0x1_0000));
        assert_eq!(crossing[16], (0x12_0000, 0xF000));
        for (address, bytes) in crossing.iter().copied() {
            let last = u64::from(address) + u64::from(bytes) - 1;
            assert_eq!(u64::from(address) >> 16, last >> 16, "{address:#x}+{bytes:#x} crosses 64 KiB");
        }
        assert_eq!(crossing.iter().map(|r| u64::from(r.1)).sum::<u64>(), 1 << 20);
        assert_eq!(regions(0x1000, 512).collect::<Vec<_>>(), [(0x1000, 512)]);
    }

    /// Scattered pages: each run of physically consecutive pages becomes PRDs split at 64 KiB
    /// boundaries, the last cut to the request's bytes.
    #[test]
    fn scattered_pages_make_a_prd_per_run_split_at_64_kib_boundaries() {
        let physical = [0x1_E000, 0x1_F000, 0x2_0000, 0x2_1000, 0x5_0000, 0x5_1000];
        let pages = Pages::new(&physical, 0).unwrap();
        let whole: Vec<_> = pages.regions(6 * 4096).collect();
        assert_eq!(whole, [(0x1_E000, 0x2000), (0x2_0000, 0x2000), (0x5_0000, 0x2000)]);
        let short: Vec<_> = pages.regions(4 * 4096 + 512).collect();
        assert_eq!(short, [(0x1_E000, 0x2000), (0x2_0000, 0x2000), (0x5_0000, 512)]);
        let part = pages.part(2 * 4096, 3 * 4096);
        assert_eq!(part.bytes(), 3 * 4096);
        assert_eq!(part.regions(3 * 4096).collect::<Vec<_>>(), [(0x2_0000, 0x2000), (0x5_0000, 0x1000)]);
    }

    /// Data that start inside their first page (received out of line at the sender's offset):
    /// the first PRD starts there, and a part starts where its bytes are.
    #[test]
    fn data_starting_inside_the_first_page_start_their_first_prd_there() {
        let physical = [0x1_F000, 0x2_0000, 0x7_0000];
        let pages = Pages::new(&physical, 0x20).unwrap();
        assert_eq!(pages.bytes(), 3 * 4096 - 0x20);
        let all: Vec<_> = pages.regions(3 * 4096 - 0x20).collect();
        assert_eq!(all, [(0x1_F020, 0xFE0), (0x2_0000, 0x1000), (0x7_0000, 0x1000)]);
        let part = pages.part(0x1000, 0x1000);
        assert_eq!(part.regions(0x1000).collect::<Vec<_>>(), [(0x2_0020, 0xFE0), (0x7_0000, 0x20)]);
        assert!(Pages::new(&physical, 0x21).is_none(), "PRDs address words");
        assert!(Pages::new(&physical, 0x1000).is_none());
    }

    /// The PRDs' addresses are 32-bit: a page at or above 4 GiB, or not page-aligned, does not
    /// qualify, and the request goes through the bounce buffer.
    #[test]
    fn pages_above_4_gib_or_not_aligned_do_not_qualify() {
        assert!(Pages::new(&[0x1000, 0xFFFF_F000], 0).is_some());
        assert!(Pages::new(&[0x1000, 0x1_0000_0000], 0).is_none());
        assert!(Pages::new(&[0x1_2345_6000], 0).is_none());
        assert!(Pages::new(&[0x1800], 0).is_none());
    }

    #[test]
    fn the_table_encodes_64_kib_as_zero_and_ends_with_the_last_entry() {
        let table: Vec<_> = table_entries(regions(0xF000, 0x1_1000)).collect();
        assert_eq!(table, [[0x00, 0xF0, 0, 0, 0x00, 0x10, 0, 0], [0, 0, 1, 0, 0, 0, 0x00, 0x80]]);
    }
}
