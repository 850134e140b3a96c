//! The write barrier through the Hurd's own file system, checked at every crash point of a device
//! write log (the xfstests `generic/482` method with dm-log-writes' crash model).
//!
//! A crash may strike anywhere; what survives it is every write completed before the last FLUSH.
//! So the crash image just before each FLUSH (and at the end of the log) is the disk as it was at
//! the flush before. Each distinct crash image is checked with e2fsck, the journal replayed first
//! as a mount would. An image still inconsistent then is repaired with `e2fsck -fy`, as the next
//! boot would, and counted and reported as the file system's own ordering; it must be repairable.
//! Every round of the workload whose commit record was written before that point — its `fsync`
//! and `sync` had returned — must then be intact in it.

use super::engine::minutes;
use super::partition::{self, Partition};
use crate::barrier::log::{Entry, Log};
use crate::util::Error;
use pattern::{Kind, Stamp, SECTOR};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One round of one workload client, as its commit record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Round {
    pub client: u32,
    pub round: u32,
    pub sectors: u32,
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} round {}", self.client, self.round)
    }
}

/// A round reported synced and missing from a crash image, and where: the crash point just
/// before log entry `at` (the log's length for its end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lost {
    pub at: usize,
    pub round: Round,
}

/// A crash image that needed `e2fsck -fy` after its journal replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The log entry the crash point comes before.
    pub at: usize,
    /// Which crash point, and what e2fsck found there.
    pub text: String,
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub writes: usize,
    pub flushes: usize,
    /// Crash points: one before each FLUSH, and the end of the log.
    pub crash_points: usize,
    /// Crash points whose image and committed rounds differ from the point before (the others
    /// have the same verdict and are not checked again).
    pub images_checked: usize,
    /// Rounds whose commit record is in the log.
    pub committed: usize,
    /// Round files read back and checked, over all crash images.
    pub rounds_checked: usize,
    /// Crash images whose journal e2fsck replayed.
    pub journal_replays: usize,
    /// Crash images that were inconsistent after the journal replay and that `e2fsck -fy`
    /// repaired (what it found, and how many fixes): the file system's own ordering, not lost
    /// synced data.
    pub repairs: Vec<Repair>,
    /// Synced data lost, or a crash image that e2fsck could not repair.
    pub violations: Vec<String>,
    /// The synced rounds lost, each also one of the violations, where the log loses them.
    pub lost: Vec<Lost>,
}

impl Report {
    /// The synced rounds lost at one crash point or more, each once.
    pub fn rounds_lost(&self) -> usize {
        self.lost.iter().map(|lost| lost.round).collect::<std::collections::BTreeSet<_>>().len()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} writes, {} flushes, {} crash points ({} distinct images checked with e2fsck, {} with a journal \
             to replay, {} inconsistent after the replay and repaired by e2fsck -fy), {} rounds committed, \
             {} round files verified, {} violations",
            self.writes,
            self.flushes,
            self.crash_points,
            self.images_checked,
            self.journal_replays,
            self.repairs.len(),
            self.committed,
            self.rounds_checked,
            self.violations.len()
        )
    }
}

/// Checks every crash point of `log`, a write log of the disk that started as `base`; the
/// workload wrote its files in `dir` (absolute, on the file system).
pub fn check(base: &Path, log: &Log, dir: &str, scratch: &Path) -> Result<Report, Error> {
    let started = Instant::now();
    fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let base = fs::read(base).map_err(|e| Error::io(base, e))?;
    let mut points = CrashPoints {
        dir,
        scratch,
        report: Report::default(),
    };
    let replayed = crash_points(base, log, |at, image, committed| points.check(at, image, committed))?;
    let mut report = points.report;
    report.writes = replayed.writes;
    report.flushes = replayed.flushes;
    report.crash_points = replayed.crash_points;
    report.committed = replayed.committed.len();
    report.violations.extend(replayed.bad_writes);
    eprintln!(
        "fscheck: {} in {}",
        report.summary(),
        minutes(started.elapsed())
    );
    Ok(report)
}

/// What replaying a log found besides its crash images.
#[derive(Debug, Default)]
pub struct Replayed {
    pub writes: usize,
    pub flushes: usize,
    /// Crash points considered: one before each FLUSH and each FUA write, and the end.
    pub crash_points: usize,
    /// Rounds whose commit record is in the log, in log order.
    pub committed: Vec<Round>,
    /// Writes that lie outside the disk, named.
    pub bad_writes: Vec<String>,
}

