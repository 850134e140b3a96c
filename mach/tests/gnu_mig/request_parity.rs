//! Request bytes of the kernel interfaces (`mach`, `mach_port`, `mach_host`, `gnumach`,
//! `mach_i386`, `notify`, `exc`) and the project's own (`fsys`, `startup_notify`, `fs`, `io`, `startup`, `process`, `mach_port_ktype`, `auth`, `pci`, `device_intr_notify`), both ABIs: for every routine, GNU MIG's client makes a request from
//! generated values (`values.rs`), the generated decoder reads it as delivered, and the generated
//! encoder, given the decoded values and the same reply port, must write GNU MIG's request byte
//! for byte (out-of-line addresses zeroed: the two sides are two programs).
//!
//! The glue is one macro line per routine naming its request fields, in the order both the
//! decoded `Request` and `request::encode` have them (a drift fails to compile). Delivery turns
//! a sent disposition into the right received (`COPY_SEND` and `MAKE_SEND` both arrive as
//! `PORT_SEND`), so a port's disposition is restored from what the test asked GNU MIG's stub to
//! send (its `…Poly` argument), or else from the .defs type. Out-of-line data is re-sent as read
//! from GNU MIG's client, so its contents match by construction; its count does not.

use mach::interfaces;
use mach::mig_rt::{Array, Indefinite, Le, OolRegion, PortArg};
use mach::ool::OolMemory;
use mach::port::{PortName, ReceiveRight, SendOnceRight};
use mig::parser::ArgKind;
use mig::types::MsgName;

use super::c_stubs::{self, hex, Abi, Arg};
use super::{message, routines, Known};

/// What re-encoding a decoded field needs beyond the field: the request's context.
struct Context<'c> {
    abi: Abi,
    case: &'c routines::Case,
    args: &'c [Arg],
}

impl Context<'_> {
    /// The disposition the client sent `field` with: its `…Poly` argument, else the .defs type's.
    fn disposition(&self, field: &str) -> Result<u32, String> {
        let poly = format!("{field}Poly");
        let chosen = self
            .case
            .user_stub
            .params
            .iter()
            .zip(self.args)
            .find(|((_, name), _)| *name == poly);
        if let Some((_, Arg::Value(v))) = chosen {
            let bytes = v
                .as_slice()
                .try_into()
                .map_err(|_| format!("`{poly}` is not 4 bytes"))?;
            return Ok(u32::from_le_bytes(bytes));
        }
        match self
            .case
            .routine
            .args
            .iter()
            .find(|a| a.name == field)
            .map(|a| a.ty.in_name)
        {
            Some(MsgName::Fixed(name)) => Ok(name),
            other => Err(format!("no disposition for port `{field}` ({other:?})")),
        }
    }

    /// Bytes of GNU MIG's client's memory (out-of-line data it sent).
    fn peek(&self, region: OolRegion) -> Vec<u8> {
        c_stubs::user(self.abi).peek(region.address as u64, region.len)
    }
}

/// A decoded request field, kept in a form the request encoder can take again.
trait Keep: Sized {
    type Kept;
    fn keep(self, context: &Context, field: &str) -> Result<Self::Kept, String>;
}

/// A kept field lent to the encoder as the parameter type it takes (inferred from the call).
trait Lend<'a, T> {
    fn lend(&'a self) -> T;
}

macro_rules! as_sent {
    ($($ty:ty),*) => {$(
        impl Keep for $ty {
            type Kept = $ty;
            fn keep(self, _: &Context, _: &str) -> Result<$ty, String> {
                Ok(self)
            }
        }
        impl Lend<'_, $ty> for $ty {
            fn lend(&self) -> $ty {
                *self
            }
        }
    )*};
}
as_sent!(bool, i16, i32, i64, u32, u64);

impl<T: Copy, const N: usize> Keep for [T; N] {
    type Kept = [T; N];
    fn keep(self, _: &Context, _: &str) -> Result<[T; N], String> {
        Ok(self)
    }
}

