//! The translator role (`settrans -c /dev/rumpdisk /hurd/rumpdisk`): the `fsys_startup`
//! hand-shake with the parent filesystem, then the control port — `fsys_getroot` (a node port,
//! see [`crate::node`]), `fsys_goaway`, `fsys_get_options`, `fsys_set_options` — and the node
//! ports, on one thread.
//!
//! A lookup of the node (`file_name_lookup("/dev/rumpdisk", O_READ | O_WRITE)`, as storeio's
//! `@/dev/rumpdisk:wd0` does) makes the parent filesystem call `fsys_getroot` on the control
//! port; the answer is `FS_RETRY_NORMAL`, an empty retry name and a new node port, so the
//! caller's `device_open(port, mode, "wd0")` lands in the [`DeviceServer`].

use alloc::vec::Vec;
use mach::interfaces::{fsys, notify};
use mach::kern::{Error, Result};
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::ool::OolMemory;
use mach::port::{PortName, ReceiveRight, SendRight};

use crate::backend::Backend;
use crate::device_server::DeviceServer;
use crate::errno::{EBUSY, EOPNOTSUPP};
use crate::node::{argz_reply, as_trivfs, Nodes};
use crate::settings::Settings;

/// `openflags` of `fsys_startup`: the Hurd's `O_NORW` (the translator neither reads nor writes
/// the node it sits on), as the C rumpdisk asks through libmachdev's `trivfs_startup`.
pub const O_NORW: i32 = 0;

/// `fsys_goaway` flags (the Hurd's `hurd_types.h`).
pub mod goaway {
    /// Do not wait for outstanding requests.
    pub const NOWAIT: i32 = 0x1;
    /// Do not sync before going away.
    pub const NOSYNC: i32 = 0x2;
    /// Go away even while in use.
    pub const FORCE: i32 = 0x4;
    /// Remove the translator from the node too.
    pub const UNLINK: i32 = 0x8;
    /// Ask the translators below to go away too.
    pub const RECURSE: i32 = 0x10;
}

/// How serving the control port ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// `fsys_goaway` was accepted (with these flags) and answered: the process should exit.
    GoneAway { flags: i32 },
    /// The parent filesystem let go of the control port (the node was removed, or the parent
    /// died) while no device or node port was open: nobody can reach the translator again, so the process
    /// should exit, as a libtrivfs translator does.
    Orphaned,
    /// Receiving on the control port failed.
    Failed(Error),
}

/// A started translator: its control port, the node ports (with the node it sits on), and
/// the device server they lead to.
pub struct Translator<'a, B: Backend> {
    devices: &'a DeviceServer<B>,
    /// `None` once serving ended (the port destroyed).
    control: Option<ReceiveRight>,
    nodes: Nodes<'a, B>,
    gone_away: Option<i32>,
    orphaned: bool,
}

impl<'a, B: Backend> Translator<'a, B> {
    /// The hand-shake: makes the control port and sends `fsys_startup(openflags, control)` on
    /// `bootstrap` (the task's bootstrap port, released here), sitting on the node it returns.
    /// `settings` answer and apply `fsysopts`; `fsid` is what the node's `io_stat` says.
    pub fn start(devices: &'a DeviceServer<B>, bootstrap: SendRight, openflags: i32, settings: &'a dyn Settings, fsid: u32) -> Result<Self> {
        let control = ReceiveRight::new()?;
        let nodes = Nodes::new(devices, control.name(), settings, fsid)?;
        nodes.receive_also(&control)?;
        let realnode = fsys::fsys_startup(bootstrap.name(), openflags, PortArg::make_send(control.name()))?;
        drop(bootstrap);
        nodes.sit_on(realnode);
        // The parent holds the one send right made (in fsys_startup): told when it goes.
        if let Err(error) = control.request_no_senders(1) {
            log::warn!("rumpdisk: no-senders notification on the control port refused: {error:?}");
        }
        Ok(Translator { devices, control: Some(control), nodes, gone_away: None, orphaned: false })
    }

    /// The control port (the parent filesystem holds a send right to it).
    pub fn control(&self) -> PortName {
        self.control.as_ref().map_or(PortName::NULL, ReceiveRight::name)
    }

