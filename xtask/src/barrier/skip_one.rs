//! The negative control that drops one flush among many (`--flush=skip-one=K`): what the checker
//! must find, worked out from the write log alone, and the comparison with what it found.
//!
//! The server answers its Kth flush without flushing, so the log has its first K − 1 flushes and
//! then, where the Kth would be, nothing: the skipped flush lies between the log's FLUSH number
//! K − 1 and its FLUSH number K. A round committed in that stretch, with data written in it
//! before its commit record, had its sync answered by the skipped flush (no other flush is in the
//! stretch); its data stay volatile until FLUSH number K. So each of those data sectors is lost
//! from the crash point just after the commit record, and nothing else is lost anywhere. And the
//! server's next flush must have been real: some round is committed after FLUSH number K (a
//! server that skipped every flush from the Kth on would leave only QEMU's own at the end).

use super::check::{Round, Verdict, Violation};
use super::log::{Entry, Log};
use pattern::{Kind, Stamp, SECTOR};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

/// A lost data sector: its round, index and lba, and the first crash point losing it.
pub type Loss = (Round, u32, u64, usize);

/// Where a server's skipped `k`th flush lies in its log: the entries after the log's FLUSH
/// number `k` − 1 (from the start for the first) up to its FLUSH number `k` (or the end), which
/// the stretch does not hold. Every FLUSH of the log must be the server's.
pub fn skipped_stretch(log: &Log, k: u32) -> Result<Range<usize>, String> {
    let k = usize::try_from(k).map_err(|e| e.to_string())?;
    if k == 0 {
        return Err("flushes are counted from 1".into());
    }
    let flushes: Vec<usize> = log
        .entries
        .iter()
        .enumerate()
        .filter_map(|(at, e)| matches!(e, Entry::Flush).then_some(at))
        .collect();
    let start = match k {
        1 => 0,
        _ => flushes
            .get(k - 2)
            .map(|&at| at + 1)
            .ok_or_else(|| format!("the log has {} flushes, fewer than the {} before the skipped one", flushes.len(), k - 1))?,
    };
    Ok(start..flushes.get(k - 1).copied().unwrap_or(log.entries.len()))
}

/// Whether the server's console says it answered flush `k` without flushing, and no other: two
/// skipped flushes in a row would leave the same log as one.
pub fn said_skipped(console: &str, k: u32) -> Result<(), String> {
    let said = format!("flush {k} answered without flushing");
    if !console.contains(&said) {
        return Err(format!("the server never said \"{said}\": no flush was skipped"));
    }
    match console.matches("answered without flushing").count() {
        1 => Ok(()),
        n => Err(format!("the server says it answered {n} flushes without flushing, not one")),
    }
}

/// The data sectors a server that skipped its `k`th flush must have lost, and where; and how many
/// rounds were committed after the log's FLUSH number `k` (after the skipped one's stretch).
pub fn expected_losses(log: &Log, k: u32) -> Result<(BTreeSet<Loss>, usize), String> {
    let Range { start, end } = skipped_stretch(log, k)?;
    let mut data: BTreeMap<Round, Vec<(u32, u64)>> = BTreeMap::new();
    let mut committed = BTreeSet::new();
    let mut lost = BTreeSet::new();
    let mut after = 0;
    for (at, entry) in log.entries.iter().enumerate() {
        let Entry::Write { data: bytes, .. } = entry else {
            continue;
        };
        for stamp in bytes.chunks(SECTOR).filter_map(Stamp::read) {
            let round = Round {
                client: stamp.client,
                round: stamp.round,
            };
            match stamp.kind {
                Kind::Data if at >= start => data.entry(round).or_default().push((stamp.index, stamp.lba)),
                Kind::Data => {}
                Kind::Commit if at > end => after += usize::from(committed.insert(round)),
                Kind::Commit => {
                    if committed.insert(round) && at >= start {
                        for &(index, lba) in data.get(&round).into_iter().flatten() {
                            lost.insert((round, index, lba, at + 1));
                        }
                    }
                }
            }
        }
    }
    Ok((lost, after))
}

/// Whether `verdict` is exactly what skipping flush `k` must give: the expected losses, at least
/// one, and no other finding. `console` must say the server skipped that flush.
pub fn exactly_the_skipped(log: &Log, console: &str, verdict: &Verdict, k: u32) -> Result<usize, String> {
    said_skipped(console, k)?;
    let (expected, after) = expected_losses(log, k)?;
    let mut found = BTreeSet::new();
    for v in &verdict.violations {
        match *v {
            Violation::LostAtCrash { round, index, at, lba } => {
                found.insert((round, index, lba, at));
            }
            ref other => return Err(format!("a finding the skipped flush does not explain: {other}")),
        }
    }
    if found.len() != verdict.violations.len() {
        return Err("the checker named a lost sector twice".into());
    }
    same_findings(&expected, &found, after, k)?;
    Ok(expected.len())
}

