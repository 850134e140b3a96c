//! Runs of blocks: how a store's block addresses map onto its class's address space.
//!
//! A store is a sequence of runs; run `i` covers `length` blocks starting at class address
//! `start` and is handed to the class with index `i` (for concat and interleave the index picks
//! the child). A hole (libstore's `start == -1`) has no backing: I/O stops there. An interleaved
//! layout repeats its run list, adding `wrap` to every start on each repetition, up to `end`.

use alloc::vec::Vec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First class block, or `None` for a hole.
    pub start: Option<u64>,
    pub length: u64,
}

impl Run {
    pub const fn new(start: u64, length: u64) -> Run {
        Run { start: Some(start), length }
    }

    pub const fn hole(length: u64) -> Run {
        Run { start: None, length }
    }
}

/// A piece of a request that falls in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Which run (the class's `index`).
    pub index: usize,
    /// Class address of the first block, `None` in a hole.
    pub start: Option<u64>,
    pub blocks: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    runs: Vec<Run>,
    /// Added to every run's start per repetition of the run list (interleaving); `None` for a
    /// list that does not repeat.
    wrap: Option<u64>,
    /// Blocks addressable through this layout.
    end: u64,
}

impl Layout {
    /// A layout that is its run list once.
    pub fn new(runs: Vec<Run>) -> Layout {
        let end = runs.iter().fold(0u64, |sum, run| sum.saturating_add(run.length));
        Layout { runs, wrap: None, end }
    }

    /// A run list repeated with each start advanced by `wrap` blocks per repetition, `end`
    /// blocks in all.
    pub fn repeating(runs: Vec<Run>, wrap: u64, end: u64) -> Layout {
        Layout { runs, wrap: Some(wrap), end }
    }

    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// The pieces of `blocks` blocks starting at store block `addr`, in order, stopping at the
    /// end of the layout. Empty when `addr` is at or past the end.
    pub fn segments(&self, addr: u64, blocks: u64) -> Segments<'_> {
        let mut cursor = Segments { layout: self, run: 0, offset: 0, base: 0, left: 0 };
        let cycle = self.runs.iter().map(|run| run.length).sum::<u64>();
        if addr >= self.end || cycle == 0 {
            return cursor;
        }
        let mut within = addr;
        if let Some(wrap) = self.wrap {
            cursor.base = (addr / cycle) * wrap;
            within = addr % cycle;
        }
        for (index, run) in self.runs.iter().enumerate() {
            if within < run.length {
                cursor.run = index;
                cursor.offset = within;
                cursor.left = blocks.min(self.end - addr);
                return cursor;
            }
            within -= run.length;
        }
        cursor
    }
}

pub struct Segments<'a> {
    layout: &'a Layout,
    run: usize,
    /// Blocks into the current run.
    offset: u64,
    /// What the current repetition adds to starts.
    base: u64,
    /// Blocks still to cover.
    left: u64,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        while self.left > 0 {
            let run = self.layout.runs[self.run];
            let blocks = (run.length - self.offset).min(self.left);
            let segment = (blocks > 0).then(|| Segment {
                index: self.run,
                start: run.start.map(|start| self.base + start + self.offset),
                blocks,
            });
            self.left -= blocks;
            self.offset = 0;
            self.run += 1;
            if self.run == self.layout.runs.len() {
                match self.layout.wrap {
                    Some(wrap) => {
                        self.run = 0;
                        self.base += wrap;
                    }
                    None => self.left = 0,
                }
            }
            if segment.is_some() {
                return segment;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn collect(layout: &Layout, addr: u64, blocks: u64) -> Vec<Segment> {
        layout.segments(addr, blocks).collect()
    }

    #[test]
    fn splits_across_runs_and_holes() {
        let layout = Layout::new(vec![Run::new(10, 2), Run::hole(1), Run::new(0, 3)]);
        assert_eq!(layout.end(), 6);
        assert_eq!(
            collect(&layout, 1, 4),
            vec![
                Segment { index: 0, start: Some(11), blocks: 1 },
                Segment { index: 1, start: None, blocks: 1 },
                Segment { index: 2, start: Some(0), blocks: 2 },
            ]
        );
        assert_eq!(collect(&layout, 5, 10), vec![Segment { index: 2, start: Some(2), blocks: 1 }]);
        assert!(collect(&layout, 6, 1).is_empty());
    }

    #[test]
    fn interleave_repeats_with_wrap() {
        // Two children, two blocks each per stripe: store blocks 0 1 | 2 3 | 4 5 | 6 7
        // go to child 0 @0 1, child 1 @0 1, child 0 @2 3, child 1 @2 3.
        let layout = Layout::repeating(vec![Run::new(0, 2), Run::new(0, 2)], 2, 8);
        assert_eq!(
            collect(&layout, 3, 4),
            vec![
                Segment { index: 1, start: Some(1), blocks: 1 },
                Segment { index: 0, start: Some(2), blocks: 2 },
                Segment { index: 1, start: Some(2), blocks: 1 },
            ]
        );
        assert!(collect(&layout, 8, 1).is_empty());
    }

    /// The simple model: a block-by-block table of where each store block lives.
    fn model(runs: &[Run]) -> Vec<(usize, Option<u64>)> {
        runs.iter()
            .enumerate()
            .flat_map(|(i, run)| (0..run.length).map(move |b| (i, run.start.map(|s| s + b))))
            .collect()
    }

    fn arb_runs() -> impl Strategy<Value = Vec<Run>> {
        prop::collection::vec(
            (prop::option::weighted(0.8, 0u64..1000), 0u64..6)
                .prop_map(|(start, length)| Run { start, length }),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn segments_match_the_block_table(runs in arb_runs(), addr in 0u64..40, blocks in 0u64..40) {
            let layout = Layout::new(runs.clone());
            let table = model(&runs);
            let mut expanded = Vec::new();
            for seg in layout.segments(addr, blocks) {
                prop_assert!(seg.blocks > 0);
                for b in 0..seg.blocks {
                    expanded.push((seg.index, seg.start.map(|s| s + b)));
                }
            }
            let from = (addr as usize).min(table.len());
            let to = (addr.saturating_add(blocks) as usize).min(table.len());
            prop_assert_eq!(&expanded[..], &table[from..to]);
        }

        #[test]
        fn interleave_matches_arithmetic(children in 1usize..5, stripe in 1u64..5, rows in 0u64..5,
                                        addr in 0u64..60, blocks in 0u64..60) {
            let end = children as u64 * stripe * rows;
            let layout = Layout::repeating(vec![Run::new(0, stripe); children], stripe, end);
            let mut expanded = Vec::new();
            for seg in layout.segments(addr, blocks) {
                for b in 0..seg.blocks {
                    expanded.push((seg.index, seg.start.unwrap() + b));
                }
            }
            let expected: Vec<_> = (addr..addr.saturating_add(blocks).min(end))
                .map(|b| {
                    let stripe_no = b / stripe;
                    let child = (stripe_no % children as u64) as usize;
                    (child, (stripe_no / children as u64) * stripe + b % stripe)
                })
                .collect();
            prop_assert_eq!(expanded, expected);
        }
    }
}
