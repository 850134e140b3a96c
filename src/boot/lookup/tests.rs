//! Lookups through the retries a filesystem answers, against a stand-in directory tree: `/dev`
//! is another filesystem (a retry from its root), `/servers/startup` a link to
//! `/hurd/startup` (a magical retry from the root).

use super::*;
use crate::errno::hurd_errno;
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::port::{PortSet, ReceiveRight};
use mach::sim::Task;

struct Tree {
    root: ReceiveRight,
    dev: ReceiveRight,
    node: ReceiveRight,
    /// A directory whose entry retries for ever.
    looping: ReceiveRight,
}

impl fs::Server for Tree {
    fn dir_lookup(&mut self, _reply: rt::ReplyPort<'_>, dir: PortName, name: &[u8], _flags: i32, _mode: u32) -> Result<(u32, &[u8], PortArg)> {
        let root = dir == self.root.name();
        match name {
            b"dev/rumpdisk" if root => Ok((FS_RETRY_NORMAL, b"rumpdisk", PortArg::make_send(self.dev.name()))),
            b"rumpdisk" if dir == self.dev.name() => Ok((FS_RETRY_NORMAL, b"", PortArg::make_send(self.node.name()))),
            b"servers/startup" if root => Ok((FS_RETRY_MAGICAL, b"/hurd/startup", PortArg::copy_send(PortName::NULL))),
            b"hurd/startup" if root => Ok((FS_RETRY_NORMAL, b"", PortArg::make_send(self.node.name()))),
            b"loop" => Ok((FS_RETRY_NORMAL, b"loop", PortArg::make_send(self.looping.name()))),
            b"reauth" if root => Ok((2, b"", PortArg::make_send(self.node.name()))),
            _ => Err(hurd_errno(2)),
        }
    }
}

impl msg::Demux for Tree {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        fs::demux(self, request, reply).disposition()
    }
}

#[test]
fn retries_from_another_filesystem_and_absolute_links_are_followed() {
    let tree = Tree { root: ReceiveRight::new().unwrap(), dev: ReceiveRight::new().unwrap(), node: ReceiveRight::new().unwrap(), looping: ReceiveRight::new().unwrap() };
    let root_right = tree.root.make_send().unwrap();
    let (root, node) = (root_right.name(), tree.node.name());
    let set = PortSet::new().unwrap();
    for port in [&tree.root, &tree.dev, &tree.looping] {
        set.insert(port).unwrap();
    }
    let set = set.into_name();
    Task::current().spawn(move || msg::serve(set, &mut { tree }));

    assert_eq!(lookup(root, b"/dev/rumpdisk", crate::hurd_fs::open::NOTRANS).map(|port| port.name()), Ok(node));
    assert_eq!(lookup(root, b"//servers/startup", 0).map(|port| port.name()), Ok(node));
    assert_eq!(lookup(root, b"/loop", 0).map(|port| port.name()), Err(ELOOP));
    assert_eq!(lookup(root, b"/reauth", 0).map(|port| port.name()), Err(EOPNOTSUPP));
    assert_eq!(lookup(root, b"/none", 0).map(|port| port.name()), Err(hurd_errno(2)));
}
