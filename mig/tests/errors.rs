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
