//! The crash model itself, small enough to be read as its definition, and a generator of write
//! logs to hold the checkers against it.
//!
//! The model (dm-log-writes'): a crash may strike between any two entries of the log. A write is
//! durable once a FLUSH after it completed, a FUA write as soon as it completed; a preflushed
//! write is a FLUSH followed by the write, with a crash point between the two (the log parser
//! splits it the same way). The durable image at a crash point is every durable write applied in
//! log order over a zeroed disk. A round is owed from the crash point after its first commit
//! record (its sync had returned); a round the console alone reports synced is owed at the end
//! of the log. An owed round is intact at a crash point when every data sector the log has of it
//! is, in the durable image, that same sector at the address its stamp names.
//!
//! Everything here is done the slow, obvious way: each crash point's image is rebuilt from the
//! start of the log. It works on symbolic sectors, never on bytes, so neither the pattern codec
//! nor the log format is trusted by it.

use super::check::{Round, Violation};
use super::log::tests::{build_raw, Raw};
use super::log::{FLAG_FLUSH, FLAG_FUA};
use pattern::{Kind, Stamp, SECTOR};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// What one 512-byte sector holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Data sector `index` of `round`, stamped for disk sector `lba` (wherever it is written).
    Data { round: Round, index: u32, count: u32, lba: u64 },
    /// The record a client writes once the round's sync returned.
    Commit { round: Round, count: u32 },
    /// Anything that is not a pattern sector.
    Junk(u8),
}

impl Content {
    pub fn bytes(self) -> [u8; SECTOR] {
        let mut s = [0u8; SECTOR];
        match self {
            Content::Data { round, index, count, lba } => Stamp {
                kind: Kind::Data,
                client: round.client,
                round: round.round,
                index,
                count,
                lba,
            }
            .write(&mut s),
            Content::Commit { round, count } => Stamp {
                kind: Kind::Commit,
                client: round.client,
                round: round.round,
                index: 0,
                count,
                lba: 0,
            }
            .write(&mut s),
            Content::Junk(b) => s.fill(b),
        }
        s
    }

    fn round(self) -> Option<(Round, u32)> {
        match self {
            Content::Data { round, count, .. } | Content::Commit { round, count } => Some((round, count)),
            Content::Junk(_) => None,
        }
    }
}

/// One logged request.
#[derive(Clone, Debug)]
pub enum Op {
    /// `sectors` written from disk sector `lba` on.
    Write { lba: u64, sectors: Vec<Content>, fua: bool, preflush: bool },
    Flush,
}

/// A generated run: its write log and what its console reported.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub ops: Vec<Op>,
    pub synced: BTreeSet<Round>,
    pub failed: BTreeSet<Round>,
    pub write_failed: BTreeSet<Round>,
}

/// A log entry as the model sees it: a preflushed write is two.
#[derive(Clone, Copy)]
pub enum Event<'a> {
    Write { lba: u64, sectors: &'a [Content], fua: bool },
    Flush,
}

/// A disk image: sector → content (absent: zeroes).
pub type Image = BTreeMap<u64, Content>;

