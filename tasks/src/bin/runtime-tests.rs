//! VM tests of the mach runtime on GNU Mach.
//!
//! Boot words: `${host-port} ${device-port} role=main|peer|fault [peer=${peer-task}] [rd0size=BYTES]`.
//! The `main` task runs the tests; the `peer` task serves the generated device interface over a
//! buffer in its memory, so two tasks exchange inline data, port rights and out-of-line memory
//! through real kernel IPC, in both directions.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec;
use mach::args::Args;
use mach::constants::{
    D_READ, D_WRITE,
    DEV_GET_RECORDS, DEV_GET_SIZE, MACH_MSG_TYPE_MOVE_SEND_ONCE, MACH_RCV_TIMED_OUT,
};
use mach::interfaces::{device, mach as kernel, mach_port, RecNum};
use mach::kern::Error;
use mach::mig_rt as rt;
use mach::ool::OolMemory;
use core::sync::atomic::{AtomicBool, Ordering};
use mach::port::{PortName, PortSet, ReceiveRight, SendOnceRight};
use tasks::{ensure, Context, Outcome, Suite};

mach::task_main!(main);

/// The name under which the peer allocates its service port, for the main task to extract.
const PEER_PORT: u32 = 0x7e57;
/// Size of the peer's buffer: room for the 1 MiB transfers.
const PEER_BYTES: usize = 2 << 20;
/// `device_set_status` flavor the peer never answers: the timeout test's request.
const NEVER_ANSWERED: u32 = 0x7e57;
/// `device_set_status` flavor the peer defers, answering it after the next request.
const ANSWERED_LATER: u32 = 0x7e58;

fn main(args: Args<'static>) -> i32 {
    let (Ok(host_priv), Ok(master)) = (args.port(1), args.port(2)) else {
        return 1;
    };
    if mach::console::init_log(master, log::LevelFilter::Info).is_err() {
        return 2;
    }
    match args.value("role") {
        Some(b"peer") => peer(),
        Some(b"fault") => fault(0),
        _ => tests(&args, host_priv, master),
    }
}

fn task_self() -> PortName {
    PortName::new(mach::sys::mach_task_self())
}

fn tests(args: &Args<'static>, host_priv: PortName, master: PortName) -> i32 {
    let mut suite = Suite::new(host_priv);
    suite.run("vm_allocate", vm_allocate);
    suite.run("port_rights", port_rights);
    suite.run("console", || mach::console::Console::open(master).and_then(|c| c.write(b"console: hello\n")).context("console"));
    suite.run("rd0_get_status", || rd0_status(master, args.value("rd0size")));
    suite.run("wiring_needs_host_priv", || wiring_needs_host_priv(host_priv));
    match args.port_value("peer").ok().map(|task| tasks::connect_to_peer(task, PEER_PORT)) {
        Some(Ok(peer)) => {
            suite.run("inline_both_ways", || inline_both_ways(peer));
            suite.run("ool_1_page_both_ways", || ool_both_ways(peer, 4096));
            suite.run("ool_1_mib_both_ways", || ool_both_ways(peer, 1 << 20));
            suite.run("port_right_transfer", || port_right_transfer(peer));
            suite.run("10000_cycles_leak_nothing", || cycles(peer));
            suite.run("deferred_reply", || deferred_reply(peer));
            suite.run("timeout_fires", || timeout_fires(peer));
            suite.run("threads_leak_nothing", || threads_leak_nothing(peer));
        }
        Some(Err(why)) => suite.run("peer", || Err(why)),
        None => suite.run("peer", || Err("no peer=${peer-task} argument".into())),
    }
    suite.finish()
}

fn vm_allocate() -> Outcome {
    // `as _`: the ABI's vm_size_t, as wide as usize.
    let size = (1usize << 20) as _;
    let address = kernel::vm_allocate(task_self(), 0, size, true).context("vm_allocate")?;
    ensure!(address != 0 && address % 4096 == 0, "address {address:#x} not page aligned");
    // Reading the region back through the kernel proves it is mapped and zero-filled.
    let copy = kernel::vm_read(task_self(), address, 4096).context("vm_read")?;
    ensure!(copy.as_slice().iter().all(|&b| b == 0), "fresh memory not zero");
    kernel::vm_deallocate(task_self(), address, size).context("vm_deallocate")?;
    Ok(())
}

