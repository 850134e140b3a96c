//! The translator's node, as the Hurd's trivfs nodes behave: every lookup that reaches the
//! translator (`fsys_getroot`) gets a node port of its own, carrying the opener's open modes and
//! the underlying node restricted to the opener's ids. On a node port: `device_open` (the node
//! is a device master, as upstream's is: storeio's `@/dev/rumpdisk:wd0`), `io_stat` (a
//! character device with the underlying node's owner and permissions), `file_check_access`,
//! `io_get_openmodes`, `io_duplicate`, `io_restrict_auth`, `file_getcontrol`,
//! `file_get_fs_options`, and `file_chmod`/`file_chown` (passed on to the underlying node as its
//! user, so `chmod 600 /dev/rumpdisk` works as on any trivfs node). A node port whose last send right dies is destroyed (no-senders).
//!
//! Access is the node's, as upstream's: an opener may open the node for reading (writing) when
//! the underlying node lets that user read (write) it — the parent filesystem decides, through
//! `file_check_access` on a port restricted to the opener's ids — and a device opened through a
//! node port is opened with no more than the node's open modes (upstream does not check that:
//! a node opened read-only could write).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mach::interfaces::{auth, device, fs, io, notify};
use mach::kern::{Error, Result};
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::ool::OolMemory;
use mach::port::{PortName, PortSet, ReceiveRight, SendRight};
use mach::sync::Mutex;
use spin::Once;

use crate::backend::Backend;
use crate::device::{mode, D_INVALID_OPERATION, D_READ_ONLY};
use crate::device_server::DeviceServer;
use crate::settings::Settings;
use crate::errno::{EACCES, EOPNOTSUPP, EPERM};
use crate::hurd_fs::{open, FS_RETRY_NORMAL};

/// The generated interfaces' ABI on this target (for replies written by hand).
#[cfg(target_pointer_width = "64")]
use mach::mig_rt::X86_64 as ABI;
#[cfg(not(target_pointer_width = "64"))]
use mach::mig_rt::I686 as ABI;

/// The message ids of the routines of the interfaces libtrivfs serves on its ports (the Hurd's
/// `fs.defs`, `io.defs` and `fsys.defs`: 37, 32 and 12 routines).
const TRIVFS_INTERFACES: [core::ops::Range<i32>; 3] = [20000..20037, 21000..21032, 22000..22012];

/// `demuxed`, except that a routine of the `fs`, `io` or `fsys` interfaces answered
/// `MIG_BAD_ID` (none of our demuxes knows it, or its generated default answered) is answered
/// `EOPNOTSUPP` (in `reply`), as libtrivfs answers every routine of the interfaces it serves
/// (`file_get_storage_info`, `io_write`, `fsys_getpriv`, ...). Other ids keep `MIG_BAD_ID`.
pub fn as_trivfs(request: &[u8], reply: &mut [u8], demuxed: rt::Demuxed) -> msg::Disposition {
    let bad_id = match demuxed {
        rt::Demuxed::UnknownId(_) => true,
        rt::Demuxed::Reply(size) => reply.get(..size).is_some_and(|answer| ABI.check_return_code(answer) == Err(rt::bad_id())),
        _ => false,
    };
    match ABI.header(request) {
        Some(header) if bad_id && TRIVFS_INTERFACES.iter().any(|ids| ids.contains(&header.id)) => {
            let size = ABI.put_error_reply(reply, header.remote_port, header.reply_disposition(), header.id.wrapping_add(100), EOPNOTSUPP);
            msg::Disposition::Reply(size)
        }
        _ => demuxed.disposition(),
    }
}
/// `io_stat` as glibc's `struct stat` lays it out on the Hurd (`bits/stat.h`).
pub mod stat {
    /// Bytes of `struct stat`.
    #[cfg(target_pointer_width = "64")]
    pub const SIZE: usize = 176;
    #[cfg(not(target_pointer_width = "64"))]
    pub const SIZE: usize = 128;
    /// Byte offsets of the fields the node sets (`fsid_t` and `nlink_t` are 64-bit, and 64-bit
    /// members 8-aligned, on x86_64 only).
    pub const FSTYPE: usize = 0;
    #[cfg(target_pointer_width = "64")]
    pub const FSID: usize = 8;
    #[cfg(not(target_pointer_width = "64"))]
    pub const FSID: usize = 4;
    #[cfg(target_pointer_width = "64")]
    pub const INO: usize = 16;
    #[cfg(not(target_pointer_width = "64"))]
    pub const INO: usize = 12;
    #[cfg(target_pointer_width = "64")]
    pub const MODE: usize = 40;
    #[cfg(not(target_pointer_width = "64"))]
    pub const MODE: usize = 28;
    #[cfg(target_pointer_width = "64")]
    pub const UID: usize = 56;
    #[cfg(not(target_pointer_width = "64"))]
    pub const UID: usize = 36;
    /// `st_gid` follows `st_uid`.
    pub const GID: usize = UID + 4;
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFCHR: u32 = 0o020000;
    /// The Hurd's "this is a translator's root" and "translator bits" mode flags.
    pub const S_IROOT: u32 = 0o40000000;
    pub const S_ITRANS: u32 = 0o70000000;
    /// `FSTYPE_MISC` (`hurd_types.h`): a trivfs server.
    pub const FSTYPE_MISC: u32 = 0x16;
}