impl Run {
    pub fn events(&self) -> Vec<Event<'_>> {
        let mut events = Vec::new();
        for op in &self.ops {
            match op {
                Op::Write { lba, sectors, fua, preflush } => {
                    if *preflush {
                        events.push(Event::Flush);
                    }
                    events.push(Event::Write { lba: *lba, sectors, fua: *fua });
                }
                Op::Flush => events.push(Event::Flush),
            }
        }
        events
    }

    /// The durable image at crash point `c` (after events `0..c`).
    pub fn durable(&self, c: usize) -> Image {
        let events = self.events();
        let mut image = Image::new();
        for (j, event) in events[..c].iter().enumerate() {
            let Event::Write { lba, sectors, fua } = *event else {
                continue;
            };
            let flushed_later = events[j + 1..c].iter().any(|e| matches!(e, Event::Flush));
            if fua || flushed_later {
                for (i, &content) in sectors.iter().enumerate() {
                    image.insert(lba + i as u64, content);
                }
            }
        }
        image
    }

    /// Rounds whose commit record is in events `0..c`.
    pub fn committed(&self, c: usize) -> BTreeSet<Round> {
        let mut rounds = BTreeSet::new();
        for event in &self.events()[..c] {
            if let Event::Write { sectors, .. } = event {
                for content in sectors.iter() {
                    if let Content::Commit { round, .. } = content {
                        rounds.insert(*round);
                    }
                }
            }
        }
        rounds
    }

    /// Rounds owed at crash point `c`.
    pub fn owed(&self, c: usize) -> BTreeSet<Round> {
        let mut owed = self.committed(c);
        if c == self.events().len() {
            owed.extend(self.synced.iter().copied());
        }
        owed
    }

    /// Each round's data sectors anywhere in the log (index → the lba its stamp names, the
    /// first seen), and its sector count (from its first stamp of any kind).
    pub fn layout(&self) -> (BTreeMap<(Round, u32), u64>, BTreeMap<Round, u32>) {
        let (mut lbas, mut counts) = (BTreeMap::new(), BTreeMap::new());
        for event in self.events() {
            let Event::Write { sectors, .. } = event else {
                continue;
            };
            for &content in sectors {
                if let Some((round, count)) = content.round() {
                    counts.entry(round).or_insert(count);
                }
                if let Content::Data { round, index, lba, .. } = content {
                    lbas.entry((round, index)).or_insert(lba);
                }
            }
        }
        (lbas, counts)
    }

    /// Whether `image` holds data sector `index` of `round` at `lba`, stamped for `lba`.
    pub fn intact(image: &Image, round: Round, index: u32, lba: u64) -> bool {
        matches!(image.get(&lba), Some(Content::Data { round: r, index: i, lba: l, .. })
            if *r == round && *i == index && *l == lba)
    }

    /// Owed sectors a crash at `c` loses: (round, index, lba).
    pub fn lost(&self, c: usize) -> BTreeSet<(Round, u32, u64)> {
        let (lbas, _) = self.layout();
        let image = self.durable(c);
        let owed = self.owed(c);
        lbas.iter()
            .filter(|((round, index), &lba)| owed.contains(round) && !Run::intact(&image, *round, *index, lba))
            .map(|(&(round, index), &lba)| (round, index, lba))
            .collect()
    }

    /// The model's verdict, as the checker words it (order aside).
    pub fn verdict(&self) -> Expected {
        let n = self.events().len();
        let mut lost = BTreeSet::new();
        let mut before = BTreeSet::new();
        for c in 0..=n {
            let now = self.lost(c);
            for &(round, index, lba) in now.difference(&before) {
                lost.insert((round, index, lba, c));
            }
            before = now;
        }
        let (lbas, counts) = self.layout();
        let synced: BTreeSet<Round> = self.committed(n).union(&self.synced).copied().collect();
        let mut other = BTreeSet::new();
        for &round in &synced {
            if self.failed.contains(&round) || self.write_failed.contains(&round) {
                other.insert(Other::SyncedAfterFailure(round));
            }
            match counts.get(&round) {
                None => {
                    other.insert(Other::NotInLog(round));
                }
                Some(&count) => {
                    let missing = (0..count).filter(|i| !lbas.contains_key(&(round, *i))).count() as u32;
                    if missing > 0 {
                        other.insert(Other::Incomplete(round, missing));
                    }
                }
            }
        }
        Expected { lost, other, synced: synced.len() }
    }

    /// The run's write log, as blklogwrites writes it.
    pub fn log_bytes(&self) -> Vec<u8> {
        let data: Vec<Vec<u8>> = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Write { sectors, .. } => sectors.iter().flat_map(|c| c.bytes()).collect(),
                Op::Flush => Vec::new(),
            })
            .collect();
        let raw: Vec<Raw> = self
            .ops
            .iter()
            .zip(&data)
            .map(|(op, data)| match op {
                Op::Write { lba, sectors, fua, preflush } => Raw {
                    sector: *lba,
                    sectors: sectors.len() as u64,
                    flags: if *fua { FLAG_FUA } else { 0 } | if *preflush { FLAG_FLUSH } else { 0 },
                    data,
                },
                Op::Flush => Raw { sector: 0, sectors: 0, flags: FLAG_FLUSH, data },
            })
            .collect();
        build_raw(&raw)
    }

    /// What the run's console printed.
    pub fn console(&self) -> String {
        let mut text = String::new();
        let line = |what: &str, r: &Round, tail: &str| format!("barrier: {what} client={} round={}{tail}\n", r.client, r.round);
        for r in &self.synced {
            text += &line("synced", r, "");
        }
        for r in &self.failed {
            text += &line("sync-failed", r, " errno=1073741829");
        }
        for r in &self.write_failed {
            text += &line("write-failed", r, " errno=1073741829");
        }
        text
    }
}

