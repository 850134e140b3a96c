//! Keeping NetBSD's `bus_dma` off client memory it mishandles, as upstream's read and write
//! paths do (`rumpdisk/block-rump.c`). The rump kernel's drivers take physical addresses from
//! the buffer they are given and assume memory as NetBSD's kernel has it: present, and
//! physically contiguous across what `_bus_dmamap_load_buffer` treats as one segment (it does
//! not translate page by page). Memory a client sent is neither: its pages may not be mapped
//! yet, may be copy-on-write (a device write then lands in a page the task no longer sees), and
//! consecutive pages are scattered. Without this, a transfer over such memory silently reads or
//! writes the wrong physical pages on real hardware. So:
//!
//! - a page-aligned buffer is touched page by page first (faulted in; for a read, written, so
//!   the page is the task's own), then transferred one page at a time: each page is one segment;
//! - any other buffer goes through a bounce buffer of physically contiguous memory below 4 GiB
//!   (within reach of 32-bit DMA engines), transferred in one piece.

use mach::ool::OolMemory;
use mach::port::SendRight;

use crate::device::{Error, D_NO_MEMORY};

pub use mach::ool::PAGE_SIZE;

/// Bounce buffers lie below this physical address.
const DMA_LIMIT: u64 = 1 << 32;

/// Where bounce buffers come from.
pub trait BounceMemory: Send + Sync {
    /// `len` zeroed bytes, physically contiguous and below 4 GiB.
    fn allocate(&self, len: usize) -> Result<OolMemory, Error>;
}

/// Bounce buffers from gnumach's `vm_allocate_contiguous`, which takes the host privileged
/// port.
pub struct Contiguous {
    host_priv: SendRight,
}

impl Contiguous {
    pub fn new(host_priv: SendRight) -> Self {
        Contiguous { host_priv }
    }
}

impl BounceMemory for Contiguous {
    fn allocate(&self, len: usize) -> Result<OolMemory, Error> {
        OolMemory::contiguous(self.host_priv.name(), len, DMA_LIMIT).map_err(|error| {
            log::warn!("rumpdisk: no contiguous memory below 4 GiB for a {len}-byte bounce buffer: {error:?}");
            D_NO_MEMORY
        })
    }
}

fn is_page_aligned(buf: &[u8]) -> bool {
    (buf.as_ptr() as usize).is_multiple_of(PAGE_SIZE)
}

/// Fills `buf` by `transfer(part, offset of part in buf)` calls under the rules above.
pub fn read(memory: &impl BounceMemory, buf: &mut [u8], mut transfer: impl FnMut(&mut [u8], usize) -> Result<(), Error>) -> Result<(), Error> {
    if !is_page_aligned(buf) {
        let mut bounce = memory.allocate(buf.len())?;
        transfer(bounce.as_mut_slice(), 0)?;
        buf.copy_from_slice(bounce.as_slice());
        return Ok(());
    }
    for page in buf.chunks_mut(PAGE_SIZE) {
        // Kept: the transfer below receives the buffer's address, so it may read this byte.
        page[0] = 0;
    }
    buf.chunks_mut(PAGE_SIZE).enumerate().try_for_each(|(i, page)| transfer(page, i * PAGE_SIZE))
}

/// Writes `data` by `transfer(part, offset of part in data)` calls under the rules above.
pub fn write(memory: &impl BounceMemory, data: &[u8], mut transfer: impl FnMut(&[u8], usize) -> Result<(), Error>) -> Result<(), Error> {
    if !is_page_aligned(data) {
        let mut bounce = memory.allocate(data.len())?;
        bounce.as_mut_slice().copy_from_slice(data);
        return transfer(bounce.as_slice(), 0);
    }
    for page in data.chunks(PAGE_SIZE) {
        // A read the compiler must keep: it is the fault that maps the page.
        core::hint::black_box(page[0]);
    }
    data.chunks(PAGE_SIZE).enumerate().try_for_each(|(i, page)| transfer(page, i * PAGE_SIZE))
}
