//! The translator-node role (`settrans -c /dev/rumpdisk /hurd/rumpdisk`): the `fsys_startup`
//! hand-shake with the parent filesystem, then the control port's `fsys_getroot` (the node's
//! root is the device server's master port) and `fsys_goaway`.
//!
//! A lookup of the node (`file_name_lookup("/dev/rumpdisk")`, as storeio's `@/dev/rumpdisk:wd0`
//! does) makes the parent filesystem call `fsys_getroot` on the control port; the answer is
//! `FS_RETRY_NORMAL`, an empty retry name and a send right to the master port, so the caller's
//! `device_open(port, mode, "wd0")` lands in the [`DeviceServer`]. The node serves no io or file
//! interface of its own.
//!
//! The master port opens every disk for writing, with no credential behind it, so the root is
//! handed out only to privileged callers (uid 0 among `gen_uids`); others get `EACCES`.

use mach::interfaces::{fsys, notify};
use mach::kern::{Error, Result};
use mach::mig_rt::{self as rt, PortArg};
use mach::msg;
use mach::ool::OolMemory;
use mach::port::{PortName, ReceiveRight, SendRight};

use crate::backend::Backend;
use crate::device_server::DeviceServer;

/// `enum retry_type` (the Hurd's `hurd_types.h`): use the returned port as it is, looking up the
/// retry name (here empty: nothing) from it.
pub const FS_RETRY_NORMAL: u32 = 1;

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

/// glibc's `_HURD_ERRNO(n)`: the Hurd's errno values as they travel in a `RetCode`.
pub(crate) const fn hurd_errno(n: i32) -> Error {
    Error::from_const(0x4000_0000 | n)
}

/// Permission denied: the caller may not have the root.
pub const EACCES: Error = hurd_errno(13);
/// Devices are open and the goaway did not force.
pub const EBUSY: Error = hurd_errno(16);

/// How serving the control port ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// `fsys_goaway` was accepted (with these flags) and answered: the process should exit.
    GoneAway { flags: i32 },
    /// The parent filesystem let go of the control port (the node was removed, or the parent
    /// died) while no device was open: nobody can reach the translator again, so the process
    /// should exit, as a libtrivfs translator does.
    Orphaned,
    /// Receiving on the control port failed.
    Failed(Error),
}

/// A started translator: its control port, the node it sits on, and the device server its root
/// leads to.
pub struct Translator<'a, B: Backend> {
    devices: &'a DeviceServer<B>,
    /// `None` once a goaway is accepted: destroying it ends the serving loop.
    control: Option<ReceiveRight>,
    /// The node the translator sits on, as the parent opened it (`O_NORW`); released on drop.
    realnode: SendRight,
    gone_away: Option<i32>,
    orphaned: bool,
}

impl<'a, B: Backend> Translator<'a, B> {
    /// The hand-shake: makes the control port and sends `fsys_startup(openflags, control)` on
    /// `bootstrap` (the task's bootstrap port, released here), keeping the node it returns.
    pub fn start(devices: &'a DeviceServer<B>, bootstrap: SendRight, openflags: i32) -> Result<Self> {
        let control = ReceiveRight::new()?;
        let realnode = fsys::fsys_startup(bootstrap.name(), openflags, PortArg::make_send(control.name()))?;
        drop(bootstrap);
        // The parent holds the one send right made (in fsys_startup): told when it goes.
        if let Err(error) = control.request_no_senders(1) {
            log::warn!("rumpdisk: no-senders notification on the control port refused: {error:?}");
        }
        Ok(Translator { devices, control: Some(control), realnode, gone_away: None, orphaned: false })
    }

    /// The control port (the parent filesystem holds a send right to it).
    pub fn control(&self) -> PortName {
        self.control.as_ref().map_or(PortName::NULL, ReceiveRight::name)
    }

    /// The node the translator sits on.
    pub fn realnode(&self) -> &SendRight {
        &self.realnode
    }

    /// Serves the control port on the calling thread until a goaway is accepted (its reply is
    /// sent before this returns) or receiving fails. Every right it held is released.
    pub fn serve(mut self) -> Ended {
        let port = self.control();
        let error = msg::serve(port, &mut |request: &[u8], reply: &mut [u8]| {
            let disposition = match fsys::demux(&mut self, request, reply) {
                rt::Demuxed::UnknownId(_) => notify::demux(&mut self, request, reply).disposition(),
                demuxed => demuxed.disposition(),
            };
            if self.gone_away.is_some() || self.orphaned {
                // The loop sends the goaway's reply, then its receive fails on the dead name.
                self.control = None;
            }
            disposition
        });
        match (self.gone_away, self.orphaned) {
            (Some(flags), _) => Ended::GoneAway { flags },
            (None, true) => Ended::Orphaned,
            (None, false) => Ended::Failed(error),
        }
    }
}

/// The answer to `fsys_getroot` on any control port whose node leads to `devices` (this role's,
/// and the boot server's once it sits on `/dev/rumpdisk`): the master port, for privileged
/// callers only.
pub fn root<B: Backend>(devices: &DeviceServer<B>, dotdot_node: SendRight, gen_uids: &OolMemory) -> Result<(u32, &'static [u8], PortArg)> {
    // Nothing here is looked up relative to the directory above.
    drop(dotdot_node);
    if !privileged(gen_uids) {
        return Err(EACCES);
    }
    Ok((FS_RETRY_NORMAL, b"", PortArg::make_send(devices.master().name())))
}

/// Whether `uids` (an `idarray_t`: native 32-bit words) holds uid 0.
fn privileged(uids: &OolMemory) -> bool {
    uids.as_slice().chunks_exact(4).any(|uid| uid == [0; 4])
}

impl<B: Backend> fsys::Server for Translator<'_, B> {
    fn fsys_getroot(
        &mut self,
        _reply: rt::ReplyPort<'_>,
        _fsys: PortName,
        dotdot_node: SendRight,
        gen_uids: OolMemory,
        _gen_gids: OolMemory,
        _flags: i32,
    ) -> Result<(u32, &[u8], PortArg)> {
        root(self.devices, dotdot_node, &gen_uids)
    }

    fn fsys_goaway(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, flags: i32) -> Result<()> {
        // As trivfs: refuse while in use unless forced. Writes reach the drive before they are
        // answered, and a client's barrier is its own DEV_FLUSH_CACHE, so nothing is synced here.
        if flags & goaway::FORCE == 0 && self.devices.core().open_devices() > 0 {
            return Err(EBUSY);
        }
        self.gone_away = Some(flags);
        Ok(())
    }
}

/// The kernel's notice that the parent let go of the control port.
impl<B: Backend> notify::Server for Translator<'_, B> {
    fn mach_notify_no_senders(&mut self, port: PortName, _mscount: u32) -> Result<()> {
        if port != self.control() {
            return Ok(());
        }
        if self.devices.core().open_devices() == 0 {
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