/// Findings other than a lost sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Other {
    Incomplete(Round, u32),
    NotInLog(Round),
    SyncedAfterFailure(Round),
}

/// A verdict in a form both sides can be put in.
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    /// (round, data sector index, lba, first crash point of a stretch losing it).
    pub lost: BTreeSet<(Round, u32, u64, usize)>,
    pub other: BTreeSet<Other>,
    pub synced: usize,
}

impl Expected {
    /// The checker's violations in this form; `None` if it named one finding twice or gave one
    /// the model has no word for.
    pub fn of(violations: &[Violation], synced: usize) -> Option<Expected> {
        let mut e = Expected { lost: BTreeSet::new(), other: BTreeSet::new(), synced };
        for v in violations {
            let new = match *v {
                Violation::LostAtCrash { round, index, at, lba } => e.lost.insert((round, index, lba, at)),
                Violation::IncompleteRound { round, missing } => e.other.insert(Other::Incomplete(round, missing)),
                Violation::NotInLog { round } => e.other.insert(Other::NotInLog(round)),
                Violation::SyncedAfterFailure { round } => e.other.insert(Other::SyncedAfterFailure(round)),
                Violation::FinalImage { .. } => false,
            };
            if !new {
                return None;
            }
        }
        Some(e)
    }
}

/// The rounds the generator plays with: two clients of three rounds each.
pub const ROUNDS: [Round; 6] = [
    Round { client: 0, round: 0 },
    Round { client: 0, round: 1 },
    Round { client: 0, round: 2 },
    Round { client: 1, round: 0 },
    Round { client: 1, round: 1 },
    Round { client: 1, round: 2 },
];

/// Sectors of the generator's disk: small, so rounds, junk and misplaced stamps overlap often.
pub const DISK_SECTORS: u64 = 24;

/// A round's sector count (1 to 3) and the disk sector its data starts at; rounds overlap.
pub fn shape(round: Round) -> (u32, u64) {
    (1 + (round.client + round.round) % 3, u64::from(round.client * 7 + round.round * 3) % 12)
}

fn data(round: Round, index: u32) -> Content {
    let (count, base) = shape(round);
    Content::Data { round, index, count, lba: base + u64::from(index) }
}

fn commit(round: Round) -> Content {
    Content::Commit { round, count: shape(round).0 }
}

/// What one generated request does, before it is laid out.
#[derive(Clone, Debug)]
enum Gen {
    /// Data sectors `from..from + len` of a round (cut at its count), at their own address or at
    /// `misplaced`; a commit record (of `commit.0`) put at `commit.1` among them; `relabel`
    /// stamps each for the sector after its own.
    Data { round: usize, from: u32, len: u32, misplaced: Option<u64>, relabel: bool, commit: Option<(usize, usize)>, fua: bool, preflush: bool },
    /// A commit record between `before` and `after` junk sectors, at the client's record sector
    /// or anywhere on the disk.
    Commit { round: usize, before: usize, after: usize, at: Option<u64>, fua: bool, preflush: bool },
    Junk { lba: u64, len: usize, fua: bool },
    Flush,
}

