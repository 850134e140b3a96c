//! The write-barrier checker: does a device write log honour every sync the clients saw return?
//!
//! The crash model is dm-log-writes' (xfstests generic/482, CrashMonkey): a crash may strike at any
//! point of the log, and then exactly the writes before the last FLUSH are durable. The workload
//! writes self-describing pattern sectors (`pattern::Stamp`) in rounds; after a round's sync returns
//! the client writes a commit record and prints `barrier: synced client=C round=R`. So a round
//! whose commit record is in the log must be intact in the durable image of every crash point after
//! that record. The worst crash points are those just before each FLUSH (and the end of the log),
//! whose durable image is the one at the previous FLUSH; the checker replays the log and tests every
//! one of them.

use super::log::{Entry, Log};
use pattern::{Kind, Stamp, SECTOR};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// A round of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Round {
    pub client: u32,
    pub round: u32,
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} round {}", self.client, self.round)
    }
}

/// What the guest printed about its syncs.
#[derive(Debug, Default)]
pub struct Console {
    pub synced: BTreeSet<Round>,
    /// Rounds whose sync returned an error, with the errno the client saw.
    pub failed: BTreeMap<Round, i64>,
    /// Rounds whose data write returned an error, with the errno.
    pub write_failed: BTreeMap<Round, i64>,
}

/// What starts a record of the barrier client.
const RECORD: &str = "barrier: ";

impl Console {
    /// Picks `barrier: synced client=C round=R`, `barrier: sync-failed client=C round=R errno=E`
    /// and `barrier: write-failed client=C round=R errno=E` lines out of a serial console capture.
    pub fn parse(text: &str) -> Console {
        let mut console = Console::default();
        for line in text.lines() {
            // Anywhere in the line: behind the `start NAME: ` GNU Mach prints with no newline as
            // it starts a task, or behind another task's line the kernel's console cut in two.
            let Some(rest) = line.find(RECORD).map(|at| &line[at + RECORD.len()..]) else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let what = words.next();
            let mut field =
                |name: &str| -> Option<i64> { words.next()?.strip_prefix(name)?.parse().ok() };
            let (Some(client), Some(round)) = (field("client="), field("round=")) else {
                continue;
            };
            let (Ok(client), Ok(round)) = (u32::try_from(client), u32::try_from(round)) else {
                continue;
            };
            let r = Round { client, round };
            match what {
                Some("synced") => {
                    console.synced.insert(r);
                }
                Some("sync-failed") => {
                    console.failed.insert(r, field("errno=").unwrap_or(0));
                }
                Some("write-failed") => {
                    console.write_failed.insert(r, field("errno=").unwrap_or(0));
                }
                _ => {}
            }
        }
        console
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Violation {
    /// A crash just before log entry `at` (after entries `0..at`; `at` is the log's length for
    /// its end) would lose sector `lba` of a round whose sync had returned, and a crash just
    /// before entry `at - 1` would not: each stretch of crash points losing it is named once, by
    /// its first point.
    LostAtCrash { round: Round, index: u32, at: usize, lba: u64 },
    /// The round is owed, but `missing` of its data sectors are written nowhere in the log.
    IncompleteRound { round: Round, missing: u32 },
    /// The console says synced, but the log has none of the round's sectors.
    NotInLog { round: Round },
    /// A round reported synced although its sync or one of its writes failed.
    SyncedAfterFailure { round: Round },
    /// The final image does not hold a synced round's sector intact.
    FinalImage { round: Round, lba: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LostAtCrash { round, index, at, lba } => {
                write!(f, "{round}: a crash before log entry {at} loses sector {lba} (its data sector {index}) though its sync returned")
            }
            Violation::IncompleteRound { round, missing } => {
                write!(
                    f,
                    "{round}: synced with {missing} of its data sectors never written"
                )
            }
            Violation::NotInLog { round } => write!(
                f,
                "{round}: reported synced, but none of its data is in the log"
            ),
            Violation::SyncedAfterFailure { round } => write!(
                f,
                "{round}: reported synced although its sync or a write failed"
            ),
            Violation::FinalImage { round, lba } => {
                write!(f, "{round}: sector {lba} is not intact in the final image")
            }
        }
    }
}

#[derive(Debug)]
pub struct Verdict {
    /// FLUSH entries in the log, each a crash point checked.
    pub flushes: usize,
    pub writes: usize,
    /// Rounds that the log or the console shows as synced.
    pub synced_rounds: usize,
    pub violations: Vec<Violation>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.violations.is_empty() && self.synced_rounds > 0
    }

