//! The simulated kernel's state: ports, name spaces, queued messages, memory regions.

use super::layout;
use crate::msg::items::{items, Item};
use crate::kern::*;
use crate::sys::{MACH_PORT_RIGHT_DEAD_NAME, MACH_PORT_RIGHT_PORT_SET, MACH_PORT_RIGHT_RECEIVE};
use std::alloc::Layout;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use std::vec::Vec;

const PAGE_SIZE: usize = 4096;
const MACH_PORT_DEAD: u32 = !0;
use crate::constants::{
    MACH_MSG_TYPE_COPY_SEND as COPY_SEND, MACH_MSG_TYPE_MAKE_SEND as MAKE_SEND,
    MACH_MSG_TYPE_MAKE_SEND_ONCE as MAKE_SEND_ONCE, MACH_MSG_TYPE_MOVE_RECEIVE as MOVE_RECEIVE,
    MACH_MSG_TYPE_MOVE_SEND as MOVE_SEND, MACH_MSG_TYPE_MOVE_SEND_ONCE as MOVE_SEND_ONCE, MACH_NOTIFY_SEND_ONCE,
};

type PortId = u64;
pub(crate) type TaskId = u64;

/// A right held by the kernel while a message is in transit.
#[derive(Clone, Copy, Debug)]
struct KRight {
    port: PortId,
    kind: RightKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RightKind {
    Send,
    SendOnce,
    Receive,
}

impl RightKind {
    /// The `MACH_MSG_TYPE_PORT_*` the receiver sees.
    fn received_type(self) -> u32 {
        match self {
            RightKind::Receive => MOVE_RECEIVE,
            RightKind::Send => MOVE_SEND,
            RightKind::SendOnce => MOVE_SEND_ONCE,
        }
    }
}

/// The `MACH_MSG_TYPE_PORT_*` a right sent with `disposition` arrives as.
fn received_type(disposition: u32) -> u32 {
    match disposition {
        MOVE_RECEIVE => MOVE_RECEIVE,
        MOVE_SEND_ONCE | MAKE_SEND_ONCE => MOVE_SEND_ONCE,
        _ => MOVE_SEND,
    }
}

/// A message in a queue: the sender's bytes plus the rights and memory the kernel took out.
struct KMsg {
    bytes: Vec<u8>,
    dest: KRight,
    reply: Option<KRight>,
    /// Body rights by the offset of their 8-byte slot; `None` for a null or dead name.
    rights: Vec<(usize, Option<KRight>)>,
    /// Out-of-line data by the offset of its pointer.
    memory: Vec<(usize, Vec<u8>)>,
}

#[derive(Default)]
struct Port {
    /// The task holding the receive right; `None` while the right is in transit in a message.
    receiver: Option<TaskId>,
    is_set: bool,
    /// The set this port is a member of.
    set: Option<PortId>,
    queue: VecDeque<KMsg>,
    seqno: u32,
    /// Send rights made from the receive right so far (the make-send count).
    make_sends: u32,
    /// A no-senders notification requested: the send-once right it goes to, and the make-send
    /// count it waits for.
    no_senders: Option<(KRight, u32)>,
}

#[derive(Default, Clone, Copy)]
struct Entry {
    port: PortId,
    receive: bool,
    send: u32,
    send_once: bool,
    port_set: bool,
    dead: u32,
}

impl Entry {
    fn is_empty(&self) -> bool {
        !self.receive && self.send == 0 && !self.send_once && !self.port_set && self.dead == 0
    }
}

struct Space {
    names: BTreeMap<u32, Entry>,
    next_name: u32,
    self_port: PortId,
    live: bool,
}

struct Region {
    task: TaskId,
    layout: Layout,
}

#[derive(Default)]
pub(crate) struct State {
    ports: HashMap<PortId, Port>,
    next_port: PortId,
    spaces: HashMap<TaskId, Space>,
    next_task: TaskId,
    regions: BTreeMap<usize, Region>,
    /// Which task a task port stands for.
    task_ports: HashMap<PortId, TaskId>,
    /// The task that receives every task port (`kernel_calls` serves them), and its port set.
    kernel: Option<(TaskId, u32)>,
}

struct Kernel {
    state: Mutex<State>,
    changed: Condvar,
}

fn kernel() -> &'static Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    KERNEL.get_or_init(|| Kernel { state: Mutex::new(State::default()), changed: Condvar::new() })
}

fn lock() -> MutexGuard<'static, State> {
    kernel().state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

std::thread_local! {
    static CURRENT_TASK: Cell<Option<TaskId>> = const { Cell::new(None) };
}

/// A simulated task: a port name space and the memory regions it owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task(pub(crate) TaskId);

/// What a task holds, for leak checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Names in use in the task's space (rights of any kind, port sets, dead names).
    pub names: usize,
    /// Memory regions allocated and not yet deallocated.
    pub regions: usize,
    pub region_bytes: usize,
}

impl Task {
    /// A new task with an empty name space (but for its own task port).
    pub fn new() -> Task {
        start_kernel();
        let mut state = lock();
        Task(state.create_task())
    }

