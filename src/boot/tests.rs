//! The boot hand-off on the simulated kernel. The test thread plays the root filesystem
//! (ext2fs: `fsys_getpriv`, `fsys_startup`, `fsys_init` on its bootstrap port, as
//! libdiskfs sends them); stand-ins in the test's task play the rest: ext2fs's control port
//! and directories, the proc and startup servers, and a pci-arbiter started before rumpdisk.

use super::*;
use crate::backend::memory::{MemoryBackend, MemoryDisk};
use crate::backend::Geometry;
use crate::device::mode::{READ, WRITE};
use crate::device_server::DeviceServer;
use crate::errno::{hurd_errno, EBUSY, EINVAL, EOPNOTSUPP};
use crate::hurd_fs::{open, FS_RETRY_NORMAL};
use alloc::boxed::Box;
use mach::interfaces::{device, fs, fsys, io, process, startup, startup_notify};
use mach::args::Vectors;
use mach::kern::{Error, Result};
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::ool::OolMemory;
use mach::port::{PortName, PortSet, ReceiveRight, SendRight};
use mach::sim::Task;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;
use std::vec;
use std::vec::Vec;

const RECORDS: u64 = 64;
/// The open flags ext2fs's `fsys_startup` carries (`O_READ | O_WRITE`, libdiskfs's for a
/// writable root).
const STARTUP_FLAGS: i32 = 3;
const ENOENT: Error = hurd_errno(2);

/// The boot server's options: none to change.
struct NoSettings;

impl crate::settings::Settings for NoSettings {
    fn options(&self) -> Vec<u8> {
        b"rumpdisk.static\0".to_vec()
    }

    fn set_options(&self, _words: &[&[u8]]) -> Result<()> {
        Err(EINVAL)
    }
}

/// Where the boot server under test says its command line is (made up: proc only passes the
/// addresses on to `ps`).
const VECTORS: Vectors = Vectors { argv: 0x7000_1000, envp: 0x7000_1040 };

/// What a stand-in was asked, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// `fsys_startup` at the pci-arbiter stand-in, with the control port and open flags it
    /// passed on.
    ArbiterStartup { control: PortName, flags: i32 },
    /// `fsys_init` at the pci-arbiter stand-in, with the process port it carried.
    ArbiterInit { proc_server: PortName },
    /// `fsys_getroot` on ext2fs's control port.
    GetRoot { uids: Vec<u8> },
    Lookup { name: Vec<u8>, flags: i32 },
    /// `file_set_translator` on `/dev/rumpdisk`: the active translator's port.
    SetTranslator { active_flags: i32, active: PortName },
    Essential { task: PortName, name: Vec<u8>, credential: PortName },
    Notification { name: Vec<u8> },
    Task2Proc { task: PortName },
    MarkExec { process: PortName },
    /// `proc_set_arg_locations` on the process port ext2fs's `fsys_init` carried.
    ArgLocations { process: PortName, argv: usize, envp: usize },
    /// ext2fs got the answer to its `fsys_init` (noted by the test, in the same order).
    InitAnswered(Result<()>),
}

/// The stand-ins' ports (receive rights in the test's task) and what they keep.
struct StandIns {
    fs_control: ReceiveRight,
    root: ReceiveRight,
    dev_node: ReceiveRight,
    startup: ReceiveRight,
    proc_server: ReceiveRight,
    /// The process port proc gives for the pci-arbiter's task.
    arbiter_proc: ReceiveRight,
    arbiter_bootstrap: ReceiveRight,
    arbiter_realnode: ReceiveRight,
    seen: Sender<Seen>,
    /// The translator right `/dev/rumpdisk` got, and the shutdown notice port startup got.
    kept: Sender<SendRight>,
}

impl StandIns {
    fn note(&self, seen: Seen) {
        self.seen.send(seen).expect("the test listens");
    }
}

impl fsys::Server for StandIns {
    fn fsys_startup(&mut self, _reply: rt::ReplyPort<'_>, _bootstrap: PortName, flags: i32, control: SendRight) -> Result<PortArg> {
        self.note(Seen::ArbiterStartup { control: control.name(), flags });
        Ok(PortArg::make_send(self.arbiter_realnode.name()))
    }

    fn fsys_init(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, proc_server: SendRight, _auth: SendRight) -> Result<()> {
        self.note(Seen::ArbiterInit { proc_server: proc_server.name() });
        Ok(())
    }

