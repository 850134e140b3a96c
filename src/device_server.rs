//! The generated `device` interface over the server core: device ports ↔ devices, message
//! data ↔ slices, `DEV_FLUSH_CACHE` replies deferred into the flush merger, and opens the
//! backend does not take forwarded to the upstream device master.
//!
//! One [`DeviceServer`] is shared by every serving thread; each thread serves through its own
//! [`Handle`] (the generated trait takes `&mut self` and returns inline data by reference).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use mach::interfaces::device::{self as iface, device_set_status};
use mach::interfaces::{mach_i386, notify};
use mach::kern::{Result, KERN_INVALID_ARGUMENT, MIG_NO_REPLY};
use mach::mig_rt::{self as rt, Array, PortArg};
use mach::msg::{self, MsgBuf};
use mach::ool::OolMemory;
use mach::port::{PortName, PortSet, ReceiveRight, SendOnceRight, SendRight};
use mach::sync::Mutex;
use spin::Once;

use crate::backend::Backend;
use crate::device::{Error, D_INVALID_OPERATION, D_INVALID_SIZE, D_NO_SUCH_DEVICE};
use crate::flush::Waiter;
use crate::server::{Closed, DeviceId, Opened, Server};

/// Record numbers as the target's ABI carries them (`recnum_t`: 64-bit on x86_64).
#[cfg(target_pointer_width = "64")]
type RecNum = u64;
#[cfg(not(target_pointer_width = "64"))]
type RecNum = u32;

/// A record number as the core takes it.
#[allow(clippy::useless_conversion)] // `RecNum` is u32 on i686
fn record(recnum: RecNum) -> u64 {
    recnum.into()
}

/// Largest inline read (`io_buf_ptr_inband_t`).
const INBAND_MAX: usize = 128;

/// A `device_set_status` reply kept until its flush ends.
pub struct DeferredReply {
    port: SendOnceRight,
    disposition: u32,
}

impl Waiter for DeferredReply {
    fn answer(self, result: core::result::Result<(), Error>) {
        let mut buf = MsgBuf::<{ device_set_status::reply::MAX_SIZE }>::new();
        // The message carries the right away: from here the kernel owns it.
        let port = self.port.into_name();
        let sent = device_set_status::reply::encode(buf.as_bytes_mut(), port, self.disposition, result)
            .and_then(|size| msg::send(buf.as_bytes_mut(), size, None));
        if let Err(error) = sent {
            // The client died: its reply right (now a dead name) is still ours to release.
            log::debug!("rumpdisk: flush reply not sent: {error:?}");
            msg::destroy_unsent(buf.as_bytes());
        }
    }
}

/// Starts a job on a new thread of this task: `mach::thread::spawn` in a freestanding task,
/// `std::thread` under glibc (the library is `no_std` and cannot start glibc's threads).
pub type SpawnThread = fn(Box<dyn FnOnce() + Send>) -> Result<()>;

/// How the device threads grow (see [`DeviceServer::grow`]): the bound, and what starts one
/// more device thread.
struct Growth {
    max: usize,
    start: Box<dyn Fn() -> Result<()> + Send + Sync>,
}

/// The device server: the core, the ports it serves on, and where foreign opens go.
pub struct DeviceServer<B: Backend> {
    core: Server<B, DeferredReply>,
    /// Receives on the master port and every device port.
    port_set: PortSet,
    /// Receives on the ports of other interfaces ([`DeviceServer::serve_port`]): served by a
    /// thread of their own ([`DeviceServer::serve_others`]), so that device requests that take
    /// every device thread (slow flushes, forwarded opens) never hold them up.
    other_set: PortSet,
    /// Whether a thread serves `other_set`.
    others_served: AtomicBool,
    /// Threads serving `port_set`, and how many of them are inside a request or a flush.
    threads: AtomicUsize,
    busy: AtomicUsize,
    growth: Once<Growth>,
    /// The port `device_open` is sent to (the device master this server hands out).
    master: ReceiveRight,
    /// Device ports by name.
    devices: Mutex<BTreeMap<PortName, DevicePort>>,
    /// Where opens of names the backend does not take are forwarded.
    upstream: Option<SendRight>,
    /// Ports of other interfaces served by the same threads (the boot server's bootstrap port
    /// and its shutdown-notification port), each with its demux. Filled once each, read
    /// without a lock on every request.
    other_ports: [Once<(ReceiveRight, PortDemux)>; OTHER_PORTS],
    /// Work that waits until the server first has nothing to do (see [`DeviceServer::when_idle`]).
    idle_jobs: Mutex<Vec<IdleJob>>,
    /// Whether a client has opened a device here: until then the server is still starting up.
    opened_any: AtomicBool,
    /// Requests served since the first open while idle jobs waited (see [`IDLE_JOB_PATIENCE`]).
    served_while_jobs_wait: AtomicUsize,
    /// Requests taken by any serving thread, and times a thread started the gathered flushes
    /// (see `idle`).
    taken: AtomicUsize,
    flush_starts: AtomicUsize,
    /// The host-priv port once [`DeviceServer::keep_in_memory`] has it: every serving thread
    /// wires itself with it as it starts, every device port becomes a user device with it.
    host_priv: Once<SendRight>,
}