    /// The task the calling thread runs in (created on the thread's first use).
    pub fn current() -> Task {
        let id = CURRENT_TASK.with(|task| match task.get() {
            Some(id) => id,
            None => {
                start_kernel();
                let id = lock().create_task();
                task.set(Some(id));
                id
            }
        });
        Task(id)
    }

    /// Run `f` on a new thread of this task.
    pub fn spawn<F, T>(self, f: F) -> std::thread::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        std::thread::spawn(move || {
            CURRENT_TASK.with(|task| task.set(Some(self.0)));
            f()
        })
    }

    pub fn stats(self) -> Stats {
        let state = lock();
        let names = state.spaces.get(&self.0).map_or(0, |space| space.names.len());
        let regions = state.regions.values().filter(|region| region.task == self.0);
        let (count, bytes) = regions.fold((0, 0), |(n, b), r| (n + 1, b + r.layout.size()));
        Stats { names, regions: count, region_bytes: bytes }
    }

    /// A send right to the port the calling task names `name` (by a send or receive right),
    /// put into this task's space; returns its name there. Models `mach_port_insert_right` into
    /// another task, as the Hurd's boot servers hand out ports.
    pub fn insert_send_right(self, name: crate::port::PortName) -> Result<crate::port::PortName> {
        let caller = current();
        let mut state = lock();
        let entry = state.entry(caller, name.raw()).ok_or(Error::from_const(KERN_INVALID_NAME))?;
        let disposition = if entry.send > 0 { COPY_SEND } else { MAKE_SEND };
        let right = state.copyin(caller, name.raw(), disposition)?.ok_or(Error::from_const(KERN_INVALID_RIGHT))?;
        Ok(crate::port::PortName::new(state.insert_right(self.0, right)))
    }

    /// The reverse of [`Task::insert_send_right`]: a send right to the port this task names
    /// `name` (by a send or receive right), put into the calling task's space; returns its
    /// name there. Lets a test hold a right to a port a simulated server made.
    pub fn extract_send_right(self, name: crate::port::PortName) -> Result<crate::port::PortName> {
        let caller = current();
        let mut state = lock();
        let entry = state.entry(self.0, name.raw()).ok_or(Error::from_const(KERN_INVALID_NAME))?;
        let disposition = if entry.send > 0 { COPY_SEND } else { MAKE_SEND };
        let right = state.copyin(self.0, name.raw(), disposition)?.ok_or(Error::from_const(KERN_INVALID_RIGHT))?;
        Ok(crate::port::PortName::new(state.insert_right(caller, right)))
    }

    /// The task whose task port the calling task names `name`, if it names one: tells a test
    /// which task a received task port stands for.
    pub fn named_by(name: crate::port::PortName) -> Option<Task> {
        let caller = current();
        lock().task_of(caller, name.raw()).map(Task)
    }

    /// End the task: every right it holds is destroyed, its memory freed.
    pub fn terminate(self) {
        let mut state = lock();
        state.terminate(self.0);
        state.deliver_no_senders();
        kernel().changed.notify_all();
    }
}

impl Default for Task {
    fn default() -> Task {
        Task::new()
    }
}

/// Create the kernel task, which receives every task port in a port set (once).
fn start_kernel() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let mut state = lock();
        let task = state.create_bare_task();
        let set = state.port_allocate(task, MACH_PORT_RIGHT_PORT_SET, None).expect("fresh space");
        state.kernel = Some((task, set));
    });
}

/// The kernel task and the port set of the ports it serves (task ports, simulated devices).
pub(crate) fn kernel_task() -> (TaskId, u32) {
    start_kernel();
    lock().kernel.expect("kernel task started")
}

/// Run `f` on the calling thread as a thread of `task` (the kernel task serving a call).
pub(crate) fn as_task<R>(task: TaskId, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT_TASK.with(|current| current.replace(Some(task)));
    let result = f();
    CURRENT_TASK.with(|current| current.set(previous));
    result
}

/// The task the calling thread runs in.
pub(crate) fn current() -> TaskId {
    Task::current().0
}

/// Run `f` on the kernel state.
pub(crate) fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut state = lock();
    let result = f(&mut state);
    state.deliver_no_senders();
    kernel().changed.notify_all();
    result
}

/// Receive into `buf` from `name` of `task`, waiting up to `timeout` (forever if `None`).
pub(crate) fn receive(task: TaskId, name: u32, buf: &mut [u8], large: bool,
                      timeout: Option<Duration>) -> i32 {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut state = lock();
    loop {
        match state.try_receive(task, name, buf, large) {
            Some(code) => {
                kernel().changed.notify_all();
                return code;
            }
            None => {
                let wait = match deadline {
                    None => Duration::from_secs(3600),
                    Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => left,
                        _ => return MACH_RCV_TIMED_OUT,
                    },
                };
                state = kernel()
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
        }
    }
}