/// What a disk server that may serve the swap disk asks of the kernel (`mach::wire`) needs the
/// host-priv port: with the ordinary host port each call is refused (the kernel's answers are
/// logged), with host-priv the thread is wired and a port made a user device — or, on a
/// kernel older than `mach_port_set_ktype`, `MIG_BAD_ID`, which the driver reports and lives with.
/// (The task itself is not wired here: the later tests count its memory.)
fn wiring_needs_host_priv(host_priv: PortName) -> Outcome {
    use mach::wire;
    let host = PortName::new(mach::sys::mach_host_self());
    let port = ReceiveRight::new().context("a port")?;
    let refused = (wire::wire_task(host), wire::wire_this_thread(host), wire::mark_user_device(host, port.name()));
    log::info!("runtime: with the host port: vm_wire_all {:?}, thread_wire {:?}, mach_port_set_ktype {:?}", refused.0, refused.1, refused.2);
    ensure!(refused.0.is_err() && refused.1.is_err() && refused.2.is_err(), "the unprivileged host port was enough");
    wire::wire_this_thread(host_priv).context("thread_wire with host-priv")?;
    match wire::mark_user_device(host_priv, port.name()) {
        Err(error) if error.code() == mach::kern::MIG_BAD_ID => log::info!("runtime: this kernel has no mach_port_set_ktype"),
        marked => marked.context("mach_port_set_ktype with host-priv")?,
    }
    Ok(())
}

fn name_count() -> Result<usize, alloc::string::String> {
    let (names, _types) = mach_port::mach_port_names(task_self()).context("mach_port_names")?;
    Ok(names.len() / 4)
}

fn port_rights() -> Outcome {
    let before = name_count()?;
    let receive = ReceiveRight::new().context("allocate")?;
    let send = receive.make_send().context("make_send")?;
    ensure!(name_count()? == before + 1, "a receive right with a send right is one name");
    drop(send);
    drop(receive);
    ensure!(name_count()? == before, "dropping the rights left a name behind");
    Ok(())
}

fn rd0_status(master: PortName, size: Option<&[u8]>) -> Outcome {
    let expected: i32 = size
        .and_then(|s| core::str::from_utf8(s).ok()?.parse().ok())
        .ok_or("no rd0size= argument")?;
    let rd0 = device::device_open(master, D_READ, b"rd0").context("device_open(rd0)")?;
    let by_size = device::device_get_status(rd0.name(), DEV_GET_SIZE, 2).context("DEV_GET_SIZE")?;
    ensure!(by_size.as_slice() == [expected, 512], "DEV_GET_SIZE gave {:?}, expected [{expected}, 512]", &by_size.as_slice());
    let by_records = device::device_get_status(rd0.name(), DEV_GET_RECORDS, 2).context("DEV_GET_RECORDS")?;
    ensure!(by_records.as_slice() == [expected / 512, 512], "DEV_GET_RECORDS gave {:?}", &by_records.as_slice());
    let first = device::device_read_inband(rd0.name(), 0, 0, 16).context("device_read_inband(rd0)")?;
    ensure!(first.as_slice() == &b"rumpdisk-rs rd0\n"[..], "rd0 starts with {:?}", &first.as_slice());
    Ok(())
}

fn pattern(len: usize, seed: u8) -> alloc::vec::Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn inline_both_ways(peer: PortName) -> Outcome {
    let data = pattern(100, 7);
    let written = device::device_write_inband(peer, D_WRITE, 3, &data).context("write_inband")?;
    ensure!(written == 100, "wrote {written}");
    let back = device::device_read_inband(peer, D_READ, 3, 100).context("read_inband")?;
    ensure!(back.as_slice() == &data[..], "inline data came back different");
    Ok(())
}

fn ool_both_ways(peer: PortName, len: usize) -> Outcome {
    let data = pattern(len, len as u8 ^ 0x5a);
    let written = device::device_write(peer, D_WRITE, 8, &data).context("device_write")?;
    ensure!(written as usize == len, "wrote {written} of {len}");
    let back = device::device_read(peer, D_READ, 8, len as i32).context("device_read")?;
    ensure!(back.as_slice() == &data[..], "{len} bytes came back different");
    Ok(())
}