/// Replays `log` over the disk `base` by the crash model (a write is durable once a FLUSH after
/// it completed, a FUA write at once) and calls `visit` with the crash point (the index of the
/// log entry it comes just before; the log's length for its end), the durable image and the
/// rounds committed by then at every crash point that can differ from the ones it stands for: just
/// before each FLUSH and each FUA write (the durable image changes there; the points before
/// it hold the same image and fewer rounds) and at the end of the log. A point whose image and
/// rounds are those of the point visited before it is not visited again.
pub fn crash_points<E>(
    base: Vec<u8>,
    log: &Log,
    mut visit: impl FnMut(usize, &[u8], &[Round]) -> Result<(), E>,
) -> Result<Replayed, E> {
    let (mut writes, mut flushes, mut crash_points) = (0, 0, 0);
    let mut committed: Vec<Round> = Vec::new();
    let mut bad_writes = Vec::new();
    let mut current = base;
    let mut durable = current.clone();
    // The durable image's version (bumped when its bytes change) and the point last visited.
    let (mut version, mut last_visited) = (0usize, None);
    // Where the writes since the last FLUSH went (bytes): the only places `current` and
    // `durable` can differ.
    let mut pending: Vec<std::ops::Range<usize>> = Vec::new();
    let mut point = |at: usize, durable: &[u8], version: usize, committed: &[Round]| {
        crash_points += 1;
        if last_visited == Some((version, committed.len())) {
            return Ok(());
        }
        last_visited = Some((version, committed.len()));
        visit(at, durable, committed)
    };
    for (at, entry) in log.entries.iter().enumerate() {
        match entry {
            Entry::Write { sector, data, fua } => {
                writes += 1;
                if *fua {
                    point(at, &durable, version, &committed)?;
                }
                let at = match apply_write(&mut current, *sector, data, log.sector_size) {
                    Ok(at) => at,
                    Err(why) => {
                        bad_writes.push(why);
                        continue;
                    }
                };
                if !*fua {
                    pending.push(at);
                } else if durable[at.clone()] != data[..] {
                    // Only the FUA write: the writes before it that no FLUSH covered are not.
                    durable[at].copy_from_slice(data);
                    version += 1;
                }
                for chunk in data.chunks_exact(SECTOR) {
                    if let Some(s) = Stamp::read(chunk).filter(|s| s.kind == Kind::Commit) {
                        let round = Round {
                            client: s.client,
                            round: s.round,
                            sectors: s.count,
                        };
                        if !committed.contains(&round) {
                            committed.push(round);
                        }
                    }
                }
            }
            Entry::Flush => {
                flushes += 1;
                point(at, &durable, version, &committed)?;
                if pending.drain(..).any(|at| current[at.clone()] != durable[at]) {
                    durable.clone_from(&current);
                    version += 1;
                }
            }
            Entry::Discard { .. } | Entry::Mark(_) => {}
        }
    }
    // The end of the log is a crash point too (QEMU killed).
    point(log.entries.len(), &durable, version, &committed)?;
    Ok(Replayed {
        writes,
        flushes,
        crash_points,
        committed,
        bad_writes,
    })
}

/// `cargo xtask check-fs IMAGE LOG DIR`.
pub fn check_files(args: &[String]) -> Result<(), Error> {
    let [image, log, dir] = args else {
        return Err(Error::new("usage: cargo xtask check-fs IMAGE LOG DIR"));
    };
    let bytes = fs::read(log).map_err(|e| Error::io(Path::new(log), e))?;
    let log = Log::parse(&bytes).map_err(|e| Error::new(format!("{log}: {e}")))?;
    let scratch = std::env::temp_dir().join(format!("rumpdisk-rs-check-fs-{}", std::process::id()));
    let report = check(Path::new(image), &log, dir, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    let report = report?;
    println!("{}", report.summary());
    for repair in &report.repairs {
        println!("  repaired: {repair}");
    }
    for violation in &report.violations {
        println!("  violation: {violation}");
    }
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            "synced data lost, or a crash image e2fsck cannot repair",
        ))
    }
}

