//! A stand-in for the parent filesystem's side of a translator's node, for host tests (the VM
//! scenarios use the Hurd's own ext2fs): one node with an owner and permission bits, served as
//! ports each carrying a user, answering what a translator asks of the node it sits on —
//! `io_duplicate`, `io_restrict_auth`, `file_check_access` (from the bits, as a filesystem
//! decides), `file_chmod`, `file_chown` and `io_stat`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use mach::interfaces::{fs, io};
use mach::kern::Result;
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::ool::OolMemory;
use mach::port::{PortName, PortSet, ReceiveRight, SendRight};
use mach::sim::Task;

use super::{ids, open, stat, StatWord, STAT_WORDS};

/// The group a node starts with.
pub const GROUP: u32 = 100;

/// The node's file number.
pub const FILENO: i64 = 4242;

/// The node's owner, group and permission bits.
pub struct FakeNode {
    owner: AtomicU32,
    group: AtomicU32,
    mode: AtomicU32,
    set: PortSet,
    /// Every port made, with its user's uids.
    ports: Mutex<BTreeMap<PortName, (ReceiveRight, Vec<u32>)>>,
    /// The access and modification times `file_utimes` set.
    pub times: Mutex<Option<([StatWord; 2], [StatWord; 2])>>,
}

impl FakeNode {
    /// Serves the node on a thread of the calling task; returns it and a port to it for `uids`.
    pub fn start(owner: u32, mode: u32, uids: &[u32]) -> (Arc<FakeNode>, SendRight) {
        let node = Arc::new(FakeNode {
            owner: AtomicU32::new(owner),
            group: AtomicU32::new(GROUP),
            mode: AtomicU32::new(mode),
            set: PortSet::new().unwrap(),
            ports: Mutex::new(BTreeMap::new()),
            times: Mutex::new(None),
        });
        let port = node.port_for(uids.to_vec()).unwrap();
        let serving = node.clone();
        Task::current().spawn(move || msg::serve(serving.set.name(), &mut |request: &[u8], reply: &mut [u8]| serving.demux(request, reply)));
        (node, port)
    }

    fn port_for(&self, uids: Vec<u32>) -> Result<SendRight> {
        let port = ReceiveRight::new()?;
        self.set.insert(&port)?;
        let send = port.make_send()?;
        self.ports.lock().unwrap().insert(port.name(), (port, uids));
        Ok(send)
    }

    fn uids(&self, port: PortName) -> Vec<u32> {
        self.ports.lock().unwrap().get(&port).map(|(_, uids)| uids.clone()).unwrap_or_default()
    }

    fn mode(&self) -> u32 {
        self.mode.load(Ordering::Relaxed)
    }

    /// The node's owner and group now.
    pub fn owner(&self) -> (u32, u32) {
        (self.owner.load(Ordering::Relaxed), self.group.load(Ordering::Relaxed))
    }

    /// Ports made so far (each lookup of the translator restricts or duplicates one).
    pub fn ports_made(&self) -> usize {
        self.ports.lock().unwrap().len()
    }

    fn demux(&self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        let mut serving = Serving { node: self, stat: [0; STAT_WORDS] };
        match io::demux(&mut serving, request, reply) {
            rt::Demuxed::UnknownId(_) => fs::demux(&mut serving, request, reply).disposition(),
            demuxed => demuxed.disposition(),
        }
    }
}

struct Serving<'a> {
    node: &'a FakeNode,
    stat: [StatWord; STAT_WORDS],
}

impl io::Server for Serving<'_> {
    fn io_stat(&mut self, _reply: rt::ReplyPort<'_>, _port: PortName) -> Result<&[StatWord; STAT_WORDS]> {
        let mut bytes = [0u8; stat::SIZE];
        bytes[stat::MODE..][..4].copy_from_slice(&(0o100000 | self.node.mode()).to_le_bytes());
        let (owner, group) = self.node.owner();
        bytes[stat::UID..][..4].copy_from_slice(&owner.to_le_bytes());
        bytes[stat::GID..][..4].copy_from_slice(&group.to_le_bytes());
        bytes[stat::INO..][..8].copy_from_slice(&FILENO.to_le_bytes());
        for (word, chunk) in self.stat.iter_mut().zip(bytes.chunks_exact(core::mem::size_of::<StatWord>())) {
            *word = StatWord::from_le_bytes(chunk.try_into().unwrap());
        }
        Ok(&self.stat)
    }

    fn io_restrict_auth(&mut self, _reply: rt::ReplyPort<'_>, port: PortName, uids: OolMemory, _gids: OolMemory) -> Result<PortArg> {
        let have = self.node.uids(port);
        // Only what both users may be: root may become anyone.
        let uids = ids(&uids).into_iter().filter(|uid| have.contains(&0) || have.contains(uid)).collect();
        self.node.port_for(uids).map(PortArg::move_send)
    }

    fn io_duplicate(&mut self, _reply: rt::ReplyPort<'_>, port: PortName) -> Result<PortArg> {
        self.node.port_for(self.node.uids(port)).map(PortArg::move_send)
    }
}

impl fs::Server for Serving<'_> {
    fn file_check_access(&mut self, _reply: rt::ReplyPort<'_>, port: PortName) -> Result<i32> {
        let uids = self.node.uids(port);
        if uids.contains(&0) {
            return Ok(open::READ | open::WRITE);
        }
        let mode = self.node.mode();
        let bits = if uids.contains(&self.node.owner().0) { mode >> 6 } else { mode };
        Ok(if bits & 0o4 != 0 { open::READ } else { 0 } | if bits & 0o2 != 0 { open::WRITE } else { 0 })
    }

    /// Its owner and root may; the times are kept for the test.
    fn file_utimes(&mut self, _reply: rt::ReplyPort<'_>, port: PortName, atime: [StatWord; 2], mtime: [StatWord; 2]) -> Result<()> {
        let uids = self.node.uids(port);
        if !uids.contains(&0) && !uids.contains(&self.node.owner().0) {
            return Err(crate::errno::EPERM);
        }
        *self.node.times.lock().unwrap() = Some((atime, mtime));
        Ok(())
    }

    /// Its owner and root may.
    fn file_chmod(&mut self, _reply: rt::ReplyPort<'_>, port: PortName, mode: u32) -> Result<()> {
        let uids = self.node.uids(port);
        if !uids.contains(&0) && !uids.contains(&self.node.owner().0) {
            return Err(crate::errno::EPERM);
        }
        self.node.mode.store(mode & 0o7777, Ordering::Relaxed);
        Ok(())
    }

    /// Root may give the node to anyone; its owner may change its group only (to a group of
    /// theirs, which this stand-in does not track). Each value is checked for what it is: an
    /// owner and a group swapped is a different request, refused or applied as asked.
    fn file_chown(&mut self, _reply: rt::ReplyPort<'_>, port: PortName, owner: u32, group: u32) -> Result<()> {
        let uids = self.node.uids(port);
        let (now, _) = self.node.owner();
        let root = uids.contains(&0);
        if !root && !(uids.contains(&now) && owner == now) {
            return Err(crate::errno::EPERM);
        }
        self.node.owner.store(owner, Ordering::Relaxed);
        self.node.group.store(group, Ordering::Relaxed);
        Ok(())
    }
}