    pub fn summary(&self) -> String {
        format!(
            "{} writes, {} flushes (each a crash point checked), {} synced rounds: {}",
            self.writes,
            self.flushes,
            self.synced_rounds,
            if self.holds() {
                "barrier holds".to_owned()
            } else {
                format!("{} violations", self.violations.len())
            }
        )
    }
}

/// Where the workload meant each round's sectors to be, from every pattern sector in the log.
#[derive(Default)]
struct Layout {
    /// Data sectors: the lba each stamp names (its own address, wherever the log put it).
    lbas: BTreeMap<(Round, u32), u64>,
    /// The round's sector count, from its first stamp (data or commit).
    counts: HashMap<Round, u32>,
}

impl Layout {
    fn of(log: &Log) -> Layout {
        let mut layout = Layout::default();
        for entry in &log.entries {
            let Entry::Write { data, .. } = entry else {
                continue;
            };
            for s in data.chunks(SECTOR).filter_map(Stamp::read) {
                let round = Round {
                    client: s.client,
                    round: s.round,
                };
                layout.counts.entry(round).or_insert(s.count);
                if s.kind == Kind::Data {
                    layout.lbas.entry((round, s.index)).or_insert(s.lba);
                }
            }
        }
        layout
    }

    /// The round's data sectors the log has, as (index, lba).
    fn sectors(&self, round: Round) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.lbas
            .range((round, 0)..=(round, u32::MAX))
            .map(|(&(_, index), &lba)| (index, lba))
    }
}

/// The crash model, replayed: which owed round's sectors a crash at each point loses.
struct Replay<'a> {
    layout: &'a Layout,
    /// The image a crash right now would leave: writes before the last FLUSH, and FUA writes.
    durable: HashMap<u64, &'a [u8]>,
    /// Writes since the last FLUSH (FUA writes too), in log order.
    pending: Vec<(u64, &'a [u8])>,
    /// Owed rounds' sectors, by the lba each must stay intact at.
    watched: HashMap<u64, Vec<(Round, u32)>>,
    /// Owed sectors a crash right now loses.
    lost: BTreeSet<(Round, u32)>,
    violations: Vec<Violation>,
}

impl<'a> Replay<'a> {
    /// The crash point `at` (after entries `0..at`): `changed` lbas of the durable image and the
    /// rounds `owed` from this point on are (re)tested.
    fn crash_point(&mut self, at: usize, changed: &[u64], owed: &[Round]) {
        let mut test = Vec::new();
        for lba in changed {
            test.extend(self.watched.get(lba).into_iter().flatten().map(|&(r, i)| (r, i, *lba)));
        }
        for &round in owed {
            for (index, lba) in self.layout.sectors(round) {
                self.watched.entry(lba).or_default().push((round, index));
                test.push((round, index, lba));
            }
        }
        for (round, index, lba) in test {
            let intact = self.durable.get(&lba).is_some_and(|s| matches_stamp(s, round, index, lba));
            if intact {
                self.lost.remove(&(round, index));
            } else if self.lost.insert((round, index)) {
                self.violations.push(Violation::LostAtCrash { round, index, at, lba });
            }
        }
    }
}

