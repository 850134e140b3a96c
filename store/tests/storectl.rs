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
    // A storectl that fails early stops reading its input.
    let _ = child.stdin.take().unwrap().write_all(input);
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
    // A file whose size is whole sectors has 512-byte blocks, as libstore's file stores.
    let mut block = b"hello, platter".to_vec();
    block.resize(512, 0);
    let out = storectl(&dir, &["write", "remap:16+8:file:disk.img", "1k"], &block);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&fs::read(dir.join("disk.img")).unwrap()[9216..9230], b"hello, platter");
    assert!(storectl(&dir, &["sync", "ileave:4k:file:@disk.img@disk.img"], b"").status.success());
    let info = storectl(&dir, &["info", "remap:16+8:file:disk.img"], b"");
    let text = String::from_utf8(info.stdout).unwrap();
    assert_eq!(
        text,
        "remap: 4096 bytes, 8 blocks of 512 bytes, 1 run [readonly hard-readonly]\n  \
         file disk.img: 16384 bytes, 32 blocks of 512 bytes, 1 run [readonly hard-readonly enforced]\n"
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

/// A 64 KiB image with an MBR: partition 1 at sectors 8..40, partition 2 at 40..120.
fn partitioned(dir: &Path) -> Vec<u8> {
    let mut image = vec![0u8; 64 << 10];
    for (slot, start, sectors) in [(0usize, 8u32, 32u32), (1, 40, 80)] {
        let at = 446 + 16 * slot;
        image[at + 4] = 0x83;
        image[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        image[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
    }
    image[510] = 0x55;
    image[511] = 0xAA;
    fs::write(dir.join("disk.img"), &image).unwrap();
    image
}

#[test]
fn partitions_of_an_image_by_file_and_by_query() {
    let dir = scratch("part");
    partitioned(&dir);
    let info = storectl(&dir, &["info", "part:2:file:disk.img"], b"");
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    assert_eq!(
        String::from_utf8(info.stdout).unwrap(),
        "remap: 40960 bytes, 80 blocks of 512 bytes, 1 run [readonly hard-readonly]\n  \
         file disk.img: 65536 bytes, 128 blocks of 512 bytes, 1 run [readonly hard-readonly enforced]\n"
    );
    // A bare file name is queried; on this host its contents are the store.
    let data = pattern(32 * 512, 7);
    let out = storectl(&dir, &["write", "part:1:disk.img"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(dir.join("disk.img")).unwrap()[8 * 512..40 * 512], data[..]);
    let out = storectl(&dir, &["read", "part:1::disk.img", "1k", "512"], b"");
    assert_eq!(out.stdout, data[1024..1536]);
    assert!(storectl(&dir, &["sync", "part:2:query:disk.img"], b"").status.success());
    let missing = storectl(&dir, &["info", "part:3:file:disk.img"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "storectl: part: partition 3: no such partition in the MBR (it has 1, 2)\n"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn copy_a_partition_into_a_concat_of_partitions_and_sync() {
    let dir = scratch("part-copy");
    let mut image = partitioned(&dir);
    let data = pattern(32 * 512, 9);
    image[8 * 512..40 * 512].copy_from_slice(&data);
    fs::write(dir.join("disk.img"), &image).unwrap();
    fs::write(dir.join("other.img"), vec![0u8; 32 << 10]).unwrap();
    // Partition 1 (16 KiB) into a concat of the first 8 KiB of other.img and partition 2.
    let out = storectl(&dir, &["copy", "part:1:file:disk.img", "concat:,remap:0+16:file:other.img,part:2:file:disk.img"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(dir.join("other.img")).unwrap()[..8 << 10], data[..8 << 10]);
    assert_eq!(fs::read(dir.join("disk.img")).unwrap()[40 * 512..56 * 512], data[8 << 10..]);
    let garbage = storectl(&dir, &["info", "part:1:file:other.img"], b"");
    assert_eq!(garbage.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("no partition table"));
    fs::remove_dir_all(dir).unwrap();
}