/// The disk as it is durable at the end of `log` (the last crash point: every write before its
/// last FLUSH, and every FUA write), written to a file in `scratch`.
pub fn durable_at_end(base: &Path, log: &Log, scratch: &Path) -> Result<PathBuf, Error> {
    fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let image = fs::read(base).map_err(|e| Error::io(base, e))?;
    let image = durable_image(image, log).map_err(Error::new)?;
    let path = scratch.join("durable.img");
    fs::write(&path, image).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The durable image at the end of `log` over the disk `base`.
pub fn durable_image(base: Vec<u8>, log: &Log) -> Result<Vec<u8>, String> {
    let mut last = Vec::new();
    let replayed = crash_points(base, log, |_, image, _| {
        last = image.to_vec();
        Ok::<(), String>(())
    })?;
    match replayed.bad_writes.first() {
        Some(why) => Err(why.clone()),
        None => Ok(last),
    }
}

/// Puts a logged write into `image` and says where (bytes); a write outside the image is
/// refused, named.
fn apply_write(
    image: &mut [u8],
    sector: u64,
    data: &[u8],
    sector_size: usize,
) -> Result<std::ops::Range<usize>, String> {
    let place = usize::try_from(sector)
        .ok()
        .and_then(|s| s.checked_mul(sector_size))
        .and_then(|at| Some(at..at.checked_add(data.len())?))
        .filter(|range| range.end <= image.len());
    match place {
        Some(range) => {
            image[range.clone()].copy_from_slice(data);
            Ok(range)
        }
        None => Err(format!(
            "a write at sector {sector} lies outside the {}-byte disk",
            image.len()
        )),
    }
}

/// Reads `path` out of an ext2 image (journal replayed first), or `None` when it is not there.
pub fn read_file(image: &Path, path: &str, scratch: &Path) -> Result<Option<Vec<u8>>, Error> {
    e2fsck(image, &["-E", "journal_only", "-y"])?;
    let out = scratch.join("read");
    let _ = fs::remove_file(&out);
    debugfs(image, &format!("dump {path} {}", out.display()))?;
    Ok(fs::read(&out).ok())
}

/// Checks one image as a crash image: consistent, and holding every round in `synced` intact;
/// `at` is its crash point in its log.
pub fn check_image(
    image: &Path,
    at: usize,
    synced: &[Round],
    dir: &str,
    scratch: &Path,
) -> Result<Report, Error> {
    fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let bytes = fs::read(image).map_err(|e| Error::io(image, e))?;
    let mut points = CrashPoints {
        dir,
        scratch,
        report: Report::default(),
    };
    points.check(at, &bytes, synced)?;
    Ok(Report {
        committed: synced.len(),
        ..points.report
    })
}

/// Checks crash images in turn.
struct CrashPoints<'a> {
    dir: &'a str,
    scratch: &'a Path,
    report: Report,
}

impl CrashPoints<'_> {
    /// Checks `image`, the crash image just before log entry `at`, as holding every round in
    /// `committed`.
    fn check(&mut self, at: usize, image: &[u8], committed: &[Round]) -> Result<(), Error> {
        let point = self.report.images_checked;
        self.report.images_checked += 1;
        let path = self.scratch.join("crash.img");
        fs::write(&path, image).map_err(|e| Error::io(&path, e))?;
        let fsck = Fsck::run(&path)?;
        if fsck.replayed_journal {
            self.report.journal_replays += 1;
        }
        if let Some(problems) = fsck.problems {
            // What a boot after the crash would have to run: a full repair, then a clean check.
            let (fixes, after) = Fsck::repair(&path)?;
            match after {
                None => self.report.repairs.push(Repair {
                    at,
                    text: format!("crash point {point}: {fixes} fixes by e2fsck -fy for: {problems}"),
                }),
                Some(left) => self.report.violations.push(format!(
                    "crash point {point}: e2fsck cannot repair the file system: {problems}; after -fy: {left}"
                )),
            }
        }
        if committed.is_empty() {
            return Ok(());
        }
        let files = dump_dir(&path, self.dir, self.scratch)?;
        for round in committed {
            self.report.rounds_checked += 1;
            let name = guest::data_file(round.client, round.round);
            let verdict = match fs::read(files.join(&name)) {
                Ok(bytes) => {
                    guest::check_round_data(&bytes, round.client, round.round, round.sectors)
                }
                Err(_) => Err(format!("{}/{name} is missing", self.dir)),
            };
            if let Err(why) = verdict {
                self.report.violations.push(format!(
                    "crash point {point} (before log entry {at}): {round} was synced but is lost: {why}"
                ));
                self.report.lost.push(Lost { at, round: *round });
            }
        }
        Ok(())
    }
}

/// What e2fsck says of a crash image.
struct Fsck {
    replayed_journal: bool,
    /// What a forced read-only check reported, when it was not clean.
    problems: Option<String>,
}

