//! The flush merger: `DEV_FLUSH_CACHE` requests gather while the server has other work, then
//! share one device flush.
//!
//! A flush covers every write completed before it *started*, so a request may be answered only
//! by a flush that started after it arrived — Linux's `blk-flush` rule. A request therefore waits
//! (as a deferred reply, no thread held) and is answered by the next flush to start; a failed
//! flush answers all of its waiters with its error, never success.
//!
//! Group commit: the next flush does not start when a request arrives but when the server has no
//! request left to take (its serving loop finds the queue empty and calls [`start_gathered`]), or
//! after [`GATHER_WRITES`] writes or [`GATHER_BYTES`] completed meanwhile, whichever comes first. The clients whose
//! requests the server is taking meanwhile are usually writing just before their own sync, and
//! those syncs then share the flush — PostgreSQL's `commit_delay`, counted in work instead of
//! time. A lone client loses nothing: the queue is empty as soon as its request is taken. While
//! one flush runs, new requests wait for the next; waiting only adds writes to a flush.
//!
//! A request needs no flush at all when the server completed no write since the last flush that
//! succeeded started: every write its client completed is durable already. (ext2fs asks for a
//! flush on every sync, with or without anything to write; a journal commit asks twice.) The
//! server counts completed writes across all its devices, so a write through another open of the
//! same disk is never missed; the first flush and the one after a failure always reach the disk.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use mach::sync::Mutex;

use crate::device::Error;

/// Writes that may complete while requests gather before their flush starts anyway: bounds a
/// sync's extra wait when clients never let the request queue run empty.
pub const GATHER_WRITES: u32 = 64;
/// The same bound in bytes written, for large writes.
pub const GATHER_BYTES: usize = 4 << 20;

/// A request waiting for a flush: answered exactly once.
pub trait Waiter {
    fn answer(self, result: Result<(), Error>);
}

#[derive(Debug)]
enum State<W> {
    /// No request waits and no flush runs.
    Idle,
    /// Requests wait for the flush to start; it starts at the latest when `writes_left` more
    /// writes or `bytes_left` more bytes have been written.
    Gathering { waiters: Vec<W>, writes_left: u32, bytes_left: usize },
    /// A flush runs, started when the server had completed `covers` writes; `next` gathers for
    /// the one after it.
    Running { next: Vec<W>, covers: u64 },
}

impl<W> State<W> {
    fn gathering(waiters: Vec<W>) -> Self {
        State::Gathering { waiters, writes_left: GATHER_WRITES, bytes_left: GATHER_BYTES }
    }
}

/// The merger's state, kept under the caller's lock; it never calls the disk itself.
#[derive(Debug)]
pub struct FlushMerger<W> {
    state: State<W>,
    /// The server's count of completed writes when the last flush that succeeded started:
    /// while the count stays there, every completed write is durable. `None` before the first
    /// flush succeeded and after one failed.
    durable_at: Option<u64>,
}

impl<W> Default for FlushMerger<W> {
    fn default() -> Self {
        FlushMerger { state: State::Idle, durable_at: None }
    }
}

/// Requests a flush starts with, or answers without one.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch<W> {
    pub waiters: Vec<W>,
    /// `false`: no write completed since the last flush that succeeded started, so the waiters
    /// are answered with success and the disk is not asked.
    pub needs_flush: bool,
}

impl<W> FlushMerger<W> {
    /// Registers a request, the server having completed `written` writes: it waits for the next
    /// flush to start, or comes back (`Some`) to be answered with success now when nothing was
    /// written since the last flush that succeeded started.
    #[must_use]
    pub fn request(&mut self, waiter: W, written: u64) -> Option<W> {
        match &mut self.state {
            State::Running { next: waiters, .. } | State::Gathering { waiters, .. } => waiters.push(waiter),
            State::Idle if self.durable_at == Some(written) => return Some(waiter),
            State::Idle => self.state = State::gathering(alloc::vec![waiter]),
        }
        None
    }

    /// A write of `bytes` completed, the server's `written`th. `Some(batch)`: it was the last one
    /// a gathering lets through, so the caller must start a flush now and answer `batch` with
    /// its result.
    #[must_use]
    pub fn write_finished(&mut self, bytes: usize, written: u64) -> Option<Batch<W>> {
        let State::Gathering { writes_left, bytes_left, .. } = &mut self.state else { return None };
        *writes_left = writes_left.saturating_sub(1);
        *bytes_left = bytes_left.saturating_sub(bytes);
        if *writes_left > 0 && *bytes_left > 0 {
            return None;
        }
        self.start(written)
    }

