//! The Hurd's negative control that drops one flush among many: the boot disk server under
//! ext2fs answers its Kth flush without flushing (`--flush=skip-one=K`), and what the crash
//! checker must find is worked out from the write log alone, then compared with what it found.
//!
//! As on GNU Mach ([`crate::barrier::skip_one`]), the skipped flush lies in the stretch of the log
//! between its FLUSH number K − 1 and its FLUSH number K. A round whose commit record was first
//! written in that stretch is owed from the crash point after it, and what is durable there is
//! what was written before FLUSH number K − 1. So the round is lost, from that crash point until
//! FLUSH number K, when a piece of its data file reached the disk only in the stretch: one of its
//! stamped data sectors, or its directory entry (its file name). Nothing else is lost anywhere.
//!
//! This holds for ext2fs without its journal, which is how the scenario runs it (with the
//! journal a round's metadata is durable through the journal's commit block, which this does not
//! model; and there, a single skipped flush never loses a round: see
//! [`super::scenarios::Hurd::skipped_one_flush`]).

use super::fscheck::{Lost, Report, Round};
use crate::barrier::log::{Entry, Log};
use crate::barrier::skip_one::{said_skipped, same_findings, skipped_stretch};
use pattern::{Kind, Stamp, SECTOR};
use std::collections::{BTreeMap, BTreeSet};

/// The stamps a write carries.
fn stamps(data: &[u8]) -> impl Iterator<Item = Stamp> + '_ {
    data.chunks(SECTOR).filter_map(Stamp::read)
}

/// The written bytes of `entries`.
fn written(entries: &[Entry]) -> impl Iterator<Item = &[u8]> {
    entries.iter().filter_map(|e| match e {
        Entry::Write { data, .. } => Some(data.as_slice()),
        _ => None,
    })
}

/// Whether every piece of `round`'s data file is in `entries`: each of its data sectors and its
/// directory entry.
fn whole_in(entries: &[Entry], round: Round) -> bool {
    let mut indices = BTreeSet::new();
    for stamp in written(entries).flat_map(stamps) {
        if stamp.kind == Kind::Data && (stamp.client, stamp.round) == (round.client, round.round) {
            indices.insert(stamp.index);
        }
    }
    let name = guest::data_file(round.client, round.round);
    let named = written(entries).any(|data| data.windows(name.len()).any(|w| w == name.as_bytes()));
    named && indices.len() == round.sectors as usize
}

/// The crash point just after log entry `at`: the next FLUSH or FUA write, or the end.
fn next_crash_point(log: &Log, at: usize) -> usize {
    log.entries
        .iter()
        .enumerate()
        .skip(at + 1)
        .find(|(_, e)| matches!(e, Entry::Flush | Entry::Write { fua: true, .. }))
        .map_or(log.entries.len(), |(next, _)| next)
}

/// The rounds a server that skipped its `k`th flush must have lost, each with the first crash
/// point losing it; the crash point they are durable from (the log's FLUSH number `k`); and how
/// many rounds were committed after it.
pub fn expected_losses(log: &Log, k: u32) -> Result<(BTreeSet<Lost>, usize, usize), String> {
    let stretch = skipped_stretch(log, k)?;
    // Each round's first commit record: where, and the round as it names it.
    let mut first_commit: BTreeMap<(u32, u32), (usize, Round)> = BTreeMap::new();
    for (at, entry) in log.entries.iter().enumerate() {
        let Entry::Write { data, .. } = entry else {
            continue;
        };
        for stamp in stamps(data).filter(|s| s.kind == Kind::Commit) {
            let round = Round { client: stamp.client, round: stamp.round, sectors: stamp.count };
            first_commit.entry((stamp.client, stamp.round)).or_insert((at, round));
        }
    }
    let durable = &log.entries[..stretch.start];
    let lost = first_commit
        .values()
        .filter(|(at, round)| stretch.contains(at) && !whole_in(durable, *round))
        .map(|&(at, round)| Lost { at: next_crash_point(log, at), round })
        .collect();
    let after = first_commit.values().filter(|(at, _)| *at > stretch.end).count();
    Ok((lost, stretch.end, after))
}

