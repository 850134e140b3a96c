//! Every routine of the interfaces under test, as the mig front end reads it, paired with GNU
//! MIG's user stub, server handler and demux for the same routine.

use std::sync::OnceLock;

use super::c_stubs::{self, Abi, Prototype, INTERFACES};

pub struct Case {
    pub abi: Abi,
    pub interface: &'static str,
    pub routine: mig::parser::Routine,
    pub user_stub: Prototype,
    pub handler: Prototype,
    pub demuxer: String,
}

fn mig_abi(abi: Abi) -> mig::Abi {
    match abi {
        Abi::X86_64 => mig::Abi::X86_64,
        Abi::I686 => mig::Abi::I686,
    }
}

/// Every routine of every interface, for `abi`; panics naming any routine GNU MIG made a stub
/// for that the mig front end does not know (or the reverse), so none is skipped silently.
pub fn cases(abi: Abi) -> &'static [Case] {
    static CASES: [OnceLock<Vec<Case>>; 2] = [OnceLock::new(), OnceLock::new()];
    CASES[abi as usize].get_or_init(|| {
        let build = c_stubs::build(abi);
        let include = c_stubs::include_dir(abi);
        let mut cases = Vec::new();
        for &(interface, defs, defines) in INTERFACES {
            let defs = c_stubs::defs_path(abi, defs);
            let subsystem = mig::parse(&defs, mig_abi(abi), &include, defines)
                .unwrap_or_else(|e| panic!("mig cannot read {}: {e}", defs.display()));
            let demuxer = build
                .demuxers
                .iter()
                .find(|(i, _)| *i == interface)
                .expect("a demux")
                .1
                .clone();
            let stubs: Vec<&Prototype> = build
                .user_stubs
                .iter()
                .filter(|p| p.interface == interface)
                .collect();
            let routines: Vec<mig::parser::Routine> =
                subsystem.routines.into_iter().flatten().collect();
            assert_eq!(
                routines.len(),
                stubs.len(),
                "{abi:?} {interface}: mig reads {} routines, GNU MIG made {} user stubs",
                routines.len(),
                stubs.len()
            );
            for routine in routines {
                // GNU MIG names a stub `<userprefix><routine>` and a handler `<serverprefix><routine>`,
                // a prefix being a word and an underscore (`ds_`, `do_`) or nothing.
                let find = |list: &[Prototype]| {
                    list.iter()
                        .find(|p| {
                            p.interface == interface
                                && p.name.strip_suffix(routine.name.as_str()).is_some_and(
                                    |prefix| {
                                        prefix.is_empty()
                                            || prefix.find('_') == Some(prefix.len() - 1)
                                    },
                                )
                        })
                        .unwrap_or_else(|| {
                            panic!("{abi:?} {interface}: GNU MIG has no `{}`", routine.name)
                        })
                        .clone()
                };
                cases.push(Case {
                    abi,
                    interface,
                    user_stub: find(&build.user_stubs),
                    handler: find(&build.handlers),
                    demuxer: demuxer.clone(),
                    routine,
                });
            }
        }
        cases
    })
}