    /// The server has nothing else to do, having completed `written` writes. `Some(batch)`:
    /// requests were gathering; the caller must start a flush now and answer them with its
    /// result, or answer them with success if the batch needs none.
    #[must_use]
    pub fn start(&mut self, written: u64) -> Option<Batch<W>> {
        let State::Gathering { waiters, .. } = &mut self.state else { return None };
        let waiters = core::mem::take(waiters);
        let needs_flush = self.durable_at != Some(written);
        self.state = if needs_flush { State::Running { next: Vec::new(), covers: written } } else { State::Idle };
        Some(Batch { waiters, needs_flush })
    }

    /// The running flush ended with `result`: requests that arrived meanwhile gather for the
    /// next one.
    pub fn finished(&mut self, result: Result<(), Error>) {
        if let State::Running { next, covers } = &mut self.state {
            self.durable_at = result.is_ok().then_some(*covers);
            self.state = if next.is_empty() { State::Idle } else { State::gathering(core::mem::take(next)) };
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Whether requests wait for a flush that has not started: the server must call
    /// [`start_gathered`] once it has no request left to take.
    pub fn is_gathering(&self) -> bool {
        matches!(self.state, State::Gathering { .. })
    }

    /// Requests waiting for a flush that has not started.
    pub fn queued(&self) -> usize {
        match &self.state {
            State::Idle => 0,
            State::Gathering { waiters, .. } | State::Running { next: waiters, .. } => waiters.len(),
        }
    }
}

/// Registers `waiter` (`writes`: the server's count of completed writes), or answers it at once
/// if nothing needs flushing; returns whether the merger now gathers (see
/// [`FlushMerger::is_gathering`]).
pub fn request<W: Waiter>(merger: &Mutex<FlushMerger<W>>, writes: &AtomicU64, waiter: W) -> bool {
    let mut merger = merger.lock();
    if let Some(waiter) = merger.request(waiter, writes.load(Ordering::SeqCst)) {
        drop(merger);
        waiter.answer(Ok(()));
        return false;
    }
    merger.is_gathering()
}

/// Runs `write` of `bytes` and counts it in `writes` (the server's count), then runs the flush
/// its completion starts, if any; returns the write's result and whether the merger gathers
/// afterwards.
pub fn write_counted<W: Waiter, T>(
    merger: &Mutex<FlushMerger<W>>,
    writes: &AtomicU64,
    bytes: usize,
    write: impl FnOnce() -> T,
    flush: impl FnOnce() -> Result<(), Error>,
) -> (T, bool) {
    let written = write();
    // Counted before the caller answers the write: a client's later request sees it.
    let count = writes.fetch_add(1, Ordering::SeqCst) + 1;
    let batch = merger.lock().write_finished(bytes, count);
    (written, run_flush(merger, batch, flush))
}

/// Starts the gathered flush, if requests gather, and answers them; returns whether requests
/// gather again afterwards (they arrived during the flush).
pub fn start_gathered<W: Waiter>(merger: &Mutex<FlushMerger<W>>, writes: &AtomicU64, flush: impl FnOnce() -> Result<(), Error>) -> bool {
    let batch = {
        let mut merger = merger.lock();
        merger.start(writes.load(Ordering::SeqCst))
    };
    run_flush(merger, batch, flush)
}

fn run_flush<W: Waiter>(merger: &Mutex<FlushMerger<W>>, batch: Option<Batch<W>>, flush: impl FnOnce() -> Result<(), Error>) -> bool {
    let Some(Batch { waiters, needs_flush }) = batch else { return merger.lock().is_gathering() };
    let result = if needs_flush { flush() } else { Ok(()) };
    let gathering = {
        let mut merger = merger.lock();
        if needs_flush {
            merger.finished(result);
        }
        merger.is_gathering()
    };
    for waiter in waiters {
        waiter.answer(result);
    }
    gathering
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::D_IO_ERROR;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use core::cell::{Cell, RefCell};
    use proptest::prelude::*;

    #[test]
    fn requests_gather_until_the_server_is_idle_then_share_one_flush() {
        let mut merger = FlushMerger::default();
        assert_eq!(merger.start(0), None, "nothing to flush");
        assert_eq!(merger.request(1, 0), None);
        assert_eq!(merger.request(2, 0), None);
        assert!(merger.is_gathering());
        assert_eq!(merger.queued(), 2);
        assert_eq!(merger.start(0), flush(vec![1, 2]));
        assert!(merger.is_running());
        merger.finished(Ok(()));
        assert!(!merger.is_running() && !merger.is_gathering());
    }

    #[test]
    fn requests_during_a_flush_wait_for_the_next_one() {
        let mut merger = FlushMerger::default();
        assert_eq!(merger.request(1, 0), None);
        assert_eq!(merger.start(0), flush(vec![1]));
        assert_eq!(merger.request(2, 0), None);
        assert_eq!(merger.request(3, 0), None);
        assert_eq!(merger.start(0), None, "one flush at a time");
        assert_eq!(merger.write_finished(GATHER_BYTES, 1), None, "writes do not start a second flush either");
        merger.finished(Ok(()));
        assert!(merger.is_gathering(), "2 and 3 gather for the next flush");
        assert_eq!(merger.start(1), flush(vec![2, 3]), "a write completed after the first flush started");
    }

    #[test]
    fn gathering_ends_after_gather_writes_even_if_the_server_is_never_idle() {
        let mut merger = FlushMerger::default();
        assert_eq!(merger.write_finished(GATHER_BYTES, 1), None, "no request: writes change nothing");
        assert_eq!(merger.request(1, 1), None);
        for written in 1..u64::from(GATHER_WRITES) {
            assert_eq!(merger.write_finished(512, 1 + written), None);
        }
        assert_eq!(merger.write_finished(512, 65), flush(vec![1]), "bounded: the flush starts");
        assert!(merger.is_running());
    }

    /// The design's bounds, as numbers (docs/design.md: "after 64 writes / 4 MiB completed
    /// meanwhile"), each edge: a wrong constant fails here, whatever the code computes from it.
    #[test]
    fn the_gather_bounds_are_64_writes_or_4_mib() {
        // Writes of one sector: the 63rd still gathers, the 64th starts the flush, a 65th finds
        // it running and starts nothing.
        for writes in [63u32, 64, 65] {
            let mut merger = FlushMerger::default();
            assert_eq!(merger.request(1, 0), None);
            let started: Vec<u32> = (1..=writes).filter(|&write| merger.write_finished(512, write.into()).is_some()).collect();
            let expect: &[u32] = if writes < 64 { &[] } else { &[64] };
            assert_eq!(started, expect, "{writes} writes");
        }
        // One write of 4 MiB less a byte, exactly 4 MiB, 4 MiB and a byte.
        for (bytes, starts) in [((4 << 20) - 1, false), (4 << 20, true), ((4 << 20) + 1, true)] {
            let mut merger = FlushMerger::default();
            assert_eq!(merger.request(1, 0), None);
            assert_eq!(merger.write_finished(bytes, 1).is_some(), starts, "{bytes} bytes");
        }
        // 4 MiB reached by a second write, one byte short of it, and one past it.
        for (second, starts) in [(511, false), (512, true), (513, true)] {
            let mut merger = FlushMerger::default();
            assert_eq!(merger.request(1, 0), None);
            assert_eq!(merger.write_finished((4 << 20) - 512, 1), None);
            assert_eq!(merger.write_finished(second, 2).is_some(), starts, "4 MiB - 512 + {second}");
        }
    }

    #[test]
    fn gathering_ends_after_gather_bytes_of_large_writes() {
        let mut merger = FlushMerger::default();
        assert_eq!(merger.request(1, 0), None);
        assert_eq!(merger.write_finished(GATHER_BYTES - 1, 1), None);
        assert_eq!(merger.write_finished(1, 2), flush(vec![1]));
    }

    /// A batch that needs a flush.
    fn flush(waiters: Vec<u32>) -> Option<Batch<u32>> {
        Some(Batch { waiters, needs_flush: true })
    }

    struct Recorded<'a>(u32, &'a RefCell<Vec<(u32, Result<(), Error>)>>);
    impl Waiter for Recorded<'_> {
        fn answer(self, result: Result<(), Error>) {
            self.1.borrow_mut().push((self.0, result));
        }
    }

