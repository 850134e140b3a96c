//! `i386_io_perm_create` on the master port, forwarded to the kernel's master (a stand-in in
//! the test's task), as glibc's `ioperm()` sends it once this server's master is the system's;
//! and when a serving thread that finds no request starts the gathered flushes.

use super::*;
use crate::backend::memory::MemoryBackend;
use crate::backend::Geometry;
use crate::device::mode::READ;
use mach::msg::Header;
use mach::sim::Task;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::Duration;

/// How long a test waits for what takes milliseconds before calling it a failure (a broken
/// path fails the test instead of hanging the run).
const WAIT: Duration = Duration::from_secs(10);

/// A backend with one small disk, `wd0`.
fn wd0_backend() -> MemoryBackend {
    let mut backend = MemoryBackend::default();
    backend.add(b"wd0", Geometry::new(512, 8).unwrap()).unwrap();
    backend
}

/// The kernel's device master: answers `i386_io_perm_create` with a permission port it made.
struct KernelMaster {
    permission: ReceiveRight,
    asked: Sender<(i16, i16)>,
}

impl mach_i386::Server for KernelMaster {
    fn i386_io_perm_create(&mut self, _reply: rt::ReplyPort<'_>, _master: PortName, from: i16, to: i16) -> Result<PortName> {
        self.asked.send((from, to)).expect("the test listens");
        // A send right made for the reply (the generated type copies one: make it first).
        let send = self.permission.make_send()?;
        Ok(send.into_name())
    }
}

impl msg::Demux for KernelMaster {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        mach_i386::demux(self, request, reply).disposition()
    }
}

#[test]
fn io_perm_create_on_the_master_is_forwarded_to_the_kernel_s_master() {
    let (asked_tx, asked) = channel();
    let kernel_master = ReceiveRight::new().unwrap();
    let permission_name = {
        let permission = ReceiveRight::new().unwrap();
        let name = permission.name();
        let (kernel_name, mut stand_in) = (kernel_master.name(), KernelMaster { permission, asked: asked_tx });
        Task::current().spawn(move || msg::serve(kernel_name, &mut stand_in));
        name
    };
    let task = Task::new();
    let upstream = task.insert_send_right(kernel_master.name()).unwrap();
    let (master_tx, master_rx) = channel();
    task.spawn(move || {
        let backend = wd0_backend();
        let server = Arc::new(DeviceServer::new(backend, Some(SendRight::from_name(upstream))).unwrap());
        master_tx.send(server.master().name()).unwrap();
        server.serve()
    });
    let master = task.extract_send_right(master_rx.recv_timeout(WAIT).unwrap()).unwrap();

    let permission = mach_i386::i386_io_perm_create(master, 0x60, 0x64).unwrap();
    assert_eq!(asked.recv_timeout(WAIT), Ok((0x60, 0x64)), "asked of the kernel's master");
    assert_eq!(permission.name(), permission_name, "the kernel's permission, passed on");

    // A device port is not a master: refused here, not forwarded.
    let wd0 = iface::device_open(master, READ, b"wd0").unwrap();
    assert_eq!(mach_i386::i386_io_perm_create(wd0.name(), 0x60, 0x64).map(|p| p.name()), Err(D_INVALID_OPERATION));
    assert!(asked.try_recv().is_err());
}

/// The design's bound on requests taken while a thread waits to start the gathered flushes:
/// 64 (docs/design.md), stated as a number so a wrong constant fails. Each edge: 63 taken since
/// the wait began still wait, 64 start them, and so would 65.
#[test]
fn the_request_bound_is_64() {
    for (taken, starts) in [(63, false), (64, true), (65, true)] {
        let mut gathering = Gathering::default();
        assert!(!gathering.start_now(1000, 0), "yields first");
        assert_eq!(gathering.start_now(1000 + taken, 0), starts, "{taken} requests taken since");
    }
}

/// A thread that found no request starts the gathered flushes only after yielding, and not
/// while other threads take requests (their clients are about to sync), at most until
/// `GATHER_REQUESTS` were taken since it began to wait for this gathering.
#[test]
fn gathered_flushes_start_once_no_thread_took_a_request_since_the_yield() {
    let mut alone = Gathering::default();
    assert!(!alone.start_now(7, 0), "yields first");
    assert!(alone.start_now(7, 0), "nothing came meanwhile");
    assert!(!alone.start_now(7, 1), "the next gathering yields first again");

    let mut waiting = Gathering::default();
    assert!(!waiting.start_now(10, 0));
    assert!(!waiting.start_now(11, 0), "another thread took a request: yield again");
    assert!(!waiting.start_now(13, 0));
    assert!(waiting.start_now(13, 0));

    let mut streamed = Gathering::default();
    let yields = (1..=1000).take_while(|&n| !streamed.start_now(100 + n, 0)).count();
    assert_eq!(yields, GATHER_REQUESTS, "a stream of requests holds the flushes back this long at most");

    // A flush another thread started ends a wait: the next gathering's bound counts afresh.
    let mut later = Gathering::default();
    assert!(!later.start_now(0, 0));
    assert!(!later.start_now(GATHER_REQUESTS - 1, 1));
    assert!(!later.start_now(GATHER_REQUESTS + 1, 1), "{} requests into this gathering", 2);
}