    /// The auth server, for `io_reauthenticate` on the node (a translator's is glibc's).
    pub fn authenticate_with(&self, auth: SendRight) {
        self.nodes.authenticate_with(auth);
    }

    /// The node the translator sits on.
    pub fn realnode(&self) -> Option<&SendRight> {
        self.nodes.underlying()
    }

    /// Serves the control port and the node ports on the calling thread until a goaway is
    /// accepted (its reply is sent before this returns) or receiving fails. Every right it held
    /// is released.
    pub fn serve(mut self) -> Ended {
        let error = msg::serve(self.nodes.set_name(), &mut self);
        // The node ports and the control port die with the translator.
        self.nodes.close();
        self.control = None;
        match (self.gone_away, self.orphaned) {
            (Some(flags), _) => Ended::GoneAway { flags },
            (None, true) => Ended::Orphaned,
            (None, false) => Ended::Failed(error),
        }
    }

    /// Whether clients still use the translator: devices open, or node ports alive.
    fn in_use(&self) -> bool {
        self.devices.core().open_devices() > 0 || self.nodes.count() > 0
    }
}

/// Requests on the control port to the translator, the rest to the node ports.
impl<B: Backend> msg::Demux for Translator<'_, B> {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        let to_control = msg::Header::read(request).is_some_and(|header| header.local == self.control());
        if !to_control {
            return self.nodes.demux(request, reply);
        }
        let demuxed = match fsys::demux(self, request, reply) {
            rt::Demuxed::UnknownId(_) => notify::demux(self, request, reply),
            demuxed => demuxed,
        };
        as_trivfs(request, reply, demuxed)
    }

    /// Gone away, or nobody can reach the translator any more.
    fn finished(&self) -> bool {
        self.gone_away.is_some() || self.orphaned
    }
}

impl<B: Backend> fsys::Server for Translator<'_, B> {
    fn fsys_getroot(
        &mut self,
        _reply: rt::ReplyPort<'_>,
        _fsys: PortName,
        dotdot_node: SendRight,
        gen_uids: OolMemory,
        gen_gids: OolMemory,
        flags: i32,
    ) -> Result<(u32, &[u8], PortArg)> {
        self.nodes.open(dotdot_node, &gen_uids, &gen_gids, flags)
    }

    fn fsys_goaway(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, flags: i32) -> Result<()> {
        // As trivfs: refuse while in use unless forced. Writes reach the drive before they are
        // answered, and a client's barrier is its own DEV_FLUSH_CACHE, so nothing is synced here.
        if flags & goaway::FORCE == 0 && self.in_use() {
            return Err(EBUSY);
        }
        self.gone_away = Some(flags);
        Ok(())
    }

    fn fsys_get_options(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName) -> Result<OolMemory> {
        argz_reply(&self.nodes.settings().options())
    }

    fn fsys_set_options(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, options: OolMemory, _do_children: i32) -> Result<()> {
        set_options(self.nodes.settings(), &options)
    }

    /// `syncfs` of the translator: every open disk's cache flushed (see the node's `file_sync`).
    fn fsys_syncfs(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, _wait: i32, _do_children: i32) -> Result<()> {
        self.devices.core().flush_all()
    }

    /// No source to name, as libtrivfs's default (the C rumpdisk names none).
    fn fsys_get_source(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName) -> Result<&[u8]> {
        Err(EOPNOTSUPP)
    }
}

/// `fsys_set_options` with `argz` (words each ended by a NUL; a missing last NUL is forgiven).
pub fn set_options(settings: &dyn Settings, argz: &OolMemory) -> Result<()> {
    let argz = argz.as_slice();
    let argz = argz.strip_suffix(&[0]).unwrap_or(argz);
    let words: Vec<&[u8]> = if argz.is_empty() { Vec::new() } else { argz.split(|&b| b == 0).collect() };
    settings.set_options(&words)
}

/// The kernel's notice that the parent let go of the control port.
impl<B: Backend> notify::Server for Translator<'_, B> {
    fn mach_notify_no_senders(&mut self, port: PortName, _mscount: u32) -> Result<()> {
        if port != self.control() {
            return Ok(());
        }
        if !self.in_use() {
            self.orphaned = true;
        } else {
            // Its clients still hold device ports: keep serving them.
            log::info!("rumpdisk: the node's filesystem let go of the translator; devices are still open");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