/// `io_statbuf_t` travels as words as wide as its widest member, at most the ABI's word.
#[cfg(target_pointer_width = "64")]
type StatWord = i64;
#[cfg(not(target_pointer_width = "64"))]
type StatWord = i32;
const STAT_WORDS: usize = stat::SIZE / core::mem::size_of::<StatWord>();

/// What a node port stands for.
struct Node {
    port: ReceiveRight,
    /// The open modes of the lookup (`open::KEPT` of its flags).
    openmodes: i32,
    /// The underlying node as this node's user may use it; none before the translator sits on
    /// a node (a boot server before it joins the system).
    realnode: Option<SendRight>,
    /// Whether the opener had uid 0 (the control port is for them only).
    privileged: bool,
}

/// The node ports of one translator, on a port set of their own.
pub struct Nodes<'a, B: Backend> {
    devices: &'a DeviceServer<B>,
    /// The set node ports are received on; `None` once closed (its receivers then fail).
    set: Mutex<Option<PortSet>>,
    set_name: PortName,
    ports: Mutex<BTreeMap<PortName, Node>>,
    /// The node the translator sits on, once known.
    underlying: Once<SendRight>,
    /// The translator's control port (`file_getcontrol`).
    control: PortName,
    /// The options `file_get_fs_options` answers.
    settings: &'a dyn Settings,
    /// The `st_fsid` of node ports (trivfs gives its process id).
    fsid: u32,
    /// What `io_identity` answers for every node port: the node's identity and the
    /// filesystem's (ports nobody sends to, as libtrivfs's `file_id` and `filesys_id`).
    file_id: ReceiveRight,
    filesys_id: ReceiveRight,
    /// The auth server, once known (`io_reauthenticate`): a translator's from glibc, a boot
    /// server's from `fsys_init`.
    auth: Once<SendRight>,
}

impl<'a, B: Backend> Nodes<'a, B> {
    /// Node ports leading to `devices`, for the translator whose control port is `control` and
    /// whose options are `settings`; their `io_stat` says `fsid`.
    pub fn new(devices: &'a DeviceServer<B>, control: PortName, settings: &'a dyn Settings, fsid: u32) -> Result<Self> {
        let set = PortSet::new()?;
        let set_name = set.name();
        Ok(Nodes {
            devices,
            set: Mutex::new(Some(set)),
            set_name,
            ports: Mutex::new(BTreeMap::new()),
            underlying: Once::new(),
            control,
            settings,
            fsid,
            file_id: ReceiveRight::new()?,
            filesys_id: ReceiveRight::new()?,
            auth: Once::new(),
        })
    }

    /// The port set node ports are received on (and the ports [`Nodes::receive_also`] adds).
    pub fn set_name(&self) -> PortName {
        self.set_name
    }

    /// Receives `port` on the node ports' set too (a translator's control port).
    pub fn receive_also(&self, port: &ReceiveRight) -> Result<()> {
        self.set.lock().as_ref().map_or(Err(EOPNOTSUPP), |set| set.insert(port))
    }

    /// The node the translator sits on: from here on, node ports have its owner and permissions.
    pub fn sit_on(&self, underlying: SendRight) {
        self.underlying.call_once(|| underlying);
    }

    /// The auth server `io_reauthenticate` asks who a client is.
    pub fn authenticate_with(&self, auth: SendRight) {
        self.auth.call_once(|| auth);
    }