    fn fsys_getroot(
        &mut self,
        _reply: rt::ReplyPort<'_>,
        _fsys: PortName,
        _dotdot: SendRight,
        gen_uids: OolMemory,
        _gen_gids: OolMemory,
        _flags: i32,
    ) -> Result<(u32, &[u8], PortArg)> {
        self.note(Seen::GetRoot { uids: gen_uids.as_slice().to_vec() });
        Ok((FS_RETRY_NORMAL, b"", PortArg::make_send(self.root.name())))
    }
}

impl fs::Server for StandIns {
    fn dir_lookup(&mut self, _reply: rt::ReplyPort<'_>, _dir: PortName, name: &[u8], flags: i32, _mode: u32) -> Result<(u32, &[u8], PortArg)> {
        self.note(Seen::Lookup { name: name.to_vec(), flags });
        let found = match name {
            b"dev/rumpdisk" => self.dev_node.name(),
            b"servers/startup" => self.startup.name(),
            _ => return Err(ENOENT),
        };
        Ok((FS_RETRY_NORMAL, b"", PortArg::make_send(found)))
    }

    fn file_check_access(&mut self, _reply: rt::ReplyPort<'_>, _file: PortName) -> Result<i32> {
        Ok(open::READ | open::WRITE)
    }

    fn file_set_translator(&mut self, _reply: rt::ReplyPort<'_>, _file: PortName, _passive_flags: i32, active_flags: i32, _old: i32, _passive: OolMemory, active: SendRight) -> Result<()> {
        self.note(Seen::SetTranslator { active_flags, active: active.name() });
        self.kept.send(active).expect("the test listens");
        Ok(())
    }
}

/// `/dev/rumpdisk` as its translator sees it: root's node, which root may read and write.
impl io::Server for StandIns {
    fn io_duplicate(&mut self, _reply: rt::ReplyPort<'_>, _node: PortName) -> Result<PortArg> {
        Ok(PortArg::make_send(self.dev_node.name()))
    }
}

impl startup::Server for StandIns {
    fn startup_essential_task(&mut self, _reply: rt::ReplyPort<'_>, _server: PortName, task: SendRight, _excpt: ReceiveRight, name: &[u8], credential: SendRight) -> Result<()> {
        // Kept (leaked), so the test can still tell which task the name stands for.
        self.note(Seen::Essential { task: task.into_name(), name: name.to_vec(), credential: credential.name() });
        Ok(())
    }

    fn startup_request_notification(&mut self, _reply: rt::ReplyPort<'_>, _server: PortName, notify: SendRight, name: &[u8]) -> Result<()> {
        self.note(Seen::Notification { name: name.to_vec() });
        self.kept.send(notify).expect("the test listens");
        Ok(())
    }
}

impl process::Server for StandIns {
    fn proc_task2proc(&mut self, _reply: rt::ReplyPort<'_>, _process: PortName, task: SendRight) -> Result<PortArg> {
        self.note(Seen::Task2Proc { task: task.name() });
        Ok(PortArg::make_send(self.arbiter_proc.name()))
    }

    fn proc_mark_exec(&mut self, _reply: rt::ReplyPort<'_>, process: PortName) -> Result<()> {
        self.note(Seen::MarkExec { process });
        Ok(())
    }

    fn proc_set_arg_locations(&mut self, _reply: rt::ReplyPort<'_>, process: PortName, argv: u64, envp: u64) -> Result<()> {
        let (argv, envp) = (argv.try_into().unwrap(), envp.try_into().unwrap());
        self.note(Seen::ArgLocations { process, argv, envp });
        Ok(())
    }
}

/// One interface's generated demux over the stand-ins.
type StandInDemux = fn(&mut StandIns, &[u8], &mut [u8]) -> rt::Demuxed;

impl msg::Demux for StandIns {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        let demuxers: [StandInDemux; 5] = [
            |s, q, r| fsys::demux(s, q, r),
            |s, q, r| fs::demux(s, q, r),
            |s, q, r| io::demux(s, q, r),
            |s, q, r| startup::demux(s, q, r),
            |s, q, r| process::demux(s, q, r),
        ];
        let mut demuxed = rt::Demuxed::Malformed;
        for demux in demuxers {
            demuxed = demux(self, request, reply);
            if !matches!(demuxed, rt::Demuxed::UnknownId(_)) {
                break;
            }
        }
        demuxed.disposition()
    }
}

