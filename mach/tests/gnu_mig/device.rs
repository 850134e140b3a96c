//! Typed differential tests of `device.defs` and its asynchronous halves (`device_request.defs`,
//! `device_reply.defs`), both ABIs: for generated argument values (edges
//! included: empty and full arrays, one over the bound, sizes not a multiple of 8, empty and
//! 127/128-byte names) the generated request encoder writes GNU MIG's request byte for byte,
//! the generated reply encoder writes GNU MIG's server reply for the same handler results, and
//! each side decodes the other's reply to the same values.

use mach::interfaces::device;
use mach::mig_rt::PortArg;
use mach::ool::OolMemory;
use mach::port::PortName;
use proptest::prelude::*;

use super::c_stubs::{self, hex, Abi, Arg};
use super::message;

const REPLY_PORT: u32 = 0x7e57;
const MIG_ARRAY_TOO_LARGE: i32 = -307;
const MOVE_SEND: u32 = 17;

/// `$call` on the `x86_64` or `i686` module of `device`, as `abi` says.
macro_rules! by_abi {
    ($abi:expr, $($path:ident)::+ ($($arg:expr),* $(,)?)) => {
        match $abi {
            Abi::X86_64 => device::x86_64::$($path)::+($($arg),*),
            Abi::I686 => device::i686::$($path)::+($($arg),*),
        }
    };
}

fn u32le(v: u32) -> Arg {
    Arg::Value(v.to_le_bytes().to_vec())
}

/// `recnum_t`/`vm_offset_t`/`vm_size_t`: as wide as the ABI's word.
fn word(abi: Abi, v: u64) -> Arg {
    Arg::Value(v.to_le_bytes()[..abi.pointer_size()].to_vec())
}

fn out(bytes: usize) -> Arg {
    Arg::Buffer(vec![0; bytes])
}

fn abis() -> impl Strategy<Value = Abi> {
    prop_oneof![Just(Abi::X86_64), Just(Abi::I686)]
}

/// Lengths around the interesting edges of an array bounded by `max`.
fn len_up_to(max: usize) -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), Just(max), Just(max + 1), 0..=max]
}

/// The request GNU MIG's user stub sends, or its return code when it sends nothing.
fn c_request(abi: Abi, routine: &str, args: &[Arg]) -> Result<Vec<u8>, i32> {
    let mut user = c_stubs::user(abi);
    user.set_reply_port(REPLY_PORT);
    let call = user.call(routine, args);
    call.sent.ok_or(call.kr)
}

/// Replaces every out-of-line address of `msg` by the contents there (`contents` for the Rust
/// side, the C program's memory for GNU MIG's), so messages from two processes compare.
fn normalise(abi: Abi, msg: &[u8], contents: &mut dyn FnMut(u64, usize) -> Vec<u8>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut msg = msg.to_vec();
    let mut data = Vec::new();
    for field in message::ool_fields(abi, &msg) {
        data.push(contents(field.address, field.len));
        message::set_address(abi, &mut msg, field.offset, 0);
    }
    (msg, data)
}

/// Rust's request (its out-of-line data given as `ool`) equals GNU MIG's, or both refuse it.
fn same_request(
    abi: Abi,
    routine: &str,
    rust: mach::kern::Result<usize>,
    buf: &[u8],
    ool: &[&[u8]],
    args: &[Arg],
) -> Result<Option<Vec<u8>>, TestCaseError> {
    let c = c_request(abi, routine, args);
    match (rust, c) {
        (Err(e), Err(kr)) => {
            prop_assert_eq!(e.code(), kr, "{:?} {}: both refuse, with different codes", abi, routine);
            Ok(None)
        }
        (Ok(size), Ok(c)) => {
            let mut rust_ool = ool.iter().map(|d| d.to_vec());
            let (rust_msg, rust_data) = normalise(abi, &buf[..size], &mut |_, _| rust_ool.next().unwrap_or_default());
            let (c_msg, c_data) = normalise(abi, &c, &mut |address, len| c_stubs::user(abi).peek(address, len));
            prop_assert_eq!(hex(&rust_msg), hex(&c_msg), "{:?} {}: request bytes differ", abi, routine);
            prop_assert_eq!(rust_data, c_data, "{:?} {}: out-of-line data differs", abi, routine);
            Ok(Some(c))
        }
        (rust, c) => Err(TestCaseError::fail(format!("{abi:?} {routine}: Rust {rust:?}, GNU MIG {c:?}"))),
    }
}