    /// The node the translator sits on, once known.
    pub fn underlying(&self) -> Option<&SendRight> {
        self.underlying.get()
    }

    /// Destroys every node port and the set (the translator goes away): receiving on the set
    /// fails from here on.
    pub fn close(&self) {
        self.ports.lock().clear();
        self.set.lock().take();
    }

    /// Node ports alive (their clients have not all let go of them).
    pub fn count(&self) -> usize {
        self.ports.lock().len()
    }

    pub fn settings(&self) -> &'a dyn Settings {
        self.settings
    }

    /// The answer to `fsys_getroot`: a new node port for a lookup with `flags` by a user with
    /// `uids` and `gids` (`idarray_t`s: native 32-bit words).
    pub fn open(&self, dotdot: SendRight, uids: &OolMemory, gids: &OolMemory, flags: i32) -> Result<(u32, &'static [u8], PortArg)> {
        // Nothing here is looked up relative to the directory above.
        drop(dotdot);
        if flags & open::EXEC != 0 {
            return Err(EACCES);
        }
        let (uids, gids) = (ids(uids), ids(gids));
        let privileged = uids.contains(&0);
        let realnode = self.realnode_for(&uids, &gids)?;
        let allowed = match &realnode {
            Some(realnode) => fs::file_check_access(realnode.name())?,
            // No node to ask: root only, as the device master is.
            None if privileged => open::READ | open::WRITE,
            None => 0,
        };
        let wanted = flags & (open::READ | open::WRITE);
        if wanted & !allowed != 0 {
            return Err(EACCES);
        }
        let node = Node { port: ReceiveRight::new()?, openmodes: flags & open::KEPT, realnode, privileged };
        let send = self.insert(node)?;
        Ok((FS_RETRY_NORMAL, b"", PortArg::move_send(send)))
    }

    /// The underlying node as the user with `uids` and `gids` may use it: root's own rights
    /// for uid 0, else restricted to the user; none before the translator sits on a node.
    fn realnode_for(&self, uids: &[u32], gids: &[u32]) -> Result<Option<SendRight>> {
        match self.underlying.get() {
            None => Ok(None),
            Some(underlying) if uids.contains(&0) => io::io_duplicate(underlying.name()).map(Some),
            Some(underlying) => io::io_restrict_auth(underlying.name(), uids, gids).map(Some),
        }
    }

    /// Serves `node` on the set and returns the one send right made for it.
    fn insert(&self, node: Node) -> Result<SendRight> {
        let send = node.port.make_send()?;
        self.serve_node(node)?;
        Ok(send)
    }

    /// Serves `node`, whose one send right is made: known before it is received on, so that a
    /// request already queued finds it; destroyed when that right dies.
    fn serve_node(&self, node: Node) -> Result<()> {
        if let Err(error) = node.port.request_no_senders(1) {
            log::warn!("rumpdisk: no-senders notification refused ({error:?}): a node port outlives its clients");
        }
        let name = node.port.name();
        let mut ports = self.ports.lock();
        ports.insert(name, node);
        let served = ports.get(&name).map_or(Err(EOPNOTSUPP), |node| self.receive_also(&node.port));
        if served.is_err() {
            ports.remove(&name);
        }
        served
    }

    /// `io_reauthenticate` of node port `port`, as libtrivfs: a new node port with the same open
    /// modes for the user the auth server names when it meets the client at `rendezvous`, who
    /// gets the port from it; the underlying node is that user's, uid 0 privileged. Only then is
    /// the new port served.
    fn reauthenticate(&self, port: PortName, rendezvous: SendRight) -> Result<()> {
        let openmodes = self.with(port, |node| Ok(node.openmodes))?;
        let auth = self.auth.get().ok_or(EOPNOTSUPP)?;
        let new = ReceiveRight::new()?;
        let (uids, _, gids, _) =
            auth::auth_server_authenticate(auth.name(), PortArg::move_send(rendezvous), PortArg::make_send(new.name()))?;
        let (uids, gids) = (ids(&uids), ids(&gids));
        let realnode = self.realnode_for(&uids, &gids)?;
        self.serve_node(Node { port: new, openmodes, realnode, privileged: uids.contains(&0) })
    }

    /// Runs `f` on the node behind `port`.
    fn with<T>(&self, port: PortName, f: impl FnOnce(&mut Node) -> Result<T>) -> Result<T> {
        self.ports.lock().get_mut(&port).map_or(Err(EOPNOTSUPP), f)
    }

    /// The underlying node as the user of node port `port` may use it (a right of its own, so
    /// the parent filesystem is asked outside the lock).
    fn realnode(&self, port: PortName) -> Result<SendRight> {
        self.with(port, |node| node.realnode.as_ref().map_or(Err(EOPNOTSUPP), SendRight::try_clone))
    }

    /// A second node port with the same user and modes, or one restricted further to `uids` and
    /// `gids` (`io_restrict_auth`).
    fn duplicate(&self, port: PortName, restrict: Option<(&[u32], &[u32])>) -> Result<PortArg> {
        // The node's right is cloned: the parent filesystem is asked outside the lock.
        let (openmodes, privileged, realnode) =
            self.with(port, |node| Ok((node.openmodes, node.privileged, node.realnode.as_ref().map(SendRight::try_clone).transpose()?)))?;
        let realnode = match (realnode, restrict) {
            (None, _) => None,
            (Some(realnode), None) => Some(io::io_duplicate(realnode.name())?),
            (Some(realnode), Some((uids, gids))) => Some(io::io_restrict_auth(realnode.name(), uids, gids)?),
        };
        let privileged = privileged && restrict.is_none_or(|(uids, _)| uids.contains(&0));
        let node = Node { port: ReceiveRight::new()?, openmodes, realnode, privileged };
        self.insert(node).map(PortArg::move_send)
    }

    /// `MACH_NOTIFY_NO_SENDERS` on a node port: its clients are gone, so is the node port.
    fn no_senders(&self, port: PortName, mscount: u32) {
        let mut ports = self.ports.lock();
        let Some(node) = ports.get(&port) else { return };
        // One send right is ever made from a node port (a duplicate is a new node port).
        if !node.port.no_senders_is_stale(mscount, 1) {
            ports.remove(&port);
        }
    }

    /// Serves one request on a node port into `reply`.
    pub fn demux(&self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        let mut serving = Serving { nodes: self, stat: [0; STAT_WORDS], statfs: [0; statfs::WORDS] };
        let demuxed = match device::demux(&mut serving, request, reply) {
            rt::Demuxed::UnknownId(_) => io::demux(&mut serving, request, reply),
            demuxed => demuxed,
        };
        let demuxed = match demuxed {
            rt::Demuxed::UnknownId(_) => fs::demux(&mut serving, request, reply),
            demuxed => demuxed,
        };
        let demuxed = match demuxed {
            rt::Demuxed::UnknownId(_) => notify::demux(&mut serving, request, reply),
            demuxed => demuxed,
        };
        as_trivfs(request, reply, demuxed)
    }

    /// Serves the node ports on the calling thread until receiving fails.
    pub fn serve(&self) -> Error {
        msg::serve(self.set_name, &mut |request: &[u8], reply: &mut [u8]| self.demux(request, reply))
    }
}