impl Fsck {
    /// Replays the journal (as mounting would), then checks everything without changing it.
    fn run(image: &Path) -> Result<Fsck, Error> {
        let replay = e2fsck(image, &["-E", "journal_only", "-y"])?;
        let replayed_journal = replay.1.contains("recovering journal");
        let (code, text) = e2fsck(image, &["-f", "-n"])?;
        let problems = (code != 0).then(|| summary(code, &text));
        Ok(Fsck {
            replayed_journal,
            problems,
        })
    }

    /// `e2fsck -fy`, then a forced read-only check: the number of fixes, and what the check still
    /// finds (`None`: clean).
    fn repair(image: &Path) -> Result<(usize, Option<String>), Error> {
        let (_, text) = e2fsck(image, &["-f", "-y"])?;
        let fixes = text
            .lines()
            .filter(|l| l.trim_end().ends_with("? yes"))
            .count();
        let (code, after) = e2fsck(image, &["-f", "-n"])?;
        Ok((fixes, (code != 0).then(|| summary(code, &after))))
    }
}

/// The lines of an e2fsck report that say what is wrong.
fn summary(code: i32, text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Pass ") && !l.starts_with("e2fsck ") && !l.trim().is_empty())
        .take(6)
        .collect();
    format!("exit {code}: {}", lines.join(" | "))
}

