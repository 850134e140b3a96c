//! Any bytes handed to every generated reply decoder (both ABIs) must be decoded or refused
//! with an error code, never a panic or a read past the message. The request decoders of the
//! i686 ABI (which has no demux on this host) get the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../mach/tests/gnu_mig/rust_stubs.rs"]
#[allow(dead_code)]
mod rust_stubs;

use mig::layout::Abi;

fuzz_target!(|message: &[u8]| {
    let both = rust_stubs::ROUTINES.iter().flat_map(|r| [(Abi::X86_64, r), (Abi::I686, r)]);
    let i686_only = rust_stubs::I686_ONLY_ROUTINES.iter().map(|r| (Abi::I686, r));
    for (abi, (interface, routine)) in both.chain(i686_only) {
        let decoders = rust_stubs::decoders(abi, interface, routine).expect("listed routines exist");
        if let Some(reply) = decoders.reply {
            let _ = reply(message);
        }
        if abi == Abi::I686 {
            let _ = (decoders.request)(message);
        }
    }
});
