//! Any bytes handed to every generated demux (x86_64, the host's ABI) must come back as a
//! reply, a rejection or "malformed", never a panic or a read past the message.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../mach/tests/gnu_mig/rust_stubs.rs"]
#[allow(dead_code)]
mod rust_stubs;

fuzz_target!(|request: &[u8]| {
    let mut reply = vec![0u8; 16384];
    for interface in rust_stubs::INTERFACES {
        rust_stubs::demux(interface, request, &mut reply);
    }
});
