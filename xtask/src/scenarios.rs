//! The VM scenarios: which tasks boot on GNU Mach with which disks, and what they must show.

use crate::vm::{run_dir, Expect, Module, Scenario};
use crate::{cargo, project_root, Error};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

/// Builds the freestanding task binaries (release, hurd-target.json) and returns their folder.
pub fn build_tasks() -> Result<PathBuf, Error> {
    cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "tasks",
        "--features",
        "vm",
        "--bins",
        "-Z",
        "build-std=core,alloc,compiler_builtins",
        "-Z",
        "build-std-features=compiler-builtins-mem",
        "-Z",
        "json-target-spec",
        "--target",
        "hurd-target.json",
    ])?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| project_root().join("target"), PathBuf::from);
    Ok(project_root().join(target_dir).join("hurd-target/release"))
}

/// A boot module running task binary `bin` from `tasks` as `name`.
fn task(tasks: &std::path::Path, bin: &str, name: &str, words: &[&str]) -> Module {
    Module { file: tasks.join(bin), name: name.to_owned(), words: words.iter().map(|w| w.to_string()).collect() }
}

/// The runtime's own tests: kernel RPCs, the RAM disk, two tasks exchanging messages.
pub fn runtime(tasks: &std::path::Path) -> Result<Scenario, Error> {
    let dir = run_dir("runtime");
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let rd0 = dir.join("rd0.img");
    let mut image = b"rumpdisk-rs rd0\n".to_vec();
    image.resize(64 * 1024, 0);
    fs::write(&rd0, &image).map_err(|e| Error::io(&rd0, e))?;
    let rd0size = format!("rd0size={}", image.len());
    Ok(Scenario {
        name: "runtime".into(),
        modules: vec![
            Module { file: rd0, name: "rd0.img".into(), words: vec!["$(ramdisk-create)".into()] },
            task(tasks, "runtime-tests", "peer", &["${host-port}", "${device-port}", "role=peer", "$(peer-task=task-create)", "$(task-resume)"]),
            task(
                tasks,
                "runtime-tests",
                "runtime-tests",
                &["${host-port}", "${device-port}", "role=main", "peer=${peer-task}", &rd0size, "$(task-create)", "$(task-resume)"],
            ),
        ],
        disks: vec![],
        timeout: Duration::from_secs(20),
        expect: Expect::Pass,
        kill_on: None,
    })
}

/// Every scenario, in the order the test command runs them.
pub fn all() -> Result<Vec<Scenario>, Error> {
    let tasks = build_tasks()?;
    Ok(vec![runtime(&tasks)?])
}
