//! Any bytes handed to every generated reply decoder (both ABIs) must be decoded or refused
//! with an error code, never a panic or a read past the message. The request decoders of the
//! i686 ABI (which has no demux on this host) get the same bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../mach/tests/gnu_mig/rust_stubs.rs"]
#[allow(dead_code)]
mod rust_stubs;

use mig::abi::Abi;
use rust_stubs::Decode;

/// Every decoder the bytes go through, looked up by name once: looking each routine up per
/// input compared hundreds of strings, which cost more than the decoding itself and filled
/// libFuzzer's comparison tables with routine names instead of message bytes.
fn decoders() -> &'static [Decode] {
    static DECODERS: OnceLock<Vec<Decode>> = OnceLock::new();
    DECODERS.get_or_init(|| {
        let both = rust_stubs::ROUTINES.iter().flat_map(|r| [(Abi::X86_64, r), (Abi::I686, r)]);
        let i686_only = rust_stubs::I686_ONLY_ROUTINES.iter().map(|r| (Abi::I686, r));
        both.chain(i686_only)
            .flat_map(|(abi, (interface, routine))| {
                let decoders = rust_stubs::decoders(abi, interface, routine).expect("listed routines exist");
                let request = (abi == Abi::I686).then_some(decoders.request);
                decoders.reply.into_iter().chain(request)
            })
            .collect()
    })
}

fuzz_target!(|message: &[u8]| {
    for decode in decoders() {
        let _ = decode(message);
    }
});