impl State {
    /// The kernel task and its port set, if `name` of `task` is a port that set receives.
    pub(crate) fn kernel_receiving(&self, task: TaskId, name: u32) -> Option<(TaskId, u32)> {
        let (kernel, set) = self.kernel?;
        let port = self.ports.get(&self.entry(task, name)?.port)?;
        (port.receiver == Some(kernel)).then_some((kernel, set))
    }

    /// A task whose port the kernel task receives (so kernel calls on it are served).
    fn create_task(&mut self) -> TaskId {
        let task = self.create_bare_task();
        let (kernel, set) = self.kernel.expect("kernel task started first");
        let self_port = self.space(task).self_port;
        self.insert_right(kernel, KRight { port: self_port, kind: RightKind::Receive });
        let set_port = self.entry(kernel, set).expect("kernel port set").port;
        self.ports.get_mut(&self_port).expect("task port").set = Some(set_port);
        task
    }

    /// A task holding a send right to its own port, which nobody receives yet.
    fn create_bare_task(&mut self) -> TaskId {
        self.next_task += 1;
        let task = self.next_task;
        let self_port = self.new_port(None);
        self.task_ports.insert(self_port, task);
        self.spaces.insert(task, Space { names: BTreeMap::new(), next_name: 0x100, self_port, live: true });
        self.insert_right(task, KRight { port: self_port, kind: RightKind::Send });
        task
    }

    /// The task whose port the kernel task names `name` (the port a kernel call arrived on).
    pub(crate) fn task_of_port_name(&self, name: crate::port::PortName) -> Option<TaskId> {
        let (kernel, _) = self.kernel?;
        let entry = self.entry(kernel, name.raw())?;
        self.task_ports.get(&entry.port).copied()
    }

    /// Every name of `task` with its `MACH_PORT_TYPE_*` bits (`mach_port_names`).
    pub(crate) fn names(&self, task: TaskId) -> Vec<(u32, u32)> {
        const fn bit(right: u32) -> u32 {
            1 << (right + 16)
        }
        let Some(space) = self.spaces.get(&task) else { return Vec::new() };
        let kind = |e: &Entry| {
            let mut bits = 0;
            if e.send > 0 { bits |= bit(crate::sys::MACH_PORT_RIGHT_SEND) }
            if e.receive { bits |= bit(MACH_PORT_RIGHT_RECEIVE) }
            if e.send_once { bits |= bit(crate::sys::MACH_PORT_RIGHT_SEND_ONCE) }
            if e.port_set { bits |= bit(MACH_PORT_RIGHT_PORT_SET) }
            if e.dead > 0 { bits |= bit(MACH_PORT_RIGHT_DEAD_NAME) }
            bits
        };
        space.names.iter().map(|(name, e)| (*name, kind(e))).collect()
    }

    /// `mach_port_destroy`: every right under the name goes.
    pub(crate) fn port_destroy(&mut self, task: TaskId, name: u32) -> i32 {
        let Some(entry) = self.entry(task, name) else { return KERN_INVALID_NAME };
        self.set_entry(task, name, Entry::default());
        if entry.send_once {
            self.send_once_notification(entry.port);
        }
        if entry.receive || entry.port_set {
            self.destroy_port(entry.port);
        }
        KERN_SUCCESS
    }

    fn new_port(&mut self, receiver: Option<TaskId>) -> PortId {
        self.next_port += 1;
        self.ports.insert(self.next_port, Port { receiver, ..Port::default() });
        self.next_port
    }

    fn space(&mut self, task: TaskId) -> &mut Space {
        self.spaces.get_mut(&task).expect("simulated task exists")
    }

    fn entry(&self, task: TaskId, name: u32) -> Option<Entry> {
        self.spaces.get(&task)?.names.get(&name).copied()
    }

    fn set_entry(&mut self, task: TaskId, name: u32, entry: Entry) {
        let space = self.space(task);
        if entry.is_empty() {
            space.names.remove(&name);
        } else {
            space.names.insert(name, entry);
        }
    }

    fn fresh_name(&mut self, task: TaskId) -> u32 {
        let space = self.space(task);
        space.next_name += 1;
        space.next_name
    }

    fn name_of(&self, task: TaskId, port: PortId) -> Option<u32> {
        let space = self.spaces.get(&task)?;
        space.names.iter().find(|(_, e)| e.port == port && !e.send_once && !e.port_set).map(|(n, _)| *n)
    }

    /// The task a task-port name of `caller` denotes.
    pub(crate) fn task_of(&self, caller: TaskId, name: u32) -> Option<TaskId> {
        let entry = self.entry(caller, name)?;
        if entry.send == 0 && !entry.receive {
            return None;
        }
        self.task_ports.get(&entry.port).copied()
    }

    pub(crate) fn self_port_name(&mut self, task: TaskId) -> u32 {
        let port = self.space(task).self_port;
        self.name_of(task, port).unwrap_or(0)
    }

    fn port_is_live(&self, port: PortId) -> bool {
        self.ports.contains_key(&port)
    }