/// The names of the stand-ins' ports, for checks (the test's task holds their receive rights,
/// so a send right it receives to one of them has the same name).
#[derive(Clone, Copy)]
struct Names {
    fs_control: PortName,
    arbiter_proc: PortName,
    arbiter_bootstrap: PortName,
    arbiter_realnode: PortName,
    /// A port standing for the pci-arbiter's task.
    arbiter_task: PortName,
    proc_server: PortName,
    host_priv: PortName,
}

/// rumpdisk's task (device server over a memory `wd0`, one serving thread, the boot server)
/// and the stand-ins serving in the test's task.
struct Boot {
    task: Task,
    disk: Arc<MemoryDisk>,
    /// The test's send right to the boot server's port (ext2fs's bootstrap port).
    bootstrap: PortName,
    names: Names,
    seen: Receiver<Seen>,
    kept: Receiver<SendRight>,
    /// Where the test notes the `fsys_init` answer among what the stand-ins saw.
    seen_by_test: Sender<Seen>,
    /// Rights the test keeps alive for the stand-ins' sake.
    _held: Vec<ReceiveRight>,
}

fn start(with_arbiter: bool) -> Boot {
    let (seen_tx, seen) = channel();
    let (kept_tx, kept) = channel();
    let stand_ins = StandIns {
        fs_control: ReceiveRight::new().unwrap(),
        root: ReceiveRight::new().unwrap(),
        dev_node: ReceiveRight::new().unwrap(),
        startup: ReceiveRight::new().unwrap(),
        proc_server: ReceiveRight::new().unwrap(),
        arbiter_proc: ReceiveRight::new().unwrap(),
        arbiter_bootstrap: ReceiveRight::new().unwrap(),
        arbiter_realnode: ReceiveRight::new().unwrap(),
        seen: seen_tx.clone(),
        kept: kept_tx,
    };
    let (arbiter_task, host_priv) = (ReceiveRight::new().unwrap(), ReceiveRight::new().unwrap());
    let names = Names {
        fs_control: stand_ins.fs_control.name(),
        arbiter_proc: stand_ins.arbiter_proc.name(),
        arbiter_bootstrap: stand_ins.arbiter_bootstrap.name(),
        arbiter_realnode: stand_ins.arbiter_realnode.name(),
        arbiter_task: arbiter_task.name(),
        proc_server: stand_ins.proc_server.name(),
        host_priv: host_priv.name(),
    };
    let set = PortSet::new().unwrap();
    for port in [&stand_ins.fs_control, &stand_ins.root, &stand_ins.dev_node, &stand_ins.startup, &stand_ins.proc_server, &stand_ins.arbiter_proc, &stand_ins.arbiter_bootstrap] {
        set.insert(port).unwrap();
    }
    let set_name = set.into_name();
    Task::current().spawn(move || {
        let mut stand_ins = stand_ins;
        msg::serve(set_name, &mut stand_ins)
    });

    let task = Task::new();
    let host_priv_there = task.insert_send_right(names.host_priv).unwrap();
    let upstream_there = with_arbiter.then(|| {
        (task.insert_send_right(names.arbiter_bootstrap).unwrap(), task.insert_send_right(names.arbiter_task).unwrap())
    });
    let mut backend = MemoryBackend::default();
    let disk = backend.add(b"wd0", Geometry::new(512, RECORDS).unwrap()).unwrap();
    let port_there = task
        .spawn(move || {
            let devices: &'static DeviceServer<MemoryBackend> = Box::leak(Box::new(DeviceServer::new(backend, None).unwrap()));
            let upstream =
                upstream_there.map(|(bootstrap, task)| Upstream { bootstrap: SendRight::from_name(bootstrap), task: SendRight::from_name(task) });
            let settings: &'static NoSettings = &NoSettings;
            let boot = BootServer::start(devices, SendRight::from_name(host_priv_there), upstream, None, mach::thread::spawn, settings, VECTORS).unwrap();
            Task::current().spawn(move || devices.serve());
            boot.port()
        })
        .join()
        .unwrap();
    let bootstrap = task.extract_send_right(port_there).unwrap();
    Boot { task, disk, bootstrap, names, seen, kept, seen_by_test: seen_tx, _held: vec![arbiter_task, host_priv] }
}