pub fn check(log: &Log, console: &Console, final_image: Option<&[u8]>) -> Verdict {
    let layout = Layout::of(log);
    let mut replay = Replay {
        layout: &layout,
        durable: HashMap::new(),
        pending: Vec::new(),
        watched: HashMap::new(),
        lost: BTreeSet::new(),
        violations: Vec::new(),
    };
    let mut committed: BTreeSet<Round> = BTreeSet::new();
    let (mut flushes, mut writes) = (0, 0);
    let sectors_per_log_sector = (log.sector_size / SECTOR) as u64;
    for (at, entry) in log.entries.iter().enumerate() {
        let mut changed = Vec::new();
        let mut owed = Vec::new();
        match entry {
            Entry::Write { sector, data, fua } => {
                writes += 1;
                for (i, chunk) in data.chunks(SECTOR).enumerate() {
                    let lba = sector * sectors_per_log_sector + i as u64;
                    // A FUA write is durable now; it stays in order among the pending writes,
                    // so that the next FLUSH does not put an older one over it.
                    if *fua {
                        replay.durable.insert(lba, chunk);
                        changed.push(lba);
                    }
                    replay.pending.push((lba, chunk));
                    let Some(s) = Stamp::read(chunk).filter(|s| s.kind == Kind::Commit) else {
                        continue;
                    };
                    let round = Round {
                        client: s.client,
                        round: s.round,
                    };
                    if committed.insert(round) {
                        owed.push(round);
                    }
                }
            }
            Entry::Flush => {
                flushes += 1;
                for (lba, data) in replay.pending.drain(..) {
                    replay.durable.insert(lba, data);
                    changed.push(lba);
                }
            }
            Entry::Discard { .. } | Entry::Mark(_) => {}
        }
        replay.crash_point(at + 1, &changed, &owed);
    }
    // Rounds the console alone reports synced (killed before the commit record was written):
    // owed at the end of the log, the last crash point.
    let console_only: Vec<Round> = console.synced.difference(&committed).copied().collect();
    replay.crash_point(log.entries.len(), &[], &console_only);
    let mut violations = replay.violations;

    let synced: BTreeSet<Round> = committed.union(&console.synced).copied().collect();
    for round in &synced {
        if console.failed.contains_key(round) || console.write_failed.contains_key(round) {
            violations.push(Violation::SyncedAfterFailure { round: *round });
        }
        let Some(&count) = layout.counts.get(round) else {
            violations.push(Violation::NotInLog { round: *round });
            continue;
        };
        let missing = (0..count)
            .filter(|&index| !layout.lbas.contains_key(&(*round, index)))
            .count() as u32;
        if missing > 0 {
            violations.push(Violation::IncompleteRound {
                round: *round,
                missing,
            });
        }
        if let Some(image) = final_image {
            for (index, lba) in layout.sectors(*round) {
                if !intact_in(image, lba, *round, index) {
                    violations.push(Violation::FinalImage { round: *round, lba });
                }
            }
        }
    }
    Verdict {
        flushes,
        writes,
        synced_rounds: synced.len(),
        violations,
    }
}

/// Whether `sector`, at disk sector `lba`, is data sector `index` of `round` meant for `lba`.
fn matches_stamp(sector: &[u8], round: Round, index: u32, lba: u64) -> bool {
    Stamp::read(sector).is_some_and(|s| {
        s.kind == Kind::Data
            && s.client == round.client
            && s.round == round.round
            && s.index == index
            && s.lba == lba
    })
}

fn intact_in(image: &[u8], lba: u64, round: Round, index: u32) -> bool {
    let at = lba as usize * SECTOR;
    image
        .get(at..at + SECTOR)
        .is_some_and(|s| matches_stamp(s, round, index, lba))
}

#[cfg(test)]
mod tests {
    use super::super::log::tests::build;
    use super::*;

