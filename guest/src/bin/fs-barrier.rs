//! The file-system barrier workload, run inside the Hurd VM on ext2fs over rumpdisk-rs.
//!
//! `fs-barrier DIR CLIENT ROUNDS SECTORS [fsync]`: for each round, writes a stamped data file,
//! `fsync`s it, syncs its file system and waits (`syncfs`), reports the round synced, then writes
//! and syncs its commit record (see the `guest` library). With `fsync`, each file and then its
//! directory are `fsync`ed, as a careful application makes a new file durable, and nothing more:
//! what `fsync` alone promises is checked. The host replays the disk's write log to every flush
//! and checks that every round whose commit record was written is intact there.
//!
//! Why not `fsync` and `sync(2)` alone: on the Hurd, glibc's `sync` asks the root file system to
//! sync without waiting (`file_syncfs(wait=0)`), and ext2fs with a journal leaves an `fsync`ed
//! file's metadata to the journal's next commit, without a flush (both upstream). Measured: with
//! them alone, a file reported synced was missing at 2 of 99 crash points. `file_syncfs` with
//! `wait=1` commits the journal and flushes the disk.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use guest::syncfs;

/// Writes `bytes` to a new file at `path`, `fsync`s it and then either syncs its file system,
/// waiting, or (`fsync_only`) `fsync`s its directory.
fn write_synced(path: &Path, bytes: &[u8], fsync_only: bool) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if fsync_only {
        let dir = path.parent().unwrap_or(Path::new("."));
        return File::open(dir)?.sync_all();
    }
    syncfs::wait(&file)
}

fn run(dir: &Path, client: u32, rounds: u32, sectors: u32, fsync_only: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for round in 0..rounds {
        write_synced(
            &dir.join(guest::data_file(client, round)),
            &guest::round_data(client, round, sectors),
            fsync_only,
        )?;
        println!("fs-barrier: client {client} round {round} synced");
        // Synced too, so it reaches the disk now rather than at some later flush.
        write_synced(
            &dir.join(guest::commit_file(client, round)),
            &guest::commit_record(client, round, sectors),
            fsync_only,
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (args, fsync_only) = match args.split_last() {
        Some((last, rest)) if last == "fsync" => (rest, true),
        _ => (args.as_slice(), false),
    };
    let parsed = match args {
        [dir, client, rounds, sectors] => match (client.parse(), rounds.parse(), sectors.parse()) {
            (Ok(c), Ok(r), Ok(s)) if s > 0 => Some((dir, c, r, s)),
            _ => None,
        },
        _ => None,
    };
    let Some((dir, client, rounds, sectors)) = parsed else {
        eprintln!("usage: fs-barrier DIR CLIENT ROUNDS SECTORS [fsync]");
        return ExitCode::from(64);
    };
    match run(Path::new(dir), client, rounds, sectors, fsync_only) {
        Ok(()) => {
            println!("test fs_barrier_client_{client} ... ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("test fs_barrier_client_{client} ... FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}