/// How many ports of other interfaces [`DeviceServer::serve_port`] takes.
pub const OTHER_PORTS: usize = 2;

/// Requests after the first open that idle jobs wait for an idle moment at most: a client
/// streaming requests one after another never leaves the server idle, and the console's held
/// records and the extra threads must not wait for ever.
pub const IDLE_JOB_PATIENCE: usize = 64;

/// Serves one request of another interface (see [`DeviceServer::serve_port`]).
pub type PortDemux = Box<dyn Fn(&[u8], &mut [u8]) -> msg::Disposition + Send + Sync>;
/// Work for an idle moment (see [`DeviceServer::when_idle`]).
pub type IdleJob = Box<dyn FnOnce() + Send>;

impl<B: Backend> DeviceServer<B> {
    pub fn new(backend: B, upstream: Option<SendRight>) -> Result<Self> {
        let port_set = PortSet::new()?;
        let master = ReceiveRight::new()?;
        port_set.insert(&master)?;
        Ok(DeviceServer {
            core: Server::new(backend),
            port_set,
            other_set: PortSet::new()?,
            others_served: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            growth: Once::new(),
            master,
            devices: Mutex::new(BTreeMap::new()),
            upstream,
            other_ports: [Once::new(), Once::new()],
            idle_jobs: Mutex::new(Vec::new()),
            opened_any: AtomicBool::new(false),
            served_while_jobs_wait: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
            flush_starts: AtomicUsize::new(0),
            host_priv: Once::new(),
        })
    }

    pub fn core(&self) -> &Server<B, DeferredReply> {
        &self.core
    }

    /// The master port's receive right (clients get send rights made from it).
    pub fn master(&self) -> &ReceiveRight {
        &self.master
    }

    /// Serves `port` too, with `demux`, on the thread of [`DeviceServer::serve_others`]:
    /// [`OTHER_PORTS`] ports at most.
    pub fn serve_port(&self, port: ReceiveRight, demux: PortDemux) -> Result<()> {
        let name = port.name();
        let mut pending = Some((port, demux));
        for slot in &self.other_ports {
            // Racing callers each fill a different slot: a slot another caller filled leaves
            // `pending` as it was.
            slot.call_once(|| pending.take().expect("taken only here"));
            if pending.is_none() {
                // Into the set only once its demux is in place, so no request finds it missing.
                let served = slot.get().map(|(port, _)| port).filter(|port| port.name() == name);
                return served.map_or(Err(Error::from_const(KERN_INVALID_ARGUMENT)), |port| self.other_set.insert(port));
            }
        }
        Err(Error::from_const(KERN_INVALID_ARGUMENT))
    }

    /// Runs `job` once a client has opened a device, no request waits and runnable clients had
    /// the processor first: for work that must not delay the first answers (starting more
    /// serving threads, opening the console, say). At boot the next task's `fsys_getpriv` and
    /// first `device_open` come one after the other; an idle moment between them is not the
    /// end of the start-up. Without an idle moment, the job runs before the
    /// [`IDLE_JOB_PATIENCE`]th request after the first open.
    pub fn when_idle(&self, job: IdleJob) {
        self.idle_jobs.lock().push(job);
    }

