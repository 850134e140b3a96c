//! The benchmark task (`cargo xtask bench`): times, with the time-stamp counter, what the host
//! turns into the figures of `docs/bench.md`. It is not a test: it prints measurements, and one
//! `test` line only so the harness knows the run completed.
//!
//! Boot words, as rumpdisk.static's `--next-task`: `role=client kernel-master=${device-port}
//! peer=${peer-task} [transfer=MODE]` (the direct driver's `--ata-transfer`, given the server's);
//! the peer: `${host-port} ${device-port} role=peer`.
//!
//! The client, in one boot and on one disk, one thing at a time:
//! 1. opens `wd0` through the server first of all, and prints the TSC when the open returns;
//! 2. null RPCs: to the kernel (`mach_port_get_refs`) and to the peer task (`device_read_inband`
//!    of 1 byte from a buffer: the server round trip's message with no work behind it), then
//!    the same while this task holds I/O ports (GNU Mach copies its I/O bitmap at each switch);
//! 3. the server round trip: `device_read_inband` of 1 byte of `wd0` through rumpdisk.static;
//!    its parts: the same of 512 bytes, the direct driver's read of that sector, and
//!    `device_get_status(DEV_GET_SIZE)`, which the server answers without the drive;
//! 4. throughput by request size, taking turns request by request: direct (the project's ATA
//!    driver linked into this task on the kernel's I/O ports), through rumpdisk.static, and
//!    through the peer as a null server (fresh memory for a read, a write dropped: what any
//!    server adds). The server drives the channel only when this task asks it to, so the two
//!    drivers never drive it at once; this task gives up its I/O ports while the servers are
//!    timed, as a real client holds none. A read ends, on every path, with the data in fresh
//!    memory of this task, untouched (the direct driver's `read_out_of_line`, a reply): as `dd`
//!    with O_DIRECT leaves them in its buffer, and as the Hurd's pagers hand a store's read to
//!    the kernel. Its time is the read's and, after the data are checked (not timed), giving
//!    the memory back;
//! 5. the drive's cache flush after a few writes, through the direct driver.
//!
//! With `role=anchor kernel-master=${device-port}` (on the i386 kernel, as the next task of a
//! rumpdisk.static on the secondary channel), only step 4: the kernel's own IDE driver (`hd0`,
//! path `kernel`) against rumpdisk.static (its `wd0`, path `server`).
//!
//! Lines (ticks are TSC ticks; the host converts them):
//! `bench: client-start tsc=T` (its own start, to split the first open's time),
//! `bench: first-open tsc=T`, `bench: console-line ticks=T` (one line's cost), `bench: call what=W count=N median=T`,
//! `bench: io path=direct|server|null-server|kernel op=read|write bytes=B count=N median=T`,
//! `bench: flush count=N median=T` (the drive's cache flush, through the direct driver).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use mach::args::Args;
use mach::constants::{DEV_GET_SIZE, D_READ, D_WRITE};
use mach::interfaces::{device, mach_port, RecNum};
use mach::ool::OolMemory;
use mach::mig_rt as rt;
use mach::port::{PortName, ReceiveRight};
use rumpdisk::backend::ata::native;
use rumpdisk::backend::ata::port_io::{self, PortAccess, Tsc};
use rumpdisk::backend::ata::{Clock, Completion, TransferMode};
use rumpdisk::backend::flush_mode::FlushMode;
use rumpdisk::backend::{Backend, Disk};
use rumpdisk::device::Access;
use tasks::{ensure, Context, Outcome, Suite};

mach::task_main!(main);

