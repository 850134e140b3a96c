//! `rumpdisk.static`: the boot-module build of the translator. GNU Mach starts it from the boot
//! script with `--host-priv-port=${host-port} --device-master-port=${device-port}
//! --next-task=${next-task}`; it drives the IDE channels with the native ATA backend (bus-master
//! DMA when the channel's PCI controller has it, `--ata-transfer` to choose) and the AHCI
//! controller's disks, serves them as `wd0`, `wd1`, ... in attach order (as the Hurd's rumpdisk
//! names them) and forwards every other device name to the kernel. With `--next-task`
//! it is that task's boot server ([`rumpdisk::boot`]): privileged ports, `fsys_startup` and
//! `fsys_init` (passed up when a server started this one too), then `/dev/rumpdisk`, the
//! startup server's essential tasks and its shutdown notice.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use mach::args::Args;
use mach::kern::Result;
use mach::port::{PortName, SendRight};
use rumpdisk::backend::ata::native::{self, NativeUnits};
use rumpdisk::backend::ata::port_io::Tsc;
use rumpdisk::backend::ata::Clock;
use rumpdisk::backend::flush_mode::WithFlushMode;
use rumpdisk::boot::{self, BootServer, Upstream};
use rumpdisk::device_server::DeviceServer;
use rumpdisk::options::{self, Command, Options};
use rumpdisk::settings::Running;

mach::task_main!(main);

/// Threads serving device requests at most: more start while every one is busy (a slow flush,
/// a forwarded open), so that one slow request never stops the others.
const SERVING_THREADS: usize = 8;

fn main(args: Args<'static>) -> i32 {
    let started_tsc = Tsc.now();
    let words: Vec<&[u8]> = args.iter().skip(1).collect();
    // A server that started this one (a pci-arbiter) hands out the privileged ports the options
    // do not name, and is told the boot's progress.
    let (given_host_priv, given_master, upstream, contact_error) = match boot::own_bootstrap_port().map(Upstream::contact) {
        Some(Ok((host_priv, master, upstream))) => (Some(host_priv), Some(master), Some(upstream), None),
        Some(Err(error)) => (None, None, None, Some(error)),
        None => (None, None, None, None),
    };
    let given_master = given_master.map(SendRight::into_name);
    let options = match options::parse(&words) {
        Ok(Command::Serve(options)) => options,
        // A boot module has no terminal: the reason goes to the console, as every other line.
        Ok(_) => return stop(&words, given_master, "rumpdisk: --help, --usage and --version are for the translator"),
        Err(error) => return stop(&words, given_master, &alloc::format!("rumpdisk: {error}")),
    };
    let host_priv = options.host_priv_port.map(PortName::new).or_else(|| given_host_priv.map(SendRight::into_name));
    let master = options.device_master_port.map(PortName::new).or(given_master);
    let (Some(host_priv), Some(master)) = (host_priv, master) else {
        return stop(&words, master, "rumpdisk: --host-priv-port and --device-master-port are required");
    };
    // The console opens once the first answers are out (or at the first warning, or a panic):
    // opening it is the slowest step of the start.
    mach::console::defer_log(master, log::LevelFilter::Info);
    // The start time `cargo xtask bench` measures the first device_open from.
    log::info!("rumpdisk: started tsc={started_tsc}");
    if let Some(error) = contact_error {
        log::warn!("rumpdisk: the server that started this one gave no privileged ports: {error:?}");
    }
    let server = match start(master, host_priv, &options) {
        Ok(server) => server,
        Err(error) => {
            log::error!("rumpdisk: cannot start: {error:?}");
            return 70;
        }
    };
    // It may drive the disk the default pager swaps to: as upstream, its memory and its serving
    // threads are wired, or it does not start.
    if let Err(error) = SendRight::copy_of(host_priv).and_then(|host_priv| server.keep_in_memory(host_priv)) {
        log::error!("rumpdisk: cannot wire the task's memory: {error:?}");
        return 70;
    }
    if let Some(next_task) = options.next_task {
        // The next task's bootstrap port is served by a thread of its own.
        // `fsysopts /dev/rumpdisk` shows and changes these once the system runs.
        let settings = Box::leak(Box::new(Running::new("rumpdisk.static", options, server.core().backend(), server.core())));
        if let Err(error) = BootServer::start(server, SendRight::from_name(host_priv), upstream, Some(PortName::new(next_task)), mach::thread::spawn, settings, args.vectors()) {
            log::error!("rumpdisk: cannot start the next task: {error:?}");
            return 70;
        }
    }
    // Not before the first answers: on one processor, this work would delay them.
    server.when_idle(Box::new(move || {
        // Without a console there is nowhere to report that it did not open.
        let _ = mach::console::open_log();
        server.grow(mach::thread::spawn, SERVING_THREADS);
    }));
    let error = server.serve();
    log::error!("rumpdisk: serving ended: {error:?}");
    70
}

/// Says on the console why the server does not start (as upstream's boot servers, whose
/// standard streams are the console), when a device master is known; returns `EX_USAGE`.
fn stop(words: &[&[u8]], master: Option<PortName>, why: &str) -> i32 {
    let master = master.or_else(|| options::device_master_word(words).map(PortName::new));
    if let Some(master) = master {
        mach::console::defer_log(master, log::LevelFilter::Info);
        log::error!("{why}");
    }
    64
}

type Ata = WithFlushMode<NativeUnits>;

/// Takes the IDE channel's I/O ports (and its bus master, with DMA memory through `host_priv`,
/// when `--ata-transfer` allows) or the AHCI controller's port, and makes the server, forwarding
/// foreign names to the kernel's device master.
fn start(master: PortName, host_priv: PortName, options: &Options) -> Result<&'static DeviceServer<Ata>> {
    let backend = native::native_backend(master, host_priv, options.ide_channels(), options.flush, options.ata_transfer, options.completion)?;
    let upstream = SendRight::from_name(master);
    // Every serving thread borrows the server for the task's whole life.
    Ok(Box::leak(Box::new(DeviceServer::new(backend, Some(upstream))?)))
}