    fn has_idle_jobs(&self) -> bool {
        self.opened_any.load(Ordering::Relaxed) && !self.idle_jobs.lock().is_empty()
    }

    fn run_idle_jobs(&self) {
        let jobs = core::mem::take(&mut *self.idle_jobs.lock());
        for job in jobs {
            job();
        }
    }

    /// Keeps the server out of the pager's way, as upstream's rumpdisk does, since it may drive
    /// the disk the default pager swaps to: wires the task's memory (what is mapped now and what
    /// is mapped later) and the calling thread; from here on every serving thread is wired as it
    /// starts and every new device port is made a user device (see [`mach::wire`]). On failure
    /// nothing is kept, and the caller stops as upstream does ("cannot lock all memory").
    pub fn keep_in_memory(&self, host_priv: SendRight) -> Result<()> {
        mach::wire::wire_task(host_priv.name())?;
        mach::wire::wire_this_thread(host_priv.name())?;
        self.host_priv.call_once(|| host_priv);
        Ok(())
    }

    /// Wires the calling thread, which is about to serve, once the server keeps in memory.
    fn wire_serving_thread(&self) {
        let Some(host_priv) = self.host_priv.get() else { return };
        if let Err(error) = mach::wire::wire_this_thread(host_priv.name()) {
            log::warn!("rumpdisk: a serving thread is not wired ({error:?}): it may wait for memory only the pager frees");
        }
    }

    /// Makes the new device port `port` a user device (see [`mach::wire::mark_user_device`]) once
    /// the server keeps in memory. A kernel without the call is said once; the port serves as
    /// before, with `device_write` data that may be paged out under it, as upstream warns.
    fn mark_user_device(&self, port: &ReceiveRight) {
        static SAID: AtomicBool = AtomicBool::new(false);
        let Some(host_priv) = self.host_priv.get() else { return };
        if let Err(error) = mach::wire::mark_user_device(host_priv.name(), port.name()) {
            if !SAID.swap(true, Ordering::Relaxed) {
                log::warn!("rumpdisk: device ports are not user devices ({error:?}): swapping to a disk served here is unreliable");
            }
        }
    }