/// The name under which the peer allocates its service port, for the client to extract.
const PEER_PORT: u32 = 0xbe7c;
/// Calls timed per kind (RPCs, and the direct driver's one-sector read).
const CALLS: usize = 10_000;
/// Device flushes timed.
const FLUSHES: usize = 32;
/// Request sizes of the throughput plot.
const SIZES: [usize; 6] = [512, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Bytes moved per path, operation and size (at least `MIN_REQUESTS` requests, at most `MAX_REQUESTS`).
const BYTES_PER_SIZE: usize = 4 << 20;
const MIN_REQUESTS: usize = 16;
const MAX_REQUESTS: usize = 256;
/// The timed requests go to records from here (4 MiB in), spread over `SPAN` bytes.
const FIRST_RECORD: RecNum = 8192;
const SPAN: usize = 32 << 20;
const SECTOR: usize = 512;

fn main(args: Args<'static>) -> i32 {
    match args.value("role") {
        Some(b"peer") => peer(&args),
        Some(b"anchor") => anchor(&args),
        _ => client(&args),
    }
}

fn client(args: &Args<'static>) -> i32 {
    let entered = Tsc.now();
    let Ok(tasks::Privileges { host_priv, device_master: master, .. }) = tasks::privileges_from_bootstrap() else {
        return 2;
    };
    // First of all, so the time from the server's start to this open is what the host computes.
    let wd0 = device::device_open(master.name(), D_READ | D_WRITE, b"wd0");
    let opened = Tsc.now();
    if mach::console::init_log(master.name(), log::LevelFilter::Info).is_err() {
        return 3;
    }
    let mut suite = Suite::new(host_priv.name());
    suite.run("bench", || {
        let wd0 = wd0.context("device_open(wd0) through rumpdisk.static")?;
        log::info!("bench: client-start tsc={entered}");
        // What one console line costs: the start interval holds some (the server's own start
        // line, the driver's line about the drive).
        let line = Tsc.now();
        log::info!("bench: first-open tsc={opened}");
        log::info!("bench: console-line ticks={}", Tsc.now() - line);
        let peer_task = args.port_value("peer").context("peer=")?;
        mach::interfaces::mach::task_resume(peer_task).context("resume the peer")?;
        let peer = tasks::connect_to_peer(peer_task, PEER_PORT)?;
        let kernel_master = args.port_value("kernel-master").context("kernel-master=")?;
        null_rpcs(peer)?;
        let transfer = match args.value("transfer") {
            None => TransferMode::Auto,
            Some(word) => TransferMode::parse(word).ok_or(TransferMode::NAMES).context("transfer=")?,
        };
        let direct = direct_disk(kernel_master, host_priv.name(), transfer)?;
        // Every I/O port, enabled while the direct driver works and disabled while the server
        // is timed: a client of the server holds none, and GNU Mach copies a task's I/O bitmap
        // at every switch to it. The null RPC with them shows that copy's cost.
        let ports = PortAccess::enable(kernel_master, 0, u16::MAX).context("every I/O port")?;
        time_calls("task-null-io-ports", || device::device_read_inband(peer, D_READ, 0, 1).map(drop))?;
        let mut sector = [0u8; SECTOR];
        time_calls("direct-read-512", || direct.read(FIRST_RECORD.into(), &mut sector))?;
        ports.allow(false).context("disable the I/O ports")?;
        time_calls("server-read-inband-1", || device::device_read_inband(wd0.name(), D_READ, FIRST_RECORD, 1).map(drop))?;
        // The round trip's parts: the same sector read whole (no partial-record path), the drive's
        // work alone (above), and a server RPC that does not touch the drive.
        time_calls("server-read-inband-512", || device::device_read_inband(wd0.name(), D_READ, FIRST_RECORD, 512).map(drop))?;
        time_calls("server-get-size", || device::device_get_status(wd0.name(), DEV_GET_SIZE, 2).map(drop))?;
        let mut direct_path = IoPath {
            name: "direct",
            io_ports: true,
            keeps_data: true,
            write: &mut |record, data| direct.write(record.into(), data).context("direct write"),
            read: &mut |record, bytes| direct.read_out_of_line(record.into(), bytes).context("direct read"),
        };
        let (mut write, mut read) = device_io(wd0.name());
        let mut server_path = IoPath { name: "server", io_ports: false, keeps_data: true, write: &mut write, read: &mut read };
        let (mut null_write, mut null_read) = device_io(peer);
        let mut null_path = IoPath { name: "null-server", io_ports: false, keeps_data: false, write: &mut null_write, read: &mut null_read };
        throughput(Some(&ports), &mut [&mut direct_path, &mut server_path, &mut null_path])?;
        ports.allow(true).context("enable the I/O ports")?;
        device_flushes(&direct)
    });
    suite.finish()
}

/// The i386 kernel's anchor: the throughput measure on the kernel's own IDE driver (`hd0`, the
/// primary channel's disk) against rumpdisk.static (the secondary channel's disk, the server
/// started with `--ide-channel=secondary`: its `wd0`), two disks made alike; each driver keeps
/// to its own channel.
fn anchor(args: &Args<'static>) -> i32 {
    let Ok(tasks::Privileges { host_priv, device_master: master, .. }) = tasks::privileges_from_bootstrap() else {
        return 2;
    };
    if mach::console::init_log(master.name(), log::LevelFilter::Info).is_err() {
        return 3;
    }
    let mut suite = Suite::new(host_priv.name());
    suite.run("bench", || {
        let kernel_master = args.port_value("kernel-master").context("kernel-master=")?;
        let hd0 = device::device_open(kernel_master, D_READ | D_WRITE, b"hd0").context("device_open(hd0) through the kernel")?;
        let served = device::device_open(master.name(), D_READ | D_WRITE, b"wd0").context("device_open(wd0) through rumpdisk.static")?;
        let (mut kernel_write, mut kernel_read) = device_io(hd0.name());
        let (mut server_write, mut server_read) = device_io(served.name());
        throughput(None, &mut [
            &mut IoPath { name: "kernel", io_ports: false, keeps_data: true, write: &mut kernel_write, read: &mut kernel_read },
            &mut IoPath { name: "server", io_ports: false, keeps_data: true, write: &mut server_write, read: &mut server_read },
        ])
    });
    suite.finish()
}

/// Writes and reads of whole records of `device` through its server's device interface (the
/// kernel's or rumpdisk.static's).
fn device_io(device: PortName) -> (impl FnMut(RecNum, &[u8]) -> Outcome, impl FnMut(RecNum, usize) -> Result<OolMemory, alloc::string::String>) {
    let write = move |record, data: &[u8]| device::device_write(device, D_WRITE, record, data).map(drop).context("device_write");
    let read = move |record, bytes: usize| {
        let data = device::device_read(device, D_READ, record, bytes as i32).context("device_read")?;
        ensure!(data.len() == bytes, "device_read gave {} of {bytes} bytes", data.len());
        Ok(data)
    };
    (write, read)
}

/// `wd0` through the ATA driver linked into this task, on the I/O ports (and bus master, or AHCI
/// controller) the kernel grants, moving data as `transfer` says (as the server is told to). It
/// polls: the server holds the channel's interrupt line, and a second taker would leave the
/// line masked until the idle server acknowledged what it was sent (a flush then timed out).
fn direct_disk(kernel_master: PortName, host_priv: PortName, transfer: TransferMode) -> Result<impl Disk, alloc::string::String> {
    let ata = native::native_backend(kernel_master, host_priv, &[port_io::IdeChannel::Primary], FlushMode::Device, transfer, Completion::Poll)
        .context("the primary channel's ports and bus master, or the AHCI controller")?;
    ata.open(b"wd0", Access { read: true, write: true }).context("open wd0 directly")
}

fn null_rpcs(peer: PortName) -> Outcome {
    let task = PortName::new(mach::sys::mach_task_self());
    let port = ReceiveRight::new().context("a port to ask about")?;
    time_calls("kernel-null", || {
        mach_port::mach_port_get_refs(task, port.name(), mach::sys::MACH_PORT_RIGHT_RECEIVE).map(drop)
    })?;
    time_calls("task-null", || device::device_read_inband(peer, D_READ, 0, 1).map(drop))
}

/// Times `CALLS` calls of `call` one by one and prints the median.
fn time_calls<E: core::fmt::Debug>(what: &str, mut call: impl FnMut() -> Result<(), E>) -> Outcome {
    let mut ticks = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Tsc.now();
        call().context(what)?;
        ticks.push(Tsc.now() - start);
    }
    log::info!("bench: call what={what} count={CALLS} median={}", median(&mut ticks));
    Ok(())
}

