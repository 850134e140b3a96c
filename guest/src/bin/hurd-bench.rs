//! The Hurd side of `cargo xtask bench hurd`, the same for every boot disk driver.
//!
//! - `hurd-bench raw PATH OFFSET SPAN`: writes then reads `SPAN` bytes at byte `OFFSET` of the
//!   device node `PATH` (a storeio node on the driver's disk), in 4 KiB and in 1 MiB requests;
//!   prints `hurd-bench: raw write|read SIZE: BYTES bytes in MICROS us`.
//! - `hurd-bench files DIR CLIENT COUNT SIZE`: creates `COUNT` files of `SIZE` bytes in `DIR`,
//!   each written, `fsync`ed and its file system synced (`file_syncfs`, waiting) before the
//!   next; prints `hurd-bench: files DIR CLIENT SIZE: COUNT files, COUNT syncs in MICROS us`.
//!
//! The host reads the lines and turns them into rates; it times nothing itself inside the VM.

use guest::syncfs;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::process::ExitCode;
use std::time::Instant;

const SIZES: [usize; 2] = [4096, 1 << 20];

fn raw(path: &str, offset: u64, span: u64) -> std::io::Result<()> {
    let device = OpenOptions::new().read(true).write(true).open(path)?;
    for size in SIZES {
        let block: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let count = span / size as u64;
        let start = Instant::now();
        for i in 0..count {
            device.write_all_at(&block, offset + i * size as u64)?;
        }
        report("write", size, count * size as u64, start);
        let mut back = vec![0u8; size];
        let start = Instant::now();
        for i in 0..count {
            device.read_exact_at(&mut back, offset + i * size as u64)?;
        }
        report("read", size, count * size as u64, start);
        if back != block {
            return Err(std::io::Error::other("read back other data than written"));
        }
    }
    Ok(())
}

fn report(what: &str, size: usize, bytes: u64, start: Instant) {
    println!(
        "hurd-bench: raw {what} {size}: {bytes} bytes in {} us",
        start.elapsed().as_micros()
    );
}

fn files(dir: &str, client: u32, count: u32, size: usize) -> std::io::Result<()> {
    let data = vec![client as u8; size];
    let start = Instant::now();
    for i in 0..count {
        let mut file = File::create(format!("{dir}/bench-{client}-{size}-{i}"))?;
        std::io::Write::write_all(&mut file, &data)?;
        file.sync_all()?;
        syncfs::wait(&file)?;
    }
    println!(
        "hurd-bench: files {dir} {client} {size}: {count} files, {count} syncs in {} us",
        start.elapsed().as_micros()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let number = |s: &str| s.parse::<u64>().ok();
    let result = match words[..] {
        ["raw", path, offset, span] => match (number(offset), number(span)) {
            (Some(offset), Some(span)) => raw(path, offset, span),
            _ => Err(std::io::Error::other("OFFSET and SPAN are byte counts")),
        },
        ["files", dir, client, count, size] => match (number(client), number(count), number(size)) {
            (Some(client), Some(count), Some(size)) => files(dir, client as u32, count as u32, size as usize),
            _ => Err(std::io::Error::other("CLIENT, COUNT and SIZE are numbers")),
        },
        _ => {
            eprintln!("usage: hurd-bench raw PATH OFFSET SPAN | hurd-bench files DIR CLIENT COUNT SIZE");
            return ExitCode::from(64);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hurd-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