    pub fn handle(&self) -> Handle<'_, B> {
        Handle { server: self, inband: [0; INBAND_MAX], status: [0; 2], gathering: Gathering::default(), counted: false }
    }

    /// Serves device requests on the calling thread until receiving fails; several threads may
    /// serve, and more are started as they are needed once [`DeviceServer::grow`] allows it.
    pub fn serve(&self) -> Error {
        self.wire_serving_thread();
        self.threads.fetch_add(1, Ordering::AcqRel);
        let ended = msg::serve(self.port_set.name(), &mut Handle { counted: true, ..self.handle() });
        self.threads.fetch_sub(1, Ordering::AcqRel);
        ended
    }

    /// Serves the ports of other interfaces ([`DeviceServer::serve_port`]) on the calling
    /// thread until receiving fails: the boot server's port and its shutdown notice, which
    /// must answer even while every device thread waits on a drive.
    pub fn serve_others(&self) -> Error {
        self.wire_serving_thread();
        msg::serve(self.other_set.name(), &mut self.handle())
    }

    /// Whether the caller is the one to start the thread of [`DeviceServer::serve_others`]
    /// (`true` once).
    pub fn claim_others_thread(&self) -> bool {
        !self.others_served.swap(true, Ordering::AcqRel)
    }

    /// From now on, when a device thread takes a request (or starts flushes) and leaves no
    /// thread waiting for the next one, another is started with `spawn`, up to `max` device
    /// threads: a forwarded open, a slow flush or a shutdown sync holds one thread, never every
    /// device request of the system. Threads started so stay for the task's life.
    pub fn grow(&'static self, spawn: SpawnThread, max: usize)
    where
        B: 'static,
    {
        let start = move || {
            spawn(Box::new(move || {
                self.wire_serving_thread();
                let ended = msg::serve(self.port_set.name(), &mut Handle { counted: true, ..self.handle() });
                self.threads.fetch_sub(1, Ordering::AcqRel);
                log::error!("rumpdisk: a serving thread ended: {ended:?}");
            }))
        };
        self.growth.call_once(|| Growth { max, start: Box::new(start) });
    }

    /// Threads serving device requests now.
    pub fn serving_threads(&self) -> usize {
        self.threads.load(Ordering::Acquire)
    }

    /// A device thread starts work (a request, or flushes): counted busy until [`Busy`] drops,
    /// and when it leaves no device thread waiting, another is started if the bound allows.
    fn busy(&self) -> Busy<'_, B> {
        let busy = self.busy.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(growth) = self.growth.get() {
            let threads = self.threads.load(Ordering::Acquire);
            // Counted before it starts, so that two busy threads do not both start one.
            let grown = busy >= threads
                && threads < growth.max
                && self.threads.compare_exchange(threads, threads + 1, Ordering::AcqRel, Ordering::Acquire).is_ok();
            if grown {
                if let Err(error) = (growth.start)() {
                    self.threads.fetch_sub(1, Ordering::AcqRel);
                    log::warn!("rumpdisk: no thread for more device requests: {error:?}");
                }
            }
        }
        Busy(self)
    }

    fn device(&self, port: PortName) -> Result<DeviceId> {
        self.devices.lock().get(&port).map(|open| open.device).ok_or(D_NO_SUCH_DEVICE)
    }

    /// `device_open` of `name` on a master this server serves (its master port, or a
    /// translator's node port), answered on `reply`.
    pub fn open_for(&self, reply: &rt::ReplyPort<'_>, name: &[u8], mode: u32) -> Result<PortArg> {
        if !reply.name().is_valid() {
            // Nobody would get the device's send right, so nobody could close it: open
            // nothing, answer nothing (upstream's `MIG_NO_REPLY`).
            return Err(Error::from_const(MIG_NO_REPLY));
        }
        self.open(name, mode)
    }

    fn open(&self, name: &[u8], mode: u32) -> Result<PortArg> {
        // No lock is held across the backend's open: it may be slow (the rump kernel starts
        // on the first), and every other request goes on meanwhile.
        let ours = match self.core.open(name, mode) {
            Opened::Local { device } => return self.send_right(device).map(PortArg::move_send),
            Opened::Forward => D_NO_SUCH_DEVICE,
            Opened::Refused(error) => error,
        };
        // Any error of ours falls back to the upstream master, as libmachdev's
        // `ds_device_open` does: a name the kernel also serves still opens there.
        let Some(upstream) = &self.upstream else { return Err(ours) };
        match iface::device_open(upstream.name(), mode, name) {
            Ok(device) => Ok(PortArg::move_send(device)),
            // Not the kernel's either. Unlike libmachdev, our own refusal of our own name
            // stays the answer (`D_READ_ONLY` makes libstore retry read-only; the kernel's
            // `D_NO_SUCH_DEVICE` would end its open).
            Err(theirs) => Err(if ours == D_NO_SUCH_DEVICE { theirs } else { ours }),
        }
    }

    /// A send right to the port of `device`, which the caller's open counts in: every open of
    /// one device shares its port, made by whichever open gets here first. On failure the
    /// caller's open is dropped again.
    fn send_right(&self, device: DeviceId) -> Result<SendRight> {
        let mut devices = self.devices.lock();
        let existing = devices.values_mut().find(|open| open.device == device).map(|open| {
            let send = open.port.make_send()?;
            open.sends_made = open.sends_made.wrapping_add(1);
            Ok(send)
        });
        let made = existing.unwrap_or_else(|| {
            let port = ReceiveRight::new()?;
            // Before any client has a send right: no message reaches it as an ordinary port.
            self.mark_user_device(&port);
            self.port_set.insert(&port)?;
            let send = port.make_send()?;
            // When the last send right dies (its clients ended without closing), the opens
            // are closed for them (see `no_senders`).
            if let Err(error) = port.request_no_senders(1) {
                log::warn!("rumpdisk: no-senders notification refused ({error:?}): a client that dies keeps its open");
            }
            devices.insert(port.name(), DevicePort { port, device, sends_made: 1 });
            self.opened_any.store(true, Ordering::Relaxed);
            Ok(send)
        });
        if made.is_err() {
            self.drop_open(&mut devices, device);
        }
        made
    }

    fn close(&self, port: PortName) -> Result<()> {
        let mut devices = self.devices.lock();
        let device = devices.get(&port).map(|open| open.device).ok_or(D_NO_SUCH_DEVICE)?;
        self.drop_open(&mut devices, device);
        Ok(())
    }

    /// `MACH_NOTIFY_NO_SENDERS` on a device port: every client holding it is gone (or closed
    /// its last right) without `device_close`, so its opens are closed here, as libports-based
    /// servers do. `mscount` below the send rights this server made means one was made after
    /// the kernel sent the notice: a client holds it, so ask again.
    fn no_senders(&self, port: PortName, mscount: u32) {
        let mut devices = self.devices.lock();
        let Some(open) = devices.get(&port) else { return };
        if open.port.no_senders_is_stale(mscount, open.sends_made) {
            return;
        }
        let device = open.device;
        while self.core.close(device) == Ok(Closed::StillOpen) {}
        devices.remove(&port);
    }

    /// Drops one open of `device`; the last one takes its port away (clients' rights die).
    fn drop_open(&self, devices: &mut BTreeMap<PortName, DevicePort>, device: DeviceId) {
        if self.core.close(device) == Ok(Closed::Last) {
            // Destroying the receive right takes the port out of the set.
            devices.retain(|_, open| open.device != device);
        }
    }
}

