//! The generated Rust stubs of every routine, reachable by name: each routine's pure request
//! and reply decoders for both ABIs, and each interface's demux (the host's ABI, x86_64) over
//! a server that implements nothing (every method answers `MIG_BAD_ID`).
//!
//! Shared with the fuzz targets (`fuzz/`), which include this file.

use mach::interfaces;
use mach::mig_rt::Demuxed;

use mig::Abi;

/// A decoder, reduced to what the tests compare: success, or the error code.
pub type Decode = fn(&[u8]) -> Result<(), i32>;

pub struct Decoders {
    pub request: Decode,
    /// `None` for a simpleroutine.
    pub reply: Option<Decode>,
}

fn code<T>(result: mach::kern::Result<T>) -> Result<(), i32> {
    result.map(drop).map_err(|e| e.code())
}

/// A server of every interface that implements no method.
pub struct Refuse;

macro_rules! routines {
    ($($interface:ident: [$($routine:ident),*] [$($simple:ident),*];)*) => {
        $(impl interfaces::$interface::Server for Refuse {})*

        /// The routine's decoders for `abi`; `None` if the generated code has no such routine.
        pub fn decoders(abi: Abi, interface: &str, routine: &str) -> Option<Decoders> {
            if abi == Abi::I686 {
                if let Some(d) = i686_only_decoders(interface, routine) {
                    return Some(d);
                }
            }
            match (abi, interface, routine) {
                $(
                    $((Abi::X86_64, stringify!($interface), stringify!($routine)) => Some(Decoders {
                        request: |m| code(interfaces::$interface::x86_64::$routine::request::decode(m)),
                        reply: Some(|m| code(interfaces::$interface::x86_64::$routine::reply::decode(m))),
                    }),
                    (Abi::I686, stringify!($interface), stringify!($routine)) => Some(Decoders {
                        request: |m| code(interfaces::$interface::i686::$routine::request::decode(m)),
                        reply: Some(|m| code(interfaces::$interface::i686::$routine::reply::decode(m))),
                    }),)*
                    $((Abi::X86_64, stringify!($interface), stringify!($simple)) => Some(Decoders {
                        request: |m| code(interfaces::$interface::x86_64::$simple::request::decode(m)),
                        reply: None,
                    }),
                    (Abi::I686, stringify!($interface), stringify!($simple)) => Some(Decoders {
                        request: |m| code(interfaces::$interface::i686::$simple::request::decode(m)),
                        reply: None,
                    }),)*
                )*
                _ => None,
            }
        }

        /// Every `(interface, routine)` both ABIs have.
        pub const ROUTINES: &[(&str, &str)] = &[$($((stringify!($interface), stringify!($routine)),)* $((stringify!($interface), stringify!($simple)),)*)*];

        /// Every interface.
        pub const INTERFACES: &[&str] = &[$(stringify!($interface)),*];

        /// The generated demux of `interface` (host ABI) with [`Refuse`] as the server.
        pub fn demux(interface: &str, request: &[u8], reply: &mut [u8]) -> Option<Demuxed> {
            match interface {
                $(stringify!($interface) => Some(interfaces::$interface::demux(&mut Refuse, request, reply)),)*
                _ => None,
            }
        }
    };
}