fn port_right_transfer(peer: PortName) -> Outcome {
    // The peer answers device_open with a send right to a new port of its own.
    let before = name_count()?;
    let right = device::device_open(peer, D_READ, b"sub").context("device_open")?;
    ensure!(right.name() != peer, "got the same right back");
    let status = device::device_get_status(right.name(), DEV_GET_SIZE, 2).context("status through the new right")?;
    ensure!(status.as_slice() == [PEER_BYTES as i32, 512], "status {:?}", status.as_slice());
    drop(right);
    ensure!(name_count()? == before, "the received right's name stayed after drop");
    Ok(())
}

fn deferred_reply(peer: PortName) -> Outcome {
    // The peer keeps this request's reply right, and answers it when a later request (sent by a
    // second thread until this one is answered) arrives.
    static ANSWERED: AtomicBool = AtomicBool::new(false);
    mach::thread::spawn(move || {
        while !ANSWERED.load(Ordering::Acquire) {
            let _ = device::device_get_status(peer, DEV_GET_SIZE, 2);
        }
    })
    .context("thread")?;
    let result = device::device_set_status(peer, ANSWERED_LATER, &[]).context("deferred set_status");
    ANSWERED.store(true, Ordering::Release);
    result
}

fn timeout_fires(peer: PortName) -> Outcome {
    let mut buf = mach::msg::MsgBuf::<8192>::new();
    let size = device::device_set_status::request::encode(buf.as_bytes_mut(), peer, NEVER_ANSWERED, &[], mach::reply_port())
        .context("encode")?;
    match mach::msg::rpc(buf.as_bytes_mut(), size, Some(200)) {
        Err(e) if e.code() == MACH_RCV_TIMED_OUT as i32 => Ok(()),
        other => Err(format!("expected MACH_RCV_TIMED_OUT, got {:?}", other.map(|r| r.len()))),
    }
}

/// Threads that ran and ended leave no name (reply port, thread port) behind.
fn threads_leak_nothing(peer: PortName) -> Outcome {
    static ENDED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let names = name_count()?;
    for _ in 0..4 {
        mach::thread::spawn(move || {
            let _ = device::device_read_inband(peer, D_READ, 0, 8);
            ENDED.fetch_add(1, Ordering::AcqRel);
        })
        .context("thread")?;
    }
    while ENDED.load(Ordering::Acquire) < 4 {
        mach::sys::swtch_pri(0);
    }
    // The last thread may still be inside its exit call: give it a few chances to finish.
    for _ in 0..100 {
        if name_count()? == names {
            return Ok(());
        }
        mach::sys::swtch_pri(0);
    }
    Err(format!("port names: {names} before 4 threads, {} after", name_count()?))
}

fn cycles(peer: PortName) -> Outcome {
    let names = name_count()?;
    let before = kernel::vm_statistics(task_self()).context("vm_statistics")?;
    for i in 0..10_000u32 {
        let receive = ReceiveRight::new().context("allocate")?;
        let send = receive.make_send().context("make_send")?;
        drop((send, receive));
        let back = device::device_read_inband(peer, D_READ, RecNum::from(i % 64), 8).context("rpc")?;
        ensure!(back.as_slice().len() == 8, "short read in cycle {i}");
    }
    ensure!(name_count()? == names, "port names: {names} before, {} after", name_count()?);
    let after = kernel::vm_statistics(task_self()).context("vm_statistics")?;
    // free_count is word 0: other tasks move it a little; a leak of 10 000 pages would not hide.
    let lost = i64::from(before[0]) - i64::from(after[0]);
    ensure!(lost < 256, "{lost} pages fewer free after the cycles");
    Ok(())
}

/// Faults on purpose, without `unsafe`: unbounded recursion runs off the end of the stack, where
/// the stack probes touch unmapped memory. The supervisor must report it.
#[expect(unconditional_recursion, reason = "the fault test must never return")]
fn fault(depth: u64) -> i32 {
    let frame = core::hint::black_box([depth; 512]);
    fault(depth + 1) + frame[(depth % 512) as usize] as i32
}

