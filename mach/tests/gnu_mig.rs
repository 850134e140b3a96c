//! Differential conformance: the generated Rust stubs against GNU MIG's own C stubs, both ABIs.
//!
//! The C side lives in `gnu_mig/` (see `c_stubs.rs` for how it is built and driven).

#[path = "gnu_mig/c_stubs.rs"]
mod c_stubs;

use c_stubs::{Abi, Arg, INTERFACES};

#[test]
fn gnu_mig_stubs_build_for_every_interface() {
    for abi in Abi::ALL {
        let build = c_stubs::build(abi);
        for (iface, _) in INTERFACES {
            let users = build.user_stubs.iter().filter(|p| p.interface == iface).count();
            let handlers = build.handlers.iter().filter(|p| p.interface == iface).count();
            assert!(users > 0, "{abi:?} {iface}: no user stubs");
            assert_eq!(users, handlers, "{abi:?} {iface}: user stubs and server handlers differ in number");
            assert!(build.demuxers.iter().any(|(i, _)| *i == iface), "{abi:?} {iface}: no demux");
        }
        assert_eq!(c_stubs::user(abi).command("sizeof-pointer").unwrap(), [format!("size {}", abi.pointer_size())]);
    }
}