routines! {
    device: [device_open, device_close, device_write, device_write_inband, device_read, device_read_inband,
        device_open_new, device_map, device_set_status, device_get_status, device_set_filter, device_intr_register, device_intr_ack] [];
    device_request: [] [device_open_request, device_write_request, device_write_request_inband, device_read_request,
        device_read_request_inband, device_open_new_request];
    device_reply: [] [device_open_reply, device_write_reply, device_write_reply_inband, device_read_reply,
        device_read_reply_inband];
    mach: [task_create, task_terminate, task_get_emulation_vector, task_set_emulation_vector, task_threads, task_info,
        thread_terminate, thread_get_state, thread_set_state, thread_info, vm_allocate, vm_deallocate, vm_protect,
        vm_inherit, vm_read, vm_write, vm_copy, vm_region, vm_statistics, mach_ports_register, mach_ports_lookup,
        memory_object_get_attributes, vm_set_default_memory_manager, task_suspend, task_resume, task_get_special_port,
        task_set_special_port, thread_create, thread_suspend, thread_resume, thread_abort, thread_get_special_port,
        thread_set_special_port, task_set_emulation, task_ras_control, vm_map, vm_machine_attribute]
        [memory_object_data_unavailable, memory_object_lock_request, memory_object_data_error, memory_object_destroy,
        memory_object_data_supply, memory_object_ready, memory_object_change_attributes];
    mach_port: [mach_port_names, mach_port_type, mach_port_rename, mach_port_allocate_name, mach_port_allocate,
        mach_port_destroy, mach_port_deallocate, mach_port_get_refs, mach_port_mod_refs, mach_port_set_qlimit,
        mach_port_set_mscount, mach_port_get_set_status, mach_port_move_member, mach_port_request_notification,
        mach_port_insert_right, mach_port_extract_right, mach_port_get_receive_status, mach_port_set_seqno,
        mach_port_set_protected_payload, mach_port_clear_protected_payload] [];
    mach_host: [host_processors, processor_start, processor_exit, processor_set_default, processor_set_create,
        processor_set_destroy, processor_assign, processor_get_assignment, thread_assign, thread_assign_default,
        thread_get_assignment, task_assign, task_assign_default, task_get_assignment, thread_priority,
        thread_max_priority, task_priority, processor_set_max_priority, thread_policy, processor_set_policy_enable,
        processor_set_policy_disable, processor_set_tasks, processor_set_threads, host_processor_sets,
        host_processor_set_priv, thread_depress_abort, host_set_time, host_adjust_time, host_get_time, host_reboot,
        vm_wire, thread_wire, host_info, processor_info, processor_set_info, processor_control, host_get_time64,
        host_set_time64, host_adjust_time64, host_get_kernel_version, host_get_uptime64] [];
    gnumach: [vm_cache_statistics, register_new_task_notification, gsync_wait, vm_wire_all, vm_object_sync, vm_msync,
        vm_allocate_contiguous, vm_pages_phys, thread_get_name]
        [thread_terminate_release, task_set_name, gsync_wake, gsync_requeue, task_set_essential, thread_set_name];
    mach_i386: [i386_set_ldt, i386_get_ldt, i386_io_perm_create, i386_io_perm_modify, i386_set_gdt, i386_get_gdt,
        i386_get_xstate_size] [];
    notify: [] [mach_notify_port_deleted, mach_notify_msg_accepted, mach_notify_port_destroyed, mach_notify_no_senders,
        mach_notify_send_once, mach_notify_dead_name];
    exc: [exception_raise] [];
    fsys: [fsys_startup, fsys_goaway, fsys_getroot, fsys_syncfs, fsys_set_options, fsys_getpriv, fsys_init, fsys_get_options,
        fsys_get_source] [];
    startup_notify: [startup_dosync] [];
    fs: [file_chown, file_chmod, file_utimes, file_check_access, file_getcontrol, file_statfs, file_sync, file_syncfs,
        dir_lookup, file_set_translator, file_get_fs_options] [];
    io: [io_seek, io_get_openmodes, io_stat, io_restrict_auth, io_duplicate, io_identity] [io_reauthenticate];
    startup: [startup_essential_task, startup_request_notification] [];
    process: [proc_set_arg_locations, proc_mark_exec, proc_task2proc] [];
    mach_port_ktype: [set_ktype] [];
    auth: [auth_server_authenticate] [];
    pci: [pci_conf_read, pci_conf_write] [];
    device_intr_notify: [] [device_intr_notify];
}

/// Routines only the i686 headers have (sid's gnumach-dev is newer than trixie's).
macro_rules! i686_only {
    ($($interface:ident: [$($routine:ident),*];)*) => {
        /// Every `(interface, routine)` only the i686 ABI has.
        pub const I686_ONLY_ROUTINES: &[(&str, &str)] = &[$($((stringify!($interface), stringify!($routine)),)*)*];

        fn i686_only_decoders(interface: &str, routine: &str) -> Option<Decoders> {
            match (interface, routine) {
                $($((stringify!($interface), stringify!($routine)) => Some(Decoders {
                    request: |m| code(interfaces::$interface::i686::$routine::request::decode(m)),
                    reply: Some(|m| code(interfaces::$interface::i686::$routine::reply::decode(m))),
                }),)*)*
                _ => None,
            }
        }
    };
}

i686_only! {
    mach_port: [mach_port_set_ktype];
    mach_host: [host_kernel_version, processor_set_processors, task_max_priority];
    gnumach: [vm_set_size_limit, vm_get_size_limit];
}
