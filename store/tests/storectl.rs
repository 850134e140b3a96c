//! `storectl` run as a person runs it, on image files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn storectl(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storectl"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run storectl");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("storectl-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn copy_into_a_concat_then_read_back_through_an_interleave() {
    let dir = scratch("copy");
    let data = pattern(64 << 10, 3);
    fs::write(dir.join("src.img"), &data).unwrap();
    fs::write(dir.join("a.img"), vec![0; 32 << 10]).unwrap();
    fs::write(dir.join("b.img"), vec![0; 32 << 10]).unwrap();
    let out = storectl(&dir, &["copy", "file:src.img", "concat:file:@a.img@b.img"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(dir.join("a.img")).unwrap(), data[..32 << 10]);
    assert_eq!(fs::read(dir.join("b.img")).unwrap(), data[32 << 10..]);
    let out = storectl(&dir, &["read", "concat:,file:a.img,file:b.img", "4k", "8k"], b"");
    assert!(out.status.success());
    assert_eq!(out.stdout, data[4096..12288]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn write_then_sync_then_info() {
    let dir = scratch("write");
    fs::write(dir.join("disk.img"), vec![0; 16 << 10]).unwrap();
    let out = storectl(&dir, &["write", "remap:8192+4096:file:disk.img", "1k"], b"hello, platter");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&fs::read(dir.join("disk.img")).unwrap()[9216..9230], b"hello, platter");
    assert!(storectl(&dir, &["sync", "ileave:4k:file:@disk.img@disk.img"], b"").status.success());
    let info = storectl(&dir, &["info", "remap:8192+4096:file:disk.img"], b"");
    let text = String::from_utf8(info.stdout).unwrap();
    assert_eq!(
        text,
        "remap: 4096 bytes, 4096 blocks of 1 bytes, 1 run [readonly hard-readonly]\n  \
         file disk.img: 16384 bytes, 16384 blocks of 1 bytes, 1 run [readonly hard-readonly]\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_have_their_own_exit_status() {
    let dir = scratch("errors");
    let bad = storectl(&dir, &["info", "remap:1+x:zero:1k"], b"");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a block count \"x\" at byte 8"));
    let missing = storectl(&dir, &["sync", "file:nothing-here.img"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ENOENT"));
    let small = storectl(&dir, &["copy", "zero:8k", "memory:4k"], b"");
    assert_eq!(small.status.code(), Some(1));
    assert_eq!(storectl(&dir, &["frobnicate"], b"").status.code(), Some(2));
    fs::remove_dir_all(dir).unwrap();
}