fn e2fsck(image: &Path, args: &[&str]) -> Result<(i32, String), Error> {
    let out = Command::new("e2fsck")
        .args(args)
        .arg(image)
        .output()
        .map_err(|e| Error::new(format!("cannot run e2fsck: {e}")))?;
    let code = out.status.code().unwrap_or(-1);
    // 8 and up: e2fsck itself failed (usage, operational error), which says nothing of the image.
    if code >= 8 {
        return Err(Error::new(format!(
            "e2fsck {} failed ({code}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok((
        code,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// Copies folder `dir` out of the image (`debugfs rdump`); a missing folder dumps nothing.
fn dump_dir(image: &Path, dir: &str, scratch: &Path) -> Result<PathBuf, Error> {
    let out = scratch.join("dump");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    debugfs(image, &format!("rdump {dir} {}", out.display()))?;
    Ok(out.join(dir.rsplit('/').next().unwrap_or(dir)))
}

/// Runs one read-only debugfs request on `image`. What it could not find simply is not copied:
/// the callers look for the files themselves.
fn debugfs(image: &Path, request: &str) -> Result<(), Error> {
    Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(image)
        .output()
        .map(drop)
        .map_err(|e| Error::new(format!("cannot run debugfs: {e}")))
}

/// `log` as the partition `part` saw it: its writes and discards moved to the partition's
/// sectors, those elsewhere on the disk (the partition table, swap) left out. A write that
/// crosses the partition's edge is refused, named.
pub fn within(log: &Log, part: Partition) -> Result<Log, String> {
    let per_sector = log.sector_size as u64 / partition::SECTOR;
    let (start, end) = (
        part.start / per_sector,
        (part.start + part.sectors) / per_sector,
    );
    let mut entries = Vec::with_capacity(log.entries.len());
    for (index, entry) in log.entries.iter().enumerate() {
        let (sector, length) = match entry {
            Entry::Write { sector, data, .. } => (*sector, (data.len() / log.sector_size) as u64),
            Entry::Discard { sector, sectors } => (*sector, *sectors),
            Entry::Flush | Entry::Mark(_) => {
                entries.push(entry.clone());
                continue;
            }
        };
        if sector + length <= start || sector >= end {
            continue;
        }
        if sector < start || sector + length > end {
            return Err(format!(
                "log entry {index} (sectors {sector}..{}) crosses the edge of the partition at {start}..{end}",
                sector + length
            ));
        }
        entries.push(match entry {
            Entry::Write { data, fua, .. } => Entry::Write {
                sector: sector - start,
                data: data.clone(),
                fua: *fua,
            },
            _ => Entry::Discard {
                sector: sector - start,
                sectors: length,
            },
        });
    }
    Ok(Log {
        sector_size: log.sector_size,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(sector: u64, sectors: usize, byte: u8) -> Entry {
        Entry::Write {
            sector,
            data: vec![byte; sectors * 512],
            fua: false,
        }
    }

    const PART: Partition = Partition {
        start: 100,
        sectors: 50,
    };

    #[test]
    fn writes_inside_move_and_writes_outside_go() {
        let log = Log {
            sector_size: 512,
            entries: vec![
                write(0, 1, 1),
                write(100, 2, 2),
                Entry::Flush,
                write(148, 2, 3),
                write(150, 1, 4),
                Entry::Discard {
                    sector: 120,
                    sectors: 8,
                },
            ],
        };
        let seen = within(&log, PART).unwrap();
        assert_eq!(
            seen.entries,
            vec![
                write(0, 2, 2),
                Entry::Flush,
                write(48, 2, 3),
                Entry::Discard {
                    sector: 20,
                    sectors: 8
                }
            ]
        );
    }

    #[test]
    fn a_write_across_the_edge_is_refused() {
        for (sector, sectors) in [(99, 2), (149, 2)] {
            let log = Log {
                sector_size: 512,
                entries: vec![write(sector, sectors, 1)],
            };
            let err = within(&log, PART).unwrap_err();
            assert!(err.contains("crosses the edge"), "{err}");
        }
    }

    /// A round lost at several crash points counts once among the files lost.
    #[test]
    fn a_round_lost_at_many_crash_points_counts_once() {
        let round = |round| Round { client: 0, round, sectors: 1 };
        let lost = [(3, 1), (4, 1), (9, 2)].map(|(at, r)| Lost { at, round: round(r) });
        let report = Report { lost: lost.to_vec(), ..Report::default() };
        assert_eq!(report.rounds_lost(), 2);
    }

    const BLOCK: usize = 4096;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-fscheck-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn debugfs_write(image: &Path, from: &Path, to: &str) {
        let out = Command::new("debugfs")
            .args(["-w", "-R"])
            .arg(format!("write {} {to}", from.display()))
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The writes that turn `before` into `after`, block by block, as a file system would issue them.
    fn diff(before: &[u8], after: &[u8]) -> Vec<Entry> {
        (0..before.len() / BLOCK)
            .filter(|b| before[b * BLOCK..(b + 1) * BLOCK] != after[b * BLOCK..(b + 1) * BLOCK])
            .map(|b| Entry::Write {
                sector: (b * BLOCK / SECTOR) as u64,
                data: after[b * BLOCK..(b + 1) * BLOCK].to_vec(),
                fua: false,
            })
            .collect()
    }

    /// Three states of a real ext3 image made by e2fsprogs: empty `/data`, then round 0's file,
    /// then its commit record.
    fn states(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u8>, Vec<u8>) {
        let base = dir.join("base.img");
        fs::create_dir_all(dir.join("root/data")).unwrap();
        let made = Command::new("mke2fs")
            .args([
                "-q", "-F", "-o", "hurd", "-j", "-b", "4096", "-I", "128", "-d",
            ])
            .arg(dir.join("root"))
            .arg(&base)
            .arg("8M")
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let image = dir.join("work.img");
        fs::copy(&base, &image).unwrap();
        let data = dir.join("data");
        fs::write(&data, guest::round_data(0, 0, 16)).unwrap();
        debugfs_write(&image, &data, &format!("/data/{}", guest::data_file(0, 0)));
        let with_data = fs::read(&image).unwrap();
        fs::write(&data, guest::commit_record(0, 0, 16)).unwrap();
        debugfs_write(
            &image,
            &data,
            &format!("/data/{}", guest::commit_file(0, 0)),
        );
        let with_commit = fs::read(&image).unwrap();
        (
            base.clone(),
            fs::read(&base).unwrap(),
            with_data,
            with_commit,
        )
    }

    fn log(entries: Vec<Entry>) -> Log {
        Log::parse(&crate::barrier::log::tests::build(&entries)).unwrap()
    }

    /// The crash points the checker visits, against the crash model (`barrier::model`) on
    /// generated logs (FUA and preflushed writes, commit records anywhere, repeated images):
    /// every image and set of committed rounds it visits is the model's at the crash point it
    /// names; every crash point's image is visited with at least the rounds committed by then
    /// (a point with more rounds and the same image fails whatever it would fail); no point is
    /// visited twice in a row; and the durable image at the end is the model's.
    #[test]
    fn the_crash_points_visited_are_the_model_s() {
        use crate::barrier::model::{self, Image, Run};
        use proptest::prelude::{prop_assert, prop_assert_eq};
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        const DISK: usize = 32 * SECTOR;
        fn render(image: &Image) -> Vec<u8> {
            let mut bytes = vec![0u8; DISK];
            for (&lba, content) in image {
                bytes[lba as usize * SECTOR..][..SECTOR].copy_from_slice(&content.bytes());
            }
            bytes
        }
        let key = |r: &Round| (r.client, r.round);
        let mut runner = TestRunner::new(Config {
            // As many generated logs as the barrier checker is held to (issue 27: 10 000 a run).
            cases: 10_000,
            max_shrink_time: 10_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&model::runs(), |run: Run| {
                let log = Log::parse(&run.log_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut visited: Vec<(Vec<u8>, Vec<(u32, u32)>)> = Vec::new();
                let mut places = Vec::new();
                let replayed = crash_points(vec![0u8; DISK], &log, |at, image, committed| {
                    visited.push((image.to_vec(), committed.iter().map(key).collect()));
                    places.push(at);
                    Ok::<(), ()>(())
                })
                .unwrap();
                prop_assert!(replayed.bad_writes.is_empty(), "{:?}", replayed.bad_writes);
                let n = run.events().len();
                let states: Vec<(Vec<u8>, Vec<(u32, u32)>)> = (0..=n)
                    .map(|c| (render(&run.durable(c)), run.committed(c).iter().map(|r| (r.client, r.round)).collect()))
                    .collect();
                let sorted = |rounds: &[(u32, u32)]| {
                    let mut r = rounds.to_vec();
                    r.sort();
                    r
                };
                // Each point is visited under its own place in the log: the model's crash point
                // after that many entries (a preflushed write is two, as the parser splits it).
                for ((image, rounds), &at) in visited.iter().zip(&places) {
                    prop_assert!(
                        states.get(at).is_some_and(|(i, r)| i == image && *r == sorted(rounds)),
                        "visited as the crash point before entry {} what the model has not there: rounds {:?}", at, rounds
                    );
                }
                for (c, (image, rounds)) in states.iter().enumerate() {
                    prop_assert!(
                        visited.iter().any(|(i, r)| i == image && rounds.iter().all(|x| r.contains(x))),
                        "crash point {} (rounds {:?}) never visited with its image", c, rounds
                    );
                }
                prop_assert!(visited.windows(2).all(|w| w[0] != w[1]), "a point visited twice in a row");
                let fua = run.ops.iter().filter(|op| matches!(op, model::Op::Write { fua: true, .. })).count();
                prop_assert_eq!(replayed.crash_points, replayed.flushes + fua + 1);
                let end = durable_image(vec![0u8; DISK], &log).map_err(TestCaseError::fail)?;
                prop_assert!(end == states[n].0, "the durable image at the end is not the model's");
                let committed: Vec<_> = replayed.committed.iter().map(key).collect();
                prop_assert_eq!(sorted(&committed), states[n].1.clone());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_flushed_round_holds_and_a_missing_flush_or_a_torn_update_is_caught() {
        let dir = scratch("states");
        let (base, empty, with_data, with_commit) = states(&dir);
        let data_writes = diff(&empty, &with_data);
        let commit_writes = diff(&with_data, &with_commit);

        let mut good = data_writes.clone();
        good.push(Entry::Flush);
        good.extend(commit_writes.clone());
        good.push(Entry::Flush);
        let report = check(&base, &log(good), "/data", &dir.join("good")).unwrap();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(report.lost.is_empty());
        assert_eq!(
            (report.flushes, report.crash_points, report.committed),
            (2, 3, 1)
        );
        assert!(report.rounds_checked >= 1);

        // The sync returned without a flush: the commit record is logged before the only FLUSH,
        // so the crash just before it keeps none of the round.
        let mut unflushed = data_writes.clone();
        unflushed.extend(commit_writes.clone());
        unflushed.push(Entry::Flush);
        let report = check(&base, &log(unflushed), "/data", &dir.join("unflushed")).unwrap();
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains("client 0 round 0 was synced but is lost")),
            "{:?}",
            report.violations
        );
        let round = Round { client: 0, round: 0, sectors: 16 };
        assert!(report.lost.iter().all(|lost| lost.round == round), "{:?}", report.lost);
        assert_eq!(report.rounds_lost(), 1, "the lost round, once");

        // Half of an update made durable: the image is inconsistent.
        let mut torn: Vec<Entry> = data_writes.iter().step_by(2).cloned().collect();
        torn.push(Entry::Flush);
        torn.push(Entry::Flush);
        let report = check(&base, &log(torn), "/data", &dir.join("torn")).unwrap();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(
            report
                .repairs
                .iter()
                .any(|r| r.text.contains("fixes by e2fsck -fy")),
            "{:?}",
            report.repairs
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