impl<'a, T, const N: usize> Lend<'a, &'a [T; N]> for [T; N] {
    fn lend(&'a self) -> &'a [T; N] {
        self
    }
}

impl<T: Le> Keep for Array<'_, T> {
    type Kept = Vec<T>;
    fn keep(self, _: &Context, _: &str) -> Result<Vec<T>, String> {
        Ok(self.iter().collect())
    }
}

impl Keep for &[u8] {
    type Kept = Vec<u8>;
    fn keep(self, _: &Context, _: &str) -> Result<Vec<u8>, String> {
        Ok(self.to_vec())
    }
}

impl<'a, T> Lend<'a, &'a [T]> for Vec<T> {
    fn lend(&'a self) -> &'a [T] {
        self
    }
}

/// A port field: its name, and the disposition the client sent it with.
struct Port {
    name: PortName,
    disposition: Result<u32, String>,
}

impl Keep for PortName {
    type Kept = Port;
    fn keep(self, context: &Context, field: &str) -> Result<Port, String> {
        // Only an encoder that takes the disposition needs it (see `Lend<PortArg>`).
        Ok(Port {
            name: self,
            disposition: context.disposition(field),
        })
    }
}

impl Keep for PortArg {
    type Kept = Port;
    fn keep(self, context: &Context, field: &str) -> Result<Port, String> {
        Ok(Port {
            name: self.name,
            disposition: context.disposition(field),
        })
    }
}

impl Lend<'_, PortName> for Port {
    fn lend(&self) -> PortName {
        self.name
    }
}

impl Lend<'_, PortArg> for Port {
    fn lend(&self) -> PortArg {
        let disposition = self.disposition.clone().unwrap_or_else(|e| panic!("{e}"));
        PortArg {
            name: self.name,
            disposition,
        }
    }
}

impl Lend<'_, SendOnceRight> for Port {
    /// The encoder moves the right into the message (`into_name`): nothing is released here.
    fn lend(&self) -> SendOnceRight {
        SendOnceRight::from_name(self.name)
    }
}

impl Lend<'_, ReceiveRight> for Port {
    /// The encoder moves the right into the message (`into_name`): nothing is released here.
    fn lend(&self) -> ReceiveRight {
        ReceiveRight::from_name(self.name)
    }
}

/// Out-of-line (or indefinite) data as GNU MIG's client sent it, in each element type an
/// encoder may take.
struct Ool {
    bytes: Vec<u8>,
    words: Vec<u32>,
    ints: Vec<i32>,
    longs: Vec<u64>,
}

impl Ool {
    fn new(bytes: Vec<u8>) -> Ool {
        fn elements<T: Le>(bytes: &[u8]) -> Vec<T> {
            Array::new(bytes).iter().collect()
        }
        Ool {
            words: elements(&bytes),
            ints: elements(&bytes),
            longs: elements(&bytes),
            bytes,
        }
    }
}

impl Keep for OolRegion {
    type Kept = Ool;
    fn keep(self, context: &Context, _: &str) -> Result<Ool, String> {
        Ok(Ool::new(context.peek(self)))
    }
}

/// The encoder chooses the form again from the size, as GNU MIG's client did.
impl Keep for Indefinite<'_> {
    type Kept = Ool;
    fn keep(self, context: &Context, _: &str) -> Result<Ool, String> {
        Ok(Ool::new(match self {
            Indefinite::Inline(bytes) => bytes.to_vec(),
            Indefinite::OutOfLine(region) => context.peek(region),
        }))
    }
}

macro_rules! ool_as {
    ($($field:ident: $ty:ty),*) => {$(
        impl<'a> Lend<'a, &'a [$ty]> for Ool {
            fn lend(&'a self) -> &'a [$ty] {
                &self.$field
            }
        }
    )*};
}
ool_as!(bytes: u8, words: u32, ints: i32, longs: u64);

