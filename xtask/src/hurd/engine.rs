//! The stage engine behind `cargo xtask hurd`: runs a table of stages in order, each once per key.
//!
//! A stage's key hashes its name, its recipe (the script text, so every option and patch is in
//! it), the contents of its input files and the keys of the stages it runs after. A stage whose
//! stamp holds its key is done; any change to what it is made from changes its key and the keys
//! of everything after it, so exactly those run again. A stage's stamp is removed before it runs
//! and written only when it succeeds, so an interrupted build resumes at the stage it was in.

use crate::util::Error;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where a stage's script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// On the build host, with the engine's variables in the environment.
    Host,
    /// In the build root (`chroot`), with `/proc`, `/dev` and `/dev/pts` mounted.
    BuildRoot,
}

/// One step of the build: what it is made from and the script that makes it.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: &'static str,
    /// What it builds, in a few words (shown in the progress lines).
    pub about: &'static str,
    /// Stages whose outputs it uses: their keys are part of its key.
    pub after: &'static [&'static str],
    /// Files on the host whose contents are part of the key (source archives not from apt).
    pub inputs: Vec<PathBuf>,
    pub place: Place,
    /// A bash script (`set -euo pipefail`): its text is the recipe.
    pub script: String,
}

/// The engine's settings: where the cache is, and the environment every script sees.
pub struct Engine {
    /// `stamps/`, `logs/` and the build root live here.
    pub cache: PathBuf,
    pub root: PathBuf,
    /// Variables every script sees; only those listed in `keyed` are part of the keys.
    pub env: BTreeMap<String, String>,
    pub keyed: Vec<String>,
}

/// How one stage went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Cached,
    Built(Duration),
}

impl Engine {
    fn stamp(&self, stage: &Stage) -> PathBuf {
        self.cache.join("stamps").join(stage.name)
    }

    pub fn log(&self, stage: &Stage) -> PathBuf {
        self.cache.join("logs").join(format!("{}.log", stage.name))
    }

    /// The keys of every stage, in table order; a stage may only run after stages listed before it.
    pub fn keys(&self, stages: &[Stage]) -> Result<Vec<String>, Error> {
        let mut keys: BTreeMap<&str, String> = BTreeMap::new();
        let mut ordered = Vec::new();
        for stage in stages {
            let mut hash = Sha256::new();
            hash.update(stage.name.as_bytes());
            hash.update([0]);
            hash.update(stage.script.as_bytes());
            hash.update([0]);
            for name in &self.keyed {
                let value = self.env.get(name).map(String::as_str).unwrap_or("");
                hash.update(format!("{name}={value}\0").as_bytes());
            }
            for dep in stage.after {
                let key = keys.get(dep).ok_or_else(|| {
                    Error::new(format!(
                        "stage {} runs after {dep}, which is not before it",
                        stage.name
                    ))
                })?;
                hash.update(key.as_bytes());
            }
            for input in &stage.inputs {
                hash.update(file_sha256(input)?.as_bytes());
            }
            let key = hex(&hash.finalize());
            keys.insert(stage.name, key.clone());
            ordered.push(key);
        }
        Ok(ordered)
    }

    /// Whether each stage's stamp holds its key now.
    pub fn cached(&self, stages: &[Stage]) -> Result<Vec<bool>, Error> {
        let keys = self.keys(stages)?;
        Ok(stages
            .iter()
            .zip(&keys)
            .map(|(stage, key)| self.is_stamped(stage, key))
            .collect())
    }

    fn is_stamped(&self, stage: &Stage, key: &str) -> bool {
        fs::read_to_string(self.stamp(stage))
            .map(|s| s.trim() == key)
            .unwrap_or(false)
    }