    /// Put a right into `task`'s space and return its name there (`MACH_PORT_DEAD` for a right
    /// to a dead port).
    fn insert_right(&mut self, task: TaskId, right: KRight) -> u32 {
        if !self.spaces.get(&task).is_some_and(|space| space.live) {
            self.destroy_right(right);
            return 0;
        }
        if !self.port_is_live(right.port) {
            return MACH_PORT_DEAD;
        }
        let name = match right.kind {
            RightKind::SendOnce => None,
            _ => self.name_of(task, right.port),
        };
        let name = name.unwrap_or_else(|| self.fresh_name(task));
        let mut entry = self.entry(task, name).unwrap_or(Entry { port: right.port, ..Entry::default() });
        match right.kind {
            RightKind::Send => entry.send += 1,
            RightKind::SendOnce => entry.send_once = true,
            RightKind::Receive => {
                entry.receive = true;
                if let Some(port) = self.ports.get_mut(&right.port) {
                    port.receiver = Some(task);
                }
            }
        }
        self.set_entry(task, name, entry);
        name
    }

    /// Take a right out of `task`'s space as a message would with `disposition`.
    /// `Ok(None)` for the null name (and a dead name, which travels as dead).
    fn copyin(&mut self, task: TaskId, name: u32, disposition: u32) -> Result<Option<KRight>> {
        if name == 0 || name == MACH_PORT_DEAD {
            return Ok(None);
        }
        let invalid = Error::from_const(MACH_SEND_INVALID_RIGHT);
        let mut entry = self.entry(task, name).ok_or(invalid)?;
        if entry.dead > 0 && matches!(disposition, MOVE_SEND | COPY_SEND | MOVE_SEND_ONCE) {
            if disposition != COPY_SEND {
                entry.dead -= 1;
                self.set_entry(task, name, entry);
            }
            return Ok(None);
        }
        let kind = match disposition {
            COPY_SEND if entry.send > 0 => RightKind::Send,
            MOVE_SEND if entry.send > 0 => {
                entry.send -= 1;
                RightKind::Send
            }
            MAKE_SEND if entry.receive => {
                if let Some(port) = self.ports.get_mut(&entry.port) {
                    port.make_sends = port.make_sends.wrapping_add(1);
                }
                RightKind::Send
            }
            MAKE_SEND_ONCE if entry.receive => RightKind::SendOnce,
            MOVE_SEND_ONCE if entry.send_once => {
                entry.send_once = false;
                RightKind::SendOnce
            }
            MOVE_RECEIVE if entry.receive => {
                entry.receive = false;
                let port = self.ports.get_mut(&entry.port).ok_or(invalid)?;
                port.receiver = None;
                port.set = None;
                RightKind::Receive
            }
            _ => return Err(invalid),
        };
        self.set_entry(task, name, entry);
        Ok(Some(KRight { port: entry.port, kind }))
    }

    /// Destroy a right the kernel holds (a message that will never be received).
    fn destroy_right(&mut self, right: KRight) {
        match right.kind {
            RightKind::Send => {}
            RightKind::SendOnce => self.send_once_notification(right.port),
            RightKind::Receive => self.destroy_port(right.port),
        }
    }

    /// A send-once right died unused: tell the port's receiver (MIG turns it into
    /// `MIG_SERVER_DIED`).
    fn send_once_notification(&mut self, port: PortId) {
        if !self.port_is_live(port) {
            return;
        }
        let mut bytes = std::vec![0u8; layout::HEADER_SIZE];
        layout::write_u32(&mut bytes, layout::OFFSET_BITS, MOVE_SEND_ONCE << 8);
        layout::write_u32(&mut bytes, layout::OFFSET_SIZE, layout::HEADER_SIZE as u32);
        layout::write_u32(&mut bytes, layout::OFFSET_ID, MACH_NOTIFY_SEND_ONCE);
        let dest = KRight { port, kind: RightKind::SendOnce };
        self.enqueue(KMsg { bytes, dest, reply: None, rights: Vec::new(), memory: Vec::new() });
    }

    /// `mach_port_request_notification(MACH_NOTIFY_NO_SENDERS)` on `task`'s receive right
    /// `name`: `notify` (taken from the caller's space) gets the notification once no send right
    /// exists and at least `sync` were made. Returns the name, in the caller's space, of the
    /// send-once right of the request it replaces.
    pub(crate) fn request_no_senders(&mut self, task: TaskId, name: u32, sync: u32, caller: TaskId, notify: u32) -> Result<Option<u32>> {
        let entry = self.entry(task, name).filter(|entry| entry.receive).ok_or(Error::from_const(KERN_INVALID_RIGHT))?;
        let notify = self.copyin(caller, notify, MOVE_SEND_ONCE)?.ok_or(Error::from_const(KERN_INVALID_CAPABILITY))?;
        let port = self.ports.get_mut(&entry.port).ok_or(Error::from_const(KERN_INVALID_RIGHT))?;
        let previous = port.no_senders.replace((notify, sync));
        Ok(previous.map(|(previous, _)| self.insert_right(caller, previous)))
    }