/// Whether `report` is exactly what skipping flush `k` must give: each expected round lost from
/// its crash point on and no later than the log's FLUSH number `k`, at least one, no other
/// finding; and the server's later flushes shown real (a round committed after FLUSH `k`).
/// `console` must say the server skipped that flush. Returns the rounds lost, and where.
pub fn exactly_the_skipped(log: &Log, console: &str, report: &Report, k: u32) -> Result<BTreeSet<Lost>, String> {
    said_skipped(console, k)?;
    let (expected, durable_from, after) = expected_losses(log, k)?;
    if report.violations.len() != report.lost.len() {
        let other: Vec<&String> = report.violations.iter().filter(|v| !v.contains("was synced but is lost")).collect();
        return Err(format!("findings the skipped flush does not explain: {other:?}"));
    }
    if let Some(late) = report.lost.iter().find(|l| l.at > durable_from) {
        return Err(format!("{} lost at the crash point before log entry {}, after the flush that followed the skipped one", late.round, late.at));
    }
    // The first crash point at which the checker found each round lost (in log order).
    let mut found = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for lost in report.lost.iter().collect::<BTreeSet<_>>() {
        if seen.insert(lost.round) {
            found.insert(*lost);
        }
    }
    same_findings(&expected, &found, after, k)?;
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::log::tests::build;
    use crate::barrier::skip_one::tests::{commit, data};

    /// A directory block naming round `round`'s data file (and those before it).
    fn directory(round: u32) -> Entry {
        let names: String = (0..=round).map(|r| guest::data_file(0, r)).collect();
        let mut data = names.into_bytes();
        data.resize(data.len().next_multiple_of(SECTOR), 0);
        Entry::Write { sector: 500, data, fua: false }
    }

    fn round(round: u32) -> Round {
        Round { client: 0, round, sectors: 2 }
    }

    /// One client's rounds as ext2fs without a journal makes them: `fsync` writes the data
    /// file and flushes, `file_syncfs` writes the directory and flushes, then the round's commit
    /// record is written and synced. The server's flush 5 (round 1's `file_syncfs`) is missing.
    fn rounds_with_the_fifth_flush_skipped() -> Vec<Entry> {
        vec![
            data(0, 0, 100),
            Entry::Flush,
            directory(0),
            Entry::Flush,
            commit(0, 0),
            Entry::Flush,
            data(0, 1, 102),
            Entry::Flush,
            directory(1),
            // Flush 5, skipped.
            commit(0, 1),
            Entry::Flush,
            data(0, 2, 104),
            Entry::Flush,
            directory(2),
            Entry::Flush,
            commit(0, 2),
            Entry::Flush,
        ]
    }

    #[test]
    fn a_round_whose_directory_entry_only_the_skipped_flush_covered_is_lost_until_the_next_flush() {
        let log = Log::parse(&build(&rounds_with_the_fifth_flush_skipped())).unwrap();
        let lost: BTreeSet<Lost> = [Lost { at: 10, round: round(1) }].into_iter().collect();
        assert_eq!(expected_losses(&log, 5), Ok((lost, 10, 1)));
        // Had the fourth been skipped (round 1's `fsync`), the next flush, before its commit
        // record, would have covered it.
        assert_eq!(expected_losses(&log, 4), Ok((BTreeSet::new(), 7, 2)));
    }

    #[test]
    fn a_round_whose_data_only_the_skipped_flush_covered_is_lost() {
        let mut entries = rounds_with_the_fifth_flush_skipped();
        // Round 1's directory entry durable before its data: its data is what the flush covered.
        entries.swap(6, 8);
        let log = Log::parse(&build(&entries)).unwrap();
        let (lost, ..) = expected_losses(&log, 5).unwrap();
        assert_eq!(lost.into_iter().collect::<Vec<_>>(), [Lost { at: 10, round: round(1) }]);
        // Both before the stretch: nothing lost.
        entries.swap(7, 8);
        let log = Log::parse(&build(&entries)).unwrap();
        assert_eq!(expected_losses(&log, 5).map(|(lost, ..)| lost.len()), Ok(0));
    }

    fn report(lost: &[Lost]) -> Report {
        Report {
            violations: lost.iter().map(|l| format!("{} was synced but is lost", l.round)).collect(),
            lost: lost.to_vec(),
            ..Report::default()
        }
    }

    #[test]
    fn only_exactly_the_expected_rounds_where_they_are_lost_pass() {
        let log = Log::parse(&build(&rounds_with_the_fifth_flush_skipped())).unwrap();
        let console = "rumpdisk: --flush=skip-one=5: flush 5 answered without flushing\n";
        let exact = Lost { at: 10, round: round(1) };
        assert_eq!(exactly_the_skipped(&log, console, &report(&[exact]), 5), Ok([exact].into_iter().collect()));
        let fails = |lost: &[Lost], k: u32, console: &str| exactly_the_skipped(&log, console, &report(lost), k).unwrap_err();
        assert!(fails(&[], 5, console).contains("not found"));
        assert!(fails(&[exact, Lost { at: 10, round: round(0) }], 5, console).contains("beyond"));
        assert!(fails(&[Lost { at: 12, round: round(1) }], 5, console).contains("after the flush"));
        assert!(fails(&[exact], 5, "").contains("never said"));
        assert!(fails(&[], 4, "flush 4 answered without flushing").contains("nothing to show"));
        let mut other = report(&[exact]);
        other.violations.push("crash point 3: e2fsck cannot repair the file system".into());
        let error = exactly_the_skipped(&log, console, &other, 5).unwrap_err();
        assert!(error.contains("does not explain"), "{error}");
    }

    /// A server that skipped every flush from the fifth on: the losses match, but no round is
    /// committed after a later FLUSH, so its later flushes are not shown real.
    #[test]
    fn a_server_that_stopped_flushing_is_not_a_pass() {
        let mut entries = rounds_with_the_fifth_flush_skipped();
        entries.truncate(15);
        let log = Log::parse(&build(&entries)).unwrap();
        let console = "flush 5 answered without flushing";
        let exact = Lost { at: 10, round: round(1) };
        let error = exactly_the_skipped(&log, console, &report(&[exact]), 5).unwrap_err();
        assert!(error.contains("not shown to be real"), "{error}");
    }
}
