//! VM tests of the store client on GNU Mach: typed store names opened through a device master,
//! written, synced and read back through real kernel IPC.
//!
//! Boot words: `${host-port} ${device-port} disk=NAME sync=EXPECT`, or
//! `master=bootstrap disk=NAME sync=EXPECT` for a task started by rumpdisk (`--next-task`), which
//! gets host-priv and rumpdisk's own master from `fsys_getpriv` on its bootstrap port. EXPECT:
//! - `flushes`: every sync succeeds;
//! - `unsupported`: the server does not know `DEV_FLUSH_CACHE` (the kernel's `rd0` answers
//!   `D_INVALID_OPERATION`): every sync must say `EOPNOTSUPP`, never success;
//! - `first-fails`: the disk fails its first flush: the first sync must say `EIO`, later ones succeed.
//!
//! `noflush=NAME` adds a test on device NAME, whose server does not know `DEV_FLUSH_CACHE` (GNU
//! Mach's `console` answers `D_INVALID_OPERATION`): its sync must say `EOPNOTSUPP`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use mach::args::Args;
use mach::port::{PortName, SendRight};
use store::mach_device::MachDeviceMaster;
use store::open::WithMaster;
use store::{DeviceCode, Errno, Error, Flags, Store};
use tasks::{ensure, Outcome, Suite};

mach::task_main!(main);

fn main(args: Args<'static>) -> i32 {
    let Ok((host_priv, master)) = ports(&args) else {
        return 1;
    };
    if mach::console::init_log(master, log::LevelFilter::Info).is_err() {
        return 2;
    }
    let mut suite = Suite::new(host_priv);
    let disk = args.value("disk").and_then(|d| core::str::from_utf8(d).ok()).unwrap_or("rd0");
    let expect = match args.value("sync") {
        Some(b"flushes") => Expect::Flushes,
        Some(b"unsupported") => Expect::Unsupported,
        Some(b"first-fails") => Expect::FirstFails,
        _ => {
            suite.run("arguments", || Err("no sync=flushes|unsupported|first-fails argument".into()));
            suite.finish()
        }
    };
    // The store keeps a reference of its own; the console logger goes on using `master`.
    let borrowed = SendRight::from_name(master);
    let own = borrowed.try_clone();
    borrowed.into_name();
    match own {
        Ok(own) => {
            let opener = WithMaster(Rc::new(MachDeviceMaster::new(own)));
            let tests = Tests { opener, disk, expect, syncs: Cell::new(0) };
            suite.run("open_typed_device", || tests.open_typed_device());
            suite.run("write_then_read_back", || tests.write_then_read_back());
            suite.run("sync", || tests.sync());
            suite.run("sync_through_concat_of_remaps", || tests.sync_through_concat_of_remaps());
            suite.run("data_after_sync", || tests.data_after_sync());
            suite.run("hard_read_only_refuses_writes", || tests.hard_read_only_refuses_writes());
            suite.run("bad_name_names_the_part", || tests.bad_name_names_the_part());
            if let Some(name) = args.value("noflush").and_then(|n| core::str::from_utf8(n).ok()) {
                suite.run("sync_without_the_flavor_is_eopnotsupp", || tests.sync_without_the_flavor(name));
            }
        }
        Err(e) => suite.run("device_master", || Err(format!("cannot keep the master port: {e:?}"))),
    }
    suite.finish()
}

/// Host-priv and the device master: from the boot words, or from the task that started this one.
fn ports(args: &Args<'static>) -> Result<(PortName, PortName), ()> {
    if args.value("master") == Some(&b"bootstrap"[..]) {
        let privileges = tasks::privileges_from_bootstrap().map_err(|_| ())?;
        return Ok((privileges.host_priv.into_name(), privileges.device_master.into_name()));
    }
    Ok((args.port(1).map_err(|_| ())?, args.port(2).map_err(|_| ())?))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Flushes,
    Unsupported,
    FirstFails,
}

struct Tests<'a> {
    opener: WithMaster,
    disk: &'a str,
    expect: Expect,
    /// Syncs checked so far.
    syncs: Cell<usize>,
}

/// Where the tests write: past the first blocks (rd0 starts with a marker), in every store they
/// open; 48 KiB in all, so the kernel's 64 KiB RAM disk will do.
const AT: u64 = 32;
const LEN: usize = 16 * 1024;
/// The record written after the first sync returned, and its block.
const SYNCED: &[u8] = b"store-tests: synced";
const SYNCED_AT: u64 = 8;

fn pattern(seed: u8) -> Vec<u8> {
    (0..LEN).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed)).collect()
}