    /// Whether a send right to `port` exists: in a space, or in a message in transit.
    fn has_senders(&self, port: PortId) -> bool {
        let is_send = |right: &KRight| right.port == port && right.kind == RightKind::Send;
        let held = self.spaces.values().any(|space| space.names.values().any(|e| e.port == port && e.send > 0));
        held || self.ports.values().flat_map(|p| p.queue.iter()).any(|msg| {
            is_send(&msg.dest) || msg.reply.as_ref().is_some_and(is_send) || msg.rights.iter().any(|(_, r)| r.as_ref().is_some_and(is_send))
        })
    }

    /// Sends every requested no-senders notification that is due (`MACH_NOTIFY_NO_SENDERS` with
    /// the make-send count), as GNU Mach does when the last send right goes.
    fn deliver_no_senders(&mut self) {
        let requested: Vec<PortId> = self.ports.iter().filter(|(_, p)| p.no_senders.is_some()).map(|(id, _)| *id).collect();
        for port in requested {
            let make_sends = self.ports[&port].make_sends;
            let due = self.ports[&port].no_senders.is_some_and(|(_, sync)| sync <= make_sends);
            if !due || self.has_senders(port) {
                continue;
            }
            let Some((notify, _)) = self.ports.get_mut(&port).and_then(|p| p.no_senders.take()) else { continue };
            let mut bytes = std::vec![0u8; crate::interfaces::notify::mach_notify_no_senders::request::MAX_SIZE];
            // The header's right is the kernel's (`notify`); the encoder only lays out the body.
            let placeholder = crate::port::SendOnceRight::from_name(crate::port::PortName::NULL);
            let Ok(size) = crate::interfaces::notify::mach_notify_no_senders::request::encode(&mut bytes, placeholder, make_sends) else { continue };
            bytes.truncate(size);
            self.enqueue(KMsg { bytes, dest: notify, reply: None, rights: Vec::new(), memory: Vec::new() });
        }
    }

    /// Takes the port out of the table (a dead port and an unknown one are alike to every
    /// lookup, and the table stays as small as the live ports however many died).
    fn destroy_port(&mut self, port: PortId) {
        let Some(p) = self.ports.remove(&port) else { return };
        if let Some((notify, _)) = p.no_senders {
            self.destroy_right(notify);
        }
        for msg in p.queue {
            self.destroy_msg(msg);
        }
        for other in self.ports.values_mut() {
            if other.set == Some(port) {
                other.set = None;
            }
        }
        // Send rights held in spaces turn into dead names.
        for space in self.spaces.values_mut() {
            for entry in space.names.values_mut().filter(|e| e.port == port) {
                entry.dead += entry.send + u32::from(entry.send_once);
                entry.send = 0;
                entry.send_once = false;
            }
        }
    }

    fn destroy_msg(&mut self, msg: KMsg) {
        let header_rights = msg.reply.into_iter().chain(core::iter::once(msg.dest));
        let body_rights = msg.rights.iter().filter_map(|(_, right)| *right);
        let rights: Vec<KRight> = header_rights.chain(body_rights).collect();
        for right in rights {
            self.destroy_right(right);
        }
    }

    fn enqueue(&mut self, msg: KMsg) {
        let port = msg.dest.port;
        match self.ports.get_mut(&port) {
            Some(p) => p.queue.push_back(msg),
            None => self.destroy_msg(msg),
        }
    }

    /// `mach_msg` send: copy the rights and memory in and queue the message.
    pub(crate) fn send(&mut self, task: TaskId, bytes: &[u8]) -> i32 {
        match self.copyin_msg(task, bytes) {
            Ok(msg) => {
                self.enqueue(msg);
                KERN_SUCCESS
            }
            Err(error) => error.code(),
        }
    }

    fn copyin_msg(&mut self, task: TaskId, bytes: &[u8]) -> Result<KMsg> {
        let header_error = Error::from_const(MACH_SEND_INVALID_HEADER);
        if bytes.len() < layout::HEADER_SIZE || !bytes.len().is_multiple_of(8) {
            return Err(Error::from_const(MACH_SEND_MSG_TOO_SMALL));
        }
        let bits = layout::read_u32(bytes, layout::OFFSET_BITS).ok_or(header_error)?;
        let remote = layout::read_u32(bytes, layout::OFFSET_REMOTE).ok_or(header_error)?;
        let local = layout::read_u32(bytes, layout::OFFSET_LOCAL).ok_or(header_error)?;
        let dest_entry = self.entry(task, remote).ok_or(Error::from_const(MACH_SEND_INVALID_DEST))?;
        if !self.port_is_live(dest_entry.port) || dest_entry.dead > 0 {
            return Err(Error::from_const(MACH_SEND_INVALID_DEST));
        }
        if bits & layout::BITS_COMPLEX != 0 {
            self.check_body(task, bytes)?;
        }
        let dest = self
            .copyin(task, remote, bits & 0xff)
            .map_err(|_| Error::from_const(MACH_SEND_INVALID_DEST))?
            .ok_or(Error::from_const(MACH_SEND_INVALID_DEST))?;
        let reply = match self.copyin(task, local, (bits >> 8) & 0xff) {
            Ok(reply) => reply,
            Err(_) => {
                self.destroy_right(dest);
                return Err(Error::from_const(MACH_SEND_INVALID_REPLY));
            }
        };
        let mut msg = KMsg { bytes: bytes.to_vec(), dest, reply, rights: Vec::new(), memory: Vec::new() };
        if bits & layout::BITS_COMPLEX != 0 {
            self.copyin_body(task, &mut msg);
        }
        Ok(msg)
    }

