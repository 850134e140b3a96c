//! The global allocator: power-of-two size classes carved from `vm_allocate`d chunks, large
//! blocks straight from `vm_allocate`, all behind one lock. Fresh memory is handed out without
//! being touched first: every page touched costs a zero-fill fault, a large part of a task's
//! start under TCG.

use crate::sys;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

use crate::ool::PAGE_SIZE;
const MIN_CLASS: usize = 16;
/// Blocks larger than this get pages of their own.
const MAX_CLASS: usize = 2048;
const CLASSES: usize = (MAX_CLASS / MIN_CLASS).trailing_zeros() as usize + 1;
const CHUNK_SIZE: usize = 64 * 1024;

/// Per size class: the head of the list of freed blocks (a free block's first word links to
/// the next), and the part of the class's newest chunk not handed out yet.
struct FreeLists {
    freed: [usize; CLASSES],
    fresh: [core::ops::Range<usize>; CLASSES],
}

struct VmHeap(crate::sync::Mutex<FreeLists>);

#[global_allocator]
static HEAP: VmHeap =
    VmHeap(crate::sync::Mutex::new(FreeLists { freed: [0; CLASSES], fresh: [const { 0..0 }; CLASSES] }));

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(MIN_CLASS).next_power_of_two();
    (size <= MAX_CLASS).then(|| (size / MIN_CLASS).trailing_zeros() as usize)
}

fn pages(layout: &Layout) -> usize {
    layout.size().next_multiple_of(PAGE_SIZE)
}

impl FreeLists {
    /// A block of `class`: a freed one, else the next of the fresh chunk (a new chunk when it
    /// is used up); None if the kernel has no memory.
    fn take(&mut self, class: usize) -> Option<usize> {
        let block = self.freed[class];
        if block != 0 {
            // SAFETY: a freed block's first word holds the next freed block.
            self.freed[class] = unsafe { (block as *const usize).read() };
            return Some(block);
        }
        let size = MIN_CLASS << class;
        if self.fresh[class].is_empty() {
            let mut chunk = 0;
            if sys::vm_allocate(sys::mach_task_self(), &mut chunk, CHUNK_SIZE, true) != 0 {
                return None;
            }
            self.fresh[class] = chunk..chunk + CHUNK_SIZE;
        }
        let block = self.fresh[class].start;
        self.fresh[class].start += size;
        Some(block)
    }
}

// SAFETY: blocks are handed out once until freed; sizes and alignments follow the layout
// (classes are powers of two ≥ the alignment; pages are page-aligned).
unsafe impl GlobalAlloc for VmHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            if layout.align() > PAGE_SIZE {
                return ptr::null_mut();
            }
            let mut address = 0;
            let code = sys::vm_allocate(sys::mach_task_self(), &mut address, pages(&layout), true);
            return if code == 0 { address as *mut u8 } else { ptr::null_mut() };
        };
        self.0.lock().take(class).map_or(ptr::null_mut(), |block| block as *mut u8)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc` are the same.
        let block = unsafe { self.alloc(layout) };
        // Pages of their own come zero-filled from `vm_allocate`: writing zeros would only fault
        // them in. A size-class block may have been used before.
        if !block.is_null() && class_of(&layout).is_some() {
            // SAFETY: the block was just allocated for `layout.size()` bytes.
            unsafe { block.write_bytes(0, layout.size()) };
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(class) => {
                let mut lists = self.0.lock();
                // SAFETY: the block came from this class and is no longer in use.
                unsafe { (block as *mut usize).write(lists.freed[class]) };
                lists.freed[class] = block as usize;
            }
            // SAFETY: the pages came from `vm_allocate` in `alloc` and are no longer in use.
            None => unsafe {
                sys::vm_deallocate(sys::mach_task_self(), block as usize, pages(&layout));
            },
        }
    }
}