/// ext2fs's `fsys_init` on `bootstrap`: the process port it got for rumpdisk's task
/// (`proc_task2proc`) and an auth port.
fn init(bootstrap: PortName, proc_server: PortName) -> Result<()> {
    let auth = ReceiveRight::new().unwrap();
    let auth = auth.make_send().unwrap();
    fsys::fsys_init(bootstrap, PortArg::make_send(proc_server), auth.name())
}

impl Boot {
    fn next_seen(&self) -> Seen {
        self.seen.recv_timeout(Duration::from_secs(10)).expect("a stand-in was asked")
    }

    fn next_kept(&self) -> SendRight {
        self.kept.recv_timeout(Duration::from_secs(10)).expect("a stand-in kept a right")
    }

    /// ext2fs's `fsys_startup` and `fsys_init`, as libdiskfs sends them; returns the realnode.
    /// The `fsys_init` answer is noted as [`Seen::InitAnswered`] among what the stand-ins saw
    /// (from another thread: ext2fs serves the joining's requests while it waits).
    fn startup_and_init(&self) -> SendRight {
        let realnode = fsys::fsys_startup(self.bootstrap, STARTUP_FLAGS, PortArg::make_send(self.names.fs_control)).unwrap();
        let (bootstrap, proc_server, seen) = (self.bootstrap, self.names.proc_server, self.seen_by_test.clone());
        Task::current().spawn(move || seen.send(Seen::InitAnswered(init(bootstrap, proc_server))));
        realnode
    }
}

#[test]
fn getpriv_gives_host_priv_the_device_master_and_the_boot_server_s_own_task() {
    let boot = start(false);
    let (host_priv, master, fstask) = fsys::fsys_getpriv(boot.bootstrap).unwrap();
    assert_eq!(host_priv.name(), boot.names.host_priv);
    assert_eq!(Task::named_by(fstask.name()), Some(boot.task), "fstask is rumpdisk's own task, not the caller's");
    assert_ne!(Task::named_by(fstask.name()), Some(Task::current()));
    // The device master is the device server's: wd0 opens here.
    let wd0 = device::device_open(master.name(), READ | WRITE, b"wd0").unwrap();
    assert_eq!(device::device_write(wd0.name(), 0, 0, &[7; 512]), Ok(512));
}

impl Boot {
    /// What comes before the answer to `fsys_init`, as upstream, checked step by step: on
    /// ext2fs's control port the root, then /dev/rumpdisk gets the boot port as its translator,
    /// then startup is asked to keep the task essential and to send the shutdown notice; only
    /// then the answer (so ext2fs asks startup for its own notice after ours, and is notified
    /// first: its clean superblock is written before our final flush). Returns the translator
    /// right and the notice port.
    fn joined(&self) -> (SendRight, SendRight) {
        let boot = self;
        let Vectors { argv, envp } = VECTORS;
        assert_eq!(boot.next_seen(), Seen::ArgLocations { process: boot.names.proc_server, argv, envp }, "ps shows the command line");
        assert_eq!(boot.next_seen(), Seen::GetRoot { uids: [0u8; 12].to_vec() });
        assert_eq!(boot.next_seen(), Seen::Lookup { name: b"dev/rumpdisk".to_vec(), flags: open::NOTRANS });
        assert_eq!(boot.next_seen(), Seen::SetTranslator { active_flags: joining::FS_TRANS_SET, active: boot.bootstrap }, "the boot port is the node's control port");
        let translator = boot.next_kept();
        assert_eq!(boot.next_seen(), Seen::Lookup { name: b"servers/startup".to_vec(), flags: 0 });
        let Seen::Essential { task, name, credential } = boot.next_seen() else { panic!("not startup_essential_task") };
        assert_eq!((Task::named_by(task), name.as_slice(), credential), (Some(boot.task), &b"rumpdisk"[..], boot.names.host_priv));
        assert_eq!(boot.next_seen(), Seen::Lookup { name: b"servers/startup".to_vec(), flags: 0 });
        assert_eq!(boot.next_seen(), Seen::Notification { name: b"rumpdisk".to_vec() });
        let notify = boot.next_kept();
        assert_eq!(boot.next_seen(), Seen::InitAnswered(Ok(())), "fsys_init answered once the system is joined");
        (translator, notify)
    }
}

