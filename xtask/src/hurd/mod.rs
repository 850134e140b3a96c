//! `cargo xtask hurd`: GNU/Hurd for x86_64 built from sources — a cross toolchain (Debian's
//! binutils and MIG, GCC 14, glibc), the Hurd's servers and libraries, and a small userland —
//! in a `debootstrap`ped Debian build root, cached outside the clone.
//!
//! The build is a table of stages ([`stages`]) run by a small engine ([`engine`]); what each
//! stage does, and why each fix in it is needed, is in the table.

mod drivers;
pub mod engine;
pub mod fscheck;
pub mod image;
pub mod link;
pub mod partition;
pub mod scenarios;
mod skip_one;
mod sources;
mod stages;

use crate::util::{project_root, Error};
use engine::{Engine, Outcome};
use sources::{Sources, PATCHES};
pub use stages::Systems;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The GNU triplet the toolchain targets.
pub const TARGET: &str = "x86_64-gnu";

/// Where the cache lives: `$RUMPDISK_HURD_CACHE`, else `$XDG_CACHE_HOME/rumpdisk-rs`, else
/// `~/.cache/rumpdisk-rs` — outside the clone, so new clones, `cargo clean` and CI reuse it.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUMPDISK_HURD_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("rumpdisk-rs").join(format!("hurd-{TARGET}"))
}

/// The build root, where the toolchain and the Hurd are built and installed.
pub fn build_root() -> PathBuf {
    cache_dir().join("root")
}

/// The Hurd system as it runs (`lib/`, `hurd/`, `bin/`...: no headers, no debug information).
pub fn system() -> PathBuf {
    build_root().join(stages::SYSTEM.trim_start_matches('/'))
}

/// The same system with the Hurd built again with our patch series ([`PATCHES`]) applied.
pub fn patched_system() -> PathBuf {
    build_root().join(stages::SYSTEM_PATCHED.trim_start_matches('/'))
}

fn engine(mirror: String, sources: &Sources) -> Engine {
    let root = build_root();
    let mut env = BTreeMap::new();
    env.insert("TARGET".to_owned(), TARGET.to_owned());
    env.insert("SYSROOT".to_owned(), stages::SYSROOT.to_owned());
    env.insert("TOOLS".to_owned(), stages::TOOLS.to_owned());
    env.insert("ROOT".to_owned(), root.display().to_string());
    env.insert("MIRROR".to_owned(), mirror);
    env.insert(
        "HURD_ARCHIVE".to_owned(),
        sources.hurd.display().to_string(),
    );
    env.insert("SOURCES_DIR".to_owned(), sources.dir.display().to_string());
    env.insert(
        "PATCHES_DIR".to_owned(),
        project_root().join(PATCHES).display().to_string(),
    );
    env.insert("MAKEFLAGS".to_owned(), format!("-j{}", jobs()));
    // The paths inside the build root are part of every recipe; the host's paths and mirror are
    // not (the same build made elsewhere is the same build).
    Engine {
        cache: cache_dir(),
        root,
        env,
        keyed: vec!["TARGET".into(), "SYSROOT".into(), "TOOLS".into()],
    }
}

fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Builds (or finds in the cache) every stage; returns the upstream system as it runs.
pub fn build() -> Result<PathBuf, Error> {
    build_for(Systems::UpstreamAndPatched)
}

/// Builds (or finds in the cache) the stages that make `systems`; returns the upstream system.
pub fn build_for(systems: Systems) -> Result<PathBuf, Error> {
    let start = Instant::now();
    let mirror = crate::host::system_mirror()?;
    let sources = Sources::find()?;
    let engine = engine(mirror, &sources);
    let table = stages::table_for(&sources, systems);
    let outcomes = engine.run(&table)?;
    let built: Vec<&str> = table
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Built(_)))
        .map(|(s, _)| s.name)
        .collect();
    if !built.is_empty() {
        eprintln!(
            "hurd: built {} in {}; cache {} ({})",
            built.join(", "),
            engine::minutes(start.elapsed()),
            engine.cache.display(),
            disk_use(&engine.cache)
        );
    }
    Ok(system())
}

fn disk_use(path: &Path) -> String {
    std::process::Command::new("du")
        .args(["-sh", "-x"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "size unknown".into())
}

/// Prints each stage and whether the cache holds it as the table describes it now.
fn status() -> Result<(), Error> {
    let sources = Sources::find()?;
    let engine = engine(String::new(), &sources);
    let table = stages::table(&sources);
    for (stage, done) in table.iter().zip(engine.cached(&table)?) {
        println!(
            "{:<16} {:<9} {}",
            stage.name,
            if done { "cached" } else { "to build" },
            stage.about
        );
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), Error> {
    match args.first().map(String::as_str) {
        None => build().map(|system| eprintln!("hurd: ready in {}", system.display())),
        Some("status") => status(),
        Some("script") => {
            let name = args.get(1).ok_or_else(|| Error::new("usage: cargo xtask hurd script STAGE"))?;
            let sources = Sources::find()?;
            let table = stages::table(&sources);
            let stage = table.iter().find(|s| s.name == name).ok_or_else(|| {
                Error::new(format!("no stage {name} (`cargo xtask hurd status` lists them)"))
            })?;
            println!("{}", stage.script);
            Ok(())
        }
        Some("path") => {
            println!("{}", cache_dir().display());
            Ok(())
        }
        Some(other) => Err(Error::new(format!(
            "cargo xtask hurd: unknown argument `{other}` (none, `status`, `script STAGE` or `path`)"
        ))),
    }
}
