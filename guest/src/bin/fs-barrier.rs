//! The file-system barrier workload, run inside the Hurd VM on ext2fs over rumpdisk-rs.
//!
//! `fs-barrier DIR CLIENT ROUNDS SECTORS`: for each round, writes a stamped data file, `fsync`s it,
//! `sync`s the file system, reports the round synced, then writes and `fsync`s its commit record
//! (see the `guest` library). The host replays the disk's write log to every flush and checks
//! that every round whose commit record was written is intact there.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

extern "C" {
    /// POSIX `sync(2)`: on the Hurd, `file_syncfs` on the root file system, waiting.
    fn sync();
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn run(dir: &Path, client: u32, rounds: u32, sectors: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for round in 0..rounds {
        write_synced(&dir.join(guest::data_file(client, round)), &guest::round_data(client, round, sectors))?;
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { sync() };
        println!("fs-barrier: client {client} round {round} synced");
        write_synced(&dir.join(guest::commit_file(client, round)), &guest::commit_record(client, round, sectors))?;
    }
    // The last commit record reaches the disk now, not at some later flush.
    // SAFETY: as above.
    unsafe { sync() };
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [dir, client, rounds, sectors] => match (client.parse(), rounds.parse(), sectors.parse()) {
            (Ok(c), Ok(r), Ok(s)) if s > 0 => Some((dir, c, r, s)),
            _ => None,
        },
        _ => None,
    };
    let Some((dir, client, rounds, sectors)) = parsed else {
        eprintln!("usage: fs-barrier DIR CLIENT ROUNDS SECTORS");
        return ExitCode::from(64);
    };
    match run(Path::new(dir), client, rounds, sectors) {
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