impl Tests<'_> {
    fn open(&self, name: &str, flags: Flags) -> Result<Store, String> {
        store::open(name, flags, &self.opener).map_err(|e| format!("open {name}: {e}"))
    }

    fn device(&self) -> Result<Store, String> {
        self.open(&format!("device:{}", self.disk), Flags::NONE)
    }

    /// What a sync must answer on this server.
    fn check_sync(&self, result: store::Result<()>) -> Outcome {
        let first = self.syncs.replace(self.syncs.get() + 1) == 0;
        match (self.expect, result) {
            (Expect::Unsupported, Err(e)) if e.errno() == Errno::EOPNOTSUPP => {
                ensure!(e.device_code() == Some(DeviceCode::INVALID_OPERATION), "EOPNOTSUPP without the server's code: {e}");
                Ok(())
            }
            (Expect::Unsupported, Err(e)) => Err(format!("expected EOPNOTSUPP, got {e}")),
            (Expect::Unsupported, Ok(())) => Err("sync reported success on a server that cannot flush".into()),
            (Expect::FirstFails, Err(e)) if first && e.errno() == Errno::EIO => Ok(()),
            (Expect::FirstFails, Ok(())) if first => Err("the failed flush was reported as success".into()),
            (_, Ok(())) => Ok(()),
            (_, Err(e)) => Err(format!("sync failed: {e}")),
        }
    }

    fn open_typed_device(&self) -> Outcome {
        let store = self.device()?;
        ensure!(store.block_size() == 512, "block size {}", store.block_size());
        ensure!(store.blocks() >= 2 * AT + (LEN / 512) as u64, "only {} blocks", store.blocks());
        ensure!(store.flags().contains(Flags::ENFORCED), "the whole device is not enforced");
        ensure!(!store.flags().contains(Flags::READONLY), "opened read-only");
        Ok(())
    }

    fn write_then_read_back(&self) -> Outcome {
        let mut store = self.device()?;
        let data = pattern(1);
        let written = store.write(AT, &data).map_err(|e| format!("write: {e}"))?;
        ensure!(written == LEN, "wrote {written} of {LEN}");
        let back = store.read_vec(AT, LEN).map_err(|e| format!("read: {e}"))?;
        ensure!(back == data, "the data came back different");
        Ok(())
    }

    fn sync(&self) -> Outcome {
        let mut store = self.device()?;
        self.check_sync(store.sync())?;
        if self.expect == Expect::Flushes {
            // After the sync returned: the host checks that the drive saw a FLUSH between the
            // data above and this record (QEMU's own flush at shutdown comes after it).
            let mut record = [0u8; 512];
            record[..SYNCED.len()].copy_from_slice(SYNCED);
            store.write(SYNCED_AT, &record).map_err(|e| format!("writing the synced record: {e}"))?;
        }
        Ok(())
    }

    fn sync_through_concat_of_remaps(&self) -> Outcome {
        let name = format!("concat:,remap:0+{AT}:device:{d},remap:{AT}+{AT}:device:{d}", d = self.disk);
        let mut store = self.open(&name, Flags::NONE)?;
        let data = pattern(2);
        // The write straddles the two children: half in each.
        let at = AT - (LEN / 2 / 512) as u64;
        let written = store.write(at, &data).map_err(|e| format!("write: {e}"))?;
        ensure!(written == LEN, "wrote {written} of {LEN}");
        let result = store.sync();
        if let (Expect::Unsupported, Err(Error::Children { failures, .. })) = (self.expect, &result) {
            ensure!(failures.len() == 2, "{} of 2 children could not flush: {}", failures.len(), result.clone().unwrap_err());
        }
        self.check_sync(result)
    }

    fn data_after_sync(&self) -> Outcome {
        let mut store = self.device()?;
        let back = store.read_vec(AT - (LEN / 2 / 512) as u64, LEN).map_err(|e| format!("read: {e}"))?;
        ensure!(back == pattern(2), "the data written through the concat is not on the device");
        Ok(())
    }

    fn hard_read_only_refuses_writes(&self) -> Outcome {
        let mut store = self.open(&format!("device:{}", self.disk), Flags::HARD_READONLY)?;
        match store.write(0, &[0; 512]) {
            Err(e) if e.errno() == Errno::EROFS => Ok(()),
            other => Err(format!("expected EROFS, got {other:?}")),
        }
    }

    fn sync_without_the_flavor(&self, name: &str) -> Outcome {
        match self.open(&format!("device:{name}"), Flags::NONE)?.sync() {
            Err(e) if e.errno() == Errno::EOPNOTSUPP && e.device_code() == Some(DeviceCode::INVALID_OPERATION) => Ok(()),
            Err(e) => Err(format!("expected EOPNOTSUPP from D_INVALID_OPERATION, got {e}")),
            Ok(()) => Err(format!("{name} reported a flush it cannot do")),
        }
    }

    fn bad_name_names_the_part(&self) -> Outcome {
        match store::open(&format!("remap:1+x:device:{}", self.disk), Flags::NONE, &self.opener) {
            Err(Error::Name(name)) => {
                ensure!(name.part == "x" && name.at == 8, "blamed {:?} at {}", name.part, name.at);
                Ok(())
            }
            Err(other) => Err(format!("expected a name error, got {other}")),
            Ok(_) => Err("opened a bad name".into()),
        }
    }
}