/// The ids of an `idarray_t`.
fn ids(array: &OolMemory) -> Vec<u32> {
    array.as_slice().chunks_exact(4).map(|word| u32::from_ne_bytes([word[0], word[1], word[2], word[3]])).collect()
}

/// The stat of a node: the underlying node's (as its user sees it), as a translator's
/// character device.
fn node_stat(realnode: Option<&SendRight>, fsid: u32) -> Result<[StatWord; STAT_WORDS]> {
    let mut bytes = [0u8; stat::SIZE];
    let mode = match realnode {
        Some(realnode) => {
            let words = io::io_stat(realnode.name())?;
            for (chunk, word) in bytes.chunks_exact_mut(core::mem::size_of::<StatWord>()).zip(words.iter()) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            get_u32(&bytes, stat::MODE)
        }
        // No node yet (a boot server before it joins the system): root's, for root only.
        None => 0o600,
    };
    put_u32(&mut bytes, stat::MODE, (mode & !stat::S_IFMT & !stat::S_ITRANS) | stat::S_IFCHR | stat::S_IROOT);
    put_u32(&mut bytes, stat::FSTYPE, stat::FSTYPE_MISC);
    put_u32(&mut bytes, stat::FSID, fsid);
    Ok(words(&bytes))
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// One request's view of the node ports (the generated traits take `&mut self` and return
/// fixed-size data by reference).
struct Serving<'n, 'a, B: Backend> {
    nodes: &'n Nodes<'a, B>,
    stat: [StatWord; STAT_WORDS],
    statfs: [StatWord; statfs::WORDS],
}

/// A node port is a device master: devices open with no more than the node's open modes.
impl<B: Backend> device::Server for Serving<'_, '_, B> {
    fn device_open(&mut self, reply: rt::ReplyPort<'_>, node: PortName, mode: u32, name: &[u8]) -> Result<PortArg> {
        let openmodes = self.nodes.with(node, |node| Ok(node.openmodes)).map_err(|_| D_INVALID_OPERATION)?;
        let refused = |wanted: u32, open_mode: i32| mode & wanted != 0 && openmodes & open_mode == 0;
        if refused(mode::READ, open::READ) {
            return Err(D_INVALID_OPERATION);
        }
        if refused(mode::WRITE, open::WRITE) {
            // libstore then opens the device read-only.
            return Err(D_READ_ONLY);
        }
        self.nodes.devices.open_for(&reply, name, mode)
    }

    fn device_open_new(&mut self, reply: rt::ReplyPort<'_>, node: PortName, mode: u32, name: &[u8]) -> Result<PortArg> {
        self.device_open(reply, node, mode, name)
    }
}

impl<B: Backend> io::Server for Serving<'_, '_, B> {
    /// As a libtrivfs node that supports neither reading nor writing (`io_read`, `io_write`:
    /// `EOPNOTSUPP` from [`as_trivfs`]; the disks are read through `device_open` on the node).
    fn io_seek(&mut self, _reply: rt::ReplyPort<'_>, node: PortName, _offset: i64, _whence: i32) -> Result<i64> {
        self.nodes.with(node, |_| Err(EOPNOTSUPP))
    }

    /// As libtrivfs: the same identity ports for every node port, and the underlying node's
    /// file number (0 before the translator sits on a node).
    fn io_identity(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<(PortArg, PortArg, i64)> {
        let realnode = self.nodes.with(node, |node| node.realnode.as_ref().map(SendRight::try_clone).transpose())?;
        let fileno = match realnode {
            Some(realnode) => {
                let bytes: Vec<u8> = io::io_stat(realnode.name())?.iter().flat_map(|word| word.to_le_bytes()).collect();
                i64::from_le_bytes(bytes[stat::INO..stat::INO + 8].try_into().map_err(|_| EOPNOTSUPP)?)
            }
            None => 0,
        };
        Ok((PortArg::make_send(self.nodes.file_id.name()), PortArg::make_send(self.nodes.filesys_id.name()), fileno))
    }

    fn io_get_openmodes(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<i32> {
        self.nodes.with(node, |node| Ok(node.openmodes))
    }

    fn io_stat(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<&[StatWord; STAT_WORDS]> {
        let fsid = self.nodes.fsid;
        // The node's own rights are used outside the lock: io_stat asks the parent filesystem.
        let realnode = self.nodes.with(node, |node| node.realnode.as_ref().map(SendRight::try_clone).transpose())?;
        self.stat = node_stat(realnode.as_ref(), fsid)?;
        Ok(&self.stat)
    }

    /// A simpleroutine: a failure is the client's auth server call's to report.
    fn io_reauthenticate(&mut self, node: PortName, rendezvous: SendRight) -> Result<()> {
        let reauthenticated = self.nodes.reauthenticate(node, rendezvous);
        if let Err(error) = reauthenticated {
            log::debug!("rumpdisk: io_reauthenticate: {error:?}");
        }
        reauthenticated
    }

    fn io_restrict_auth(&mut self, _reply: rt::ReplyPort<'_>, node: PortName, uids: OolMemory, gids: OolMemory) -> Result<PortArg> {
        self.nodes.duplicate(node, Some((&ids(&uids), &ids(&gids))))
    }

    fn io_duplicate(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<PortArg> {
        self.nodes.duplicate(node, None)
    }
}

/// `struct statfs` as the Hurd lays it out (`bits/statfs.h`): byte offsets of the fields the
/// node sets, and its size in the words `fsys_statfsbuf_t` travels as.
mod statfs {
    pub const TYPE: usize = 0;
    #[cfg(target_pointer_width = "64")]
    pub const FSID: usize = 56;
    #[cfg(not(target_pointer_width = "64"))]
    pub const FSID: usize = 48;
    #[cfg(target_pointer_width = "64")]
    pub const WORDS: usize = 14;
    #[cfg(not(target_pointer_width = "64"))]
    pub const WORDS: usize = 22;
}

/// The statfs of a node, as libtrivfs answers it: zeros but the type (`FSTYPE_MISC`) and the
/// filesystem id (the translator's).
fn node_statfs(fsid: u32) -> [StatWord; statfs::WORDS] {
    let mut bytes = [0u8; statfs::WORDS * core::mem::size_of::<StatWord>()];
    put_u32(&mut bytes, statfs::TYPE, stat::FSTYPE_MISC);
    put_u32(&mut bytes, statfs::FSID, fsid);
    words(&bytes)
}

/// Native-endian words of `bytes` (a whole number of them).
fn words<const N: usize>(bytes: &[u8]) -> [StatWord; N] {
    const BYTES: usize = core::mem::size_of::<StatWord>();
    core::array::from_fn(|i| {
        let mut word = [0u8; BYTES];
        word.copy_from_slice(&bytes[i * BYTES..][..BYTES]);
        StatWord::from_le_bytes(word)
    })
}

impl<B: Backend> fs::Server for Serving<'_, '_, B> {
    /// Passed on to the underlying node as its user, as libtrivfs does.
    fn file_utimes(&mut self, _reply: rt::ReplyPort<'_>, node: PortName, atime: [StatWord; 2], mtime: [StatWord; 2]) -> Result<()> {
        let realnode = self.nodes.realnode(node)?;
        fs::file_utimes(realnode.name(), &atime, &mtime)
    }

    fn file_statfs(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<&[StatWord; statfs::WORDS]> {
        self.nodes.with(node, |_| Ok(()))?;
        self.statfs = node_statfs(self.nodes.fsid);
        Ok(&self.statfs)
    }

    /// Every open disk's cache flushed (libtrivfs syncs the underlying node instead, and the
    /// C rumpdisk's own sync never reaches the drive's cache): `fsync` on the node is a barrier.
    fn file_sync(&mut self, _reply: rt::ReplyPort<'_>, node: PortName, _wait: i32, _omit_metadata: i32) -> Result<()> {
        self.nodes.with(node, |_| Ok(()))?;
        self.nodes.devices.core().flush_all()
    }

    fn file_syncfs(&mut self, reply: rt::ReplyPort<'_>, node: PortName, wait: i32, _do_children: i32) -> Result<()> {
        self.file_sync(reply, node, wait, 0)
    }

    fn file_check_access(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<i32> {
        let (privileged, realnode) = self.nodes.with(node, |node| Ok((node.privileged, node.realnode.as_ref().map(SendRight::try_clone).transpose()?)))?;
        match realnode {
            // What the parent filesystem lets this user do, of what the node allows.
            Some(realnode) => Ok(fs::file_check_access(realnode.name())? & (open::READ | open::WRITE)),
            None if privileged => Ok(open::READ | open::WRITE),
            None => Ok(0),
        }
    }

    fn file_chmod(&mut self, _reply: rt::ReplyPort<'_>, node: PortName, mode: u32) -> Result<()> {
        let realnode = self.nodes.realnode(node)?;
        fs::file_chmod(realnode.name(), mode)
    }

    fn file_chown(&mut self, _reply: rt::ReplyPort<'_>, node: PortName, owner: u32, group: u32) -> Result<()> {
        let realnode = self.nodes.realnode(node)?;
        fs::file_chown(realnode.name(), owner, group)
    }

    /// The control port, for privileged users (it can make the translator go away).
    fn file_getcontrol(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<PortArg> {
        if !self.nodes.with(node, |node| Ok(node.privileged))? {
            return Err(EPERM);
        }
        Ok(PortArg::make_send(self.nodes.control))
    }

    fn file_get_fs_options(&mut self, _reply: rt::ReplyPort<'_>, node: PortName) -> Result<OolMemory> {
        self.nodes.with(node, |_| Ok(()))?;
        argz_reply(&self.nodes.settings().options())
    }
}

/// Out-of-line memory holding `argz`, for a reply.
pub fn argz_reply(argz: &[u8]) -> Result<OolMemory> {
    let mut memory = OolMemory::new(argz.len())?;
    memory.as_mut_slice().copy_from_slice(argz);
    Ok(memory)
}

/// The kernel's notices on node ports: only no-senders is asked for.
impl<B: Backend> notify::Server for Serving<'_, '_, B> {
    fn mach_notify_no_senders(&mut self, port: PortName, mscount: u32) -> Result<()> {
        self.nodes.no_senders(port, mscount);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fake_fs;
