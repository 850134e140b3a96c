//! The translator on the simulated kernel: a stand-in parent filesystem owns the bootstrap port,
//! answers `fsys_startup` with a node it serves ([`FakeNode`]: owner and permission bits), then
//! uses the control port as a filesystem does (lookups through `fsys_getroot`, `settrans -g`
//! through `fsys_goaway`) while clients use the node ports: `io_stat`, access, options, and the
//! disk through `device_open`.

use super::*;
use crate::backend::memory::{MemoryBackend, MemoryDisk};
use crate::node::fake_fs::FakeNode;
use crate::errno::{hurd_errno, EACCES, EINVAL};
use crate::hurd_fs::{open, FS_RETRY_NORMAL};
use crate::node::stat;
use crate::settings::Settings;
use crate::backend::Geometry;
use crate::device::flavor::DEV_FLUSH_CACHE;
use crate::device::mode::{READ, WRITE};
use crate::device::{D_INVALID_OPERATION, D_READ_ONLY};
use mach::interfaces::{device, fs, io, mach_port};
use mach::kern::{MACH_SEND_INVALID_DEST, MIG_BAD_ARGUMENTS, MIG_BAD_ID};
use mach::msg::{Header, MsgBuf, HEADER_SIZE};
use mach::sim::Task;
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::vec;
use std::vec::Vec;

/// How long a test waits for what takes milliseconds before calling it a failure (a broken
/// path fails the test instead of hanging the run).
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const RECORDS: u64 = 256;
const TIMEOUT_MS: u32 = 10_000;

/// The parent filesystem's side of `fsys_startup`: what it was sent, and the node it gives.
struct Parent {
    node: Arc<FakeNode>,
    realnode: SendRight,
    openflags: Option<i32>,
    control: Option<SendRight>,
    /// Answer the hand-shake with this error instead.
    refuse: Option<Error>,
}

impl fsys::Server for Parent {
    fn fsys_startup(&mut self, _reply: rt::ReplyPort<'_>, _bootstrap: PortName, openflags: i32, control_port: SendRight) -> Result<PortArg> {
        self.openflags = Some(openflags);
        self.control = Some(control_port);
        match self.refuse {
            Some(error) => Err(error),
            None => Ok(PortArg::copy_send(self.realnode.name())),
        }
    }
}

/// What the translator's thread reports when its serving ends.
struct Report {
    ended: Ended,
    control: PortName,
    realnode: PortName,
    /// The names of the translator's task once it ended.
    names_after: Vec<u32>,
}

/// The options the translator answers `fsysopts` with, and the ones it was asked to apply.
#[derive(Default)]
struct RecordedSettings {
    applied: std::sync::Mutex<Vec<Vec<Vec<u8>>>>,
}

impl Settings for RecordedSettings {
    fn options(&self) -> Vec<u8> {
        b"/hurd/rumpdisk\0--ide-channel=secondary\0".to_vec()
    }

    fn set_options(&self, words: &[&[u8]]) -> Result<()> {
        if words.first() == Some(&&b"--refuse-me"[..]) {
            return Err(EINVAL);
        }
        self.applied.lock().unwrap().push(words.iter().map(|w| w.to_vec()).collect());
        Ok(())
    }
}

/// The `st_fsid` the translator is told to give its nodes.
const FSID: u32 = 4242;

/// A translator task (device server over a memory `wd0`, one serving thread, and the
/// translator's thread) started by a stand-in parent in the calling task.
struct Started {
    task: Task,
    server: Arc<DeviceServer<MemoryBackend>>,
    disk: Arc<MemoryDisk>,
    parent: Parent,
    settings: Arc<RecordedSettings>,
    /// The parent's send right to the translator's control port.
    control: SendRight,
    translator: JoinHandle<Report>,
    device_thread: JoinHandle<Error>,
    /// The auth server the translator was given: requests wait here for a test to answer.
    auth: ReceiveRight,
}

fn task_self() -> PortName {
    PortName::new(mach::sys::mach_task_self())
}

