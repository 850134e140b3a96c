//! The flush merger: one device flush in flight, later `DEV_FLUSH_CACHE` requests join the next.
//!
//! A flush covers every write completed before it *started*. A request that arrives while a
//! flush runs may have writes that completed after that flush started, so it cannot be answered
//! by it; it waits (as a deferred reply, no thread held) and every such request is answered by the
//! next single flush — Linux's `blk-flush` rule. A failed flush answers all of its waiters with
//! its error; a waiter is never answered with success by a flush that started before it arrived.

use alloc::vec::Vec;
use spin::Mutex;

use crate::device::Error;

/// A request waiting for a flush: answered exactly once.
pub trait Waiter {
    fn answer(self, result: Result<(), Error>);
}

/// The merger's state, kept under the caller's lock; it never calls the disk itself.
#[derive(Debug)]
pub struct FlushMerger<W> {
    /// `None`: no flush runs. `Some(queue)`: one runs; `queue` waits for the next.
    running: Option<Vec<W>>,
}

impl<W> Default for FlushMerger<W> {
    fn default() -> Self {
        FlushMerger { running: None }
    }
}

impl<W> FlushMerger<W> {
    /// Registers a request. `Some(batch)`: nothing was running, so the caller must start a
    /// flush now and answer `batch` with its result. `None`: a flush runs; the request waits.
    #[must_use]
    pub fn request(&mut self, waiter: W) -> Option<Vec<W>> {
        match &mut self.running {
            Some(queue) => {
                queue.push(waiter);
                None
            }
            None => {
                self.running = Some(Vec::new());
                Some(alloc::vec![waiter])
            }
        }
    }