impl Lend<'_, OolMemory> for Ool {
    fn lend(&self) -> OolMemory {
        OolMemory::copy_from(&self.bytes).unwrap_or_else(|e| panic!("out-of-line memory: {e:?}"))
    }
}

/// Decodes a delivered request and encodes its values again: the request as the client sent it.
type Reencode = fn(&[u8], &Context) -> Result<Vec<u8>, String>;

/// Each routine's request fields in order, per interface: `both` ABIs, then per ABI (`Abi`
/// variant => module) what only it has. `; remote_port`: the encoder's last parameter is the
/// reply port (the received header's remote port); absent for a simpleroutine without one or
/// whose reply port is a field.
macro_rules! reencoders {
    (both { $($both:tt)* } $($variant:ident => $abi:ident { $($only:tt)* })*) => {
        /// The re-encoder of `routine` for `abi`; `None` if it has none.
        fn reencoder(abi: Abi, interface: &str, routine: &str) -> Option<Reencode> {
            reencoders!(@abi (abi, interface, routine) X86_64 => x86_64 { $($both)* });
            reencoders!(@abi (abi, interface, routine) I686 => i686 { $($both)* });
            $(reencoders!(@abi (abi, interface, routine) $variant => $abi { $($only)* });)*
            None
        }
    };
    (@abi ($abi_in:ident, $interface_in:ident, $routine_in:ident) $variant:ident => $abi:ident {
        $($interface:ident: [$($routine:ident($($field:ident),* $(; $reply:ident)?)),* $(,)?];)*
    }) => {$(
        if $abi_in == Abi::$variant && $interface_in == stringify!($interface) {
            match $routine_in {
                $(stringify!($routine) => return Some(|msg, context| {
                    use interfaces::$interface::$abi::$routine::request;
                    let request = request::decode(msg)
                        .map_err(|e| format!("the decoder refuses it ({}): {}", e.code(), hex(msg)))?;
                    $(let $field = Keep::keep(request.$field, context, stringify!($field))?;)*
                    let mut buf = vec![0u8; request::MAX_SIZE];
                    let size = request::encode(&mut buf, $($field.lend(),)* $(request.header.$reply)?)
                        .map_err(|e| format!("the encoder refuses it: {}", e.code()))?;
                    buf.truncate(size);
                    Ok(buf)
                }),)*
                _ => {}
            }
        }
    )*};
}

