//! Group commit through the server's own paths (`Server::write`, `set_status`,
//! `start_gathered_flushes` and the write bound), with the disk's flushes held open until the
//! test lets them finish, so requests and writes arrive while a flush runs in every order the
//! property test picks. The property: a sync is answered only after a flush that started after
//! every write answered before the sync arrived had finished — one that started after the sync
//! arrived, or, when nothing was written since, the last one.

use super::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex as StdMutex;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A write of one record (from its own thread: it may start a flush at the write bound).
    Write(u8),
    /// A `DEV_FLUSH_CACHE` request.
    Sync,
    /// The serving loop finds no request left (from its own thread: it may start a flush).
    Idle,
    /// The running flush, if any, finishes.
    Finish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![8 => any::<u8>().prop_map(Op::Write), 2 => Just(Op::Sync), 1 => Just(Op::Idle), 1 => Just(Op::Finish)]
}

/// A sync's answer: (sync, when answered, result).
type Answered = (usize, u64, Result<(), Error>);

/// What happened, on one clock.
#[derive(Default)]
struct Record {
    clock: AtomicU64,
    flush_starts: StdMutex<Vec<u64>>,
    flush_ends: StdMutex<Vec<u64>>,
    /// When each write was answered.
    writes_answered: StdMutex<Vec<u64>>,
    answers: StdMutex<Vec<Answered>>,
}

impl Record {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }
}

struct Answer {
    sync: usize,
    record: Arc<Record>,
}

impl Waiter for Answer {
    fn answer(self, result: Result<(), Error>) {
        let when = self.record.tick();
        self.record.answers.lock().unwrap().push((self.sync, when, result));
    }
}

/// What an operation's thread tells the driver.
enum Event {
    Done,
    /// A flush started and waits for this to be released.
    FlushRunning(Sender<()>),
}

struct Driver {
    server: Arc<Server<MemoryBackend, Answer>>,
    device: DeviceId,
    record: Arc<Record>,
    events: Receiver<Event>,
    events_tx: Sender<Event>,
    /// The running flush's release, while it runs.
    running: Option<Sender<()>>,
    /// When each sync arrived.
    arrivals: Vec<u64>,
}

impl Driver {
    fn new() -> Driver {
        let (backend, disk) = {
            let mut backend = MemoryBackend::default();
            let disk = backend.add(b"wd0", Geometry::new(512, 256).unwrap()).unwrap();
            (backend, disk)
        };
        let server: Arc<Server<MemoryBackend, Answer>> = Arc::new(Server::new(backend));
        let Opened::Local { device } = server.open(b"wd0", READ | WRITE) else { panic!("wd0") };
        let record = Arc::new(Record::default());
        let (events_tx, events) = channel();
        let (hook_record, hook_events) = (record.clone(), std::sync::Mutex::new(events_tx.clone()));
        disk.set_flush_hook(Some(std::boxed::Box::new(move || {
            hook_record.flush_starts.lock().unwrap().push(hook_record.tick());
            let (release_tx, release) = channel();
            hook_events.lock().unwrap().send(Event::FlushRunning(release_tx)).expect("the driver listens");
            release.recv_timeout(WAIT).expect("the driver finishes the flush");
            hook_record.flush_ends.lock().unwrap().push(hook_record.tick());
        })));
        Driver { server, device, record, events, events_tx, running: None, arrivals: Vec::new() }
    }

    /// Runs `op` on its own thread until it is done or has started a flush.
    fn on_thread(&mut self, op: impl FnOnce(&Server<MemoryBackend, Answer>, DeviceId) + Send + 'static) {
        let (server, device, done) = (self.server.clone(), self.device, self.events_tx.clone());
        thread::spawn(move || {
            op(&server, device);
            done.send(Event::Done).expect("the driver listens");
        });
        self.wait_for_thread();
    }

    fn wait_for_thread(&mut self) {
        match self.events.recv_timeout(WAIT) {
            Ok(Event::Done) => {}
            Ok(Event::FlushRunning(release)) => {
                assert!(self.running.is_none(), "two flushes at once");
                self.running = Some(release);
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!("an operation hung"),
        }
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Write(record) => {
                let clock = self.record.clone();
                self.on_thread(move |server, device| {
                    server.write(device, u64::from(record), &[record; 512]).expect("in range");
                    clock.writes_answered.lock().unwrap().push(clock.tick());
                })
            }
            Op::Sync => {
                let sync = self.arrivals.len();
                self.arrivals.push(self.record.tick());
                self.server.set_status(self.device, flavor::DEV_FLUSH_CACHE, Answer { sync, record: self.record.clone() });
            }
            Op::Idle => self.on_thread(|server, _| server.start_gathered_flushes()),
            Op::Finish => {
                if let Some(release) = self.running.take() {
                    release.send(()).expect("the flush waits");
                    // The thread that ran the flush answers its syncs and ends.
                    self.wait_for_thread();
                }
            }
        }
    }
}

proptest! {
    // Each wait is bounded (`WAIT`, 10 s), and so is shrinking (20 s, then the case in hand):
    // an operation that hangs fails the test within a minute, shrunk as far as time allowed.
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_time: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn a_sync_is_answered_only_after_a_flush_that_covers_its_writes(ops in proptest::collection::vec(op(), 0..300)) {
        let mut driver = Driver::new();
        for op in ops {
            driver.run(op);
        }
        // Drain: every flush finishes, and the server goes idle until nothing waits.
        for _ in 0..4 {
            driver.run(Op::Finish);
            driver.run(Op::Idle);
        }
        driver.run(Op::Finish);
        let answers = driver.record.answers.lock().unwrap().clone();
        let starts = driver.record.flush_starts.lock().unwrap().clone();
        let ends = driver.record.flush_ends.lock().unwrap().clone();
        let writes = driver.record.writes_answered.lock().unwrap().clone();
        prop_assert_eq!(answers.len(), driver.arrivals.len(), "every sync answered once");
        for (sync, answered, result) in answers {
            prop_assert_eq!(result, Ok(()));
            let arrived = driver.arrivals[sync];
            // The last write answered before the sync arrived.
            let last_write = writes.iter().copied().filter(|&write| write < arrived).max();
            // One flush at a time: starts and ends pair up in order.
            let covering = starts.iter().zip(&ends).any(|(&start, &end)| last_write.is_none_or(|write| write < start) && end < answered);
            prop_assert!(
                covering,
                "sync {} (arrived at {}, answered at {}, last write before it at {:?}): no flush covered it: {:?} – {:?}",
                sync, arrived, answered, last_write, starts, ends
            );
        }
    }
}