/// A device thread at work (see [`DeviceServer::busy`]).
struct Busy<'a, B: Backend>(&'a DeviceServer<B>);

impl<B: Backend> Drop for Busy<'_, B> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A device's port and the device it serves.
struct DevicePort {
    port: ReceiveRight,
    device: DeviceId,
    /// Send rights made from `port` (one per open), to tell a stale no-senders notice.
    sends_made: u32,
}

/// One serving thread's view of the server.
pub struct Handle<'a, B: Backend> {
    server: &'a DeviceServer<B>,
    inband: [u8; INBAND_MAX],
    status: [i32; 2],
    /// When this thread, finding no request, starts the gathered flushes (see `idle`).
    gathering: Gathering,
    /// Whether this is a device thread, counted in [`DeviceServer::serve`]'s threads.
    counted: bool,
}

impl<B: Backend> Handle<'_, B> {
    /// Serves one request message into `reply`.
    pub fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> rt::Demuxed {
        iface::demux(self, request, reply)
    }
}

/// The serving loop's view: requests through the generated demux; once no request waits, the
/// flushes that gathered meanwhile start.
impl<B: Backend> msg::Demux for Handle<'_, B> {
    fn demux(&mut self, request: &[u8], reply: &mut [u8]) -> msg::Disposition {
        self.server.taken.fetch_add(1, Ordering::Relaxed);
        if self.server.has_idle_jobs()
            && self.server.served_while_jobs_wait.fetch_add(1, Ordering::Relaxed) + 1 >= IDLE_JOB_PATIENCE
        {
            // Overdue: before this request, after the previous one's reply went out.
            self.server.run_idle_jobs();
        }
        if let Some(header) = msg::Header::read(request) {
            let other = self.server.other_ports.iter().filter_map(Once::get).find(|(port, _)| header.local == port.name());
            if let Some((_, demux)) = other {
                return demux(request, reply);
            }
        }
        let _busy = self.counted.then(|| self.server.busy());
        let demuxed = match Handle::demux(self, request, reply) {
            // glibc's ioperm() asks the device master for I/O port access (see io_perm).
            rt::Demuxed::UnknownId(_) => mach_i386::demux(self, request, reply),
            demuxed => demuxed,
        };
        match demuxed {
            // The kernel's notices on device ports.
            rt::Demuxed::UnknownId(_) => notify::demux(self, request, reply).disposition(),
            demuxed => demuxed.disposition(),
        }
    }

    /// Flushes start on device threads only: the thread of the other ports stays free.
    fn has_idle_work(&self) -> bool {
        (self.counted && self.server.core.has_gathered_flushes()) || self.server.has_idle_jobs()
    }

    /// An empty queue does not yet mean the clients are done: on one processor, with the
    /// kernel handing each request straight to a waiting thread, clients that are runnable
    /// have not sent their next request yet. So give the processor to every runnable thread
    /// (their syncs join the gathering), and start the flushes only when the queue is still
    /// empty after that and no serving thread took a request meanwhile: one that did made its
    /// client runnable again, usually to write and then sync.
    fn idle(&mut self) {
        let (taken, flush_starts) = (self.server.taken.load(Ordering::Relaxed), self.server.flush_starts.load(Ordering::Relaxed));
        if !self.gathering.start_now(taken, flush_starts) {
            mach::sys::swtch_pri(0);
            return;
        }
        if self.counted {
            self.server.flush_starts.fetch_add(1, Ordering::Relaxed);
            // A flush may take long: another thread takes the requests meanwhile.
            let _busy = self.server.busy();
            self.server.core.start_gathered_flushes();
        }
        self.server.run_idle_jobs();
    }
}

