//! The Hurd's root file system image, made on the host from the built system: an ext3 file system
//! (`mke2fs -o hurd -j`, so ext2fs runs its journal) with the passive translators and device nodes
//! a Debian GNU/Hurd install has, set with `debugfs` as the Hurd's own `settrans` would store them
//! (the `gnu.translator` extended attribute ext2fs reads).

use crate::util::{run_quiet, Error};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Nodes served by passive translators: (path, translator and its arguments).
const TRANSLATORS: &[(&str, &[&str])] = &[
    (
        "/dev/console",
        &["/hurd/term", "/dev/console", "device", "console"],
    ),
    ("/dev/null", &["/hurd/null"]),
    ("/dev/tty", &["/hurd/magic", "tty"]),
    ("/dev/fd", &["/hurd/magic", "--directory", "fd"]),
    ("/servers/socket/1", &["/hurd/pflocal"]),
];

/// Nodes whose server attaches itself at boot (active translators): `startup`, `exec`, and the
/// boot disk server's `/dev/rumpdisk`.
const ACTIVE_NODES: &[&str] = &["/servers/startup", "/servers/exec", "/dev/rumpdisk"];

/// A file the scenario adds to the image.
pub struct GuestFile {
    /// Where it goes on the image (absolute).
    pub path: String,
    pub contents: Contents,
    pub mode: u32,
}

pub enum Contents {
    Bytes(Vec<u8>),
    Copy(PathBuf),
}

/// Builds `out` (a file system of `size_mib` MiB) from `trees` (the built system, then the
/// project's packages unpacked: each merged over the ones before it) and `extra`.
pub fn build(trees: &[&Path], extra: &[GuestFile], out: &Path, size_mib: u64) -> Result<(), Error> {
    let stage = out.with_extension("stage");
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage).map_err(|e| Error::io(&stage, e))?;
    for tree in trees {
        for entry in fs::read_dir(tree).map_err(|e| Error::io(tree, e))? {
            let from = entry.map_err(|e| Error::io(tree, e))?.path();
            run_quiet(Command::new("cp").arg("-a").arg(&from).arg(&stage), "cp -a")?;
        }
    }
    for dir in [
        "dev",
        "servers/socket",
        "tmp",
        "etc",
        "root",
        "data",
        "var/run",
    ] {
        fs::create_dir_all(stage.join(dir)).map_err(|e| Error::io(&stage, e))?;
    }
    run_quiet(
        Command::new("chmod").arg("1777").arg(stage.join("tmp")),
        "chmod",
    )?;
    for path in ACTIVE_NODES
        .iter()
        .chain(TRANSLATORS.iter().map(|(p, _)| p))
    {
        if !path.starts_with("/dev/") {
            touch(&stage.join(&path[1..]))?;
        }
    }
    for file in extra {
        let to = stage.join(file.path.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap_or(&stage)).map_err(|e| Error::io(&to, e))?;
        match &file.contents {
            Contents::Bytes(bytes) => fs::write(&to, bytes).map_err(|e| Error::io(&to, e))?,
            Contents::Copy(from) => drop(fs::copy(from, &to).map_err(|e| Error::io(from, e))?),
        }
        run_quiet(
            Command::new("chmod")
                .arg(format!("{:o}", file.mode))
                .arg(&to),
            "chmod",
        )?;
    }
    let _ = fs::remove_file(out);
    run_quiet(
        Command::new("mke2fs")
            .args([
                "-q",
                "-F",
                "-o",
                "hurd",
                "-j",
                "-b",
                "4096",
                "-I",
                "128",
                "-L",
                "hurd-root",
                "-d",
            ])
            .arg(&stage)
            .arg(out)
            .arg(format!("{size_mib}M")),
        "mke2fs",
    )?;
    set_nodes(out, &stage)?;
    fs::remove_dir_all(&stage).map_err(|e| Error::io(&stage, e))?;
    // The image must be clean as made, or every later e2fsck verdict would be noise.
    run_quiet(
        Command::new("e2fsck").args(["-fn"]).arg(out),
        "e2fsck -fn on the new image",
    )
}

/// Device nodes (character devices, as the Hurd's MAKEDEV makes them) and passive translators.
fn set_nodes(image: &Path, scratch: &Path) -> Result<(), Error> {
    let mut commands = String::from("cd /dev\n");
    for path in TRANSLATORS
        .iter()
        .map(|(p, _)| *p)
        .chain(ACTIVE_NODES.iter().copied())
    {
        if let Some(name) = path.strip_prefix("/dev/") {
            // debugfs's mknod takes a name in the current folder, not a path.
            commands += &format!("mknod {name} c 0 0\nsif {name} mode 020600\n");
        }
    }
    commands += "cd /\n";
    for (i, (path, argv)) in TRANSLATORS.iter().enumerate() {
        let argz = scratch.join(format!("translator{i}"));
        let mut bytes = Vec::new();
        for word in *argv {
            bytes.extend_from_slice(word.as_bytes());
            bytes.push(0);
        }
        fs::write(&argz, bytes).map_err(|e| Error::io(&argz, e))?;
        commands += &format!("ea_set -f {} {path} gnu.translator\n", argz.display());
    }
    let script = scratch.join("debugfs.cmds");
    fs::write(&script, commands).map_err(|e| Error::io(&script, e))?;
    let out = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(image)
        .output()
        .map_err(|e| Error::new(format!("cannot run debugfs: {e}")))?;
    // debugfs exits 0 whatever its commands did; its complaints go to stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("debugfs "))
        .collect();
    if !out.status.success() || !complaints.is_empty() {
        return Err(Error::new(format!(
            "debugfs on {}: {}",
            image.display(),
            complaints.join("; ")
        )));
    }
    Ok(())
}

fn touch(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new("/"))).map_err(|e| Error::io(path, e))?;
    fs::write(path, b"").map_err(|e| Error::io(path, e))
}

/// Removes the journal from the file system image `fs` (ext3 to ext2): ext2fs then syncs
/// without one.
pub fn remove_journal(fs: &Path) -> Result<(), Error> {
    run_quiet(Command::new("tune2fs").args(["-O", "^has_journal"]).arg(fs), "tune2fs")
}

/// An empty ext3 file system of `fs_mib` MiB at the start of a `disk_mib` MiB disk image (the
/// rest of the disk is left for raw writes).
pub fn data_disk(out: &Path, disk_mib: u64, fs_mib: u64) -> Result<(), Error> {
    let _ = fs::remove_file(out);
    let file = fs::File::create(out).map_err(|e| Error::io(out, e))?;
    file.set_len(disk_mib << 20)
        .map_err(|e| Error::io(out, e))?;
    run_quiet(
        Command::new("mke2fs")
            .args([
                "-q", "-F", "-o", "hurd", "-j", "-b", "4096", "-I", "128", "-L", "data",
            ])
            .arg(out)
            .arg(format!("{fs_mib}M")),
        "mke2fs",
    )
}
