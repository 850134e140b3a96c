//! The boot server's port: the next task's bootstrap port, and later the control port of
//! `/dev/rumpdisk`. It answers `fsys_getpriv`, `fsys_startup`, `fsys_init` (for the boot) and
//! `fsys_getroot`, `fsys_goaway`, `fsys_get_options`, `fsys_syncfs` (for the node), on a thread
//! of its own beside the device threads (with the shutdown notice); the node ports are served
//! on another thread once the server joins the system.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering};
use mach::interfaces::{fsys, process};
use mach::args::Vectors;
use mach::kern::Result;
use mach::mig_rt::{self as rt, PortArg};
use mach::msg::{self, MsgBuf};
use mach::ool::OolMemory;
use mach::port::{PortName, ReceiveRight, SendOnceRight, SendRight};
use mach::sync::Mutex;

use super::{joining, shutdown, start_next};
use crate::backend::Backend;
use crate::device_server::DeviceServer;
use crate::node::{argz_reply, as_trivfs, Nodes};
use crate::settings::Settings;
use crate::errno::{EBUSY, EOPNOTSUPP};
use crate::translator::set_options;

pub use crate::device_server::SpawnThread;

/// The server that started this one (a pci-arbiter, say), when one did.
pub struct Upstream {
    /// This task's own bootstrap port: that server's.
    pub bootstrap: SendRight,
    /// That server's task, from this task's own `fsys_getpriv`: `fsys_init` passed up carries
    /// the process port of that task.
    pub task: SendRight,
}

impl Upstream {
    /// Asks the server behind `bootstrap` for the privileged ports, as the filesystem asks
    /// this one: returns host-priv, the device master it serves, and the server to pass
    /// `fsys_startup` and `fsys_init` up to.
    pub fn contact(bootstrap: SendRight) -> Result<(SendRight, SendRight, Upstream)> {
        let (host_priv, device_master, task) = fsys::fsys_getpriv(bootstrap.name())?;
        Ok((host_priv, device_master, Upstream { bootstrap, task }))
    }
}

/// The boot server's state, shared by every serving thread.
pub struct BootServer<B: Backend + 'static> {
    devices: &'static DeviceServer<B>,
    host_priv: SendRight,
    /// The port it serves (the receive right is in `devices`' port set).
    port: PortName,
    upstream: Option<Upstream>,
    /// The next task's control port, from its `fsys_startup`: its root directory is reached
    /// through it after `fsys_init`.
    next_control: Mutex<Option<SendRight>>,
    /// Whether `fsys_init` came: it is answered once.
    initialised: AtomicBool,
    spawn: SpawnThread,
    /// `/dev/rumpdisk`'s node ports.
    nodes: Nodes<'static, B>,
    /// Where this task's command line is, told to proc after `fsys_init` (`ps` shows it).
    vectors: Vectors,
}