    /// The running flush ended. `Some(batch)`: requests arrived meanwhile, so the caller must
    /// start the next flush now for `batch`. `None`: the merger is idle again.
    #[must_use]
    pub fn finished(&mut self) -> Option<Vec<W>> {
        let queue = self.running.take().unwrap_or_default();
        if queue.is_empty() {
            None
        } else {
            self.running = Some(Vec::new());
            Some(queue)
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Requests waiting for the next flush.
    pub fn queued(&self) -> usize {
        self.running.as_ref().map_or(0, Vec::len)
    }
}

/// Serves `waiter` through `merger`: either queues it behind the running flush (another
/// thread's call answers it) or runs flushes with `flush` until nobody waits, answering each
/// batch after its own flush.
pub fn flush_merged<W: Waiter>(
    merger: &Mutex<FlushMerger<W>>,
    waiter: W,
    flush: impl Fn() -> Result<(), Error>,
) {
    let mut batch = merger.lock().request(waiter);
    while let Some(waiters) = batch {
        let result = flush();
        batch = merger.lock().finished();
        for waiter in waiters {
            waiter.answer(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::D_IO_ERROR;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use proptest::prelude::*;

    #[test]
    fn an_idle_merger_starts_a_flush_for_the_first_request() {
        let mut merger = FlushMerger::default();
        assert_eq!(merger.request(1), Some(vec![1]));
        assert!(merger.is_running());
        assert_eq!(merger.finished(), None);
        assert!(!merger.is_running());
    }

    #[test]
    fn requests_during_a_flush_are_all_served_by_the_next_single_flush() {
        let mut merger = FlushMerger::default();
        assert_eq!(merger.request(1), Some(vec![1]));
        assert_eq!(merger.request(2), None);
        assert_eq!(merger.request(3), None);
        assert_eq!(merger.queued(), 2);
        assert_eq!(merger.finished(), Some(vec![2, 3]));
        assert!(merger.is_running(), "the next flush runs for the queued batch");
        assert_eq!(merger.request(4), None, "4 arrived during the second flush");
        assert_eq!(merger.finished(), Some(vec![4]));
        assert_eq!(merger.finished(), None);
    }

    struct Recorded<'a>(u32, &'a core::cell::RefCell<Vec<(u32, Result<(), Error>)>>);
    impl Waiter for Recorded<'_> {
        fn answer(self, result: Result<(), Error>) {
            self.1.borrow_mut().push((self.0, result));
        }
    }

    #[test]
    fn a_failed_flush_answers_every_waiter_with_its_error() {
        let answers = core::cell::RefCell::new(Vec::new());
        let merger = Mutex::new(FlushMerger::default());
        // Requests 2 and 3 arrive while the first flush runs; the second flush fails.
        let flushes = core::cell::Cell::new(0);
        flush_merged(&merger, Recorded(1, &answers), || {
            flushes.set(flushes.get() + 1);
            if flushes.get() == 1 {
                assert!(merger.lock().request(Recorded(2, &answers)).is_none());
                assert!(merger.lock().request(Recorded(3, &answers)).is_none());
                Ok(())
            } else {
                Err(D_IO_ERROR)
            }
        });
        assert_eq!(flushes.get(), 2, "2 and 3 share one flush");
        assert!(!merger.lock().is_running());
        assert_eq!(
            *answers.borrow(),
            vec![(1, Ok(())), (2, Err(D_IO_ERROR)), (3, Err(D_IO_ERROR))]
        );
    }

    /// One step of the model: clients write and ask for flushes; the device finishes the running
    /// flush with success or failure.
    #[derive(Clone, Debug)]
    enum Step {
        Write(u8),
        Flush(u8),
        Finish(bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4).prop_map(Step::Write),
            (0u8..4).prop_map(Step::Flush),
            any::<bool>().prop_map(Step::Finish),
        ]
    }

    /// A waiter as the model sees it: who asked, and the writes it had completed when it asked.
    #[derive(Debug)]
    struct Asked {
        id: usize,
        writes_done: u32,
        client: u8,
    }

    proptest! {
        /// Against a model of a disk with a volatile cache: every waiter is answered exactly
        /// once; success only from a flush that started after the request, so every write the
        /// client completed before asking is durable; failures carry the flush's error; at most
        /// one flush runs and nobody waits while the device is idle; flushes ≤ requests.
        #[test]
        fn merged_flushes_keep_the_barrier(steps in proptest::collection::vec(step(), 0..200)) {
            let mut merger = FlushMerger::<Asked>::default();
            let mut writes: BTreeMap<u8, u32> = BTreeMap::new();
            // The running flush: its batch, the writes each client had completed when it started,
            // and how many requests had arrived by then.
            let mut running: Option<(Vec<Asked>, BTreeMap<u8, u32>, usize)> = None;
            let mut answered = Vec::new();
            let (mut requests, mut flushes) = (0, 0);
            let start = |batch: Vec<Asked>, writes: &BTreeMap<u8, u32>, requests: usize| Some((batch, writes.clone(), requests));
            for step in steps {
                match step {
                    Step::Write(client) => *writes.entry(client).or_default() += 1,
                    Step::Flush(client) => {
                        let asked = Asked { id: requests, writes_done: writes.get(&client).copied().unwrap_or(0), client };
                        requests += 1;
                        if let Some(batch) = merger.request(asked) {
                            prop_assert!(running.is_none(), "two flushes at once");
                            flushes += 1;
                            running = start(batch, &writes, requests);
                        }
                    }
                    Step::Finish(ok) => {
                        let Some((batch, covered, requests_before)) = running.take() else { continue };
                        let result = if ok { Ok(()) } else { Err(D_IO_ERROR) };
                        if let Some(next) = merger.finished() {
                            flushes += 1;
                            running = start(next, &writes, requests);
                        }
                        for asked in batch {
                            prop_assert!(asked.id < requests_before, "{asked:?} answered by a flush that started before it");
                            if result.is_ok() {
                                let durable = covered.get(&asked.client).copied().unwrap_or(0);
                                prop_assert!(durable >= asked.writes_done, "{asked:?} answered before its writes were flushed");
                            }
                            answered.push((asked.id, result));
                        }
                    }
                }
                prop_assert_eq!(merger.is_running(), running.is_some());
                prop_assert!(merger.queued() == 0 || running.is_some(), "waiters with no flush running");
            }
            // Drain: the device finishes everything successfully.
            while let Some((batch, _, _)) = running.take() {
                if let Some(next) = merger.finished() {
                    flushes += 1;
                    running = start(next, &writes, requests);
                }
                answered.extend(batch.into_iter().map(|asked| (asked.id, Ok(()))));
            }
            prop_assert!(flushes <= requests);
            let mut ids: Vec<usize> = answered.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, (0..requests).collect::<Vec<_>>(), "every request answered exactly once");
        }
    }
}