fn names() -> Vec<u32> {
    let (names, _) = mach_port::mach_port_names(task_self()).unwrap();
    names.as_slice().chunks_exact(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect()
}

/// Starts the translator's task and plays the parent's half of `fsys_startup` on a node owned by
/// root with mode 0644; with `refuse`, the parent answers with that error and the translator's
/// start must fail.
fn start_with(refuse: Option<Error>) -> (Started, Option<Result<()>>) {
    start_on(0, 0o644, refuse)
}

/// The same, on a node of `owner` with permission bits `mode`.
fn start_on(owner: u32, mode: u32, refuse: Option<Error>) -> (Started, Option<Result<()>>) {
    let task = Task::new();
    let bootstrap = ReceiveRight::new().unwrap();
    let bootstrap_there = task.insert_send_right(bootstrap.name()).unwrap();
    let mut backend = MemoryBackend::default();
    let disk = backend.add(b"wd0", Geometry::new(512, RECORDS).unwrap()).unwrap();
    let (server_tx, server_rx) = channel();
    task.spawn(move || server_tx.send(Arc::new(DeviceServer::new(backend, None).unwrap())).unwrap()).join().unwrap();
    let server = server_rx.recv_timeout(WAIT).unwrap();
    let device_thread = {
        let server = server.clone();
        task.spawn(move || server.serve())
    };
    let (started_tx, started_rx) = channel();
    let settings = Arc::new(RecordedSettings::default());
    let auth = ReceiveRight::new().unwrap();
    let auth_there = task.insert_send_right(auth.name()).unwrap();
    let translator = {
        let server = server.clone();
        let settings = settings.clone();
        task.spawn(move || {
            let started = Translator::start(&server, SendRight::from_name(bootstrap_there), O_NORW, &*settings, FSID);
            let translator = match started {
                Ok(translator) => translator,
                Err(error) => {
                    started_tx.send(Err(error)).unwrap();
                    return Report { ended: Ended::Failed(error), control: PortName::NULL, realnode: PortName::NULL, names_after: names() };
                }
            };
            translator.authenticate_with(SendRight::from_name(auth_there));
            let (control, realnode) = (translator.control(), translator.realnode().map_or(PortName::NULL, SendRight::name));
            started_tx.send(Ok(())).unwrap();
            let ended = translator.serve();
            // A failed serve here means the task was terminated: it has no names to list.
            let names_after = if matches!(ended, Ended::Failed(_)) { Vec::new() } else { names() };
            Report { ended, control, realnode, names_after }
        })
    };

    // The parent: one fsys_startup on the bootstrap port, answered with the node opened by root
    // (O_NORW): the translator restricts it to each opener.
    let (node, realnode) = FakeNode::start(owner, mode, &[0]);
    let mut parent = Parent { node, realnode, openflags: None, control: None, refuse };
    let mut request = MsgBuf::<{ fsys::fsys_startup::request::MAX_SIZE }>::new();
    let mut reply = MsgBuf::<{ fsys::MAX_REPLY_SIZE }>::new();
    let received = msg::receive(request.as_bytes_mut(), bootstrap.name(), Some(TIMEOUT_MS)).expect("fsys_startup arrives");
    let Header { id, .. } = Header::read(received).unwrap();
    assert_eq!(id, fsys::fsys_startup::ID);
    match fsys::demux(&mut parent, received, reply.as_bytes_mut()) {
        rt::Demuxed::Reply(size) => msg::send(reply.as_bytes_mut(), size, None).unwrap(),
        other => panic!("the parent could not answer fsys_startup: {other:?}"),
    }
    let outcome = started_rx.recv_timeout(WAIT).unwrap();
    let control = parent.control.take().expect("fsys_startup carried a control port");
    let started = Started { task, server, disk, parent, settings, control, translator, device_thread, auth };
    (started, refuse.map(|_| outcome))
}

fn start() -> Started {
    start_with(None).0
}

impl Started {
    fn stop(self) -> Report {
        let report = self.translator.join().unwrap();
        self.task.terminate();
        self.device_thread.join().unwrap();
        report
    }

    /// `fsys_getroot` as the parent filesystem sends it for a lookup by a user with `uids`,
    /// opening for reading and writing (as storeio's `@/dev/rumpdisk:wd0` does).
    fn getroot(&self, uids: &[u32]) -> Result<(u32, Vec<u8>, SendRight)> {
        self.lookup(uids, open::READ | open::WRITE)
    }

    /// `fsys_getroot` for a lookup with `flags` by a user with `uids` (and group 100).
    fn lookup(&self, uids: &[u32], flags: i32) -> Result<(u32, Vec<u8>, SendRight)> {
        let dotdot = ReceiveRight::new().unwrap();
        let (retry, name, root) = fsys::fsys_getroot(self.control.name(), PortArg::make_send(dotdot.name()), uids, &[100], flags)?;
        Ok((retry, name.as_slice().to_vec(), root))
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn startup_getroot_then_the_disk_through_the_root_and_goaway_when_closed() {
    let started = start();
    assert_eq!(started.parent.openflags, Some(O_NORW), "the node is opened neither for reading nor writing");

    let (retry, retry_name, root) = started.getroot(&[1000, 0]).unwrap();
    assert_eq!(retry, FS_RETRY_NORMAL);
    assert_eq!(retry_name, b"", "nothing left to look up");

    // The looked-up node port is a device master: storeio's `@/dev/rumpdisk:wd0`.
    let dev = device::device_open(root.name(), READ | WRITE, b"wd0").unwrap();
    let data = pattern(4096, 7);
    assert_eq!(device::device_write(dev.name(), 0, 16, &data), Ok(4096));
    assert!(device::device_read(dev.name(), 0, 16, 4096).unwrap().as_slice() == data);
    assert_eq!(device::device_set_status(dev.name(), DEV_FLUSH_CACHE, &[]), Ok(()));
    assert_eq!(started.disk.flushes(), 1);
    assert!(started.disk.durable()[16 * 512..][..4096] == data[..]);

    assert_eq!(fsys::fsys_goaway(started.control.name(), 0), Err(EBUSY), "a device is open");
    assert_eq!(fsys::fsys_goaway(started.control.name(), goaway::NOSYNC), Err(EBUSY));
    assert_eq!(device::device_close(dev.name()), Ok(()));
    assert_eq!(started.server.core().open_devices(), 0);
    assert_eq!(fsys::fsys_goaway(started.control.name(), 0), Err(EBUSY), "the node port is alive");
    drop(root);
    wait_until(|| fsys::fsys_goaway(started.control.name(), 0) != Err(EBUSY));

    let control = started.control.name();
    let realnode = started.parent.realnode.name();
    wait_until(|| started.translator.is_finished());
    let after = fsys::fsys_goaway(control, goaway::FORCE).map_err(|e| e.code());
    assert_eq!(after, Err(MACH_SEND_INVALID_DEST), "the control port died with the goaway");
    let report = started.stop();
    assert_eq!(report.ended, Ended::GoneAway { flags: 0 });
    assert!(realnode.is_valid());
    assert!(report.realnode.is_valid(), "the translator sat on the node");
    assert!(!report.names_after.contains(&report.control.raw()), "control port destroyed");
    assert!(!report.names_after.contains(&report.realnode.raw()), "realnode released");
}

#[test]
fn a_forced_goaway_ends_the_translator_with_a_device_open() {
    let started = start();
    let (_, _, root) = started.getroot(&[0]).unwrap();
    let _dev = device::device_open(root.name(), READ, b"wd0").unwrap();
    assert_eq!(fsys::fsys_goaway(started.control.name(), goaway::FORCE | goaway::NOSYNC), Ok(()));
    assert_eq!(started.stop().ended, Ended::GoneAway { flags: goaway::FORCE | goaway::NOSYNC });
}

#[test]
fn the_parent_letting_go_of_the_control_port_ends_an_unused_translator() {
    let Started { task, server, disk, parent, settings, control, translator, device_thread, auth } = start();
    drop(control);
    let deadline = std::time::Instant::now() + WAIT;
    while !translator.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(translator.is_finished(), "the translator ended");
    let report = Started { task, server, disk, parent, settings, control: SendRight::from_name(PortName::NULL), translator, device_thread, auth }.stop();
    assert_eq!(report.ended, Ended::Orphaned);
    assert!(!report.names_after.contains(&report.control.raw()), "control port destroyed");
}

#[test]
fn with_a_device_open_the_translator_outlives_its_node() {
    let Started { task, server, disk, parent, settings, control, translator, device_thread, auth: _auth } = start();
    let flags = open::READ | open::WRITE;
    let (_, _, root) = fsys::fsys_getroot(control.name(), PortArg::make_send(ReceiveRight::new().unwrap().name()), &[0], &[0], flags).unwrap();
    let dev = device::device_open(root.name(), READ | WRITE, b"wd0").unwrap();
    drop(root);
    drop(control);
    std::thread::sleep(std::time::Duration::from_millis(50)); // the notice is handled
    assert!(!translator.is_finished(), "still serving");
    assert_eq!(device::device_write(dev.name(), 0, 0, &pattern(512, 1)), Ok(512), "the client goes on");
    task.terminate();
    assert!(matches!(translator.join().unwrap().ended, Ended::Failed(_)));
    device_thread.join().unwrap();
    drop((server, disk, parent, settings));
}

/// Waits (boundedly) until `done` holds: a notification is handled on another thread.
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not done in {WAIT:?}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// `io_stat` of a port, as bytes of glibc's `struct stat`.
fn stat_of(port: &SendRight) -> Vec<u8> {
    io::io_stat(port.name()).unwrap().iter().flat_map(|word| word.to_le_bytes()).collect()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn a_node_port_stats_as_a_character_device_with_the_nodes_owner_and_permissions() {
    let (started, _) = start_on(1000, 0o640, None);
    let (_, _, node) = started.lookup(&[1000], 0).unwrap();
    let stat = stat_of(&node);
    assert_eq!(stat.len(), stat::SIZE);
    assert_eq!(u32_at(&stat, stat::MODE), stat::S_IFCHR | stat::S_IROOT | 0o640, "mode {:o}", u32_at(&stat, stat::MODE));
    assert_eq!(u32_at(&stat, stat::UID), 1000, "the node's owner");
    assert_eq!(u32_at(&stat, stat::FSTYPE), stat::FSTYPE_MISC);
    assert_eq!(u32_at(&stat, stat::FSID), FSID);

    // chmod through the node changes the node's bits, as its user may (the parent decides).
    let (_, _, other) = started.lookup(&[2000], 0).unwrap();
    assert_eq!(fs::file_chmod(other.name(), 0o666).map_err(|e| e.code()), Err(hurd_errno(1).code()), "not the owner");
    assert_eq!(fs::file_chmod(node.name(), 0o600), Ok(()));
    assert_eq!(u32_at(&stat_of(&node), stat::MODE), stat::S_IFCHR | stat::S_IROOT | 0o600);
    assert_eq!(started.lookup(&[2000], open::READ).map(drop), Err(EACCES), "group no longer reads");
    drop((node, other));
    wait_until(|| fsys::fsys_goaway(started.control.name(), 0) != Err(EBUSY));
    started.stop();
}

#[test]
fn opens_follow_the_nodes_permissions_and_devices_the_nodes_open_modes() {
    // Owner 1000 may read and write, group and others may not.
    let (started, _) = start_on(1000, 0o600, None);
    let both = open::READ | open::WRITE;
    // Ids whose low byte (or low half) is zero: a check of part of the word would let them in.
    for uids in [&[][..], &[2000], &[256], &[65536], &[0x0100_0000], &[512, 65536, 1 << 31]] {
        assert_eq!(started.lookup(uids, open::READ).map(|_| ()), Err(EACCES), "{uids:?}");
        assert_eq!(started.lookup(uids, open::WRITE).map(|_| ()), Err(EACCES), "{uids:?}");
        // Opening neither way (stat, ls -l) needs no permission.
        assert!(started.lookup(uids, 0).is_ok(), "{uids:?}");
    }
    assert_eq!(started.lookup(&[1000], open::EXEC).map(|_| ()), Err(EACCES), "not executable");
    let (_, _, owner) = started.lookup(&[1000], both).unwrap();
    let (_, _, root) = started.lookup(&[0], both).unwrap();
    assert_eq!(fs::file_check_access(owner.name()), Ok(both));
    assert_eq!(io::io_get_openmodes(owner.name()), Ok(both));

    // A node opened for reading opens devices for reading only; libstore then retries so.
    let (_, _, reader) = started.lookup(&[1000], open::READ | 0x40 /* O_NOLINK: dropped */).unwrap();
    assert_eq!(io::io_get_openmodes(reader.name()), Ok(open::READ));
    assert_eq!(device::device_open(reader.name(), READ | WRITE, b"wd0").map(drop), Err(D_READ_ONLY));
    let dev = device::device_open(reader.name(), READ, b"wd0").unwrap();
    assert_eq!(device::device_write(dev.name(), 0, 0, &pattern(512, 3)), Err(D_INVALID_OPERATION), "the device is read-only");
    let (_, _, neither) = started.lookup(&[1000], 0).unwrap();
    assert_eq!(device::device_open(neither.name(), READ, b"wd0").map(drop), Err(D_INVALID_OPERATION));
    let rw = device::device_open(owner.name(), READ | WRITE, b"wd0").unwrap();
    assert_eq!(device::device_write(rw.name(), 0, 0, &pattern(512, 3)), Ok(512));
    assert!(device::device_open(root.name(), READ | WRITE, b"wd0").is_ok());
    started.task.terminate();
}

/// `chown` through the node passes owner and group on in that order, as the parent takes them.
#[test]
fn chown_through_the_node_reaches_the_parent_owner_first() {
    let (started, _) = start_on(1000, 0o640, None);
    let (_, _, root) = started.lookup(&[0], 0).unwrap();
    assert_eq!(fs::file_chown(root.name(), 2000, 300), Ok(()));
    assert_eq!(started.parent.node.owner(), (2000, 300), "owner 2000, group 300");
    let stat = stat_of(&root);
    assert_eq!((u32_at(&stat, stat::UID), u32_at(&stat, stat::GID)), (2000, 300));
    // The owner may change the group, keeping the owner; the owner in the group's place is
    // another request, which the parent refuses.
    let (_, _, owner) = started.lookup(&[2000], 0).unwrap();
    assert_eq!(fs::file_chown(owner.name(), 2000, 400), Ok(()));
    assert_eq!(started.parent.node.owner(), (2000, 400));
    assert_eq!(fs::file_chown(owner.name(), 400, 2000).map_err(|e| e.code()), Err(hurd_errno(1).code()));
    assert_eq!(started.parent.node.owner(), (2000, 400));
    started.task.terminate();
}

/// Root is root whichever of the caller's uids is 0, not only the first.
#[test]
fn root_is_recognised_from_any_uid_of_the_callers_set() {
    let started = start();
    for uids in [&[0][..], &[1000, 0], &[1000, 2000, 0], &[0, 1000]] {
        let (_, _, node) = started.lookup(uids, 0).unwrap();
        assert!(fs::file_getcontrol(node.name()).is_ok(), "{uids:?} holds uid 0");
    }
    for uids in [&[][..], &[1000], &[1000, 2000]] {
        let (_, _, node) = started.lookup(uids, 0).unwrap();
        assert_eq!(fs::file_getcontrol(node.name()).map(drop).map_err(|e| e.code()), Err(hurd_errno(1).code()), "{uids:?}");
    }
    started.task.terminate();
}

/// A node its user may only read: opening it for reading and writing is refused as a whole,
/// not granted for the half that is allowed.
#[test]
fn a_read_write_open_of_a_node_its_user_may_only_read_is_refused() {
    let (started, _) = start_on(1000, 0o444, None);
    let both = open::READ | open::WRITE;
    for uids in [&[1000][..], &[2000]] {
        assert_eq!(started.lookup(uids, both).map(drop), Err(EACCES), "{uids:?}");
        assert_eq!(started.lookup(uids, open::WRITE).map(drop), Err(EACCES), "{uids:?}");
        let (_, _, reader) = started.lookup(uids, open::READ).unwrap();
        assert_eq!(io::io_get_openmodes(reader.name()), Ok(open::READ));
        assert_eq!(device::device_open(reader.name(), READ | WRITE, b"wd0").map(drop), Err(D_READ_ONLY));
    }
    started.task.terminate();
}

#[test]
fn the_control_port_is_for_privileged_users_and_restricted_ports_lose_the_privilege() {
    let started = start();
    let (_, _, user) = started.lookup(&[1000], open::READ).unwrap();
    assert_eq!(fs::file_getcontrol(user.name()).map(drop).map_err(|e| e.code()), Err(hurd_errno(1).code()), "EPERM");
    let (_, _, root) = started.lookup(&[0], 0).unwrap();
    let control = fs::file_getcontrol(root.name()).unwrap();
    // The control port it gives is the translator's: its options come back through it.
    assert_eq!(fsys::fsys_get_options(control.name()).unwrap().as_slice(), b"/hurd/rumpdisk\0--ide-channel=secondary\0");
    let restricted = io::io_restrict_auth(root.name(), &[1000], &[100]).unwrap();
    assert_eq!(fs::file_getcontrol(restricted.name()).map(drop).map_err(|e| e.code()), Err(hurd_errno(1).code()));
    // Owner root, mode 0644: user 1000 may read only.
    assert_eq!(fs::file_check_access(restricted.name()), Ok(open::READ));
    let duplicate = io::io_duplicate(root.name()).unwrap();
    assert!(fs::file_getcontrol(duplicate.name()).is_ok());
    assert_eq!(fs::file_check_access(duplicate.name()), Ok(open::READ | open::WRITE));
    started.task.terminate();
}

#[test]
fn fsysopts_reads_and_sets_the_options() {
    let started = start();
    let control = started.control.name();
    let (_, _, node) = started.lookup(&[1000], 0).unwrap();
    let expected = b"/hurd/rumpdisk\0--ide-channel=secondary\0";
    assert_eq!(fsys::fsys_get_options(control).unwrap().as_slice(), expected);
    assert_eq!(fs::file_get_fs_options(node.name()).unwrap().as_slice(), expected, "fsysopts NODE");
    assert_eq!(fsys::fsys_set_options(control, b"--flush=skip\0-h\x007\0", 0), Ok(()));
    assert_eq!(fsys::fsys_set_options(control, b"--flush=device", 0), Ok(()), "no last NUL");
    assert_eq!(fsys::fsys_set_options(control, b"", 0), Ok(()));
    assert_eq!(fsys::fsys_set_options(control, b"--refuse-me\0", 0), Err(EINVAL), "the settings' refusal");
    let applied = started.settings.applied.lock().unwrap().clone();
    assert_eq!(applied, vec![vec![b"--flush=skip".to_vec(), b"-h".to_vec(), b"7".to_vec()], vec![b"--flush=device".to_vec()], vec![]]);
    started.task.terminate();
}

#[test]
fn node_ports_of_dead_clients_are_destroyed_and_no_right_is_left_behind() {
    let started = start();
    let before = started.task.stats();
    let parent_ports = started.parent.node.ports_made();
    for uids in [&[1000][..], &[0], &(1..=3000).chain([0]).collect::<Vec<u32>>()] {
        let (_, _, node) = started.lookup(uids, open::READ).unwrap();
        let _ = io::io_duplicate(node.name()).unwrap();
        drop(node);
    }
    // Each lookup and duplicate restricted or duplicated the parent's node once.
    assert_eq!(started.parent.node.ports_made(), parent_ports + 6);
    wait_until(|| started.task.stats() == before);
    assert_eq!(fsys::fsys_goaway(started.control.name(), 0), Ok(()), "no node port is left");
    started.stop();
}

/// A request `encode`d for the control port, sent raw; returns the reply's return code.
fn call_raw(message: &mut [u8], size: usize) -> i32 {
    let reply = msg::rpc(message, size, Some(TIMEOUT_MS)).expect("an error reply, not silence");
    i32::from_le_bytes(reply[HEADER_SIZE + 8..HEADER_SIZE + 12].try_into().unwrap())
}

#[test]
fn unknown_and_malformed_requests_get_error_replies_and_serving_goes_on() {
    let started = start();
    let control = started.control.name();
    // A routine of the interface the translator does not serve (libtrivfs's answer), and an
    // id of none.
    assert_eq!(fsys::fsys_getpriv(control).map(|_| ()).map_err(|e| e.code()), Err(EOPNOTSUPP.code()));
    let mut buf = vec![0u8; 8192];
    let size = fsys::fsys_goaway::request::encode(&mut buf, control, 0, mach::reply_port()).unwrap();
    buf[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&22050i32.to_le_bytes());
    assert_eq!(call_raw(&mut buf, size), MIG_BAD_ID);

    // A goaway whose flags descriptor lies about its type, and one cut short of its flags.
    let size = fsys::fsys_goaway::request::encode(&mut buf, control, 0, mach::reply_port()).unwrap();
    buf[HEADER_SIZE] ^= 0x01;
    assert_eq!(call_raw(&mut buf, size), MIG_BAD_ARGUMENTS);
    fsys::fsys_goaway::request::encode(&mut buf, control, 0, mach::reply_port()).unwrap();
    buf[4..8].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    assert_eq!(call_raw(&mut buf, HEADER_SIZE), MIG_BAD_ARGUMENTS);

    // A getroot whose uid array descriptor lies about its element size: refused, and the
    // dotdot right the request carried is destroyed by the loop, not kept.
    let before = started.task.stats();
    let dotdot = ReceiveRight::new().unwrap();
    let size = fsys::fsys_getroot::request::encode(&mut buf, control, PortArg::make_send(dotdot.name()), &[0], &[0], 0, mach::reply_port()).unwrap();
    let uids_descriptor = HEADER_SIZE + 16; // after dotdot's descriptor and port slot
    assert_eq!(buf[uids_descriptor + 1], 32, "the uid descriptor's element size");
    buf[uids_descriptor + 1] = 16;
    assert_eq!(call_raw(&mut buf, size), MIG_BAD_ARGUMENTS);
    assert_eq!(started.task.stats(), before, "no right left in the translator");

    // Still serving: a well-formed lookup works, and the goaway ends it.
    assert_eq!(started.getroot(&[0]).map(|(retry, _, _)| retry), Ok(FS_RETRY_NORMAL));
    wait_until(|| fsys::fsys_goaway(control, 0) != Err(EBUSY));
    assert_eq!(started.stop().ended, Ended::GoneAway { flags: 0 });
}

#[test]
fn a_refused_startup_fails_and_leaves_no_control_port() {
    const EPERM: Error = hurd_errno(1);
    let (started, outcome) = start_with(Some(EPERM));
    assert_eq!(outcome, Some(Err(EPERM)));
    let dead = fsys::fsys_goaway(started.control.name(), 0).map_err(|e| e.code());
    assert_eq!(dead, Err(MACH_SEND_INVALID_DEST), "the control port died with the failed start");
    assert_eq!(started.stop().ended, Ended::Failed(EPERM));
}

/// What libtrivfs answers on a node, which `cat`, `stat -f`, `fsync` and `touch` ask: reading
/// and seeking are not supported (not `MIG_BAD_ID`: "bad request message ID"), nor is the
/// storage info; `statfs` names a trivfs filesystem; a sync flushes every open disk (a barrier,
/// unlike upstream's); times go to the underlying node as its user.
#[test]
fn a_node_answers_what_libtrivfs_answers() {
    let (started, _) = start_on(1000, 0o600, None);
    let (_, _, node) = started.lookup(&[1000], open::READ | open::WRITE).unwrap();
    let code = |result: Result<()>| result.map_err(|e| e.code());
    assert_eq!(code(io::io_seek(node.name(), 0, 0).map(drop)), Err(EOPNOTSUPP.code()));
    // io_read (21001: cat) and file_get_storage_info (20015), which defs/ skips: raw.
    let mut buf = vec![0u8; 8192];
    for id in [21001i32, 20015] {
        let size = fs::file_check_access::request::encode(&mut buf, node.name(), mach::reply_port()).unwrap();
        buf[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&id.to_le_bytes());
        assert_eq!(call_raw(&mut buf, size), EOPNOTSUPP.code(), "{id}");
    }
    // An id in no interface the node serves stays MIG_BAD_ID.
    let size = fs::file_check_access::request::encode(&mut buf, node.name(), mach::reply_port()).unwrap();
    buf[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&20090i32.to_le_bytes());
    assert_eq!(call_raw(&mut buf, size), MIG_BAD_ID);

    // stat -f
    let statfs: Vec<u8> = fs::file_statfs(node.name()).unwrap().iter().flat_map(|word| word.to_le_bytes()).collect();
    assert_eq!(u32_at(&statfs, 0), stat::FSTYPE_MISC, "f_type");
    let fsid_at = if cfg!(target_pointer_width = "64") { 56 } else { 48 };
    assert_eq!(u32_at(&statfs, fsid_at), FSID, "f_fsid");

    // fsync, syncfs, and sync(1) on the control port: the open disk's cache is flushed.
    let dev = device::device_open(node.name(), READ | WRITE, b"wd0").unwrap();
    assert_eq!(device::device_write(dev.name(), 0, 3, &pattern(512, 1)), Ok(512));
    assert_eq!(fs::file_sync(node.name(), 1, 0), Ok(()));
    assert_eq!(started.disk.flushes(), 1);
    assert!(started.disk.durable()[3 * 512..][..512] == pattern(512, 1)[..]);
    assert_eq!(fs::file_syncfs(node.name(), 1, 0), Ok(()));
    assert_eq!(fsys::fsys_syncfs(started.control.name(), 1, 0), Ok(()));
    assert_eq!(started.disk.flushes(), 3);
    assert_eq!(code(fsys::fsys_get_source(started.control.name()).map(drop)), Err(EOPNOTSUPP.code()));

    // io_identity: one identity for every port to the node, the underlying node's number.
    let (_, _, other) = started.lookup(&[0], 0).unwrap();
    let (id, fsid, fileno) = io::io_identity(node.name()).unwrap();
    let (other_id, other_fsid, other_fileno) = io::io_identity(other.name()).unwrap();
    assert_eq!((other_id.name(), other_fsid.name(), other_fileno), (id.name(), fsid.name(), fileno), "the same file");
    assert_ne!(id.name(), fsid.name());
    assert_eq!(fileno, crate::node::fake_fs::FILENO);
    drop(other);

    // touch: the underlying node's times, as the node's user.
    assert_eq!(fs::file_utimes(node.name(), &[5, 0], &[6, 0]), Ok(()));
    assert_eq!(*started.parent.node.times.lock().unwrap(), Some(([5, 0], [6, 0])));

    drop((dev, node));
    wait_until(|| fsys::fsys_goaway(started.control.name(), goaway::FORCE) != Err(EBUSY));
    started.stop();
}

/// The auth server's side of a reauthentication: the ids of the user it met at the rendezvous,
/// and what the server passed that user.
struct AuthServer {
    uids: Vec<u32>,
    gids: Vec<u32>,
    rendezvous: Option<SendRight>,
    newport: Option<rt::Right>,
}

impl mach::interfaces::auth::Server for AuthServer {
    fn auth_server_authenticate(
        &mut self,
        _reply: rt::ReplyPort<'_>,
        _handle: PortName,
        rendezvous: SendRight,
        newport: rt::Right,
    ) -> Result<(OolMemory, OolMemory, OolMemory, OolMemory)> {
        (self.rendezvous, self.newport) = (Some(rendezvous), Some(newport));
        let words = |ids: &[u32]| OolMemory::copy_from(&ids.iter().flat_map(|id| id.to_ne_bytes()).collect::<Vec<u8>>());
        Ok((words(&self.uids)?, words(&self.uids)?, words(&self.gids)?, words(&self.gids)?))
    }
}

/// `io_reauthenticate` as libtrivfs answers it: the new port, passed to the user through the
/// auth server, carries the user the auth server names (here uid 1000 reauthenticating root's
/// port: on a root-owned 0644 node it may read only, and the control port is refused), and the
/// open modes of the port it came from.
#[test]
fn reauthentication_gives_a_port_for_the_user_the_auth_server_names() {
    let started = start();
    let (_, _, root) = started.getroot(&[0]).unwrap();
    let rendezvous = ReceiveRight::new().unwrap();
    io::io_reauthenticate(root.name(), PortArg::make_send(rendezvous.name())).unwrap();
    let mut auth = AuthServer { uids: vec![1000], gids: vec![100], rendezvous: None, newport: None };
    let mut request = MsgBuf::<{ mach::interfaces::auth::auth_server_authenticate::request::MAX_SIZE }>::new();
    let mut reply = MsgBuf::<{ mach::interfaces::auth::MAX_REPLY_SIZE }>::new();
    let received = msg::receive(request.as_bytes_mut(), started.auth.name(), Some(TIMEOUT_MS)).expect("the translator asks the auth server");
    match mach::interfaces::auth::demux(&mut auth, received, reply.as_bytes_mut()) {
        rt::Demuxed::Reply(size) => msg::send(reply.as_bytes_mut(), size, None).unwrap(),
        other => panic!("not auth_server_authenticate: {other:?}"),
    }
    assert_eq!(auth.rendezvous.as_ref().map(SendRight::name), Some(rendezvous.name()), "the client's rendezvous port");
    let Some(rt::Right::Send(user)) = auth.newport.take() else { panic!("no send right for the user: {:?}", auth.newport) };
    assert_eq!(fs::file_check_access(user.name()), Ok(open::READ), "uid 1000 on a root-owned 0644 node");
    assert_eq!(fs::file_getcontrol(user.name()).map(drop).map_err(|e| e.code()), Err(hurd_errno(1).code()), "EPERM");
    assert_eq!(io::io_get_openmodes(user.name()), Ok(open::READ | open::WRITE), "the open modes of the port it came from");
    assert_eq!(fs::file_check_access(root.name()), Ok(open::READ | open::WRITE), "root's port unchanged");
    started.task.terminate();
}
