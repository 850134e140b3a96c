//! The freestanding GNU Mach tasks the VM scenarios boot: built for a kernel's architecture, and
//! made into boot modules.

use crate::util::{cargo, project_root, Error};
use crate::iso::Module;
use crate::vm::Kernel;
use std::path::PathBuf;

/// The freestanding task binaries built for one kernel's architecture, and that kernel.
pub struct Tasks {
    pub dir: PathBuf,
    pub kernel: Kernel,
}

/// Builds the freestanding task binaries for `kernel` (release, its target json).
pub fn tasks_for(kernel: Kernel) -> Result<Tasks, Error> {
    Ok(Tasks { dir: build_tasks_for(kernel.task_target())?, kernel })
}

/// Builds the freestanding task binaries for x86_64 (release, hurd-target.json) and returns
/// their folder.
pub fn build_tasks() -> Result<PathBuf, Error> {
    build_tasks_for(Kernel::Amd64.task_target())
}

/// Builds the freestanding task binaries for the target json `target` (release) and returns
/// their folder.
fn build_tasks_for(target: &str) -> Result<PathBuf, Error> {
    cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "tasks",
        "-p",
        "rumpdisk",
        "--features",
        "tasks/vm,rumpdisk/vm",
        "--bins",
        "-Z",
        "build-std=core,alloc,compiler_builtins",
        "-Z",
        "build-std-features=compiler-builtins-mem",
        "-Z",
        "json-target-spec",
        "--target",
        target,
    ])?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from);
    let name = target.strip_suffix(".json").unwrap_or(target);
    Ok(project_root().join(target_dir).join(name).join("release"))
}

/// A boot module running task binary `bin` from `tasks` as `name`.
pub fn task(tasks: &Tasks, bin: &str, name: &str, words: &[&str]) -> Module {
    Module {
        file: tasks.dir.join(bin),
        name: name.to_owned(),
        words: words.iter().map(|w| w.to_string()).collect(),
    }
}
