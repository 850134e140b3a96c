//! VM tests of rumpdisk.static, run as its `--next-task`: the boot hand-off, the device
//! interface on the IDE disk `wd0`, forwarding, and the store client on top.
//!
//! Boot words: `wd0sectors=N`, and `wd1sectors=N` with a second disk (the secondary master). Everything else comes from `fsys_getpriv` on the bootstrap port,
//! as a Hurd boot server's next task gets it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use mach::args::Args;
use mach::constants::{DEV_FLUSH_CACHE, DEV_GET_RECORDS, DEV_GET_SIZE, D_INVALID_OPERATION, D_INVALID_SIZE, D_READ, D_WRITE};
use mach::interfaces::{device, RecNum};
use mach::port::{PortName, SendRight};
use store::mach_device::MachDeviceMaster;
use store::open::WithMaster;
use store::Flags;
use tasks::{ensure, Context, Outcome, Suite};

mach::task_main!(main);

/// Where the data the host checks in the image afterwards goes (1 MiB in).
pub const HOST_CHECK_SECTOR: RecNum = 2048;
pub const HOST_CHECK_TEXT: &[u8] = b"rumpdisk-rs wrote this through wd0";
/// What the second disk holds at the same sector, written through `wd1`.
pub const WD1_CHECK_TEXT: &[u8] = b"rumpdisk-rs wrote this through wd1";