/// GNU MIG's server reply to `request` (as delivered) with the handler results `ops`, and the
/// reply port and disposition a Rust server would answer to.
fn c_reply(abi: Abi, request: &[u8], ops: &[String]) -> (Vec<u8>, PortName, u32) {
    let mut delivered = message::deliver(abi, request);
    // The kernel copies out-of-line data into the receiver: here, from one program to the other.
    for field in message::ool_fields(abi, &delivered) {
        let data = c_stubs::user(abi).peek(field.address, field.len);
        let address = c_stubs::server(abi).alloc(&data);
        message::set_address(abi, &mut delivered, field.offset, address);
    }
    let mut server = c_stubs::server(abi);
    server.script(0, ops);
    let reply = server.demux("device_server", &delivered).reply;
    let bits = u32::from_le_bytes(delivered[0..4].try_into().unwrap());
    let remote = u32::from_le_bytes(delivered[8..12].try_into().unwrap());
    (reply, PortName::new(remote), bits & 0xff)
}

/// Rust's reply equals GNU MIG's (out-of-line data compared by contents).
fn same_reply(abi: Abi, routine: &str, rust: &[u8], ool: &[&[u8]], c: &[u8]) -> Result<(), TestCaseError> {
    let mut rust_ool = ool.iter().map(|d| d.to_vec());
    let (rust_msg, rust_data) = normalise(abi, rust, &mut |_, _| rust_ool.next().unwrap_or_default());
    let (c_msg, c_data) = normalise(abi, c, &mut |address, len| c_stubs::server(abi).peek(address, len));
    prop_assert_eq!(hex(&rust_msg), hex(&c_msg), "{:?} {}: reply bytes differ", abi, routine);
    prop_assert_eq!(rust_data, c_data, "{:?} {}: out-of-line reply data differs", abi, routine);
    Ok(())
}

/// GNU MIG's client decoding `reply`: its return code and out-parameter buffers.
fn c_decode(abi: Abi, routine: &str, reply: &[u8], args: &[Arg]) -> c_stubs::Call {
    let mut user = c_stubs::user(abi);
    user.load_reply(&message::deliver(abi, reply));
    user.call(routine, args)
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec![b'n'; 127]),
        Just(vec![b'n'; 128]),
        proptest::collection::vec(b'!'..=b'~', 1..=130),
    ]
}

/// Where the name's data starts in a `device_open`/`device_open_new` request (its second item).
fn name_offset(abi: Abi, request: &[u8]) -> usize {
    message::items(abi, request).expect("GNU MIG's request parses")[1].data_offset
}

fn c_string(name: &[u8]) -> Vec<u8> {
    let mut s = name.to_vec();
    s.push(0);
    s
}