/// Requests any thread may take while a thread that found none waits to start the gathered
/// flushes: bounds a sync's extra wait when other clients never let the queue stay empty.
const GATHER_REQUESTS: usize = 64;

/// One serving thread's rule for starting the gathered flushes once it finds no request: only
/// after it gave the processor away and no serving thread took a request meanwhile (one that
/// did made its client runnable again, usually to write and then sync), or once
/// [`GATHER_REQUESTS`] were taken since it began to wait for this gathering.
#[derive(Debug, Default)]
struct Gathering {
    /// Requests taken by all threads when this one last yielded.
    yielded_at: Option<usize>,
    /// Flush starts by all threads and requests taken when this thread began to wait: a
    /// flush another thread started since ended that wait.
    waiting_since: Option<(usize, usize)>,
}

impl Gathering {
    /// `taken`: the requests all threads have taken so far; `flush_starts`: the times they
    /// started the gathered flushes. `true`: start the flushes now; `false`: give the processor
    /// away first.
    fn start_now(&mut self, taken: usize, flush_starts: usize) -> bool {
        if self.waiting_since.is_some_and(|(starts, _)| starts != flush_starts) {
            *self = Gathering::default();
        }
        let waited = self.waiting_since.is_some_and(|(_, since)| taken.wrapping_sub(since) >= GATHER_REQUESTS);
        if self.yielded_at == Some(taken) || waited {
            *self = Gathering::default();
            return true;
        }
        self.yielded_at = Some(taken);
        self.waiting_since.get_or_insert((flush_starts, taken));
        false
    }
}

/// A byte count for a 32-bit `int` reply field.
fn count(bytes: usize) -> Result<i32> {
    i32::try_from(bytes).map_err(|_| D_INVALID_SIZE)
}

fn wanted(bytes_wanted: i32) -> Result<u64> {
    u64::try_from(bytes_wanted).map_err(|_| D_INVALID_SIZE)
}

