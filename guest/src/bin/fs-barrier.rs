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

mod syncfs {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::os::raw::c_int;

    /// Syncs the file system `file` is on and waits until it is on stable storage.
    #[cfg(target_os = "hurd")]
    pub fn wait(file: &File) -> std::io::Result<()> {
        extern "C" {
            /// glibc: a new send right to the io port behind `fd`.
            fn getdport(fd: c_int) -> u32;
            /// The Hurd's `file_syncfs` RPC stub (libhurduser).
            fn file_syncfs(file: u32, wait: c_int, dochildren: c_int) -> c_int;
            fn mach_port_deallocate(task: u32, name: u32) -> c_int;
            static __mach_task_self_: u32;
        }
        // SAFETY: `getdport` only reads glibc's descriptor table; the fd is open for `file`'s life.
        let port = unsafe { getdport(file.as_raw_fd()) };
        if port == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `port` is a send right this function owns; the stub only sends a message.
        let error = unsafe { file_syncfs(port, 1, 0) };
        // SAFETY: releases the right `getdport` made; `__mach_task_self_` is set before main.
        unsafe { mach_port_deallocate(__mach_task_self_, port) };
        if error == 0 {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(error))
        }
    }

    /// Linux's `syncfs(2)`, so the program also runs (and is tested) on the build host.
    #[cfg(not(target_os = "hurd"))]
    pub fn wait(file: &File) -> std::io::Result<()> {
        extern "C" {
            fn syncfs(fd: c_int) -> c_int;
        }
        // SAFETY: `syncfs` only reads the descriptor, open for `file`'s life.
        if unsafe { syncfs(file.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

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