proptest! {
    // Every answer of the C driver is waited for 10 s at most (`c_stubs::ANSWER_WAIT`), and
    // shrinking for 15 s: a hang fails the test within a minute.
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, max_shrink_time: 15_000, ..ProptestConfig::default() })]

    #[test]
    fn device_open_matches_gnu_mig(abi in abis(), master in any::<u32>(), mode in any::<u32>(), name in name_strategy(),
                                   device_port in 1..u32::MAX, open_new in any::<bool>()) {
        let mut buf = [0u8; 512];
        let (routine, rust) = if open_new {
            ("device_open_new", by_abi!(abi, device_open_new::request::encode(&mut buf, PortName::new(master), mode, &name, PortName::new(REPLY_PORT))))
        } else {
            ("device_open", by_abi!(abi, device_open::request::encode(&mut buf, PortName::new(master), mode, &name, PortName::new(REPLY_PORT))))
        };
        let args = [u32le(master), u32le(mode), Arg::Buffer(c_string(&name)), out(4)];
        if name.len() > 127 {
            // GNU MIG's stub silently cuts the name to 127 bytes (another device's name, perhaps);
            // the generated one refuses it.
            prop_assert_eq!(rust.map_err(|e| e.code()), Err(MIG_ARRAY_TOO_LARGE));
            let request = c_request(abi, routine, &args).expect("GNU MIG sends a cut name");
            let at = name_offset(abi, &request);
            prop_assert_eq!(&request[at..at + 128], &c_string(&name[..127])[..]);
            return Ok(());
        }
        let Some(request) = same_request(abi, routine, rust, &buf, &[], &args)? else { return Ok(()) };

        let ops = ["-", "-", "-", "-", "r4"].map(str::to_owned).into_iter()
            .chain([format!("w{}", hex(&device_port.to_le_bytes())), format!("w{}", hex(&MOVE_SEND.to_le_bytes()))])
            .collect::<Vec<_>>();
        let (c, port, disposition) = c_reply(abi, &request, &ops);
        let value = PortArg { name: PortName::new(device_port), disposition: MOVE_SEND };
        let mut reply = [0u8; 256];
        let size = if open_new {
            by_abi!(abi, device_open_new::reply::encode(&mut reply, port, disposition, Ok(value)))
        } else {
            by_abi!(abi, device_open::reply::encode(&mut reply, port, disposition, Ok(value)))
        }.expect("reply encodes");
        same_reply(abi, routine, &reply[..size], &[], &c)?;
        let delivered = message::deliver(abi, &c);
        let decoded = if open_new {
            by_abi!(abi, device_open_new::reply::decode(&delivered))
        } else {
            by_abi!(abi, device_open::reply::decode(&delivered))
        };
        prop_assert_eq!(decoded.map(PortName::raw), Ok(device_port));
        let call = c_decode(abi, routine, &reply[..size], &args);
        prop_assert_eq!(call.kr, 0);
        prop_assert_eq!(&call.outs[1].1, &device_port.to_le_bytes().to_vec());
    }

    #[test]
    fn device_write_matches_gnu_mig(abi in abis(), device_port in any::<u32>(), mode in any::<u32>(), recnum in any::<u32>(),
                                    len in len_up_to(129), inband in any::<bool>(), written in any::<i32>()) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut buf = [0u8; 512];
        let (routine, rust) = if inband {
            ("device_write_inband", by_abi!(abi, device_write_inband::request::encode(&mut buf, PortName::new(device_port), mode, recnum as _, &data, PortName::new(REPLY_PORT))))
        } else {
            ("device_write", by_abi!(abi, device_write::request::encode(&mut buf, PortName::new(device_port), mode, recnum as _, &data, PortName::new(REPLY_PORT))))
        };
        let args = [u32le(device_port), u32le(mode), word(abi, recnum.into()), Arg::Buffer(data.clone()), u32le(len as u32), out(4)];
        let Some(request) = same_request(abi, routine, rust, &buf, &[&data], &args)? else { return Ok(()) };

        let ops: Vec<String> = ["-", "-", "-", "-", "-", &format!("r{len}"), "-", &format!("w{}", hex(&written.to_le_bytes()))]
            .map(str::to_owned).to_vec();
        let (c, port, disposition) = c_reply(abi, &request, &ops);
        let mut reply = [0u8; 128];
        let size = if inband {
            by_abi!(abi, device_write_inband::reply::encode(&mut reply, port, disposition, Ok(written)))
        } else {
            by_abi!(abi, device_write::reply::encode(&mut reply, port, disposition, Ok(written)))
        }.expect("reply encodes");
        same_reply(abi, routine, &reply[..size], &[], &c)?;
        let delivered = message::deliver(abi, &c);
        let decoded = if inband {
            by_abi!(abi, device_write_inband::reply::decode(&delivered))
        } else {
            by_abi!(abi, device_write::reply::decode(&delivered))
        };
        prop_assert_eq!(decoded, Ok(written));
        let call = c_decode(abi, routine, &reply[..size], &args);
        prop_assert_eq!((call.kr, &call.outs[1].1), (0, &written.to_le_bytes().to_vec()));
    }

    #[test]
    fn device_read_matches_gnu_mig(abi in abis(), device_port in any::<u32>(), mode in any::<u32>(), recnum in any::<u32>(),
                                   wanted in any::<i32>(), len in len_up_to(128), inband in any::<bool>()) {
        let data: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
        let mut buf = [0u8; 256];
        let (routine, rust) = if inband {
            ("device_read_inband", by_abi!(abi, device_read_inband::request::encode(&mut buf, PortName::new(device_port), mode, recnum as _, wanted, PortName::new(REPLY_PORT))))
        } else {
            ("device_read", by_abi!(abi, device_read::request::encode(&mut buf, PortName::new(device_port), mode, recnum as _, wanted, PortName::new(REPLY_PORT))))
        };
        let data_arg = if inband { out(128) } else { out(abi.pointer_size()) };
        let count_arg = if inband { Arg::Buffer(128u32.to_le_bytes().to_vec()) } else { out(4) };
        let args = [u32le(device_port), u32le(mode), word(abi, recnum.into()), Arg::Value(wanted.to_le_bytes().to_vec()), data_arg, count_arg];
        let Some(request) = same_request(abi, routine, rust, &buf, &[], &args)? else { return Ok(()) };
        if inband && len > 128 {
            return Ok(());
        }
        let op = if inband { "w" } else { "a" };
        let ops: Vec<String> = ["-", "-", "-", "-", "-", "-", &format!("{op}{}", hex(&data)), &format!("w{}", hex(&(len as u32).to_le_bytes()))]
            .map(str::to_owned).to_vec();
        let (c, port, disposition) = c_reply(abi, &request, &ops);
        let mut reply = [0u8; 512];
        let size = if inband {
            by_abi!(abi, device_read_inband::reply::encode(&mut reply, port, disposition, Ok(&data)))
        } else {
            let memory = OolMemory::copy_from(&data).expect("memory");
            by_abi!(abi, device_read::reply::encode(&mut reply, port, disposition, Ok(memory)))
        }.expect("reply encodes");
        same_reply(abi, routine, &reply[..size], &[&data], &c)?;
        let delivered = message::deliver(abi, &c);
        if inband {
            prop_assert_eq!(by_abi!(abi, device_read_inband::reply::decode(&delivered)), Ok(&data[..]));
        } else {
            let region = by_abi!(abi, device_read::reply::decode(&delivered)).expect("GNU MIG's reply decodes");
            prop_assert_eq!(region.len, len);
        }
    }

    #[test]
    fn device_status_matches_gnu_mig(abi in abis(), device_port in any::<u32>(), flavor in prop_oneof![Just(0u32), Just(1), Just(2), Just(0x125f), any::<u32>()],
                                     status in len_up_to(1024).prop_flat_map(|n| proptest::collection::vec(any::<i32>(), n)),
                                     capacity in len_up_to(1024), get in any::<bool>()) {
        let mut buf = vec![0u8; 8192];
        if get {
            let rust = by_abi!(abi, device_get_status::request::encode(&mut buf, PortName::new(device_port), flavor, capacity as u32, PortName::new(REPLY_PORT)));
            let args = [u32le(device_port), u32le(flavor), out(4 * capacity.max(1)), Arg::Buffer((capacity as u32).to_le_bytes().to_vec())];
            let Some(request) = same_request(abi, "device_get_status", rust, &buf, &[], &args)? else { return Ok(()) };
            let returned = &status[..status.len().min(capacity).min(1024)];
            let bytes: Vec<u8> = returned.iter().flat_map(|v| v.to_le_bytes()).collect();
            let ops: Vec<String> = vec!["-".into(), "-".into(), format!("w{}", hex(&bytes)), format!("w{}", hex(&(returned.len() as u32).to_le_bytes()))];
            let (c, port, disposition) = c_reply(abi, &request, &ops);
            let mut reply = vec![0u8; 8192];
            let size = by_abi!(abi, device_get_status::reply::encode(&mut reply, port, disposition, Ok(returned))).expect("reply encodes");
            same_reply(abi, "device_get_status", &reply[..size], &[], &c)?;
            let delivered = message::deliver(abi, &c);
            let decoded = by_abi!(abi, device_get_status::reply::decode(&delivered)).map(|a| a.iter().collect::<Vec<i32>>());
            prop_assert_eq!(decoded, Ok(returned.to_vec()));
        } else {
            let rust = by_abi!(abi, device_set_status::request::encode(&mut buf, PortName::new(device_port), flavor, &status, PortName::new(REPLY_PORT)));
            let bytes: Vec<u8> = status.iter().flat_map(|v| v.to_le_bytes()).collect();
            let args = [u32le(device_port), u32le(flavor), Arg::Buffer(bytes), u32le(status.len() as u32)];
            let Some(request) = same_request(abi, "device_set_status", rust, &buf, &[], &args)? else { return Ok(()) };
            let (c, port, disposition) = c_reply(abi, &request, &["-", "-", "-", "-"].map(str::to_owned));
            let mut reply = [0u8; 128];
            let size = by_abi!(abi, device_set_status::reply::encode(&mut reply, port, disposition, Ok(()))).expect("reply encodes");
            same_reply(abi, "device_set_status", &reply[..size], &[], &c)?;
            prop_assert_eq!(by_abi!(abi, device_set_status::reply::decode(&message::deliver(abi, &c))), Ok(()));
        }
    }

    #[test]
    fn device_close_map_and_ports_match_gnu_mig(abi in abis(), device_port in any::<u32>(), receive in any::<u32>(),
                                                 prot in any::<i32>(), offset in any::<u32>(), size in any::<u32>(), unmap in any::<i32>(),
                                                 id in any::<i32>(), flags in any::<i32>(), priority in any::<i32>(),
                                                 filter in len_up_to(128).prop_flat_map(|n| proptest::collection::vec(any::<i16>(), n))) {
        let mut buf = [0u8; 512];
        let reply_to = PortName::new(REPLY_PORT);
        let poly = PortArg { name: PortName::new(receive), disposition: 20 };
        let device = PortName::new(device_port);
        let filter_bytes: Vec<u8> = filter.iter().flat_map(|v| v.to_le_bytes()).collect();
        let c_args: [(&str, Vec<Arg>); 5] = [
            ("device_close", vec![u32le(device_port)]),
            ("device_map", vec![u32le(device_port), Arg::Value(prot.to_le_bytes().to_vec()), word(abi, offset.into()),
                                word(abi, size.into()), out(4), Arg::Value(unmap.to_le_bytes().to_vec())]),
            ("device_intr_register", vec![u32le(device_port), Arg::Value(id.to_le_bytes().to_vec()),
                                          Arg::Value(flags.to_le_bytes().to_vec()), u32le(receive), u32le(20)]),
            ("device_intr_ack", vec![u32le(device_port), u32le(receive), u32le(20)]),
            ("device_set_filter", vec![u32le(device_port), u32le(receive), u32le(20), Arg::Value(priority.to_le_bytes().to_vec()),
                                       Arg::Buffer(filter_bytes), u32le(filter.len() as u32)]),
        ];
        for (routine, args) in &c_args {
            let rust = match *routine {
                "device_close" => by_abi!(abi, device_close::request::encode(&mut buf, device, reply_to)),
                "device_map" => by_abi!(abi, device_map::request::encode(&mut buf, device, prot, offset as _, size as _, unmap, reply_to)),
                "device_intr_register" => by_abi!(abi, device_intr_register::request::encode(&mut buf, device, id, flags, poly, reply_to)),
                "device_intr_ack" => by_abi!(abi, device_intr_ack::request::encode(&mut buf, device, poly, reply_to)),
                _ => by_abi!(abi, device_set_filter::request::encode(&mut buf, device, poly, priority, &filter, reply_to)),
            };
            same_request(abi, routine, rust, &buf, &[], args)?;
        }
    }

    #[test]
    fn array_bounds_refused_like_gnu_mig(abi in abis(), extra in 1usize..4) {
        // One element over the bound: GNU MIG's stub returns MIG_ARRAY_TOO_LARGE without sending.
        let data = vec![0u8; 128 + extra];
        let mut buf = [0u8; 512];
        let rust = by_abi!(abi, device_write_inband::request::encode(&mut buf, PortName::new(1), 0, 0, &data, PortName::new(REPLY_PORT)));
        let args = [u32le(1), u32le(0), word(abi, 0), Arg::Buffer(data.clone()), u32le(data.len() as u32), out(4)];
        prop_assert_eq!(rust.map_err(|e| e.code()), Err(MIG_ARRAY_TOO_LARGE));
        prop_assert_eq!(c_request(abi, "device_write_inband", &args), Err(MIG_ARRAY_TOO_LARGE));
    }
}

