//! The global allocator: power-of-two size classes carved from `vm_allocate`d chunks, large
//! blocks straight from `vm_allocate`, all behind one lock.

use crate::sys;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

const PAGE_SIZE: usize = 4096;
const MIN_CLASS: usize = 16;
/// Blocks larger than this get pages of their own.
const MAX_CLASS: usize = 2048;
const CLASSES: usize = (MAX_CLASS / MIN_CLASS).trailing_zeros() as usize + 1;
const CHUNK_SIZE: usize = 64 * 1024;

/// Heads of the free lists, one per size class; a free block's first word links to the next.
struct FreeLists([usize; CLASSES]);

struct VmHeap(crate::sync::Mutex<FreeLists>);

#[global_allocator]
static HEAP: VmHeap = VmHeap(crate::sync::Mutex::new(FreeLists([0; CLASSES])));

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(MIN_CLASS).next_power_of_two();
    (size <= MAX_CLASS).then(|| (size / MIN_CLASS).trailing_zeros() as usize)
}

fn pages(layout: &Layout) -> usize {
    layout.size().next_multiple_of(PAGE_SIZE)
}

impl FreeLists {
    /// Carve a fresh chunk into blocks of `class`; false if the kernel has no memory.
    fn refill(&mut self, class: usize) -> bool {
        let mut chunk = 0;
        if sys::vm_allocate(sys::mach_task_self(), &mut chunk, CHUNK_SIZE, true) != 0 {
            return false;
        }
        let size = MIN_CLASS << class;
        for block in (chunk..chunk + CHUNK_SIZE).step_by(size).rev() {
            // SAFETY: `block` is an aligned, unused block of the chunk just allocated.
            unsafe { (block as *mut usize).write(self.0[class]) };
            self.0[class] = block;
        }
        true
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
        let mut lists = self.0.lock();
        if lists.0[class] == 0 && !lists.refill(class) {
            return ptr::null_mut();
        }
        let block = lists.0[class];
        // SAFETY: a free block's first word holds the next free block.
        lists.0[class] = unsafe { (block as *const usize).read() };
        block as *mut u8
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(class) => {
                let mut lists = self.0.lock();
                // SAFETY: the block came from this class and is no longer in use.
                unsafe { (block as *mut usize).write(lists.0[class]) };
                lists.0[class] = block as usize;
            }
            // SAFETY: the pages came from `vm_allocate` in `alloc` and are no longer in use.
            None => unsafe {
                sys::vm_deallocate(sys::mach_task_self(), block as usize, pages(&layout));
            },
        }
    }
}