    /// Data sectors of a round, `count` of them from `lba` on.
    fn data(client: u32, round: u32, count: u32, lba: u64) -> Entry {
        let mut bytes = Vec::new();
        for index in 0..count {
            let mut s = [0u8; SECTOR];
            Stamp {
                kind: Kind::Data,
                client,
                round,
                index,
                count,
                lba: lba + index as u64,
            }
            .write(&mut s);
            bytes.extend_from_slice(&s);
        }
        Entry::Write {
            sector: lba,
            data: bytes,
            fua: false,
        }
    }

    fn commit(client: u32, round: u32, count: u32, lba: u64) -> Entry {
        let mut s = [0u8; SECTOR];
        Stamp {
            kind: Kind::Commit,
            client,
            round,
            index: 0,
            count,
            lba,
        }
        .write(&mut s);
        Entry::Write {
            sector: lba,
            data: s.to_vec(),
            fua: false,
        }
    }

    fn run(entries: &[Entry], console: &str) -> Verdict {
        check(
            &Log::parse(&build(entries)).unwrap(),
            &Console::parse(console),
            None,
        )
    }

    const SYNCED_0_1: &str = "barrier: synced client=0 round=1\nbarrier: synced client=0 round=2\n";

    #[test]
    fn flush_between_data_and_commit_holds() {
        let v = run(
            &[
                data(0, 1, 4, 100),
                Entry::Flush,
                commit(0, 1, 4, 10),
                data(0, 2, 4, 104),
                Entry::Flush,
                commit(0, 2, 4, 10),
            ],
            SYNCED_0_1,
        );
        assert!(v.holds(), "{:?}", v.violations);
        assert_eq!((v.flushes, v.synced_rounds, v.writes), (2, 2, 4));
    }

    #[test]
    fn skipped_flush_is_caught_even_with_a_shutdown_flush_at_the_end() {
        // The shutdown trap: QEMU's own final flush makes "a FLUSH after the writes" true.
        let v = run(
            &[
                data(0, 1, 4, 100),
                commit(0, 1, 4, 10),
                data(0, 2, 4, 104),
                commit(0, 2, 4, 10),
                Entry::Flush,
            ],
            SYNCED_0_1,
        );
        assert!(!v.holds());
        assert!(v.violations.iter().any(|x| matches!(
            x,
            Violation::LostAtCrash {
                round: Round {
                    client: 0,
                    round: 1
                },
                ..
            }
        )));
    }

    #[test]
    fn another_clients_flush_covers_a_completed_write() {
        let v = run(
            &[
                data(0, 1, 2, 100),
                data(1, 1, 2, 200),
                Entry::Flush,
                commit(0, 1, 2, 10),
                commit(1, 1, 2, 11),
            ],
            "barrier: synced client=0 round=1\nbarrier: synced client=1 round=1\n",
        );
        assert!(v.holds(), "{:?}", v.violations);
    }

    #[test]
    fn a_write_after_the_flush_is_not_covered_by_it() {
        let v = run(
            &[
                data(0, 1, 2, 100),
                Entry::Flush,
                data(1, 1, 2, 200),
                commit(1, 1, 2, 11),
            ],
            "",
        );
        assert_eq!(v.violations.len(), 2, "{:?}", v.violations);
    }

    #[test]
    fn overwriting_synced_data_is_caught() {
        let v = run(
            &[
                data(0, 1, 2, 100),
                Entry::Flush,
                commit(0, 1, 2, 10),
                data(0, 2, 2, 100),
                Entry::Flush,
            ],
            "barrier: synced client=0 round=1\n",
        );
        assert!(
            v.violations
                .iter()
                .any(|x| matches!(x, Violation::LostAtCrash { lba: 100, .. })),
            "{:?}",
            v.violations
        );
    }