impl<B: Backend + 'static> BootServer<B> {
    /// Makes the boot server's port and serves it on a thread from `spawn` for the task's life;
    /// with `next_task`, makes it that task's bootstrap port and resumes the task. The work
    /// after `fsys_init` runs on a thread from `spawn`. `settings` answer and apply `fsysopts
    /// /dev/rumpdisk`.
    pub fn start(
        devices: &'static DeviceServer<B>,
        host_priv: SendRight,
        upstream: Option<Upstream>,
        next_task: Option<PortName>,
        spawn: SpawnThread,
        settings: &'static dyn Settings,
        vectors: Vectors,
    ) -> Result<&'static BootServer<B>> {
        let port = ReceiveRight::new()?;
        // Node ports say the task's own name as their filesystem id: a freestanding task has no
        // process id.
        let nodes = Nodes::new(devices, port.name(), settings, mach::sys::mach_task_self())?;
        let server = BootServer {
            nodes,
            devices,
            host_priv,
            port: port.name(),
            upstream,
            next_control: Mutex::new(None),
            initialised: AtomicBool::new(false),
            spawn,
            vectors,
        };
        // Every serving thread and the joining thread borrow it for the task's whole life.
        let server: &'static BootServer<B> = Box::leak(Box::new(server));
        if let Some(next_task) = next_task {
            // Its first request waits on the port until the port is served, a moment later.
            start_next(next_task, &port)?;
        }
        devices.serve_port(port, Box::new(move |request: &[u8], reply: &mut [u8]| server.demux(request, reply)))?;
        // The boot port (and later the shutdown notice) on a thread of its own: it answers
        // even while every device thread waits on a drive.
        if devices.claim_others_thread() {
            spawn(Box::new(move || {
                let ended = devices.serve_others();
                log::error!("rumpdisk: serving the boot port ended: {ended:?}");
            }))?;
        }
        Ok(server)
    }

    /// The port the next task's bootstrap right and the node's translator right are made from.
    pub fn port(&self) -> PortName {
        self.port
    }

    fn demux(&'static self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        let demuxed = fsys::demux(&mut Serving(self), request, reply);
        as_trivfs(request, reply, demuxed)
    }

    /// After `fsys_init` (on a thread of its own, so the serving threads stay free to answer
    /// the disk reads the filesystem needs for the lookups here): passes `fsys_init` up, joins
    /// the running system, then answers, as upstream's libmachdev does. The order is what
    /// the shutdown depends on: the filesystem asks startup for its own shutdown notice only
    /// after this answer, and startup notifies the last asker first, so the filesystem writes
    /// its clean superblock before this server's final flush.
    fn initialise(&'static self, reply: InitReply, proc_server: SendRight, auth: SendRight) {
        if let Some(upstream) = &self.upstream {
            // The boot goes on without it; the server above misses proc and auth.
            if let Err(error) = pass_init_up(upstream, &proc_server, &auth) {
                log::warn!("rumpdisk: fsys_init not passed up to the server that started this one: {error:?}");
            }
        }
        // proc already knows this task (the filesystem made it its child and marked it
        // started); what it lacks is the command line, which upstream's boot servers give it
        // (glibc's `_hurd_proc_init`), so that `ps` shows them. A freestanding task serves no
        // message port for signals: nothing more is registered.
        let Vectors { argv, envp } = self.vectors;
        // vm_address_t is an address of the target's width, as usize is.
        if let Err(error) = process::proc_set_arg_locations(proc_server.name(), argv as _, envp as _) {
            log::warn!("rumpdisk: proc does not know this task's command line: {error:?}");
        }
        drop(proc_server);
        // The node reauthenticates its clients with it (`io_reauthenticate`).
        self.nodes.authenticate_with(auth);
        self.join();
        reply.send(Ok(()));
    }

    /// What upstream does after `_hurd_init`. Each failure leaves a boot that runs: without
    /// the node, the disks are reached only through the root filesystem's own device; without
    /// the startup server, the system neither crashes with this task nor syncs it at shutdown.
    fn join(&'static self) {
        let Some(fs_control) = self.next_control.lock().take() else {
            log::warn!("rumpdisk: fsys_init before fsys_startup: no root filesystem to join");
            return;
        };
        let root = match joining::root_directory(fs_control.name()) {
            Ok(root) => root,
            Err(error) => return log::warn!("rumpdisk: no root directory from the filesystem: {error:?}"),
        };
        match joining::sit_on_node(root.name(), joining::DEVICE_NODE, self.port) {
            Ok(node) => {
                self.nodes.sit_on(node);
                let nodes = &self.nodes;
                // Served before it is logged: the log's arguments are not evaluated when it is off.
                let serve = move || {
                    let ended = nodes.serve();
                    log::warn!("rumpdisk: serving /dev/rumpdisk's nodes ended: {ended:?}");
                };
                if let Err(error) = (self.spawn)(Box::new(serve)) {
                    log::warn!("rumpdisk: /dev/rumpdisk's nodes are not served: {error:?}");
                }
            }
            Err(error) => log::warn!("rumpdisk: not the translator of /dev/rumpdisk: {error:?}"),
        }
        if let Err(error) = joining::register_essential(root.name(), self.host_priv.name()) {
            log::warn!("rumpdisk: not registered as an essential task: {error:?}");
        }
        let notice = shutdown::serve(self.devices).and_then(|notify| joining::request_shutdown_notice(root.name(), notify));
        if let Err(error) = notice {
            log::warn!("rumpdisk: no shutdown notice, the disks are not flushed at shutdown: {error:?}");
        }
    }
}

/// `fsys_init` passed to the server above, as the filesystem passes it here: with the process
/// port of that server's task, marked started.
fn pass_init_up(upstream: &Upstream, proc_server: &SendRight, auth: &SendRight) -> Result<()> {
    let upstream_proc = process::proc_task2proc(proc_server.name(), upstream.task.name())?;
    if let Err(error) = process::proc_mark_exec(upstream_proc.name()) {
        log::warn!("rumpdisk: the server above not marked started: {error:?}");
    }
    fsys::fsys_init(upstream.bootstrap.name(), PortArg::copy_send(upstream_proc.name()), auth.name())
}