reencoders! {
    both {
        mach: [task_create(target_task, inherit_memory; remote_port),
            task_terminate(target_task; remote_port), task_get_emulation_vector(task; remote_port),
            task_set_emulation_vector(task, vector_start, emulation_vector; remote_port),
            task_threads(target_task; remote_port),
            task_info(target_task, flavor, task_info_out_capacity; remote_port),
            thread_terminate(target_thread; remote_port),
            thread_get_state(target_thread, flavor, old_state_capacity; remote_port),
            thread_set_state(target_thread, flavor, new_state; remote_port),
            thread_info(target_thread, flavor, thread_info_out_capacity; remote_port),
            vm_allocate(target_task, address, size, anywhere; remote_port),
            vm_deallocate(target_task, address, size; remote_port),
            vm_protect(target_task, address, size, set_maximum, new_protection; remote_port),
            vm_inherit(target_task, address, size, new_inheritance; remote_port),
            vm_read(target_task, address, size; remote_port),
            vm_write(target_task, address, data; remote_port),
            vm_copy(target_task, source_address, size, dest_address; remote_port),
            vm_region(target_task, address; remote_port), vm_statistics(target_task; remote_port),
            mach_ports_register(target_task, init_port_set; remote_port),
            mach_ports_lookup(target_task; remote_port),
            memory_object_data_unavailable(memory_control, offset, size),
            memory_object_get_attributes(memory_control; remote_port),
            vm_set_default_memory_manager(host_priv, default_manager; remote_port),
            memory_object_lock_request(memory_control, offset, size, should_return, should_flush, lock_value, reply_to),
            task_suspend(target_task; remote_port), task_resume(target_task; remote_port),
            task_get_special_port(task, which_port; remote_port),
            task_set_special_port(task, which_port, special_port; remote_port),
            thread_create(parent_task; remote_port), thread_suspend(target_thread; remote_port),
            thread_resume(target_thread; remote_port), thread_abort(target_thread; remote_port),
            thread_get_special_port(thread, which_port; remote_port),
            thread_set_special_port(thread, which_port, special_port; remote_port),
            task_set_emulation(target_port, routine_entry_pt, routine_number; remote_port),
            task_ras_control(target_task, basepc, boundspc, flavor; remote_port),
            vm_map(target_task, address, size, mask, anywhere, memory_object, offset, copy, cur_protection, max_protection, inheritance; remote_port),
            memory_object_data_error(memory_control, offset, size, error_value),
            memory_object_destroy(memory_control, reason),
            memory_object_data_supply(memory_control, offset, data, lock_value, precious, reply_to),
            memory_object_ready(memory_control, may_cache, copy_strategy),
            memory_object_change_attributes(memory_control, may_cache, copy_strategy, reply_to),
            vm_machine_attribute(target_task, address, size, attribute, value; remote_port)];
        mach_port: [mach_port_names(task; remote_port), mach_port_type(task, name; remote_port),
            mach_port_rename(task, old_name, new_name; remote_port),
            mach_port_allocate_name(task, right, name; remote_port),
            mach_port_allocate(task, right; remote_port),
            mach_port_destroy(task, name; remote_port),
            mach_port_deallocate(task, name; remote_port),
            mach_port_get_refs(task, name, right; remote_port),
            mach_port_mod_refs(task, name, right, delta; remote_port),
            mach_port_set_qlimit(task, name, qlimit; remote_port),
            mach_port_set_mscount(task, name, mscount; remote_port),
            mach_port_get_set_status(task, name; remote_port),
            mach_port_move_member(task, member, after; remote_port),
            mach_port_request_notification(task, name, id, sync, notify; remote_port),
            mach_port_insert_right(task, name, poly; remote_port),
            mach_port_extract_right(task, name, msgt_name; remote_port),
            mach_port_get_receive_status(task, name; remote_port),
            mach_port_set_seqno(task, name, seqno; remote_port),
            mach_port_set_protected_payload(task, name, payload; remote_port),
            mach_port_clear_protected_payload(task, name; remote_port)];
        mach_host: [host_processors(host_priv; remote_port),
            processor_start(processor; remote_port), processor_exit(processor; remote_port),
            processor_set_default(host; remote_port), processor_set_create(host; remote_port),
            processor_set_destroy(set; remote_port),
            processor_assign(processor, new_set, wait; remote_port),
            processor_get_assignment(processor; remote_port),
            thread_assign(thread, new_set; remote_port),
            thread_assign_default(thread; remote_port), thread_get_assignment(thread; remote_port),
            task_assign(task, new_set, assign_threads; remote_port),
            task_assign_default(task, assign_threads; remote_port),
            task_get_assignment(task; remote_port),
            thread_priority(thread, priority, set_max; remote_port),
            thread_max_priority(thread, processor_set, max_priority; remote_port),
            task_priority(task, priority, change_threads; remote_port),
            processor_set_max_priority(processor_set, max_priority, change_threads; remote_port),
            thread_policy(thread, policy, data; remote_port),
            processor_set_policy_enable(processor_set, policy; remote_port),
            processor_set_policy_disable(processor_set, policy, change_threads; remote_port),
            processor_set_tasks(processor_set; remote_port),
            processor_set_threads(processor_set; remote_port),
            host_processor_sets(host; remote_port),
            host_processor_set_priv(host_priv, set_name; remote_port),
            thread_depress_abort(thread; remote_port),
            host_set_time(host_priv, new_time; remote_port),
            host_adjust_time(host_priv, new_adjustment; remote_port),
            host_get_time(host; remote_port), host_reboot(host_priv, options; remote_port),
            vm_wire(host, task, address, size, access; remote_port),
            thread_wire(host_priv, thread, wired; remote_port),
            host_info(host, flavor, host_info_out_capacity; remote_port),
            processor_info(processor, flavor, processor_info_out_capacity; remote_port),
            processor_set_info(set_name, flavor, info_out_capacity; remote_port),
            processor_control(processor, processor_cmd; remote_port),
            host_get_time64(host; remote_port),
            host_adjust_time64(host_priv, new_adjustment; remote_port),
            host_get_kernel_version(host; remote_port), host_get_uptime64(host; remote_port)];
        gnumach: [vm_cache_statistics(target_task; remote_port),
            thread_terminate_release(thread, task, thread_name, reply_port, address, size),
            task_set_name(task, name),
            register_new_task_notification(host_priv, notification; remote_port),
            gsync_wait(task, addr, val1, val2, msec, flags; remote_port),
            gsync_wake(task, addr, val, flags),
            gsync_requeue(task, src_addr, dst_addr, wake_one, flags),
            vm_wire_all(host, task, flags; remote_port),
            vm_object_sync(object, offset, size, should_flush, should_return, should_iosync; remote_port),
            vm_msync(target_task, address, size, sync_flags; remote_port),
            vm_allocate_contiguous(host_priv, target_task, size, pmin, pmax, palign; remote_port),
            task_set_essential(task, essential),
            vm_pages_phys(host_priv, target_task, vaddr, size; remote_port),
            thread_set_name(thread, name), thread_get_name(thread; remote_port)];
        mach_i386: [i386_set_ldt(target_thread, first_selector, desc_list; remote_port),
            i386_get_ldt(target_thread, first_selector, selector_count; remote_port),
            i386_io_perm_create(master_port, from, to; remote_port),
            i386_io_perm_modify(target_task, io_perm, enable; remote_port),
            i386_set_gdt(target_thread, selector, desc; remote_port),
            i386_get_gdt(target_thread, selector; remote_port),
            i386_get_xstate_size(host; remote_port)];
        notify: [mach_notify_port_deleted(notify, name), mach_notify_msg_accepted(notify, name),
            mach_notify_port_destroyed(notify, rights), mach_notify_no_senders(notify, mscount),
            mach_notify_send_once(notify), mach_notify_dead_name(notify, name)];
        exc: [exception_raise(exception_port, thread, task, exception, code, subcode; remote_port)];
        fsys: [fsys_startup(bootstrap, openflags, control_port; remote_port),
            fsys_goaway(fsys, flags; remote_port),
            fsys_getroot(fsys, dotdot_node, gen_uids, gen_gids, flags; remote_port),
            fsys_syncfs(fsys, wait, do_children; remote_port),
            fsys_set_options(fsys, options, do_children; remote_port),
            fsys_getpriv(fsys; remote_port),
            fsys_init(fsys, proc_server, auth_handle; remote_port),
            fsys_get_options(server; remote_port),
            fsys_get_source(server; remote_port)];
        startup_notify: [startup_dosync(notify_port; remote_port)];
        fs: [file_chown(chown_file, new_owner, new_group; remote_port),
            file_chmod(chmod_file, new_mode; remote_port),
            file_utimes(utimes_file, new_atime, new_mtime; remote_port),
            file_check_access(file; remote_port),
            file_getcontrol(file; remote_port),
            file_statfs(file; remote_port),
            file_sync(file, wait, omit_metadata; remote_port),
            file_syncfs(file, wait, do_children; remote_port),
            dir_lookup(start_dir, file_name, flags, mode; remote_port),
            file_set_translator(file, passive_flags, active_flags, oldtrans_flags, passive, active; remote_port),
            file_get_fs_options(file; remote_port)];
        io: [io_seek(io_object, offset, whence; remote_port),
            io_get_openmodes(io_object; remote_port),
            io_stat(stat_object; remote_port),
            io_restrict_auth(io_object, uids, gids; remote_port),
            io_duplicate(io_object; remote_port),
            io_identity(io_object; remote_port),
            io_reauthenticate(auth_object, rendezvous2)];
        startup: [startup_essential_task(server, task, excpt, name, credential; remote_port),
            startup_request_notification(server, notify_port, name; remote_port)];
        process: [proc_set_arg_locations(process, argv, envp; remote_port), proc_mark_exec(process; remote_port),
            proc_task2proc(process, task; remote_port)];
        mach_port_ktype: [set_ktype(host, task, name, right, ktype; remote_port)];
        auth: [auth_server_authenticate(handle, rendezvous, newport; remote_port)];
        pci: [pci_conf_read(master, reg, amount; remote_port), pci_conf_write(master, reg, data; remote_port)];
        device_intr_notify: [device_intr_notify(notify_port, id)];
    }
    // Trixie's headers (x86_64) and sid's (i686) name `host_set_time64`'s port differently, and
    // sid's gnumach-dev, newer, has routines trixie's does not.
    X86_64 => x86_64 {
        mach_host: [host_set_time64(host, new_time; remote_port)];
    }
    I686 => i686 {
        mach_port: [mach_port_set_ktype(host, task, name, right, ktype; remote_port)];
        mach_host: [host_kernel_version(host; remote_port),
            host_set_time64(host_priv, new_time; remote_port),
            processor_set_processors(set_name; remote_port),
            task_max_priority(host, task, max_priority, set_priority, change_threads; remote_port)];
        gnumach: [vm_set_size_limit(host_port, map, current_limit, max_limit; remote_port),
            vm_get_size_limit(map; remote_port)];
    }
}