    #[test]
    fn console_sync_without_commit_needs_a_later_flush_and_data() {
        let round = |round| Round { client: 0, round };
        let v = run(
            &[data(0, 1, 2, 100)],
            "barrier: synced client=0 round=1\nbarrier: synced client=0 round=9\n",
        );
        // Owed at the end of the log, where no FLUSH has made the data durable.
        assert_eq!(
            v.violations,
            vec![
                Violation::LostAtCrash { round: round(1), index: 0, at: 1, lba: 100 },
                Violation::LostAtCrash { round: round(1), index: 1, at: 1, lba: 101 },
                Violation::NotInLog { round: round(9) },
            ]
        );
    }

    #[test]
    fn synced_after_a_failed_sync_is_a_violation() {
        let v = run(
            &[data(0, 1, 1, 100), Entry::Flush, commit(0, 1, 1, 10)],
            "barrier: sync-failed client=0 round=1 errno=5\nbarrier: synced client=0 round=1\n",
        );
        assert_eq!(
            v.violations,
            vec![Violation::SyncedAfterFailure {
                round: Round {
                    client: 0,
                    round: 1
                }
            }]
        );
    }

    #[test]
    fn a_record_behind_gnu_mach_s_start_banner_counts() {
        let console = Console::parse(
            "start supervisor: barrier: synced client=0 round=0\nbarrier: synced client=0 round=1\n",
        );
        let round = |round| Round { client: 0, round };
        assert_eq!(console.synced, [round(0), round(1)].into_iter().collect());
    }

    /// The driver's line about the disk, cut by the console, with a record in between.
    #[test]
    fn a_record_inside_another_task_s_cut_line_counts() {
        let console = Console::parse(
            "ahci: wd0barrier: synced client=0 round=0\nbarrier: synced client=1 round=0\n: \"QEMU HARDDISK\", port 0\n",
        );
        let round = |client| Round { client, round: 0 };
        assert_eq!(console.synced, [round(0), round(1)].into_iter().collect());
    }

    #[test]
    fn synced_after_a_failed_write_is_a_violation() {
        let console = Console::parse(
            "barrier: write-failed client=2 round=3 errno=5\nbarrier: synced client=2 round=3\n",
        );
        assert_eq!(
            console.write_failed.get(&Round {
                client: 2,
                round: 3
            }),
            Some(&5)
        );
        let v = run(
            &[data(2, 3, 1, 100), Entry::Flush],
            "barrier: write-failed client=2 round=3 errno=5\nbarrier: synced client=2 round=3\n",
        );
        assert_eq!(
            v.violations,
            vec![Violation::SyncedAfterFailure {
                round: Round {
                    client: 2,
                    round: 3
                }
            }]
        );
    }

    #[test]
    fn an_incomplete_round_is_caught() {
        let mut partial = data(0, 1, 4, 100);
        if let Entry::Write { data, .. } = &mut partial {
            data.truncate(2 * SECTOR);
        }
        let v = run(&[partial, Entry::Flush, commit(0, 1, 4, 10)], "");
        assert!(v.violations.contains(&Violation::IncompleteRound {
            round: Round {
                client: 0,
                round: 1
            },
            missing: 2
        }));
    }

    #[test]
    fn checks_the_final_image() {
        let entries = [data(0, 1, 2, 4), Entry::Flush, commit(0, 1, 2, 1)];
        let log = Log::parse(&build(&entries)).unwrap();
        let mut image = vec![0u8; 16 * SECTOR];
        let Entry::Write { data, .. } = &entries[0] else {
            unreachable!()
        };
        image[4 * SECTOR..6 * SECTOR].copy_from_slice(data);
        assert!(check(&log, &Console::default(), Some(&image)).holds());
        image[5 * SECTOR + 100] ^= 1;
        let v = check(&log, &Console::default(), Some(&image));
        assert_eq!(
            v.violations,
            vec![Violation::FinalImage {
                round: Round {
                    client: 0,
                    round: 1
                },
                lba: 5
            }]
        );
    }

    #[test]
    fn nothing_synced_is_not_a_pass() {
        assert!(!run(&[Entry::Flush], "").holds());
    }
}