    #[test]
    fn a_failed_flush_answers_every_waiter_with_its_error() {
        let answers = RefCell::new(Vec::new());
        let merger = Mutex::new(FlushMerger::default());
        let writes = AtomicU64::new(0);
        assert!(request(&merger, &writes, Recorded(1, &answers)));
        // Requests 2 and 3 arrive while the first flush runs, after a write completed; the
        // second flush fails.
        let again = start_gathered(&merger, &writes, || {
            writes.fetch_add(1, Ordering::SeqCst);
            assert!(!request(&merger, &writes, Recorded(2, &answers)), "a flush runs: not gathering yet");
            assert!(!request(&merger, &writes, Recorded(3, &answers)));
            Ok(())
        });
        assert!(again, "2 and 3 gather once the first flush ended");
        assert_eq!(*answers.borrow(), vec![(1, Ok(()))]);
        assert!(!start_gathered(&merger, &writes, || Err(D_IO_ERROR)));
        assert_eq!(*answers.borrow(), vec![(1, Ok(())), (2, Err(D_IO_ERROR)), (3, Err(D_IO_ERROR))]);
        assert!(!start_gathered(&merger, &writes, || unreachable!("nobody waits")));
    }

    /// With nothing written since the last flush that succeeded started, a request is answered
    /// at once; the first flush, a write since, or a failure since sends the next to the disk.
    #[test]
    fn a_request_with_nothing_written_since_a_good_flush_needs_none() {
        let answers = RefCell::new(Vec::new());
        let merger = Mutex::new(FlushMerger::default());
        let writes = AtomicU64::new(0);
        let flushes = Cell::new(0);
        let flush = |result: Result<(), Error>| {
            flushes.set(flushes.get() + 1);
            result
        };
        assert!(request(&merger, &writes, Recorded(1, &answers)), "the first flush reaches the disk");
        start_gathered(&merger, &writes, || flush(Ok(())));
        assert!(!request(&merger, &writes, Recorded(2, &answers)), "answered at once");
        assert_eq!(*answers.borrow(), vec![(1, Ok(())), (2, Ok(()))]);
        assert_eq!(flushes.get(), 1);
        let (_, gathering) = write_counted(&merger, &writes, 512, || (), || unreachable!("nobody waits"));
        assert!(!gathering);
        assert!(request(&merger, &writes, Recorded(3, &answers)), "a write completed since");
        start_gathered(&merger, &writes, || flush(Err(D_IO_ERROR)));
        assert!(request(&merger, &writes, Recorded(4, &answers)), "the last flush failed");
        start_gathered(&merger, &writes, || flush(Ok(())));
        assert_eq!(flushes.get(), 3);
        assert_eq!(answers.borrow()[2..], [(3, Err(D_IO_ERROR)), (4, Ok(()))]);
    }