impl<B: Backend> iface::Server for Handle<'_, B> {
    fn device_open(&mut self, reply: rt::ReplyPort<'_>, master: PortName, mode: u32, name: &[u8]) -> Result<PortArg> {
        if master != self.server.master.name() {
            return Err(D_INVALID_OPERATION); // a device port is not a master
        }
        self.server.open_for(&reply, name, mode)
    }

    /// The same open, with the name as a variable-length string (2806).
    fn device_open_new(&mut self, reply: rt::ReplyPort<'_>, master: PortName, mode: u32, name: &[u8]) -> Result<PortArg> {
        self.device_open(reply, master, mode, name)
    }

    fn device_close(&mut self, _reply: rt::ReplyPort<'_>, device: PortName) -> Result<()> {
        self.server.close(device)
    }

    fn device_write(&mut self, _reply: rt::ReplyPort<'_>, device: PortName, _mode: u32, recnum: RecNum, data: OolMemory) -> Result<i32> {
        // `data` is deallocated when it drops, on every path.
        count(data.len())?;
        let written = self.server.core.write_out_of_line(self.server.device(device)?, record(recnum), data)?;
        count(written)
    }

    fn device_write_inband(&mut self, _reply: rt::ReplyPort<'_>, device: PortName, _mode: u32, recnum: RecNum, data: &[u8]) -> Result<i32> {
        count(self.server.core.write(self.server.device(device)?, record(recnum), data)?)
    }

    fn device_read(&mut self, _reply: rt::ReplyPort<'_>, device: PortName, _mode: u32, recnum: RecNum, bytes_wanted: i32) -> Result<OolMemory> {
        let id = self.server.device(device)?;
        // Read straight into the memory the reply carries away.
        self.server.core.read_out_of_line(id, record(recnum), wanted(bytes_wanted)?)
    }

    fn device_read_inband(&mut self, _reply: rt::ReplyPort<'_>, device: PortName, _mode: u32, recnum: RecNum, bytes_wanted: i32) -> Result<&[u8]> {
        let id = self.server.device(device)?;
        let wanted = wanted(bytes_wanted)?.min(INBAND_MAX as u64);
        let inband = &mut self.inband;
        let len = self.server.core.read(id, record(recnum), wanted, |len| Ok(Filled(&mut inband[..len])))?.0.len();
        Ok(&self.inband[..len])
    }

    fn device_map(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _prot: i32, _offset: RecNum, _size: RecNum, _unmap: i32) -> Result<PortName> {
        Err(D_INVALID_OPERATION)
    }

    fn device_set_status(&mut self, reply: rt::ReplyPort<'_>, device: PortName, flavor: u32, _status: Array<'_, i32>) -> Result<()> {
        let id = self.server.device(device)?;
        let disposition = reply.disposition();
        // Answered by the waiter, now or when the flush it waits for ends.
        let waiter = DeferredReply { port: reply.defer(), disposition };
        self.server.core.set_status(id, flavor, waiter);
        Ok(())
    }

    fn device_get_status(&mut self, _reply: rt::ReplyPort<'_>, device: PortName, flavor: u32, capacity: u32) -> Result<&[i32]> {
        let id = self.server.device(device)?;
        self.status = self.server.core.get_status(id, flavor, capacity as usize)?;
        Ok(&self.status)
    }

    fn device_set_filter(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _port: SendRight, _priority: i32, _filter: Array<'_, i16>) -> Result<()> {
        Err(D_INVALID_OPERATION)
    }

    fn device_intr_register(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _id: i32, _flags: i32, _port: SendRight) -> Result<()> {
        Err(D_INVALID_OPERATION)
    }

    fn device_intr_ack(&mut self, _reply: rt::ReplyPort<'_>, _device: PortName, _port: SendRight) -> Result<()> {
        Err(D_INVALID_OPERATION)
    }
}

/// `i386_io_perm_create` on the master port, which is the system's device master once the boot
/// hand-off gave it out: the I/O port range is asked of the kernel's master (as a foreign
/// `device_open` is), and the permission passed on. The other `mach_i386` routines name a
/// thread or task, never this server's ports; they keep the generated `MIG_BAD_ID` answers.
impl<B: Backend> mach_i386::Server for Handle<'_, B> {
    fn i386_io_perm_create(&mut self, reply: rt::ReplyPort<'_>, master: PortName, from: i16, to: i16) -> Result<PortName> {
        if master != self.server.master.name() {
            return Err(D_INVALID_OPERATION); // a device port is not a master
        }
        let upstream = self.server.upstream.as_ref().ok_or(D_INVALID_OPERATION)?;
        let permission = mach_i386::i386_io_perm_create(upstream.name(), from, to)?;
        // The reply copies the right; ours is released once it is sent.
        let disposition = reply.disposition();
        let port = reply.defer().into_name();
        let mut buf = MsgBuf::<{ mach_i386::i386_io_perm_create::reply::MAX_SIZE }>::new();
        let sent = mach_i386::i386_io_perm_create::reply::encode(buf.as_bytes_mut(), port, disposition, Ok(permission.name()))
            .and_then(|size| msg::send(buf.as_bytes_mut(), size, None));
        if let Err(error) = sent {
            log::debug!("rumpdisk: i386_io_perm_create reply not sent: {error:?}");
            msg::destroy_unsent(buf.as_bytes());
        }
        Ok(PortName::NULL)
    }
}

/// The kernel's notices on device ports: only no-senders is asked for. A client holding a
/// device port could forge one, and so close the device's opens; it could close them with
/// `device_close` as well.
impl<B: Backend> notify::Server for Handle<'_, B> {
    fn mach_notify_no_senders(&mut self, port: PortName, mscount: u32) -> Result<()> {
        self.server.no_senders(port, mscount);
        Ok(())
    }
}

/// Part of the handle's inline buffer as the core's read buffer.
struct Filled<'b>(&'b mut [u8]);

impl AsMut<[u8]> for Filled<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0
    }
}

#[cfg(test)]
mod tests;