/// One way to the disk: its name in the output, and its write and read of whole records (a
/// read's data in fresh memory of this task).
struct IoPath<'a> {
    name: &'static str,
    /// Drives the disk's I/O ports itself (see `ports` of `throughput`).
    io_ports: bool,
    /// Reads back what was written (the null server's reads are fresh memory, not checked).
    keeps_data: bool,
    write: &'a mut dyn FnMut(RecNum, &[u8]) -> Outcome,
    read: &'a mut dyn FnMut(RecNum, usize) -> Result<OolMemory, alloc::string::String>,
}

/// Writes, then reads, requests of every size in `SIZES` on every path, and prints each one's
/// median time. The paths take turns request by request, so a slower spell of the host (shared
/// with other work) falls on all of them alike. `ports`, when given, is enabled for the requests
/// of a path that drives the I/O ports and disabled for the others (not timed).
fn throughput(ports: Option<&PortAccess>, paths: &mut [&mut IoPath<'_>]) -> Outcome {
    let allow = |enabled: bool| ports.map_or(Ok(()), |ports| ports.allow(enabled)).context("enable or disable the I/O ports");
    let data: Vec<u8> = (0..SIZES[SIZES.len() - 1]).map(|i| (i as u8).wrapping_mul(29).wrapping_add(7)).collect();
    for bytes in SIZES {
        let requests = (BYTES_PER_SIZE / bytes).clamp(MIN_REQUESTS, MAX_REQUESTS);
        let record = |i: usize| FIRST_RECORD + ((i * bytes) % SPAN / SECTOR) as RecNum;
        let mut writes: Vec<Vec<u64>> = paths.iter().map(|_| Vec::with_capacity(requests)).collect();
        let mut reads = writes.clone();
        for i in 0..requests {
            for (path, ticks) in paths.iter_mut().zip(&mut writes) {
                allow(path.io_ports)?;
                let start = Tsc.now();
                (path.write)(record(i), &data[..bytes])?;
                ticks.push(Tsc.now() - start);
            }
        }
        for i in 0..requests {
            for (path, ticks) in paths.iter_mut().zip(&mut reads) {
                allow(path.io_ports)?;
                let start = Tsc.now();
                let read = (path.read)(record(i), bytes)?;
                let read_ticks = Tsc.now() - start;
                ensure!(!path.keeps_data || read.as_slice() == &data[..bytes], "{}: {bytes} bytes read back differ from those written", path.name);
                let start = Tsc.now();
                drop(read);
                ticks.push(read_ticks + (Tsc.now() - start));
            }
        }
        for (path, (write, read)) in paths.iter().zip(writes.iter_mut().zip(&mut reads)) {
            log::info!("bench: io path={} op=write bytes={bytes} count={requests} median={}", path.name, median(write));
            log::info!("bench: io path={} op=read bytes={bytes} count={requests} median={}", path.name, median(read));
        }
    }
    Ok(())
}

/// Times the drive's cache flush (FLUSH CACHE EXT) after a barrier round's worth of writes
/// (4 sectors), through the direct driver: what each merged DEV_FLUSH_CACHE costs the server.
fn device_flushes(disk: &impl Disk) -> Outcome {
    let round = [0x5au8; 4 * SECTOR];
    let mut ticks = Vec::with_capacity(FLUSHES);
    for i in 0..FLUSHES {
        disk.write(u64::from(FIRST_RECORD) + 4 * i as u64, &round).context("write before a flush")?;
        let start = Tsc.now();
        disk.flush().context("flush")?;
        ticks.push(Tsc.now() - start);
    }
    log::info!("bench: flush count={FLUSHES} median={}", median(&mut ticks));
    Ok(())
}

fn median(ticks: &mut [u64]) -> u64 {
    ticks.sort_unstable();
    ticks[ticks.len() / 2]
}

/// The peer: a null server, forever. It answers `device_read_inband` with one byte (the null
/// RPC), `device_read` with fresh memory it never touches and `device_write` by dropping the
/// data: what any server adds to a request, whatever its disk does.
fn peer(args: &Args<'static>) -> i32 {
    let Ok(master) = args.port(2) else {
        return 1;
    };
    if mach::console::init_log(master, log::LevelFilter::Info).is_err() {
        return 2;
    }
    let port = match ReceiveRight::with_name(PortName::new(PEER_PORT)) {
        Ok(port) => port,
        Err(error) => {
            log::error!("bench peer: cannot allocate its port: {error:?}");
            return 3;
        }
    };
    let mut null = NullDevice { byte: [0] };
    let error = mach::msg::serve(port.name(), &mut |request: &[u8], reply: &mut [u8]| {
        device::demux(&mut null, request, reply).disposition()
    });
    log::error!("bench peer: serving ended: {error:?}");
    4
}

struct NullDevice {
    byte: [u8; 1],
}

impl device::Server for NullDevice {
    fn device_read_inband(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, _recnum: RecNum, wanted: i32) -> mach::kern::Result<&[u8]> {
        Ok(&self.byte[..(wanted.clamp(0, 1) as usize)])
    }

    fn device_read(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, _recnum: RecNum, wanted: i32) -> mach::kern::Result<OolMemory> {
        OolMemory::new(wanted.max(0) as usize)
    }

    fn device_write(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, _recnum: RecNum, data: OolMemory) -> mach::kern::Result<i32> {
        Ok(data.len() as i32)
    }
}
