//! Errors in .defs files name the original file, line and column through the preprocessor's
//! line markers, and say what was expected.

use std::path::PathBuf;

use mig::{Abi, Error};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mig-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_error_in_an_included_file_points_into_it() {
    let dir = temp_dir("include");
    std::fs::write(dir.join("types.defs"), "type a_t = MACH_MSG_TYPE_INTEGER_32;\n\ntype b_t = array[*:4 of a_t;\n").unwrap();
    std::fs::write(dir.join("main.defs"), "subsystem test 100;\n#include \"types.defs\"\nroutine r(p: a_t);\n").unwrap();
    let error = mig::parse(&dir.join("main.defs"), Abi::X86_64, &dir, &[]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("types.defs:3:22: expected `]`, found `of`"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn definitions_reach_the_preprocessor() {
    let dir = temp_dir("defines");
    std::fs::write(
        dir.join("main.defs"),
        "subsystem test 100;\ntype port_t = MACH_MSG_TYPE_COPY_SEND;\n#ifdef WITH_R\nroutine r(p: port_t);\n#endif\n",
    )
    .unwrap();
    let without = mig::parse(&dir.join("main.defs"), Abi::I686, &dir, &[]).unwrap();
    let with = mig::parse(&dir.join("main.defs"), Abi::I686, &dir, &["WITH_R"]).unwrap();
    assert_eq!((without.routines.len(), with.routines.len()), (0, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_file_is_a_preprocessing_error() {
    let dir = temp_dir("missing");
    let error = mig::parse(&dir.join("absent.defs"), Abi::X86_64, &dir, &[]).unwrap_err();
    assert!(matches!(&error, Error::Preprocess(m) if m.contains("absent.defs")), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Mutated real interface files: the parser and the code generator answer every one with code
/// or an error, never a panic.
#[test]
fn mutated_interface_files_never_panic() {
    let sysroot = std::env::var_os("RUMPDISK_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sysroot"));
    let include = sysroot.join("amd64/usr/include/x86_64-linux-gnu");
    let text = mig::cpp::preprocess(&include.join("device/device.defs"), Abi::X86_64, &include, &[])
        .expect("gnumach headers (run `cargo xtask setup`)");
    let pieces = ["", ";", ")", "(", "[", "]", "*", "^", "=", "|", ",", ":", "0", "99999", "array", "out", "polymorphic", "dealloc", "x"];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut parsed, mut rejected) = (0, 0);
    for _ in 0..3000 {
        let mut mutated = text.clone();
        for _ in 0..1 + next(3) {
            let mut at = next(mutated.len());
            while !mutated.is_char_boundary(at) {
                at -= 1;
            }
            let cut = (at + next(8)).min(mutated.len());
            let cut = (cut..=mutated.len()).find(|&c| mutated.is_char_boundary(c)).unwrap();
            mutated.replace_range(at..cut, pieces[next(pieces.len())]);
        }
        match mig::parse_preprocessed(&mutated, "device.defs", Abi::X86_64) {
            Ok(subsystem) => {
                parsed += 1;
                for abi in Abi::ALL {
                    mig::codegen::generate(&subsystem, abi);
                }
            }
            Err(_) => rejected += 1,
        }
    }
    // Both outcomes occur: the mutations are neither all harmless nor all fatal.
    assert!(parsed > 0 && rejected > 0, "parsed {parsed}, rejected {rejected}");
}