/// The peer: serves the device interface on `PEER_PORT` over a buffer, forever.
fn peer() -> i32 {
    let port = match ReceiveRight::with_name(PortName::new(PEER_PORT)) {
        Ok(port) => port,
        Err(e) => {
            log::error!("peer: cannot allocate its port: {e:?}");
            return 3;
        }
    };
    let Ok(buffer) = OolMemory::new(PEER_BYTES) else {
        return 4;
    };
    let Ok(ports) = PortSet::new().and_then(|set| set.insert(&port).map(|()| set)) else {
        return 5;
    };
    let mut peer = Peer { buffer, ports, later: None, never: vec![], subs: vec![] };
    log::info!("peer: serving");
    let error = mach::msg::serve(peer.ports.name(), &mut |request: &[u8], reply: &mut [u8]| {
        device::demux(&mut peer, request, reply).disposition()
    });
    log::error!("peer: serving ended: {error:?}");
    6
}

struct Peer {
    buffer: OolMemory,
    /// The service port and the ports handed out by `device_open`, served together.
    ports: PortSet,
    /// The reply right of a deferred `device_set_status`, answered with the next request.
    later: Option<SendOnceRight>,
    /// Reply rights never answered (the timeout test): kept, since dropping one would send the
    /// client a send-once notification instead of letting it time out.
    never: alloc::vec::Vec<SendOnceRight>,
    subs: alloc::vec::Vec<ReceiveRight>,
}

impl Peer {
    fn range(&self, recnum: RecNum, len: usize) -> Result<core::ops::Range<usize>, Error> {
        let start = usize::try_from(recnum).ok().and_then(|r| r.checked_mul(512)).ok_or(rt::bad_arguments())?;
        let end = start.checked_add(len).filter(|&e| e <= PEER_BYTES).ok_or(rt::bad_arguments())?;
        Ok(start..end)
    }

    fn answer_deferred(&mut self) {
        if let Some(right) = self.later.take() {
            let mut buf = [0u8; 64];
            if let Ok(size) = device::device_set_status::reply::encode(&mut buf, right.into_name(), MACH_MSG_TYPE_MOVE_SEND_ONCE, Ok(())) {
                let _ = mach::msg::send(&mut buf, size, None);
            }
        }
    }
}

impl device::Server for Peer {
    fn device_open(&mut self, _reply: rt::ReplyPort<'_>, _master: PortName, _mode: u32, _name: &[u8]) -> mach::kern::Result<rt::PortArg> {
        // Served through a second port, to move a right the client has never seen.
        let sub = ReceiveRight::new()?;
        self.ports.insert(&sub)?;
        let name = sub.name();
        self.subs.push(sub);
        Ok(rt::PortArg::make_send(name))
    }

    fn device_write(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, recnum: RecNum, data: OolMemory) -> mach::kern::Result<i32> {
        let range = self.range(recnum, data.len())?;
        self.buffer.as_mut_slice()[range].copy_from_slice(data.as_slice());
        Ok(data.len() as i32)
    }

    fn device_write_inband(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, recnum: RecNum, data: &[u8]) -> mach::kern::Result<i32> {
        let range = self.range(recnum, data.len())?;
        self.buffer.as_mut_slice()[range].copy_from_slice(data);
        Ok(data.len() as i32)
    }

    fn device_read(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, recnum: RecNum, wanted: i32) -> mach::kern::Result<OolMemory> {
        let range = self.range(recnum, usize::try_from(wanted).map_err(|_| rt::bad_arguments())?)?;
        OolMemory::copy_from(&self.buffer.as_slice()[range])
    }

    fn device_read_inband(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _mode: u32, recnum: RecNum, wanted: i32) -> mach::kern::Result<&[u8]> {
        let range = self.range(recnum, usize::try_from(wanted).map_err(|_| rt::bad_arguments())?.min(128))?;
        Ok(&self.buffer.as_slice()[range])
    }

    fn device_set_status(&mut self, reply: rt::ReplyPort<'_>, _device: PortName, flavor: u32, _status: rt::Array<'_, i32>) -> mach::kern::Result<()> {
        match flavor {
            NEVER_ANSWERED => self.never.push(reply.defer()),
            ANSWERED_LATER => self.later = Some(reply.defer()),
            _ => return Err(rt::bad_arguments()),
        }
        Ok(())
    }

    fn device_get_status(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _flavor: u32, _capacity: u32) -> mach::kern::Result<&[i32]> {
        self.answer_deferred();
        const STATUS: [i32; 2] = [PEER_BYTES as i32, 512];
        Ok(&STATUS)
    }
}
