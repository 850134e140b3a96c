//! The write-barrier workload, run as rumpdisk.static's `--next-task` on a disk whose writes and
//! flushes QEMU logs (`blklogwrites`).
//!
//! Each client (a thread with its own store) writes rounds of self-describing pattern sectors
//! (`pattern::Stamp`) through `device:wd0`, then syncs. When a sync returns it prints
//! `barrier: synced client=C round=R` and writes the round's commit record; a failed sync prints
//! `barrier: sync-failed client=C round=R errno=E` and ends that client. The host checks the
//! device log against these lines (`cargo xtask check-barrier`).
//!
//! Boot words: `clients=N rounds=N sectors=N` (sectors per round); `burst=1` writes each
//! sector of a round with a write of its own, so one client's sync waits behind a burst of
//! another's writes (the server's write bound, not an idle moment, then starts its flush).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;
use alloc::vec;
use core::sync::atomic::{AtomicU32, Ordering};
use mach::args::Args;
use mach::port::SendRight;
use pattern::{Kind, Stamp, SECTOR};
use store::mach_device::MachDeviceMaster;
use store::open::WithMaster;
use store::{Flags, Store};
use tasks::{Context, Outcome, Suite};

mach::task_main!(main);

/// First sector of the per-client commit records.
const COMMIT_BASE: u64 = 64;
/// First sector of the rounds' data.
const DATA_BASE: u64 = 1024;

#[derive(Clone, Copy)]
struct Workload {
    clients: u32,
    rounds: u32,
    sectors: u32,
    /// One write per sector instead of one per round.
    burst: bool,
}

impl Workload {
    fn data_lba(&self, client: u32, round: u32) -> u64 {
        DATA_BASE + (u64::from(client) * u64::from(self.rounds) + u64::from(round)) * u64::from(self.sectors)
    }
}

fn number(args: &Args<'static>, key: &'static str, default: u32) -> u32 {
    args.value(key).and_then(|v| core::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(default)
}

fn main(args: Args<'static>) -> i32 {
    let Ok(tasks::Privileges { host_priv, device_master: master, .. }) = tasks::privileges_from_bootstrap() else {
        return 2;
    };
    if mach::console::init_log(master.name(), log::LevelFilter::Info).is_err() {
        return 3;
    }
    let workload = Workload {
        clients: number(&args, "clients", 4),
        rounds: number(&args, "rounds", 32),
        sectors: number(&args, "sectors", 4),
        burst: number(&args, "burst", 0) != 0,
    };
    let mut suite = Suite::new(host_priv.name());
    suite.run("barrier_workload", || run(workload, &master));
    suite.finish()
}

/// Sectors that did not read back as written, over all clients.
static MISMATCHES: AtomicU32 = AtomicU32::new(0);

/// Runs every client on a thread of its own and waits for all of them.
fn run(workload: Workload, master: &SendRight) -> Outcome {
    static FINISHED: AtomicU32 = AtomicU32::new(0);
    for client in 0..workload.clients {
        let master = master.try_clone().context("copy the master right")?;
        mach::thread::spawn(move || {
            client_rounds(workload, client, master);
            FINISHED.fetch_add(1, Ordering::AcqRel);
        })
        .context("start a client")?;
    }
    while FINISHED.load(Ordering::Acquire) < workload.clients {
        mach::sys::swtch_pri(0);
    }
    log::info!("barrier: done");
    match MISMATCHES.load(Ordering::Acquire) {
        0 => Ok(()),
        n => Err(alloc::format!("{n} sectors read back differently from what was written")),
    }
}

fn client_rounds(workload: Workload, client: u32, master: SendRight) {
    let opener = WithMaster(Rc::new(MachDeviceMaster::new(master)));
    let mut disk = match store::open("device:wd0", Flags::NONE, &opener) {
        Ok(disk) => disk,
        Err(error) => return log::info!("barrier: client {client} cannot open device:wd0: {error}"),
    };
    for round in 0..workload.rounds {
        if let Err(error) = write_round(&mut disk, workload, client, round) {
            return log::info!("barrier: write-failed client={client} round={round} errno={}", error.errno().0);
        }
        match disk.sync() {
            Ok(()) => log::info!("barrier: synced client={client} round={round}"),
            Err(error) => {
                return log::info!("barrier: sync-failed client={client} round={round} errno={}", error.errno().0);
            }
        }
        let mut commit = [0u8; SECTOR];
        Stamp { kind: Kind::Commit, client, round, index: 0, count: workload.sectors, lba: COMMIT_BASE + u64::from(client) }
            .write(&mut commit);
        if let Err(error) = disk.write(COMMIT_BASE + u64::from(client), &commit) {
            return log::info!("barrier: write-failed client={client} round={round} errno={}", error.errno().0);
        }
    }
    read_back(&mut disk, workload, client);
}

/// Reads every round back through the store and checks each sector's stamp.
fn read_back(disk: &mut Store, workload: Workload, client: u32) {
    for round in 0..workload.rounds {
        let lba = workload.data_lba(client, round);
        let intact = disk.read_vec(lba, workload.sectors as usize * SECTOR).is_ok_and(|data| {
            data.chunks_exact(SECTOR).enumerate().all(|(index, sector)| {
                Stamp::read(sector).is_some_and(|s| s.client == client && s.round == round && s.index == index as u32)
            })
        });
        if !intact {
            MISMATCHES.fetch_add(1, Ordering::AcqRel);
            log::info!("barrier: read-back-failed client={client} round={round}");
        }
    }
    log::info!("barrier: read back client={client} rounds={}", workload.rounds);
}

fn write_round(disk: &mut Store, workload: Workload, client: u32, round: u32) -> store::Result<()> {
    let lba = workload.data_lba(client, round);
    let mut data = vec![0u8; workload.sectors as usize * SECTOR];
    for (index, sector) in data.chunks_exact_mut(SECTOR).enumerate() {
        let index = index as u32;
        let stamp = Stamp { kind: Kind::Data, client, round, index, count: workload.sectors, lba: lba + u64::from(index) };
        stamp.write(sector.try_into().expect("chunks of SECTOR bytes"));
    }
    if !workload.burst {
        return disk.write(lba, &data).map(drop);
    }
    data.chunks_exact(SECTOR).zip(lba..).try_for_each(|(sector, lba)| disk.write(lba, sector).map(drop))
}
