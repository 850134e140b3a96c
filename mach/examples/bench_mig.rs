//! The Rust side of `cargo xtask bench mig` (see `xtask/src/bench_mig.rs`): each `bench_*`
//! function encodes one request and decodes its reply N times, over a loopback that copies the
//! reply GNU MIG's server made (read from stdin: `<routine> x<hex>` lines, as `bench.c` prints
//! them) into the message buffer. Inputs match `xtask/src/bench_mig/bench.c`.
//!
//! Usage: `bench_mig run N < replies`.

use std::hint::black_box;
use std::io::BufRead;
use std::sync::OnceLock;

use mach::constants::{DEV_GET_RECORDS, D_READ, D_WRITE};
use mach::interfaces::device::x86_64::{
    device_get_status, device_open, device_read, device_set_status, device_write_inband,
};
use mach::port::PortName;

/// `DEV_FLUSH_CACHE`: the device_set_status flavor of a write barrier (upstream value).
const DEV_FLUSH_CACHE: u32 = 2;
const ROUTINES: [&str; 5] = [
    "device_open",
    "device_write_inband",
    "device_read",
    "device_set_status",
    "device_get_status",
];

static REPLIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

/// A message buffer, aligned as a Mach message must be.
#[repr(C, align(8))]
struct Buffer([u8; 8192]);

fn reply(index: usize) -> &'static [u8] {
    &REPLIES.get().expect("replies are read first")[index]
}

/// The loopback transport: the reply arrives in the request's buffer.
fn deliver(buffer: &mut Buffer, reply: &[u8]) -> usize {
    buffer.0[..reply.len()].copy_from_slice(reply);
    reply.len()
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_device_open(n: u64) {
    let reply = reply(0);
    let mut buffer = Buffer([0; 8192]);
    for _ in 0..n {
        let name: &[u8] = black_box(b"wd0");
        device_open::request::encode(
            &mut buffer.0,
            PortName::new(5),
            D_READ | D_WRITE,
            name,
            PortName::new(9),
        )
        .expect("encodes");
        let size = deliver(&mut buffer, reply);
        black_box(device_open::reply::decode(&buffer.0[..size]).expect("decodes"));
    }
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_device_write_inband(n: u64) {
    let reply = reply(1);
    let data = [b'w'; 128];
    let mut buffer = Buffer([0; 8192]);
    for _ in 0..n {
        let data: &[u8] = black_box(&data);
        device_write_inband::request::encode(
            &mut buffer.0,
            PortName::new(7),
            0,
            8,
            data,
            PortName::new(9),
        )
        .expect("encodes");
        let size = deliver(&mut buffer, reply);
        black_box(device_write_inband::reply::decode(&buffer.0[..size]).expect("decodes"));
    }
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_device_read(n: u64) {
    let reply = reply(2);
    let mut buffer = Buffer([0; 8192]);
    for _ in 0..n {
        device_read::request::encode(
            &mut buffer.0,
            PortName::new(7),
            0,
            8,
            black_box(4096),
            PortName::new(9),
        )
        .expect("encodes");
        let size = deliver(&mut buffer, reply);
        // The region names the C program's memory: taken, never touched.
        black_box(device_read::reply::decode(&buffer.0[..size]).expect("decodes"));
    }
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_device_set_status(n: u64) {
    let reply = reply(3);
    let mut buffer = Buffer([0; 8192]);
    for _ in 0..n {
        let status: &[i32] = black_box(&[]);
        device_set_status::request::encode(
            &mut buffer.0,
            PortName::new(7),
            DEV_FLUSH_CACHE,
            status,
            PortName::new(9),
        )
        .expect("encodes");
        let size = deliver(&mut buffer, reply);
        device_set_status::reply::decode(&buffer.0[..size]).expect("decodes");
    }
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_device_get_status(n: u64) {
    let reply = reply(4);
    let mut buffer = Buffer([0; 8192]);
    let mut status = [0i32; 1024];
    for _ in 0..n {
        device_get_status::request::encode(
            &mut buffer.0,
            PortName::new(7),
            DEV_GET_RECORDS,
            black_box(1024),
            PortName::new(9),
        )
        .expect("encodes");
        let size = deliver(&mut buffer, reply);
        let words = device_get_status::reply::decode(&buffer.0[..size]).expect("decodes");
        assert_eq!(words.copy_to(&mut status), 2);
        black_box(&status);
    }
}

fn read_replies() -> Result<Vec<Vec<u8>>, String> {
    let stdin = std::io::stdin();
    let mut replies = Vec::new();
    for (expected, line) in ROUTINES.iter().zip(stdin.lock().lines()) {
        let line = line.map_err(|e| e.to_string())?;
        let (routine, hex) = line
            .split_once(" x")
            .ok_or_else(|| format!("bad reply line `{line}`"))?;
        if routine != *expected {
            return Err(format!("expected the reply of {expected}, got {routine}"));
        }
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
            .collect::<Result<Vec<u8>, String>>()?;
        replies.push(bytes);
    }
    if replies.len() != ROUTINES.len() {
        return Err(format!(
            "{} replies on stdin, {} expected",
            replies.len(),
            ROUTINES.len()
        ));
    }
    Ok(replies)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = match args.as_slice() {
        [run, n] if run == "run" => n.parse().unwrap_or_else(|_| fail("N must be a number")),
        _ => fail("usage: bench_mig run N < replies"),
    };
    REPLIES
        .set(read_replies().unwrap_or_else(|e| fail(&e)))
        .expect("set once");
    bench_device_open(n);
    bench_device_write_inband(n);
    bench_device_read(n);
    bench_device_set_status(n);
    bench_device_get_status(n);
}

fn fail(message: &str) -> ! {
    eprintln!("bench_mig: {message}");
    std::process::exit(2)
}