    /// Runs every stage whose stamp does not hold its key, in order; stops at the first failure.
    pub fn run(&self, stages: &[Stage]) -> Result<Vec<Outcome>, Error> {
        for dir in ["stamps", "logs"] {
            let d = self.cache.join(dir);
            fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        let _lock = self.lock()?;
        let keys = self.keys(stages)?;
        let total = stages.len();
        let mut outcomes = Vec::new();
        for (i, (stage, key)) in stages.iter().zip(&keys).enumerate() {
            let stamp = self.stamp(stage);
            if fs::read_to_string(&stamp)
                .map(|s| s.trim() == key)
                .unwrap_or(false)
            {
                outcomes.push(Outcome::Cached);
                continue;
            }
            let _ = fs::remove_file(&stamp);
            let log = self.log(stage);
            eprintln!(
                "hurd: [{}/{total}] {}: {} (log: {})",
                i + 1,
                stage.name,
                stage.about,
                log.display()
            );
            let took = self.run_one(stage, &log)?;
            eprintln!(
                "hurd: [{}/{total}] {}: done in {}",
                i + 1,
                stage.name,
                minutes(took)
            );
            fs::write(&stamp, format!("{key}\n")).map_err(|e| Error::io(&stamp, e))?;
            outcomes.push(Outcome::Built(took));
        }
        Ok(outcomes)
    }

    /// Holds the cache for this process until dropped: a second `cargo xtask` (another clone,
    /// another worktree) building at the same time would run the same scripts in the same
    /// folders, so it waits here for the first to finish and then finds its stamps.
    fn lock(&self) -> Result<File, Error> {
        let path = self.cache.join("lock");
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        if file.try_lock().is_err() {
            eprintln!("hurd: another build holds {}; waiting for it", path.display());
            file.lock().map_err(|e| Error::io(&path, e))?;
        }
        Ok(file)
    }

    fn run_one(&self, stage: &Stage, log: &Path) -> Result<Duration, Error> {
        let out = File::create(log).map_err(|e| Error::io(log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(log, e))?;
        let script = format!("set -euo pipefail\n{}", stage.script);
        let _mounts;
        let mut command = match stage.place {
            Place::Host => {
                let mut c = Command::new("bash");
                c.arg("-c").arg(&script);
                c
            }
            Place::BuildRoot => {
                _mounts = Mounts::new(&self.root)?;
                let mut c = Command::new("chroot");
                c.arg(&self.root)
                    .args(["/usr/bin/env", "-i", "HOME=/root", "LANG=C.UTF-8"]);
                c.arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
                for (name, value) in &self.env {
                    c.arg(format!("{name}={value}"));
                }
                c.args(["/bin/bash", "-c", &script]);
                c
            }
        };
        if stage.place == Place::Host {
            command.envs(&self.env);
        }
        let start = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::new(format!("{}: cannot start: {e}", stage.name)))?;
        let mut next_report = Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::new(format!("{}: {e}", stage.name)))?
            {
                break status;
            }
            if start.elapsed() >= next_report {
                eprintln!(
                    "hurd:   {}: {} so far, {}",
                    stage.name,
                    minutes(start.elapsed()),
                    last_line(log)
                );
                next_report += Duration::from_secs(60);
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        if status.success() {
            return Ok(start.elapsed());
        }
        Err(Error::new(format!(
            "stage {} failed ({status}) after {}; its log is {}; its last error lines:\n{}",
            stage.name,
            minutes(start.elapsed()),
            log.display(),
            error_lines(log, 20)
        )))
    }
}

/// `/proc`, `/dev` and `/dev/pts` mounted in the build root while a stage runs there.
struct Mounts {
    mounted: Vec<PathBuf>,
}

impl Mounts {
    fn new(root: &Path) -> Result<Self, Error> {
        let mut mounts = Mounts {
            mounted: Vec::new(),
        };
        // The build root's apt reaches the mirror through the host's resolver.
        let resolv = root.join("etc/resolv.conf");
        let _ = fs::remove_file(&resolv);
        fs::copy("/etc/resolv.conf", &resolv).map_err(|e| Error::io(&resolv, e))?;
        for (args, dir) in [
            (&["-t", "proc", "proc"][..], "proc"),
            (&["--bind", "/dev"][..], "dev"),
            (&["--bind", "/dev/pts"][..], "dev/pts"),
        ] {
            let target = root.join(dir);
            fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
            // Left mounted by an engine that was killed: mount afresh rather than on top.
            if Command::new("mountpoint")
                .arg("-q")
                .arg(&target)
                .status()
                .is_ok_and(|s| s.success())
            {
                let _ = Command::new("umount").arg("-l").arg(&target).status();
            }
            let status = Command::new("mount").args(args).arg(&target).status();
            if !matches!(status, Ok(s) if s.success()) {
                return Err(Error::new(format!(
                    "cannot mount {} in the build root",
                    target.display()
                )));
            }
            mounts.mounted.push(target);
        }
        Ok(mounts)
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.mounted.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

pub fn file_sha256(path: &Path) -> Result<String, Error> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}

/// A stage run in the build root, with the cross tools on its `PATH`.
pub fn in_root(
    name: &'static str,
    about: &'static str,
    after: &'static [&'static str],
    script: &str,
) -> Stage {
    Stage {
        name,
        about,
        after,
        inputs: Vec::new(),
        place: Place::BuildRoot,
        script: format!("export PATH=\"$TOOLS/bin:$PATH\"\n{script}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

fn last_line(log: &Path) -> String {
    let lines = tail(log, 1);
    let line = lines.last().map(String::as_str).unwrap_or("");
    let cut: String = line.chars().take(100).collect();
    format!("last: {cut}")
}

fn tail(log: &Path, n: usize) -> Vec<String> {
    let Ok(file) = File::open(log) else {
        return Vec::new();
    };
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The lines of the log that say what failed: those that mention an error, else the last ones.
fn error_lines(log: &Path, n: usize) -> String {
    let all = tail(log, 2000);
    let is_error = |l: &str| {
        l.contains("error:")
            || l.contains("Error ")
            || l.contains("*** ")
            || l.starts_with("E:")
            || l.contains("No such file")
    };
    let errors: Vec<&String> = all.iter().filter(|l| is_error(l)).collect();
    let chosen: Vec<&String> = if errors.is_empty() {
        all.iter().rev().take(n).rev().collect()
    } else {
        errors.into_iter().rev().take(n).rev().collect()
    };
    chosen.iter().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(dir: &Path) -> Engine {
        Engine {
            cache: dir.to_owned(),
            root: dir.join("root"),
            env: BTreeMap::from([("OUT".to_owned(), dir.join("out").display().to_string())]),
            keyed: Vec::new(),
        }
    }

    fn stage(name: &'static str, after: &'static [&'static str], script: &str) -> Stage {
        Stage {
            name,
            about: "test",
            after,
            inputs: Vec::new(),
            place: Place::Host,
            script: script.to_owned(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-engine-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A changed recipe reruns that stage and those after it, not those before it.
    #[test]
    fn a_change_reruns_the_stage_and_what_depends_on_it() {
        let dir = scratch("rerun");
        let e = engine(&dir);
        let table = |b: &str| {
            vec![
                stage("a", &[], "echo a >> $OUT"),
                stage("b", &["a"], &format!("echo {b} >> $OUT")),
                stage("c", &["b"], "echo c >> $OUT"),
            ]
        };
        let first = e.run(&table("b1")).unwrap();
        assert!(first.iter().all(|o| matches!(o, Outcome::Built(_))));
        assert_eq!(e.run(&table("b1")).unwrap(), vec![Outcome::Cached; 3]);
        let third = e.run(&table("b2")).unwrap();
        assert_eq!(third[0], Outcome::Cached);
        assert!(matches!(third[1], Outcome::Built(_)) && matches!(third[2], Outcome::Built(_)));
        assert_eq!(
            fs::read_to_string(dir.join("out")).unwrap(),
            "a\nb1\nc\nb2\nc\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Two builds of one cache at once: the second waits for the first and finds its stamp,
    /// rather than running the same script in the same folders beside it.
    #[test]
    fn a_second_build_waits_for_the_first_and_reuses_it() {
        let dir = scratch("lock");
        let table = [stage("slow", &[], "echo start >> $OUT; sleep 1; echo end >> $OUT")];
        let outcomes: Vec<Outcome> = std::thread::scope(|s| {
            let builds: Vec<_> = (0..2)
                .map(|_| s.spawn(|| engine(&dir).run(&table).unwrap().remove(0)))
                .collect();
            builds.into_iter().map(|b| b.join().unwrap()).collect()
        });
        assert_eq!(fs::read_to_string(dir.join("out")).unwrap(), "start\nend\n");
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Cached).count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A failed stage names its log and its error lines, leaves no stamp, and runs again next time.
    #[test]
    fn a_failed_stage_reports_its_log_and_runs_again() {
        let dir = scratch("fail");
        let e = engine(&dir);
        let failing = vec![
            stage("a", &[], "echo a >> $OUT"),
            stage("b", &["a"], "echo 'x.c:1: error: broken'; exit 3"),
        ];
        let err = e.run(&failing).unwrap_err().to_string();
        assert!(
            err.contains("b.log") && err.contains("x.c:1: error: broken"),
            "{err}"
        );
        assert!(!dir.join("stamps/b").exists());
        let fixed = vec![failing[0].clone(), stage("b", &["a"], "echo b >> $OUT")];
        assert_eq!(e.run(&fixed).unwrap()[0], Outcome::Cached);
        assert_eq!(fs::read_to_string(dir.join("out")).unwrap(), "a\nb\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// An input file's contents are part of the key; its name and date are not.
    #[test]
    fn input_contents_are_keyed() {
        let dir = scratch("inputs");
        let e = engine(&dir);
        let input = dir.join("source.tar");
        fs::write(&input, "one").unwrap();
        let table = || {
            let mut s = stage("a", &[], "echo a >> $OUT");
            s.inputs.push(input.clone());
            vec![s]
        };
        let k1 = e.keys(&table()).unwrap();
        fs::write(&input, "one").unwrap();
        assert_eq!(e.keys(&table()).unwrap(), k1);
        fs::write(&input, "two").unwrap();
        assert_ne!(e.keys(&table()).unwrap(), k1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stage_after_a_later_one_is_refused() {
        let dir = scratch("order");
        let err = engine(&dir)
            .keys(&[stage("a", &["b"], ""), stage("b", &[], "")])
            .unwrap_err();
        assert!(err.to_string().contains("runs after b"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