    #[test]
    fn the_write_that_ends_a_gathering_runs_the_flush() {
        let answers = RefCell::new(Vec::new());
        let merger = Mutex::new(FlushMerger::default());
        let writes = AtomicU64::new(0);
        let flushes = Cell::new(0);
        request(&merger, &writes, Recorded(1, &answers));
        for write in 1..=GATHER_WRITES {
            let (written, gathering) = write_counted(&merger, &writes, 512, || write, || {
                flushes.set(flushes.get() + 1);
                Ok(())
            });
            assert_eq!(written, write);
            assert_eq!(gathering, write < GATHER_WRITES);
        }
        assert_eq!(flushes.get(), 1);
        assert_eq!(*answers.borrow(), vec![(1, Ok(()))]);
    }

    /// One step of the model: clients complete writes and ask for flushes; the server runs out
    /// of requests; the device finishes the running flush with success or failure.
    #[derive(Clone, Debug)]
    enum Step {
        /// A client's write of some 64 KiB units.
        Write(u8, u8),
        Flush(u8),
        Idle,
        Finish(bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4, 0u8..4).prop_map(|(client, units)| Step::Write(client, units)),
            (0u8..4).prop_map(Step::Flush),
            Just(Step::Idle),
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

    /// The model's world: a disk with a volatile cache and the flush that runs on it.
    #[derive(Default)]
    struct Model {
        merger: FlushMerger<Asked>,
        /// Writes each client completed, and all clients together.
        completed: BTreeMap<u8, u32>,
        written: u64,
        /// Writes of each client the disk holds durably: completed before a flush that
        /// succeeded started.
        durable: BTreeMap<u8, u32>,
        /// The running flush: its batch, the writes each client had completed when it started,
        /// and how many requests had arrived by then.
        running: Option<(Vec<Asked>, BTreeMap<u8, u32>, usize)>,
        /// Writes and bytes written since the current gathering began.
        gathered_writes: Option<(u32, usize)>,
        requests: usize,
        flushes: usize,
        answered: Vec<(usize, Result<(), Error>)>,
    }