fn gen() -> impl Strategy<Value = Gen> {
    let rare = || prop::bool::weighted(0.15);
    prop_oneof![
        5 => (0..6usize, 0..3u32, 1..=3u32, prop::option::weighted(0.15, 0..DISK_SECTORS), prop::bool::weighted(0.05), prop::option::weighted(0.15, (0..6usize, 0..4usize)), rare(), rare())
            .prop_map(|(round, from, len, misplaced, relabel, commit, fua, preflush)| Gen::Data { round, from, len, misplaced, relabel, commit, fua, preflush }),
        4 => (0..6usize, 0..2usize, 0..2usize, prop::option::weighted(0.2, 0..DISK_SECTORS), rare(), rare())
            .prop_map(|(round, before, after, at, fua, preflush)| Gen::Commit { round, before, after, at, fua, preflush }),
        1 => (0..DISK_SECTORS, 1..3usize, rare()).prop_map(|(lba, len, fua)| Gen::Junk { lba, len, fua }),
        4 => Just(Gen::Flush),
    ]
}

fn lay_out(g: Gen) -> Op {
    match g {
        Gen::Data { round, from, len, misplaced, relabel, commit: with, fua, preflush } => {
            let round = ROUNDS[round];
            let (count, base) = shape(round);
            let from = from.min(count - 1);
            let mut sectors: Vec<Content> = (from..(from + len).min(count))
                .map(|i| match data(round, i) {
                    Content::Data { lba, .. } if relabel => Content::Data { round, index: i, count, lba: lba + 1 },
                    sector => sector,
                })
                .collect();
            if let Some((other, at)) = with {
                sectors.insert(at.min(sectors.len()), commit(ROUNDS[other]));
            }
            let lba = misplaced.unwrap_or(base + u64::from(from));
            Op::Write { lba, sectors, fua, preflush }
        }
        Gen::Commit { round, before, after, at, fua, preflush } => {
            let round = ROUNDS[round];
            let mut sectors = vec![Content::Junk(0xc0); before];
            sectors.push(commit(round));
            sectors.extend(vec![Content::Junk(0xc1); after]);
            let lba = at.unwrap_or(DISK_SECTORS + u64::from(round.client));
            Op::Write { lba, sectors, fua, preflush }
        }
        Gen::Junk { lba, len, fua } => Op::Write { lba, sectors: vec![Content::Junk(0x5a); len], fua, preflush: false },
        Gen::Flush => Op::Flush,
    }
}

/// Generated runs: up to 24 requests, and a console that reports some rounds synced (committed
/// or not), some failed.
pub fn runs() -> impl Strategy<Value = Run> {
    (prop::collection::vec(gen(), 0..24), prop::collection::vec(0..8u8, 6)).prop_map(|(gens, said)| {
        let mut run = Run { ops: gens.into_iter().map(lay_out).collect(), ..Run::default() };
        for (round, said) in ROUNDS.iter().zip(said) {
            match said {
                0..=2 => {
                    run.synced.insert(*round);
                }
                3 => {
                    run.failed.insert(*round);
                }
                4 => {
                    run.write_failed.insert(*round);
                }
                _ => {}
            }
        }
        run
    })
}

#[cfg(test)]
mod tests {
    use super::super::check::{check, Console};
    use super::super::log::Log;
    use super::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use std::time::Instant;

    /// What a run holds that a checker could get wrong, counted over all generated runs.
    #[derive(Debug, Default)]
    struct Seen {
        runs: usize,
        fua: usize,
        preflush: usize,
        commit_inside: usize,
        misplaced: usize,
        relabelled: usize,
        repeated_image: usize,
        flush_before_data: usize,
        lost: usize,
        clean_with_owed: usize,
    }