/// What the host-priv stand-in was asked, in the server's task's names.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Privileged {
    WireTask { flags: i32 },
    WireThread { wired: bool },
    UserDevice { port: PortName, right: u32, ktype: u32 },
}

/// The kernel's host-priv port: grants every wiring call and says which it had.
struct HostPriv {
    asked: Sender<Privileged>,
}

impl HostPriv {
    fn tell(&self, call: Privileged) -> Result<()> {
        self.asked.send(call).expect("the test listens");
        Ok(())
    }
}

impl mach::interfaces::gnumach::Server for HostPriv {
    fn vm_wire_all(&mut self, _reply: rt::ReplyPort<'_>, _host: PortName, _task: SendRight, flags: i32) -> Result<()> {
        self.tell(Privileged::WireTask { flags })
    }
}

impl mach::interfaces::mach_host::Server for HostPriv {
    fn thread_wire(&mut self, _reply: rt::ReplyPort<'_>, _host: PortName, _thread: SendRight, wired: bool) -> Result<()> {
        self.tell(Privileged::WireThread { wired })
    }
}

impl mach::interfaces::mach_port_ktype::Server for HostPriv {
    fn set_ktype(&mut self, _reply: rt::ReplyPort<'_>, _host: PortName, _task: SendRight, port: PortName, right: u32, ktype: u32) -> Result<()> {
        self.tell(Privileged::UserDevice { port, right, ktype })
    }
}

impl msg::Demux for HostPriv {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        use mach::interfaces::{gnumach, mach_host, mach_port_ktype};
        match Header::read(request).map(|header| header.id) {
            Some(id) if id == mach_port_ktype::BASE => mach_port_ktype::demux(self, request, reply).disposition(),
            Some(id) if (gnumach::BASE..gnumach::BASE + 100).contains(&id) => gnumach::demux(self, request, reply).disposition(),
            _ => mach_host::demux(self, request, reply).disposition(),
        }
    }
}

/// As upstream's rumpdisk: the whole task wired (now and later mappings), the thread that
/// starts serving, each thread started later, and each device port a user device before any
/// client has it.
#[test]
fn a_server_kept_in_memory_wires_the_task_each_serving_thread_and_marks_device_ports() {
    let (asked_tx, asked) = channel();
    let host_priv = ReceiveRight::new().unwrap();
    let (host_name, mut stand_in) = (host_priv.name(), HostPriv { asked: asked_tx });
    Task::current().spawn(move || msg::serve(host_name, &mut stand_in));
    let task = Task::new();
    let host_priv_there = task.insert_send_right(host_priv.name()).unwrap();
    let (master_tx, master_rx) = channel();
    task.spawn(move || {
        let backend = wd0_backend();
        let server: &'static DeviceServer<MemoryBackend> = Box::leak(Box::new(DeviceServer::new(backend, None).unwrap()));
        server.keep_in_memory(SendRight::from_name(host_priv_there)).unwrap();
        server.grow(mach::thread::spawn, 2);
        master_tx.send(server.master().name()).unwrap();
        server.serve()
    });
    let master = task.extract_send_right(master_rx.recv_timeout(WAIT).unwrap()).unwrap();
    let mut seen: Vec<Privileged> = (0..3).map(|_| asked.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(
        seen,
        [Privileged::WireTask { flags: 3 }, Privileged::WireThread { wired: true }, Privileged::WireThread { wired: true }],
        "VM_WIRE_ALL, then the starting thread, then it again as it serves"
    );

    // The open keeps the only thread busy: a second starts, and wires itself.
    let wd0 = iface::device_open(master, READ, b"wd0").unwrap();
    seen = (0..2).map(|_| asked.recv_timeout(WAIT).unwrap()).collect();
    seen.sort();
    let [Privileged::WireThread { wired: true }, Privileged::UserDevice { port, right: 1, ktype: 28 }] = seen[..] else {
        panic!("a grown thread wired and the device port a receive right of kind USER_DEVICE: {seen:?}");
    };
    assert_eq!(task.extract_send_right(port).map(|p| p.raw()), Ok(wd0.name().raw()), "the port the client got");
    assert!(asked.recv_timeout(Duration::from_millis(200)).is_err(), "nothing more");
}