/// Whether the checker `found` what skipping flush `k` loses (`expected`, at least one finding),
/// and `after` rounds committed after the flush that followed it show the server flushed again
/// (a server that skipped every flush from the `k`th on would leave the same losses).
pub fn same_findings<T: Ord + fmt::Debug>(expected: &BTreeSet<T>, found: &BTreeSet<T>, after: usize, k: u32) -> Result<(), String> {
    if expected.is_empty() {
        return Err(format!("no round committed between the flushes around the skipped flush {k} needed it: nothing to show"));
    }
    if after == 0 {
        return Err(format!("no round was committed after the flush that followed the skipped flush {k}: the server's later flushes are not shown to be real"));
    }
    let missed: Vec<_> = expected.difference(found).collect();
    let extra: Vec<_> = found.difference(expected).collect();
    if !missed.is_empty() || !extra.is_empty() {
        return Err(format!(
            "the checker's findings differ from what skipping flush {k} loses: not found {missed:?}, found beyond it {extra:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::super::check::{check, Console};
    use super::super::log::tests::build;
    use super::*;

    fn sectors(stamps: &[Stamp]) -> Entry {
        let mut data = Vec::new();
        for s in stamps {
            let mut b = [0u8; SECTOR];
            s.write(&mut b);
            data.extend_from_slice(&b);
        }
        Entry::Write {
            sector: stamps[0].lba,
            data,
            fua: false,
        }
    }

    /// Round `round`'s two data sectors, at `lba` on.
    pub fn data(client: u32, round: u32, lba: u64) -> Entry {
        let stamp = |index| Stamp { kind: Kind::Data, client, round, index, count: 2, lba: lba + u64::from(index) };
        sectors(&[stamp(0), stamp(1)])
    }

    /// Round `round`'s commit record (of a round of 2 sectors).
    pub fn commit(client: u32, round: u32) -> Entry {
        sectors(&[Stamp { kind: Kind::Commit, client, round, index: 0, count: 2, lba: 64 + u64::from(client) }])
    }

    /// Two clients, rounds 0 to 2, one flush per round; the server's flush 2 is missing from the
    /// log (it covered both clients' round 1, committed before flush 3 made them durable).
    fn skipped_second() -> Vec<Entry> {
        vec![
            data(0, 0, 100),
            data(1, 0, 200),
            Entry::Flush,
            commit(0, 0),
            commit(1, 0),
            data(0, 1, 102),
            data(1, 1, 202),
            // Flush 2, skipped.
            commit(0, 1),
            commit(1, 1),
            data(0, 2, 104),
            Entry::Flush,
            commit(0, 2),
            Entry::Flush,
        ]
    }

    #[test]
    fn the_rounds_of_the_skipped_flush_are_lost_from_their_commit_record_on() {
        let log = Log::parse(&build(&skipped_second())).unwrap();
        let r = |client, round| Round { client, round };
        let expected: BTreeSet<Loss> = [
            (r(0, 1), 0, 102, 8),
            (r(0, 1), 1, 103, 8),
            (r(1, 1), 0, 202, 9),
            (r(1, 1), 1, 203, 9),
        ]
        .into_iter()
        .collect();
        assert_eq!(expected_losses(&log, 2), Ok((expected, 1)));
        // The same log read as if flush 1 had been the skipped one: its stretch is the log's
        // start, where round 0 of each client was committed after the log's first FLUSH.
        assert_eq!(expected_losses(&log, 1), Ok((BTreeSet::new(), 5)));
        assert!(expected_losses(&log, 5).is_err(), "the log has 3 flushes");
    }

    #[test]
    fn the_real_checker_finds_exactly_the_skipped_flush_s_rounds() {
        let log = Log::parse(&build(&skipped_second())).unwrap();
        let console = "rumpdisk: --flush=skip-one=2: flush 2 answered without flushing\n";
        let verdict = check(&log, &Console::parse(console), None);
        assert_eq!(exactly_the_skipped(&log, console, &verdict, 2), Ok(4));
        // The wrong K, or no word from the server, is not a pass.
        assert!(exactly_the_skipped(&log, console, &verdict, 3).is_err());
        assert!(exactly_the_skipped(&log, "", &verdict, 2).is_err());
        let twice = format!("{console}rumpdisk: --flush=skip-one=2: flush 3 answered without flushing\n");
        assert!(exactly_the_skipped(&log, &twice, &verdict, 2).unwrap_err().contains("not one"));
    }

    #[test]
    fn a_checker_that_misses_or_adds_a_finding_fails_the_control() {
        let log = Log::parse(&build(&skipped_second())).unwrap();
        let console = "flush 2 answered without flushing";
        let mut verdict = check(&log, &Console::default(), None);
        let last = verdict.violations.pop().unwrap();
        assert!(exactly_the_skipped(&log, console, &verdict, 2).unwrap_err().contains("not found"));
        verdict.violations.push(last);
        verdict.violations.push(Violation::LostAtCrash { round: Round { client: 0, round: 0 }, index: 0, at: 4, lba: 100 });
        assert!(exactly_the_skipped(&log, console, &verdict, 2).unwrap_err().contains("beyond"));
        verdict.violations.pop();
        verdict.violations.push(Violation::NotInLog { round: Round { client: 3, round: 0 } });
        assert!(exactly_the_skipped(&log, console, &verdict, 2).unwrap_err().contains("does not explain"));
    }

    /// A log where every round had its flush: nothing is lost, and the control must not pass.
    #[test]
    fn a_log_without_a_skipped_flush_is_not_a_pass() {
        let mut entries = skipped_second();
        entries.insert(7, Entry::Flush);
        let log = Log::parse(&build(&entries)).unwrap();
        let console = "flush 2 answered without flushing";
        let verdict = check(&log, &Console::default(), None);
        assert!(verdict.violations.is_empty());
        assert!(exactly_the_skipped(&log, console, &verdict, 2).is_err());
    }

    /// A server that skipped every flush from the second on: the log's only later FLUSH is
    /// QEMU's own at the end. The losses match a skipped second flush, but nothing shows the
    /// server flushed again: not a pass.
    #[test]
    fn a_server_that_skipped_every_flush_from_the_kth_on_is_not_a_pass() {
        let mut entries = skipped_second();
        entries.remove(10);
        let log = Log::parse(&build(&entries)).unwrap();
        let console = "flush 2 answered without flushing";
        let verdict = check(&log, &Console::default(), None);
        let error = exactly_the_skipped(&log, console, &verdict, 2).unwrap_err();
        assert!(error.contains("not shown to be real"), "{error}");
    }
}