/// The deferred answer to `fsys_init`.
struct InitReply {
    port: SendOnceRight,
    disposition: u32,
}

impl InitReply {
    fn send(self, result: Result<()>) {
        let mut buf = MsgBuf::<{ fsys::fsys_init::reply::MAX_SIZE }>::new();
        // The message carries the right away: from here the kernel owns it.
        let port = self.port.into_name();
        let sent = fsys::fsys_init::reply::encode(buf.as_bytes_mut(), port, self.disposition, result)
            .and_then(|size| msg::send(buf.as_bytes_mut(), size, None));
        if let Err(error) = sent {
            log::warn!("rumpdisk: fsys_init reply not sent: {error:?}");
            msg::destroy_unsent(buf.as_bytes()); // the dead reply name is still ours
        }
    }
}

/// One request's view of the boot server (the generated trait takes `&mut self`).
struct Serving<B: Backend + 'static>(&'static BootServer<B>);

impl<B: Backend + 'static> fsys::Server for Serving<B> {
    fn fsys_getpriv(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName) -> Result<(PortArg, PortArg, PortArg)> {
        let task = PortName::new(mach::sys::mach_task_self());
        Ok((
            PortArg::copy_send(self.0.host_priv.name()),
            // Device opens of the next task come here; foreign names go on to the kernel.
            PortArg::make_send(self.0.devices.master().name()),
            // This task, not the caller's: the filesystem makes it its child in proc and
            // passes fsys_init here with its process port.
            PortArg::copy_send(task),
        ))
    }

    fn fsys_startup(&mut self, _reply: rt::ReplyPort<'_>, _bootstrap: PortName, openflags: i32, control_port: SendRight) -> Result<PortArg> {
        let realnode = match &self.0.upstream {
            // The server above keeps a right to the filesystem's control port too.
            Some(upstream) => fsys::fsys_startup(upstream.bootstrap.name(), openflags, PortArg::copy_send(control_port.name()))
                .map(PortArg::move_send)
                .unwrap_or_else(|error| {
                    log::warn!("rumpdisk: fsys_startup not passed up to the server that started this one: {error:?}");
                    PortArg::copy_send(PortName::NULL)
                }),
            // The root filesystem sits on no node.
            None => PortArg::copy_send(PortName::NULL),
        };
        *self.0.next_control.lock() = Some(control_port);
        Ok(realnode)
    }

    fn fsys_init(&mut self, reply: rt::ReplyPort<'_>, _fsys: PortName, proc_server: SendRight, auth_handle: SendRight) -> Result<()> {
        if self.0.initialised.swap(true, Ordering::AcqRel) {
            return Err(EOPNOTSUPP);
        }
        let disposition = reply.disposition();
        let reply = InitReply { port: reply.defer(), disposition };
        let server = self.0;
        if let Err(error) = (server.spawn)(Box::new(move || server.initialise(reply, proc_server, auth_handle))) {
            // The reply right went with the job: the filesystem sees the server die.
            log::error!("rumpdisk: no thread for fsys_init: {error:?}");
        }
        Ok(())
    }

    fn fsys_getroot(
        &mut self,
        _reply: rt::ReplyPort<'_>,
        _fsys: PortName,
        dotdot_node: SendRight,
        gen_uids: OolMemory,
        gen_gids: OolMemory,
        flags: i32,
    ) -> Result<(u32, &[u8], PortArg)> {
        self.0.nodes.open(dotdot_node, &gen_uids, &gen_gids, flags)
    }

    fn fsys_get_options(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName) -> Result<OolMemory> {
        argz_reply(&self.0.nodes.settings().options())
    }

    fn fsys_set_options(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, options: OolMemory, _do_children: i32) -> Result<()> {
        set_options(self.0.nodes.settings(), &options)
    }

    /// `syncfs` of `/dev/rumpdisk`: every open disk's cache flushed.
    fn fsys_syncfs(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, _wait: i32, _do_children: i32) -> Result<()> {
        self.0.devices.core().flush_all()
    }

    fn fsys_get_source(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName) -> Result<&[u8]> {
        Err(EOPNOTSUPP)
    }

    /// The root filesystem's disk server stays for the system's life (as upstream's boot
    /// servers, which never leave their serving loop).
    fn fsys_goaway(&mut self, _reply: rt::ReplyPort<'_>, _fsys: PortName, _flags: i32) -> Result<()> {
        Err(EBUSY)
    }
}
