//! What the Hurd VM's file-system barrier workload writes, shared with the host-side checker.
//!
//! Each round of a client is one file whose sectors are self-describing ([`pattern::Stamp`], with
//! `lba` the sector's place in the file), then, after `fsync` and `sync` returned, a commit record
//! file: one [`pattern::Kind::Commit`] sector naming the round. Once a commit record is anywhere
//! in the disk's write log, the round's `sync` had returned before that point, so every crash
//! image after it must hold the round's file intact.

use pattern::{Kind, Stamp, SECTOR};

/// `file_syncfs(wait=1)` for the guest programs: the file system synced and on stable storage.
pub mod syncfs {
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


/// The data file of `round`, relative to the workload's folder.
pub fn data_file(client: u32, round: u32) -> String {
    format!("c{client}-r{round:04}.dat")
}

/// The commit record file of `round`.
pub fn commit_file(client: u32, round: u32) -> String {
    format!("c{client}-r{round:04}.commit")
}

/// The contents of `round`'s data file: `sectors` stamped sectors.
pub fn round_data(client: u32, round: u32, sectors: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; sectors as usize * SECTOR];
    for (index, chunk) in bytes.chunks_exact_mut(SECTOR).enumerate() {
        let sector: &mut [u8; SECTOR] = chunk.try_into().expect("chunks are sectors");
        data_stamp(client, round, index as u32, sectors).write(sector);
    }
    bytes
}

/// Sector `index` of `round`'s data file (its place in the file is its `lba`).
fn data_stamp(client: u32, round: u32, index: u32, sectors: u32) -> Stamp {
    Stamp {
        kind: Kind::Data,
        client,
        round,
        index,
        count: sectors,
        lba: u64::from(index),
    }
}

/// The commit record written once `round`'s syncs returned.
pub fn commit_record(client: u32, round: u32, sectors: u32) -> [u8; SECTOR] {
    let mut sector = [0u8; SECTOR];
    Stamp {
        kind: Kind::Commit,
        client,
        round,
        index: 0,
        count: sectors,
        lba: 0,
    }
    .write(&mut sector);
    sector
}

/// Checks a data file read back from a crash image: every sector intact and in its place.
pub fn check_round_data(bytes: &[u8], client: u32, round: u32, sectors: u32) -> Result<(), String> {
    if bytes.len() != sectors as usize * SECTOR {
        return Err(format!(
            "{} bytes, {} expected",
            bytes.len(),
            sectors as usize * SECTOR
        ));
    }
    for (index, sector) in bytes.chunks_exact(SECTOR).enumerate() {
        let want = data_stamp(client, round, index as u32, sectors);
        match Stamp::read(sector) {
            Some(found) if found == want => {}
            Some(found) => return Err(format!("sector {index} holds {found:?}")),
            None => return Err(format!("sector {index} is not an intact pattern sector")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_file_checks_and_a_damaged_one_does_not() {
        let mut data = round_data(1, 7, 16);
        assert_eq!(check_round_data(&data, 1, 7, 16), Ok(()));
        assert!(check_round_data(&data, 1, 8, 16)
            .unwrap_err()
            .contains("sector 0 holds"));
        assert!(check_round_data(&data[..SECTOR * 15], 1, 7, 16)
            .unwrap_err()
            .contains("bytes"));
        data[SECTOR * 9 + 100] ^= 1;
        assert_eq!(
            check_round_data(&data, 1, 7, 16),
            Err("sector 9 is not an intact pattern sector".into())
        );
        // A stale block: sector 3 of the previous round in its place.
        let mut stale = round_data(1, 7, 16);
        stale[SECTOR * 3..SECTOR * 4]
            .copy_from_slice(&round_data(1, 6, 16)[SECTOR * 3..SECTOR * 4]);
        assert!(check_round_data(&stale, 1, 7, 16)
            .unwrap_err()
            .starts_with("sector 3 holds"));
    }

    #[test]
    fn commit_records_name_their_round() {
        let stamp = Stamp::read(&commit_record(2, 9, 16)).unwrap();
        assert_eq!(
            (stamp.kind, stamp.client, stamp.round, stamp.count),
            (Kind::Commit, 2, 9, 16)
        );
    }
}