/// A disk whose flush fails at shutdown: `startup_dosync` answers the error (startup then
/// knows the disk's cache may be lost), after trying; a later shutdown notice flushes again.
#[test]
fn a_flush_that_fails_at_shutdown_is_the_answer_to_startup_dosync() {
    let boot = start(false);
    boot.startup_and_init();
    let (translator, notify) = boot.joined();
    let dotdot = ReceiveRight::new().unwrap();
    let flags = open::READ | open::WRITE;
    let (_, _, node) = fsys::fsys_getroot(translator.name(), PortArg::make_send(dotdot.name()), &[0], &[0], flags).unwrap();
    let wd0 = device::device_open(node.name(), READ | WRITE, b"wd0").unwrap();
    assert_eq!(device::device_write(wd0.name(), 0, 3, &[0x5A; 512]), Ok(512));
    boot.disk.set_faults(crate::backend::memory::Faults { flush: Some(crate::device::D_IO_ERROR), ..Default::default() });
    assert_eq!(startup_notify::startup_dosync(notify.name(), 10_000), Err(crate::device::D_IO_ERROR));
    assert_eq!(boot.disk.flushes(), 1, "the flush was tried before the answer");
    assert!(boot.disk.durable()[3 * 512..][..512] == [0; 512]);
    boot.disk.set_faults(crate::backend::memory::Faults::default());
    assert_eq!(startup_notify::startup_dosync(notify.name(), 10_000), Ok(()));
    assert!(boot.disk.durable()[3 * 512..][..512] == [0x5A; 512]);
}

#[test]
fn without_a_server_above_startup_answers_a_null_node_and_init_joins_the_system() {
    let boot = start(false);
    let realnode = boot.startup_and_init();
    assert_eq!(realnode.name(), PortName::NULL, "the root filesystem sits on no node");
    let (translator, notify) = boot.joined();

    // `storeio @/dev/rumpdisk:wd0`: ext2fs asks the node's translator for its root, a node port.
    let dotdot = ReceiveRight::new().unwrap();
    let flags = open::READ | open::WRITE;
    let (retry, _, node) = fsys::fsys_getroot(translator.name(), PortArg::make_send(dotdot.name()), &[0], &[0], flags).unwrap();
    assert_eq!(retry, FS_RETRY_NORMAL);
    let wd0 = device::device_open(node.name(), READ | WRITE, b"wd0").unwrap();
    assert_eq!(fsys::fsys_get_options(translator.name()).unwrap().as_slice(), b"rumpdisk.static\0");

    // Shutdown: the data written is durable when startup_dosync is answered.
    assert_eq!(device::device_write(wd0.name(), 0, 3, &[0x5A; 1024]), Ok(1024));
    assert_eq!(boot.disk.flushes(), 0);
    assert_eq!(startup_notify::startup_dosync(notify.name(), 10_000), Ok(()));
    assert_eq!(boot.disk.flushes(), 1, "flushed before the answer");
    assert!(boot.disk.durable()[3 * 512..][..1024] == [0x5A; 1024]);

    assert_eq!(fsys::fsys_goaway(translator.name(), 0), Err(EBUSY), "the boot server stays");
    assert_eq!(init(boot.bootstrap, boot.names.proc_server), Err(EOPNOTSUPP), "fsys_init is answered once");
}

#[test]
fn startup_and_init_are_passed_up_to_the_server_that_started_this_one() {
    let boot = start(true);
    let realnode = boot.startup_and_init();
    assert_eq!(boot.next_seen(), Seen::ArbiterStartup { control: boot.names.fs_control, flags: STARTUP_FLAGS }, "ext2fs's control port and open flags, passed up");
    assert_eq!(realnode.name(), boot.names.arbiter_realnode, "the answer of the server above");
    assert_eq!(boot.next_seen(), Seen::Task2Proc { task: boot.names.arbiter_task });
    assert_eq!(boot.next_seen(), Seen::MarkExec { process: boot.names.arbiter_proc });
    assert_eq!(boot.next_seen(), Seen::ArbiterInit { proc_server: boot.names.arbiter_proc }, "with the process port of the arbiter's task");
    assert!(matches!(boot.next_seen(), Seen::ArgLocations { .. }));
    assert_eq!(boot.next_seen(), Seen::GetRoot { uids: [0u8; 12].to_vec() });
}