    /// Validate every body item before taking anything, so a bad message changes nothing.
    fn check_body(&self, task: TaskId, bytes: &[u8]) -> Result<()> {
        let invalid = Error::from_const(MACH_SEND_INVALID_TYPE);
        for item in items(bytes) {
            let item = item?;
            let len = item.data_len().ok_or(invalid)?;
            if item.inline {
                if item.carries_rights() {
                    if item.bits != 64 {
                        return Err(invalid);
                    }
                    for i in 0..item.number as usize {
                        let name = layout::read_u32(bytes, item.at + 8 * i).ok_or(invalid)?;
                        self.check_right(task, name, item.name)?;
                    }
                }
            } else {
                if item.carries_rights() {
                    return Err(invalid); // out-of-line port arrays are not simulated
                }
                let address = layout::read_u64(bytes, item.at).ok_or(invalid)? as usize;
                if item.deallocate && len > 0 && !self.owns_region(task, address, len) {
                    return Err(Error::from_const(MACH_SEND_INVALID_MEMORY));
                }
            }
        }
        Ok(())
    }

    fn check_right(&self, task: TaskId, name: u32, disposition: u32) -> Result<()> {
        if name == 0 || name == MACH_PORT_DEAD {
            return Ok(());
        }
        let entry = self.entry(task, name).ok_or(Error::from_const(MACH_SEND_INVALID_RIGHT))?;
        let ok = entry.dead > 0
            || match disposition {
                COPY_SEND | MOVE_SEND => entry.send > 0,
                MAKE_SEND | MAKE_SEND_ONCE | MOVE_RECEIVE => entry.receive,
                MOVE_SEND_ONCE => entry.send_once,
                _ => false,
            };
        if ok { Ok(()) } else { Err(Error::from_const(MACH_SEND_INVALID_RIGHT)) }
    }

    /// Take the body's rights and memory (after `check_body` accepted them).
    fn copyin_body(&mut self, task: TaskId, msg: &mut KMsg) {
        let checked: Vec<Item> = items(&msg.bytes).map(|item| item.expect("checked")).collect();
        for item in checked {
            if item.inline {
                if item.carries_rights() {
                    for i in 0..item.number as usize {
                        let slot = item.at + 8 * i;
                        let name = layout::read_u32(&msg.bytes, slot).expect("checked");
                        let right = self.copyin(task, name, item.name).expect("checked");
                        msg.rights.push((slot, right));
                    }
                    // The receiver sees the right's type, not the sender's disposition.
                    msg.bytes[item.at - 8] = received_type(item.name) as u8;
                }
            } else {
                let len = item.data_len().expect("checked");
                let address = layout::read_u64(&msg.bytes, item.at).expect("checked") as usize;
                let data = if len == 0 || address == 0 {
                    Vec::new()
                } else {
                    // SAFETY: the sender promised (by the `mach_msg` contract) that an
                    // out-of-line descriptor points at `len` readable bytes.
                    unsafe { core::slice::from_raw_parts(address as *const u8, len) }.to_vec()
                };
                if item.deallocate && len > 0 {
                    self.free_region(address);
                }
                msg.memory.push((item.at, data));
            }
        }
    }

    /// One receive attempt: `None` when nothing is queued yet.
    fn try_receive(&mut self, task: TaskId, name: u32, buf: &mut [u8], large: bool) -> Option<i32> {
        let Some(entry) = self.entry(task, name).filter(|e| e.receive || e.port_set) else {
            return Some(MACH_RCV_INVALID_NAME);
        };
        let source = if entry.port_set {
            let members = self.ports.iter().filter(|(_, p)| p.set == Some(entry.port) && !p.queue.is_empty());
            members.map(|(id, _)| *id).min()?
        } else {
            if !self.port_is_live(entry.port) {
                return Some(MACH_RCV_PORT_DIED);
            }
            entry.port
        };
        let port = self.ports.get_mut(&source)?;
        let size = port.queue.front()?.bytes.len();
        if size > buf.len() {
            if large {
                if buf.len() >= layout::OFFSET_SIZE + 4 {
                    layout::write_u32(buf, layout::OFFSET_SIZE, size as u32);
                }
            } else {
                let msg = port.queue.pop_front()?;
                self.destroy_msg(msg);
            }
            return Some(MACH_RCV_TOO_LARGE);
        }
        port.seqno = port.seqno.wrapping_add(1);
        let seqno = port.seqno;
        let msg = port.queue.pop_front()?;
        self.copyout(task, msg, seqno, buf);
        Some(KERN_SUCCESS)
    }

