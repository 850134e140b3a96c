//! `storectl`: inspect, read, write, copy and sync a store given by its typed name — the tool a
//! person uses after `dd` to make sure the bytes reached the platter.
//!
//! Exit status: 0 done, 1 failed, 2 bad usage, 3 the store cannot flush (`EOPNOTSUPP`, e.g. a
//! disk server that does not know `DEV_FLUSH_CACHE`) — told apart from a flush that failed.

mod file;
#[cfg(all(target_os = "hurd", feature = "mach"))]
mod hurd;
mod progress;

use std::io::{Read, Write};
use std::process::ExitCode;

use store::{Errno, Error, Flags, Store};

const USAGE: &str = "\
usage: storectl [--readonly] info NAME
       storectl read NAME [OFFSET [LENGTH]]     bytes to standard output
       storectl write NAME [OFFSET]             bytes from standard input
       storectl copy SOURCE DESTINATION         then syncs DESTINATION; progress on standard error
       storectl sync NAME
NAME is a typed store name: device:wd0, part:2:device:wd0, file:disk.img,
query:/dev/wd0 (or :/dev/wd0, or /dev/wd0: what the node's translator says it is stored on),
remap:0+2048:device:wd0, concat:@device:wd0@device:wd1, ileave:64k:device:@wd0@wd1, zero:1M,
memory:1M …
OFFSET and LENGTH are bytes (suffixes b k m g), whole blocks of the store.";

enum Failure {
    Usage(String),
    Store(Error),
    Io(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Store(error)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(problem)) => {
            eprintln!("storectl: {problem}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Store(error)) => {
            eprintln!("storectl: {error}");
            ExitCode::from(status_of(&error))
        }
        Err(Failure::Io(problem)) => {
            eprintln!("storectl: {problem}");
            ExitCode::from(1)
        }
    }
}

/// The exit status for a store error (see the top of this file).
fn status_of(error: &Error) -> u8 {
    match error {
        Error::Name(_) => 2,
        _ if error.errno() == Errno::EOPNOTSUPP => 3,
        _ => 1,
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let (flags, args) = match args.first().map(String::as_str) {
        Some("--readonly") => (Flags::READONLY, &args[1..]),
        _ => (Flags::NONE, args),
    };
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let opener = file::HostOpener;
    let open = |name: &str, flags| store::open(name, flags, &opener);
    match words.as_slice() {
        ["info", name] => {
            print!("{}", describe(&open(name, flags | Flags::HARD_READONLY)?, 0));
            Ok(())
        }
        ["read", name, rest @ ..] if rest.len() <= 2 => {
            let mut store = open(name, flags | Flags::HARD_READONLY)?;
            let offset = rest.first().map_or(Ok(0), |o| bytes(o))?;
            let length = rest.get(1).map_or(Ok(store.size().saturating_sub(offset)), |l| bytes(l))?;
            read(&mut store, offset, length)
        }
        ["write", name, rest @ ..] if rest.len() <= 1 => {
            let mut store = open(name, flags)?;
            let offset = rest.first().map_or(Ok(0), |o| bytes(o))?;
            write(&mut store, offset)
        }
        ["copy", source, destination] => {
            let mut source = open(source, Flags::HARD_READONLY)?;
            let mut destination = open(destination, flags)?;
            progress::copy(&mut source, &mut destination)?;
            destination.sync()?;
            Ok(())
        }
        ["sync", name] => Ok(open(name, flags)?.sync()?),
        [] => Err(Failure::Usage("no command".into())),
        _ => Err(Failure::Usage(format!("cannot understand \"{}\"", words.join(" ")))),
    }
}

/// A byte count with libstore's size suffixes.
fn bytes(text: &str) -> Result<u64, Failure> {
    match store::name::parse(&format!("zero:{text}")) {
        Ok(store::name::Spec::Zero { size }) => Ok(size),
        _ => Err(Failure::Usage(format!("\"{text}\" is not a byte count"))),
    }
}

/// The block address of byte `offset`, which must start a block.
fn block_of(store: &Store, offset: u64) -> Result<u64, Failure> {
    let bs = u64::from(store.block_size());
    if !offset.is_multiple_of(bs) {
        return Err(Failure::Usage(format!("offset {offset} is not a multiple of the block size {bs}")));
    }
    Ok(offset / bs)
}

fn read(store: &mut Store, offset: u64, length: u64) -> Result<(), Failure> {
    let mut addr = block_of(store, offset)?;
    let chunk = progress::chunk_size(store.block_size());
    let mut left = length;
    let mut out = std::io::stdout().lock();
    while left > 0 {
        let want = left.min(chunk as u64) as usize;
        let data = store.read_vec(addr, want)?;
        out.write_all(&data).map_err(|e| Failure::Io(format!("standard output: {e}")))?;
        if data.len() < want {
            return Err(Failure::Io(format!("the store ended after {} bytes", length - left + data.len() as u64)));
        }
        left -= want as u64;
        addr += (want / store.block_size() as usize) as u64;
    }
    Ok(())
}

fn write(store: &mut Store, offset: u64) -> Result<(), Failure> {
    let addr = block_of(store, offset)?;
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).map_err(|e| Failure::Io(format!("standard input: {e}")))?;
    let written = store.write(addr, &data)?;
    if written < data.len() {
        return Err(Failure::Io(format!("only {written} of {} bytes fit", data.len())));
    }
    Ok(())
}

/// The store tree, one line per store.
fn describe(store: &Store, depth: usize) -> String {
    let mut flags = Vec::new();
    for (flag, word) in [
        (Flags::READONLY, "readonly"),
        (Flags::HARD_READONLY, "hard-readonly"),
        (Flags::ENFORCED, "enforced"),
        (Flags::INACTIVE, "inactive"),
    ] {
        if store.flags().contains(flag) {
            flags.push(word);
        }
    }
    let mut text = format!(
        "{:indent$}{}{}: {} bytes, {} blocks of {} bytes, {} run{}{}\n",
        "",
        store.class_name(),
        store.name().map(|n| format!(" {n}")).unwrap_or_default(),
        store.size(),
        store.blocks(),
        store.block_size(),
        store.runs().len(),
        if store.runs().len() == 1 { "" } else { "s" },
        if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(" ")) },
        indent = depth * 2,
    );
    for child in store.children() {
        text += &describe(child, depth + 1);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::errno::DeviceCode;

    #[test]
    fn cannot_flush_is_told_apart_from_a_failed_flush() {
        let unsupported = Error::Class {
            class: "device",
            errno: Errno::EOPNOTSUPP,
            device_code: Some(DeviceCode::INVALID_OPERATION),
        };
        let failed = Error::Class { class: "device", errno: Errno::EIO, device_code: Some(DeviceCode::IO_ERROR) };
        assert_eq!(status_of(&unsupported), 3);
        assert_eq!(status_of(&failed), 1);
        assert_eq!(status_of(&Error::child("concat", 1, unsupported)), 3);
        let name = store::name::parse("zero:x").unwrap_err();
        assert_eq!(status_of(&Error::from(name)), 2);
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes("4k").ok(), Some(4096));
        assert!(bytes("4q").is_err());
    }
}