fn main(args: Args<'static>) -> i32 {
    // Without the privileged ports there is no console to report on: end with a status only.
    let Ok(tasks::Privileges { host_priv, device_master: master, fs_task }) = tasks::privileges_from_bootstrap() else {
        return 2;
    };
    if mach::console::init_log(master.name(), log::LevelFilter::Info).is_err() {
        return 3;
    }
    let mut suite = Suite::new(host_priv.name());
    suite.run("fsys_getpriv", || {
        // A send right to one's own task port arrives under the name mach_task_self gives.
        if fs_task.name() == PortName::new(mach::sys::mach_task_self()) {
            return Err("fstask is this task, not the boot server's own".into());
        }
        Ok(())
    });
    suite.run("console_forwarded", || {
        let console = device::device_open(master.name(), D_WRITE, b"console").context("open console")?;
        device::device_write_inband(console.name(), 0, 0, b"disk-tests: console through rumpdisk\n").context("write")?;
        Ok(())
    });
    let sectors = args.value("wd0sectors").and_then(|s| core::str::from_utf8(s).ok()?.parse::<i32>().ok());
    match device::device_open(master.name(), D_READ | D_WRITE, b"wd0") {
        Ok(wd0) => {
            suite.run("wd0_size", || size(wd0.name(), sectors.ok_or("no wd0sectors= argument")?));
            suite.run("one_sector", || round_trip(wd0.name(), 100, &pattern(512, 1)));
            suite.run("one_mib", || round_trip(wd0.name(), 4096, &pattern(1 << 20, 2)));
            suite.run("unaligned_buffer", || {
                let data = pattern(4097, 3);
                round_trip(wd0.name(), 8192, &data[1..])
            });
            suite.run("writes_past_the_end_are_refused", || past_the_end(wd0.name(), sectors.ok_or("no wd0sectors= argument")?));
            suite.run("flush_cache", || {
                device::device_set_status(wd0.name(), DEV_FLUSH_CACHE, &[]).context("DEV_FLUSH_CACHE")
            });
            suite.run("host_check_data", || {
                let mut sector = vec![0u8; 512];
                sector[..HOST_CHECK_TEXT.len()].copy_from_slice(HOST_CHECK_TEXT);
                round_trip(wd0.name(), HOST_CHECK_SECTOR, &sector)?;
                device::device_set_status(wd0.name(), DEV_FLUSH_CACHE, &[]).context("flush")
            });
            suite.run("second_open_shares_the_port", || {
                let again = device::device_open(master.name(), D_READ | D_WRITE, b"wd0").context("reopen")?;
                ensure!(again.name() == wd0.name(), "a second open gave another port");
                Ok(())
            });
        }
        Err(error) => suite.run("open_wd0", || Err(alloc::format!("device_open(wd0): {error:?}"))),
    }
    // With a second disk on the secondary channel's master: it is `wd1`, as NetBSD attaches it
    // under the Hurd's rumpdisk (disks in attach order, the primary's slave position empty).
    if let Some(wd1_sectors) = args.value("wd1sectors").and_then(|s| core::str::from_utf8(s).ok()?.parse::<i32>().ok()) {
        suite.run("secondary_master_is_wd1", || {
            let wd1 = device::device_open(master.name(), D_READ | D_WRITE, b"wd1").context("device_open(wd1)")?;
            let records = device::device_get_status(wd1.name(), DEV_GET_RECORDS, 2).context("DEV_GET_RECORDS")?;
            ensure!(records.as_slice() == [wd1_sectors, 512], "wd1 is not the secondary master: {:?}", records.as_slice());
            let mut sector = vec![0u8; 512];
            sector[..WD1_CHECK_TEXT.len()].copy_from_slice(WD1_CHECK_TEXT);
            round_trip(wd1.name(), HOST_CHECK_SECTOR, &sector)?;
            device::device_set_status(wd1.name(), DEV_FLUSH_CACHE, &[]).context("flush")?;
            ensure!(device::device_open(master.name(), D_READ, b"wd2").is_err(), "a wd2 with two disks");
            Ok(())
        });
    }
    suite.run("read_only_open_refuses_writes", || read_only(master.name()));
    suite.run("store_device_write_sync_read", || store_round_trip(&master));
    suite.finish()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

fn size(wd0: PortName, sectors: i32) -> Outcome {
    let records = device::device_get_status(wd0, DEV_GET_RECORDS, 2).context("DEV_GET_RECORDS")?;
    ensure!(records.as_slice() == [sectors, 512], "DEV_GET_RECORDS gave {:?}", records.as_slice());
    let bytes = device::device_get_status(wd0, DEV_GET_SIZE, 2).context("DEV_GET_SIZE")?;
    ensure!(bytes.as_slice() == [sectors * 512, 512], "DEV_GET_SIZE gave {:?}", bytes.as_slice());
    Ok(())
}

fn round_trip(wd0: PortName, sector: RecNum, data: &[u8]) -> Outcome {
    let written = device::device_write(wd0, D_WRITE, sector, data).context("device_write")?;
    ensure!(written as usize == data.len(), "wrote {written} of {}", data.len());
    let back = device::device_read(wd0, D_READ, sector, data.len() as i32).context("device_read")?;
    ensure!(back.as_slice() == data, "{} bytes read back differ", data.len());
    Ok(())
}

/// The server's own bounds check (the drive's would answer another code, or write): a write
/// ending one record past the end, and one starting there, are `D_INVALID_SIZE`; the last
/// record itself is writable.
fn past_the_end(wd0: PortName, sectors: i32) -> Outcome {
    let last = RecNum::try_from(sectors - 1).map_err(|_| "no sectors")?;
    for (sector, len) in [(last, 1024), (last + 1, 512)] {
        match device::device_write(wd0, D_WRITE, sector, &vec![0xA5; len]) {
            Err(e) if e.code() == D_INVALID_SIZE as i32 => {}
            other => return Err(alloc::format!("{len} bytes at sector {sector} of {sectors} gave {other:?}")),
        }
    }
    round_trip(wd0, last, &pattern(512, 4))
}

fn read_only(master: PortName) -> Outcome {
    let wd0 = device::device_open(master, D_READ, b"wd0").context("read-only open")?;
    match device::device_write(wd0.name(), D_WRITE, 100, &[0u8; 512]) {
        Err(e) if e.code() == D_INVALID_OPERATION as i32 => Ok(()),
        other => Err(alloc::format!("a write through a read-only open gave {other:?}")),
    }
}

fn opener(master: &SendRight) -> Result<WithMaster, alloc::string::String> {
    let copy = master.try_clone().context("copy the master right")?;
    Ok(WithMaster(Rc::new(MachDeviceMaster::new(copy))))
}

fn store_round_trip(master: &SendRight) -> Outcome {
    let mut disk = store::open("device:wd0", Flags::NONE, &opener(master)?).context("open device:wd0")?;
    let data = pattern(8 * 512, 9);
    disk.write(16384, &data).context("store write")?;
    disk.sync().context("store sync")?;
    let back = disk.read_vec(16384, data.len()).context("store read")?;
    ensure!(back == data, "store read back differs");
    Ok(())
}