    fn copyout(&mut self, task: TaskId, msg: KMsg, seqno: u32, buf: &mut [u8]) {
        let size = msg.bytes.len();
        buf[..size].copy_from_slice(&msg.bytes);
        let complex = layout::read_u32(&msg.bytes, layout::OFFSET_BITS).unwrap_or(0) & layout::BITS_COMPLEX;
        let reply_type = msg.reply.map_or(0, |r| r.kind.received_type());
        let reply_name = msg.reply.map_or(0, |r| self.insert_right(task, r));
        // The destination right is consumed by delivery; name the port as the receiver knows it.
        let local = self.name_of(task, msg.dest.port).unwrap_or(0);
        let bits = complex | reply_type | (msg.dest.kind.received_type() << 8);
        layout::write_u32(buf, layout::OFFSET_BITS, bits);
        layout::write_u32(buf, layout::OFFSET_SIZE, size as u32);
        layout::write_u64(buf, layout::OFFSET_REMOTE, reply_name.into());
        layout::write_u64(buf, layout::OFFSET_LOCAL, local.into());
        layout::write_u32(buf, layout::OFFSET_SEQNO, seqno);
        for (slot, right) in msg.rights {
            let name = right.map_or(0, |right| self.insert_right(task, right));
            layout::write_u64(buf, slot, name.into());
        }
        for (slot, data) in msg.memory {
            let address = if data.is_empty() {
                0
            } else {
                let address = self.allocate_region(task, data.len());
                // SAFETY: the region was just allocated with at least `data.len()` bytes.
                unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), address as *mut u8, data.len()) };
                address
            };
            layout::write_u64(buf, slot, address as u64);
        }
    }

    /// Allocate zeroed, page-aligned memory owned by `task`.
    pub(crate) fn allocate_region(&mut self, task: TaskId, size: usize) -> usize {
        let size = size.max(1).next_multiple_of(PAGE_SIZE);
        let layout = Layout::from_size_align(size, PAGE_SIZE).expect("page-aligned layout");
        // SAFETY: the layout has a non-zero size.
        let address = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        assert!(address != 0, "simulated vm_allocate: host out of memory");
        self.regions.insert(address, Region { task, layout });
        address
    }

    fn owns_region(&self, task: TaskId, address: usize, len: usize) -> bool {
        self.regions.get(&address).is_some_and(|r| r.task == task && len <= r.layout.size())
    }

    /// Free a region (whole regions only; the simulation's simplification).
    pub(crate) fn deallocate_region(&mut self, task: TaskId, address: usize, size: usize) -> i32 {
        if size == 0 {
            return KERN_SUCCESS;
        }
        match self.regions.get(&address) {
            Some(r) if r.task == task && size.next_multiple_of(PAGE_SIZE) == r.layout.size() => {
                self.free_region(address);
                KERN_SUCCESS
            }
            _ => KERN_INVALID_ADDRESS,
        }
    }

    fn free_region(&mut self, address: usize) {
        if let Some(region) = self.regions.remove(&address) {
            // SAFETY: the region was allocated by `allocate_region` with this layout and is
            // removed from the table, so it is freed once.
            unsafe { std::alloc::dealloc(address as *mut u8, region.layout) };
        }
    }

    pub(crate) fn port_allocate(&mut self, task: TaskId, right: u32, name: Option<u32>) -> Result<u32> {
        if let Some(name) = name {
            if name == 0 || name == MACH_PORT_DEAD {
                return Err(Error::from_const(KERN_INVALID_VALUE));
            }
            if self.entry(task, name).is_some() {
                return Err(Error::from_const(KERN_NAME_EXISTS));
            }
        }
        let name = name.unwrap_or_else(|| self.fresh_name(task));
        let entry = match right {
            MACH_PORT_RIGHT_RECEIVE => Entry { port: self.new_port(Some(task)), receive: true, ..Entry::default() },
            MACH_PORT_RIGHT_PORT_SET => {
                let port = self.new_port(None);
                self.ports.get_mut(&port).expect("new").is_set = true;
                Entry { port, port_set: true, ..Entry::default() }
            }
            MACH_PORT_RIGHT_DEAD_NAME => Entry { dead: 1, ..Entry::default() },
            _ => return Err(Error::from_const(KERN_INVALID_VALUE)),
        };
        self.set_entry(task, name, entry);
        Ok(name)
    }

    /// `mach_port_deallocate`: drop one send, send-once or dead-name reference.
    pub(crate) fn port_deallocate(&mut self, task: TaskId, name: u32) -> i32 {
        let Some(mut entry) = self.entry(task, name) else { return KERN_INVALID_NAME };
        if entry.send > 0 {
            entry.send -= 1;
        } else if entry.send_once {
            entry.send_once = false;
            self.send_once_notification(entry.port);
        } else if entry.dead > 0 {
            entry.dead -= 1;
        } else {
            return KERN_INVALID_RIGHT;
        }
        self.set_entry(task, name, entry);
        KERN_SUCCESS
    }

    /// `mach_port_mod_refs` for the rights the runtime releases (receive, port set, send).
    pub(crate) fn port_mod_refs(&mut self, task: TaskId, name: u32, right: u32, delta: i32) -> i32 {
        let Some(mut entry) = self.entry(task, name) else { return KERN_INVALID_NAME };
        match (right, delta) {
            (MACH_PORT_RIGHT_RECEIVE, -1) if entry.receive => {
                entry.receive = false;
                self.set_entry(task, name, entry);
                self.destroy_port(entry.port);
            }
            (MACH_PORT_RIGHT_PORT_SET, -1) if entry.port_set => {
                entry.port_set = false;
                self.set_entry(task, name, entry);
                self.destroy_port(entry.port);
            }
            (crate::sys::MACH_PORT_RIGHT_SEND, delta) if entry.send > 0 || entry.receive => {
                let refs = i64::from(entry.send) + i64::from(delta);
                if refs < 0 {
                    return KERN_INVALID_VALUE;
                }
                entry.send = refs as u32;
                self.set_entry(task, name, entry);
            }
            (MACH_PORT_RIGHT_RECEIVE | MACH_PORT_RIGHT_PORT_SET, _) => return KERN_INVALID_VALUE,
            _ => return KERN_INVALID_RIGHT,
        }
        KERN_SUCCESS
    }

    /// `mach_port_move_member`: put a receive right into a set (or out of any, with the null set).
    pub(crate) fn port_move_member(&mut self, task: TaskId, member: u32, set: u32) -> i32 {
        let Some(entry) = self.entry(task, member).filter(|e| e.receive) else { return KERN_INVALID_RIGHT };
        let set_port = if set == 0 {
            None
        } else {
            match self.entry(task, set).filter(|e| e.port_set) {
                Some(set) => Some(set.port),
                None => return KERN_INVALID_RIGHT,
            }
        };
        if let Some(port) = self.ports.get_mut(&entry.port) {
            port.set = set_port;
        }
        KERN_SUCCESS
    }

    /// `mach_port_insert_right` into `task`'s own space under `name`.
    pub(crate) fn port_insert_right(&mut self, task: TaskId, name: u32, right: u32, disposition: u32) -> i32 {
        let port = match self.entry(task, right) {
            Some(entry) => entry.port,
            None => return KERN_INVALID_NAME,
        };
        if let Some(existing) = self.entry(task, name) {
            if existing.port != port {
                return KERN_NAME_EXISTS;
            }
        } else if disposition != MAKE_SEND_ONCE && disposition != MOVE_SEND_ONCE && self.name_of(task, port).is_some() {
            return KERN_RIGHT_EXISTS;
        }
        let right = match self.copyin(task, right, disposition) {
            Ok(Some(right)) => right,
            Ok(None) | Err(_) => return KERN_INVALID_CAPABILITY,
        };
        let mut entry = self.entry(task, name).unwrap_or(Entry { port, ..Entry::default() });
        match right.kind {
            RightKind::Send => entry.send += 1,
            RightKind::SendOnce if !entry.send_once && !entry.receive && entry.send == 0 => entry.send_once = true,
            RightKind::Receive => entry.receive = true,
            RightKind::SendOnce => {
                self.destroy_right(right);
                return KERN_RIGHT_EXISTS;
            }
        }
        self.set_entry(task, name, entry);
        KERN_SUCCESS
    }

    /// A new receive right for a reply port.
    pub(crate) fn reply_port(&mut self, task: TaskId) -> u32 {
        self.port_allocate(task, MACH_PORT_RIGHT_RECEIVE, None).unwrap_or(0)
    }

    pub(crate) fn terminate(&mut self, task: TaskId) {
        let Some(space) = self.spaces.get_mut(&task) else { return };
        space.live = false;
        let self_port = space.self_port;
        let entries: Vec<Entry> = core::mem::take(&mut space.names).into_values().collect();
        for entry in entries {
            if entry.send_once {
                self.send_once_notification(entry.port);
            }
            if entry.receive || entry.port_set {
                self.destroy_port(entry.port);
            }
        }
        self.destroy_port(self_port);
        let regions: Vec<usize> = self.regions.iter().filter(|(_, r)| r.task == task).map(|(a, _)| *a).collect();
        for address in regions {
            self.free_region(address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destroyed_port_leaves_the_table_and_its_send_rights_turn_dead() {
        let mut state = State::default();
        let task = state.create_bare_task();
        let live = state.ports.len();
        for _ in 0..3 {
            let name = state.port_allocate(task, MACH_PORT_RIGHT_RECEIVE, None).unwrap();
            assert_eq!(state.port_insert_right(task, name, name, MAKE_SEND), KERN_SUCCESS);
            assert_eq!(state.port_mod_refs(task, name, MACH_PORT_RIGHT_RECEIVE, -1), KERN_SUCCESS);
            let entry = state.entry(task, name).expect("the send right's name stays");
            assert_eq!((entry.send, entry.dead), (0, 1), "the send right is a dead name");
            assert_eq!(state.port_deallocate(task, name), KERN_SUCCESS);
        }
        assert_eq!(state.ports.len(), live, "no dead port is kept");
    }
}