/// `$call` on the `x86_64` or `i686` module of the interface `$interface`.
macro_rules! in_abi {
    ($abi:expr, $interface:ident :: $($path:ident)::+ ($($arg:expr),* $(,)?)) => {
        match $abi {
            Abi::X86_64 => mach::interfaces::$interface::x86_64::$($path)::+($($arg),*),
            Abi::I686 => mach::interfaces::$interface::i686::$($path)::+($($arg),*),
        }
    };
}

proptest! {
    // Every answer of the C driver is waited for 10 s at most (`c_stubs::ANSWER_WAIT`), and
    // shrinking for 15 s: a hang fails the test within a minute.
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, max_shrink_time: 15_000, ..ProptestConfig::default() })]

    /// The asynchronous halves (`device_request.defs`, `device_reply.defs`: one-way messages):
    /// a deferred reply the server sends later, and the requests of an asynchronous client.
    #[test]
    fn device_request_and_reply_messages_match_gnu_mig(
        abi in abis(), port in any::<u32>(), reply in any::<u32>(), mode in any::<u32>(), recnum in any::<u32>(),
        code in prop_oneof![Just(0i32), 2500..2510, any::<i32>()], value in any::<i32>(), name in name_strategy(),
        len in len_up_to(128), disposition in prop_oneof![Just(17u32), Just(18), Just(20), Just(21)],
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i * 5 + 2) as u8).collect();
        let name = &name[..name.len().min(127)];
        let mut buf = [0u8; 512];
        let (p, r) = (PortName::new(port), PortName::new(reply));
        let to = PortArg { name: r, disposition };
        let word = |v: u32| word(abi, v.into());
        let poly = [u32le(reply), u32le(disposition), Arg::Value(code.to_le_bytes().to_vec())];
        let data_args = || [Arg::Buffer(data.clone()), u32le(len as u32)];
        let open = [u32le(port), u32le(reply), u32le(mode), Arg::Buffer(c_string(name))];
        let io = |last: Arg| vec![u32le(port), u32le(reply), u32le(mode), word(recnum), last];
        // (stub, its arguments, the out-of-line data the Rust request carries)
        type Check<'a> = (&'a str, Vec<Arg>, Vec<&'a [u8]>);
        let checks: Vec<Check> = vec![
            ("device_open_request", open.to_vec(), vec![]),
            ("device_open_new_request", open.to_vec(), vec![]),
            ("device_read_request", io(Arg::Value(value.to_le_bytes().to_vec())), vec![]),
            ("device_read_request_inband", io(Arg::Value(value.to_le_bytes().to_vec())), vec![]),
            ("device_write_request", [io(Arg::Buffer(data.clone())), vec![u32le(len as u32)]].concat(), vec![&data]),
            ("device_write_request_inband", [io(Arg::Buffer(data.clone())), vec![u32le(len as u32)]].concat(), vec![]),
            ("ds_device_open_reply", [poly.to_vec(), vec![u32le(port)]].concat(), vec![]),
            ("ds_device_write_reply", [poly.to_vec(), vec![Arg::Value(value.to_le_bytes().to_vec())]].concat(), vec![]),
            ("ds_device_write_reply_inband", [poly.to_vec(), vec![Arg::Value(value.to_le_bytes().to_vec())]].concat(), vec![]),
            ("ds_device_read_reply_inband", [poly.to_vec(), data_args().to_vec()].concat(), vec![]),
        ];
        for (routine, args, ool) in &checks {
            let rust = match *routine {
                "device_open_request" => in_abi!(abi, device_request::device_open_request::request::encode(&mut buf, p, r, mode, name)),
                "device_open_new_request" => in_abi!(abi, device_request::device_open_new_request::request::encode(&mut buf, p, r, mode, name)),
                "device_read_request" => in_abi!(abi, device_request::device_read_request::request::encode(&mut buf, p, r, mode, recnum as _, value)),
                "device_read_request_inband" => in_abi!(abi, device_request::device_read_request_inband::request::encode(&mut buf, p, r, mode, recnum as _, value)),
                "device_write_request" => in_abi!(abi, device_request::device_write_request::request::encode(&mut buf, p, r, mode, recnum as _, &data)),
                "device_write_request_inband" => in_abi!(abi, device_request::device_write_request_inband::request::encode(&mut buf, p, r, mode, recnum as _, &data)),
                "ds_device_open_reply" => in_abi!(abi, device_reply::device_open_reply::request::encode(&mut buf, to, code, p)),
                "ds_device_write_reply" => in_abi!(abi, device_reply::device_write_reply::request::encode(&mut buf, to, code, value)),
                "ds_device_write_reply_inband" => in_abi!(abi, device_reply::device_write_reply_inband::request::encode(&mut buf, to, code, value)),
                _ => in_abi!(abi, device_reply::device_read_reply_inband::request::encode(&mut buf, to, code, &data)),
            };
            same_request(abi, routine, rust, &buf, ool, args)?;
        }
        // The deferred read reply carries its data out of line (moved, with the deallocate bit).
        let memory = OolMemory::copy_from(&data).expect("memory");
        let rust = in_abi!(abi, device_reply::device_read_reply::request::encode(&mut buf, to, code, memory));
        let args = [poly.to_vec(), data_args().to_vec()].concat();
        same_request(abi, "ds_device_read_reply", rust, &buf, &[&data], &args)?;
    }
}