    impl Seen {
        fn count(&mut self, run: &Run, verdict: &Expected) {
            self.runs += 1;
            let writes = || run.ops.iter().filter_map(|op| match op {
                Op::Write { lba, sectors, fua, preflush } => Some((*lba, sectors, *fua, *preflush)),
                Op::Flush => None,
            });
            self.fua += usize::from(writes().any(|w| w.2));
            self.preflush += usize::from(writes().any(|w| w.3));
            self.commit_inside += usize::from(writes().any(|(_, s, ..)| {
                s.len() > 1 && s.iter().skip(1).any(|c| matches!(c, Content::Commit { .. }))
            }));
            self.misplaced += usize::from(writes().any(|(lba, s, ..)| {
                s.iter().enumerate().any(|(i, c)| matches!(c, Content::Data { lba: l, .. } if *l != lba + i as u64))
            }));
            self.relabelled += usize::from(writes().any(|(_, s, ..)| {
                s.iter().any(|c| matches!(c, Content::Data { round, index, lba, .. } if *lba != shape(*round).1 + u64::from(*index)))
            }));
            let n = run.events().len();
            self.repeated_image += usize::from((1..n).any(|c| {
                let flushes = |c: usize| run.events()[..c].iter().filter(|e| matches!(e, Event::Flush)).count();
                flushes(c + 1) > flushes(c) && flushes(c) > 0 && run.durable(c + 1) == run.durable(c)
            }));
            // A round owed whose every data write comes after the last FLUSH before its commit.
            let events = run.events();
            self.flush_before_data += usize::from(run.committed(n).iter().any(|round| {
                let commit_at = (0..n).find(|&c| run.committed(c + 1).contains(round)).unwrap_or(n);
                let first_data = events.iter().position(|e| matches!(e, Event::Write { sectors, .. }
                    if sectors.iter().any(|c| matches!(c, Content::Data { round: r, .. } if r == round))));
                let flushed = events[..commit_at].iter().position(|e| matches!(e, Event::Flush));
                matches!((flushed, first_data), (Some(f), Some(d)) if f < d && d < commit_at)
            }));
            self.lost += usize::from(!verdict.lost.is_empty());
            self.clean_with_owed += usize::from(verdict.lost.is_empty() && verdict.synced > 0);
        }
    }

    /// The barrier checker's verdict on each generated log equals the model's: every lost
    /// sector at the first crash point of each stretch that loses it, and nothing else.
    #[test]
    fn the_barrier_checker_agrees_with_the_model() {
        const CASES: u32 = 10_000;
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            // Shrinking is bounded: a failure is reported within seconds, shrunk or not.
            max_shrink_time: 10_000,
            max_shrink_iters: 20_000,
            failure_persistence: None,
            ..Config::default()
        });
        let started = Instant::now();
        let seen = std::cell::RefCell::new(Seen::default());
        runner
            .run(&runs(), |run| {
                let log = Log::parse(&run.log_bytes()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                let verdict = check(&log, &Console::parse(&run.console()), None);
                let expected = run.verdict();
                let got = Expected::of(&verdict.violations, verdict.synced_rounds);
                prop_assert_eq!(got.as_ref(), Some(&expected), "checker {:?}", verdict.violations);
                let flushes = run.events().iter().filter(|e| matches!(e, Event::Flush)).count();
                prop_assert_eq!((verdict.flushes, verdict.writes), (flushes, run.ops.len() - run.ops.iter().filter(|o| matches!(o, Op::Flush)).count()));
                seen.borrow_mut().count(&run, &expected);
                Ok(())
            })
            .unwrap();
        let took = started.elapsed();
        let seen = seen.into_inner();
        eprintln!("{CASES} generated logs checked against the model in {took:?}: {seen:?}");
        // The generator must keep producing what the checker could get wrong.
        let at_least = seen.runs / 50;
        for (what, n) in [
            ("FUA writes", seen.fua),
            ("preflushed writes", seen.preflush),
            ("commit records inside a multi-sector write", seen.commit_inside),
            ("stamps at other sectors' addresses", seen.misplaced),
            ("stamps naming another address than their own", seen.relabelled),
            ("repeated crash images", seen.repeated_image),
            ("a synced round's only FLUSH before its data", seen.flush_before_data),
            ("lost sectors", seen.lost),
            ("clean logs with owed rounds", seen.clean_with_owed),
        ] {
            assert!(n >= at_least, "only {n} of {} runs had {what}", seen.runs);
        }
    }
}