    impl Model {
        fn start(&mut self, batch: Option<Batch<Asked>>) -> Result<(), TestCaseError> {
            let Some(Batch { waiters, needs_flush }) = batch else { return Ok(()) };
            prop_assert!(!waiters.is_empty(), "a batch for nobody");
            if !needs_flush {
                return waiters.into_iter().try_for_each(|asked| self.answer_at_once(asked));
            }
            prop_assert!(self.running.is_none(), "two flushes at once");
            self.flushes += 1;
            self.running = Some((waiters, self.completed.clone(), self.requests));
            Ok(())
        }

        /// A request answered with success and no flush: its writes must be durable already.
        fn answer_at_once(&mut self, asked: Asked) -> Result<(), TestCaseError> {
            let durable = self.durable.get(&asked.client).copied().unwrap_or(0);
            prop_assert!(durable >= asked.writes_done, "{asked:?} answered without a flush, its writes not durable");
            self.answered.push((asked.id, Ok(())));
            Ok(())
        }

        fn write(&mut self, client: u8, bytes: usize) -> Result<(), TestCaseError> {
            *self.completed.entry(client).or_default() += 1;
            self.written += 1;
            if let Some((writes, written)) = &mut self.gathered_writes {
                *writes += 1;
                *written += bytes;
            }
            let batch = self.merger.write_finished(bytes, self.written);
            if batch.is_some() {
                let (writes, written) = self.gathered_writes.unwrap_or_default();
                prop_assert!(writes == GATHER_WRITES || written >= GATHER_BYTES, "a gathering ended early");
            }
            self.start(batch)
        }

        fn finish(&mut self, ok: bool) -> Result<(), TestCaseError> {
            let Some((batch, covered, requests_before)) = self.running.take() else { return Ok(()) };
            let result = if ok { Ok(()) } else { Err(D_IO_ERROR) };
            self.merger.finished(result);
            if ok {
                for (&client, &writes) in &covered {
                    let durable = self.durable.entry(client).or_default();
                    *durable = (*durable).max(writes);
                }
            }
            for asked in batch {
                prop_assert!(asked.id < requests_before, "{asked:?} answered by a flush that started before it");
                if result.is_ok() {
                    let durable = covered.get(&asked.client).copied().unwrap_or(0);
                    prop_assert!(durable >= asked.writes_done, "{asked:?} answered before its writes were flushed");
                }
                self.answered.push((asked.id, result));
            }
            Ok(())
        }

        fn check(&mut self) -> Result<(), TestCaseError> {
            prop_assert_eq!(self.merger.is_running(), self.running.is_some());
            let gathering = self.merger.is_gathering();
            prop_assert!(!gathering || self.merger.queued() > 0, "gathering for nobody");
            match (gathering, self.gathered_writes) {
                (true, None) => self.gathered_writes = Some((0, 0)),
                (false, Some(_)) => self.gathered_writes = None,
                _ => {}
            }
            Ok(())
        }
    }

    proptest! {
        /// Against a model of a disk with a volatile cache: every waiter is answered exactly
        /// once; success only from a flush that started after the request, or with no flush
        /// when every write the client completed before asking is durable already; failures
        /// carry the flush's error; at most
        /// one flush runs; a gathering ends when the server is idle or after `GATHER_WRITES`
        /// writes; flushes ≤ requests.
        #[test]
        fn merged_flushes_keep_the_barrier(steps in proptest::collection::vec(step(), 0..200)) {
            let mut model = Model::default();
            for step in steps {
                match step {
                    Step::Write(client, units) => model.write(client, usize::from(units) << 16)?,
                    Step::Flush(client) => {
                        let writes_done = model.completed.get(&client).copied().unwrap_or(0);
                        let asked = Asked { id: model.requests, writes_done, client };
                        model.requests += 1;
                        if let Some(asked) = model.merger.request(asked, model.written) {
                            model.answer_at_once(asked)?;
                        }
                    }
                    Step::Idle => {
                        let batch = model.merger.start(model.written);
                        model.start(batch)?;
                    }
                    Step::Finish(ok) => model.finish(ok)?,
                }
                model.check()?;
            }
            // Drain: the server goes idle and the device finishes everything successfully.
            for _ in 0..2 {
                let batch = model.merger.start(model.written);
                model.start(batch)?;
                model.finish(true)?;
                model.check()?;
            }
            prop_assert_eq!(model.merger.queued(), 0);
            prop_assert!(model.flushes <= model.requests);
            let mut ids: Vec<usize> = model.answered.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, (0..model.requests).collect::<Vec<_>>(), "every request answered exactly once");
        }
    }
}