/// The interfaces compared here (`device.rs` types the device interfaces' own).
const INTERFACES: [&str; 17] = [
    "mach",
    "mach_port",
    "mach_host",
    "gnumach",
    "mach_i386",
    "notify",
    "exc",
    "fsys",
    "startup_notify",
    "fs",
    "io",
    "startup",
    "process",
    "mach_port_ktype",
    "auth",
    "pci",
    "device_intr_notify",
];

/// Routines whose request the generated code does not write as GNU MIG does, with why.
const KNOWN_REQUEST_ENCODING_DIVERGENCES: &[Known] = &[];

/// Routines whose request carries a choice of the caller that delivery does not keep, so the
/// decoded values cannot tell the encoder; the test gives it the caller's choice instead (see
/// `Context::disposition` and `deallocate_all`). Checked to be exactly the routines whose GNU MIG
/// stub takes such a choice (a `…Poly` or `…Dealloc` parameter).
const CHOICES_DELIVERY_LOSES: &[Known] = &[
    ("mach", "memory_object_data_supply", DEALLOCATE),
    ("mach_port", "mach_port_request_notification", DISPOSITION),
    ("mach_port", "mach_port_insert_right", DISPOSITION),
    ("gnumach", "register_new_task_notification", DISPOSITION),
    ("notify", "mach_notify_port_destroyed", DISPOSITION),
    ("fsys", "fsys_startup", DISPOSITION),
    ("fsys", "fsys_getroot", DISPOSITION),
    ("fsys", "fsys_init", DISPOSITION),
    ("fs", "file_set_translator", DISPOSITION),
    ("io", "io_reauthenticate", DISPOSITION),
    ("startup", "startup_request_notification", DISPOSITION),
    ("auth", "auth_server_authenticate", DISPOSITION),
];

const DISPOSITION: &str = "the caller chooses a port's disposition and the receiver sees the right \
     it got (`COPY_SEND` and `MAKE_SEND` arrive as `PORT_SEND`): the encoder gets the caller's choice";
const DEALLOCATE: &str = "`Dealloc[]` data: the caller chooses to keep or move it; the generated \
     encoder takes an `OolMemory` and always moves it, so GNU MIG's client is made to move it too";

/// Whether GNU MIG's stub for `case` takes a choice delivery loses: a `…Poly` or `…Dealloc`
/// parameter of an argument the request carries.
fn takes_a_choice_delivery_loses(case: &routines::Case) -> bool {
    case.user_stub.params.iter().any(|(_, name)| {
        let base = name
            .strip_suffix("Poly")
            .or_else(|| name.strip_suffix("Dealloc"));
        base.and_then(|base| case.routine.args.iter().find(|a| a.name == base))
            .is_some_and(|arg| arg.kind != ArgKind::Out)
    })
}

/// Sets every `…Dealloc` argument of GNU MIG's stub (a `Dealloc[]` item: the caller chooses per
/// call) to true, the only choice the generated encoders offer: they take the memory as an
/// `OolMemory` and move it. Returns whether any was false.
fn deallocate_all(case: &routines::Case, args: &mut [Arg]) -> bool {
    let mut changed = false;
    for ((_, name), arg) in case.user_stub.params.iter().zip(args) {
        if name.ends_with("Dealloc") {
            let deallocate = 1u32.to_le_bytes().to_vec();
            changed |= !matches!(arg, Arg::Value(v) if *v == deallocate);
            *arg = Arg::Value(deallocate);
        }
    }
    changed
}

/// `msg` with every out-of-line address zeroed.
fn without_addresses(abi: Abi, msg: &[u8]) -> Vec<u8> {
    let mut msg = msg.to_vec();
    for field in message::ool_fields(abi, &msg) {
        message::set_address(abi, &mut msg, field.offset, 0);
    }
    msg
}

/// Every routine of the interfaces above, both ABIs, `ROUNDS` generated requests each.
#[test]
fn rust_requests_match_gnu_mig_byte_for_byte() {
    let mut with_choices = Vec::new();
    super::for_every_routine(KNOWN_REQUEST_ENCODING_DIVERGENCES, |case, rng| {
        if !INTERFACES.contains(&case.interface) {
            return Ok(());
        }
        if takes_a_choice_delivery_loses(case) {
            with_choices.push((case.interface, case.routine.name.clone()));
        }
        let abi = case.abi;
        let reencode = reencoder(abi, case.interface, &case.routine.name)
            .ok_or("no re-encoder: add the routine to `reencoders!` in request_parity.rs")?;
        let (mut args, mut sent) = super::c_request(case, rng)?;
        if deallocate_all(case, &mut args) {
            let call = c_stubs::user(abi).call(&case.user_stub.name, &args);
            sent = call
                .sent
                .ok_or_else(|| format!("the C stub sent nothing (kr {})", call.kr))?;
        }
        let context = Context {
            abi,
            case,
            args: &args,
        };
        let rust = without_addresses(abi, &reencode(&message::deliver(abi, &sent), &context)?);
        let c = without_addresses(abi, &sent);
        if rust != c {
            let at = rust
                .iter()
                .zip(&c)
                .position(|(r, c)| r != c)
                .unwrap_or(rust.len().min(c.len()));
            return Err(format!(
                "request bytes differ from byte {at} (Rust {} bytes, GNU MIG {}):\nRust    {}\nGNU MIG {}",
                rust.len(),
                c.len(),
                hex(&rust),
                hex(&c)
            ));
        }
        Ok(())
    });
    with_choices.sort();
    with_choices.dedup();
    let mut listed: Vec<(&str, String)> = CHOICES_DELIVERY_LOSES
        .iter()
        .map(|(i, r, _)| (*i, r.to_string()))
        .collect();
    listed.sort();
    assert_eq!(
        with_choices, listed,
        "routines whose caller's choices delivery loses"
    );
}
