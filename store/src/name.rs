//! Typed store names, parsed as libstore's `store_typed_open` and class `open` methods do:
//!
//! - `device:NAME`, and `device:@NODE:NAME` (NAME opened through the translator at NODE);
//! - `file:PATH`: the file's contents through `io_read`/`io_write`;
//! - `query:PATH`, `:PATH`, or a name with no `:` that is no class: the storage under the node at
//!   PATH, asked for with `file_get_storage_info` (libstore's `store_open`); a name whose part
//!   before the first `:` is no class is an error, as upstream;
//! - `part:N:STORE`: partition N (1-based, as libparted numbers them) of STORE;
//! - `zero:SIZE` (`zero` alone: the largest size), `memory:SIZE` (this project's);
//!   SIZE is a C number (`0x…` hex, `0…` octal) with an optional `b` (512), `k`, `m` or `g`;
//! - `remap:RUNS:CHILD`, RUNS being `START+LENGTH`, `START` (one block), `+LENGTH` (from 0) or,
//!   last, `START+` (to the end), separated by commas, in the child's blocks;
//! - `concat:LIST`, `ileave:BYTES:LIST` (`ileave` has no typed name upstream; this is ours):
//!   LIST is a separator character followed by child names separated by it (`@device:wd0@device:wd1`),
//!   or `TYPE:` then such a list of names of that type (`device:@wd0@wd1`).
//!
//! Parsing is separate from opening, so a bad name is reported before anything is opened, with
//! the offending part and its byte offset.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec<'a> {
    Device { node: Option<&'a str>, name: &'a str },
    File { path: &'a str },
    Query { path: &'a str },
    Part { number: u32, child: Box<Spec<'a>> },
    Memory { size: u64 },
    Zero { size: u64 },
    Remap { runs: Vec<RemapRun>, child: Box<Spec<'a>> },
    Concat { children: Vec<Spec<'a>> },
    Ileave { interleave: u64, children: Vec<Spec<'a>> },
}

/// A run of a remap name, in the child's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemapRun {
    pub start: u64,
    /// `None`: to the end of the child.
    pub length: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError {
    pub name: String,
    /// Byte offset of `part` in `name`.
    pub at: usize,
    pub part: String,
    pub problem: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad store name \"{}\": {} ", self.name, self.problem)?;
        if !self.part.is_empty() {
            write!(f, "\"{}\" ", self.part)?;
        }
        write!(f, "at byte {}", self.at)
    }
}

/// Class names a typed name may give alone, without a `:` (the others need a body).
const KNOWN_CLASSES: [&str; 9] = ["device", "file", "query", "part", "memory", "zero", "remap", "concat", "ileave"];

/// The largest `zero` store, as libstore's (the largest `off_t`).
const ZERO_MAX: u64 = i64::MAX as u64;

const UNKNOWN_CLASS: &str =
    "unknown store class (known: device, file, query, part, memory, zero, remap, concat, ileave):";

/// Parses a typed store name.
pub fn parse(name: &str) -> Result<Spec<'_>, NameError> {
    Parser { whole: name }.typed(name)
}

struct Parser<'a> {
    whole: &'a str,
}

impl<'a> Parser<'a> {
    /// An error about `part`, a slice of the whole name.
    fn error(&self, part: &str, problem: &'static str) -> NameError {
        let at = part.as_ptr() as usize - self.whole.as_ptr() as usize;
        NameError { name: self.whole.to_string(), at, part: part.to_string(), problem }
    }

    fn typed(&self, name: &'a str) -> Result<Spec<'a>, NameError> {
        if name.is_empty() {
            return Err(self.error(name, "empty store name"));
        }
        if let Some(path) = name.strip_prefix(':') {
            return self.class("query", Some(path), name);
        }
        match name.split_once(':') {
            Some((class, body)) => self.class(class, Some(body), class),
            None if KNOWN_CLASSES.contains(&name) => self.class(name, None, name),
            // Upstream's fallback: a bare word that names no class is a file to query.
            None => Ok(Spec::Query { path: name }),
        }
    }

    /// A name of class `class` with its class-specific part (`None` when there was no `:`);
    /// `class_part` locates the class name in errors.
    fn class(&self, class: &str, body: Option<&'a str>, class_part: &str) -> Result<Spec<'a>, NameError> {
        let required = |what| body.filter(|b| !b.is_empty()).ok_or_else(|| self.error(body.unwrap_or(class_part), what));
        match class {
            "device" => self.device(required("a device name must follow \"device:\"")?),
            "file" => Ok(Spec::File { path: required("a file name must follow \"file:\"")? }),
            "query" => Ok(Spec::Query { path: required("a file name must follow \"query:\"")? }),
            "part" => self.part(required("a partition number and a store must follow \"part:\"")?),
            "memory" => Ok(Spec::Memory { size: self.size(required("a size must follow \"memory:\"")?)? }),
            "zero" => match body.filter(|b| !b.is_empty()) {
                Some(size) => Ok(Spec::Zero { size: self.size(size)? }),
                None => Ok(Spec::Zero { size: ZERO_MAX }),
            },
            "remap" => self.remap(required("runs and a store must follow \"remap:\"")?),
            "concat" => Ok(Spec::Concat { children: self.children(required("child stores must follow \"concat:\"")?)? }),
            "ileave" => {
                let body = required("an interleave and child stores must follow \"ileave:\"")?;
                let (bytes, list) = body
                    .split_once(':')
                    .ok_or_else(|| self.error(body, "expected INTERLEAVE:CHILDREN in"))?;
                Ok(Spec::Ileave { interleave: self.size(bytes)?, children: self.children(list)? })
            }
            _ if class.is_empty() => Err(self.error(class_part, "empty store class")),
            _ => Err(self.error(class_part, UNKNOWN_CLASS)),
        }
    }

    fn device(&self, body: &'a str) -> Result<Spec<'a>, NameError> {
        let Some(at_node) = body.strip_prefix('@') else {
            return Ok(Spec::Device { node: None, name: body });
        };
        let (node, name) = at_node
            .split_once(':')
            .ok_or_else(|| self.error(body, "expected @NODE:NAME in"))?;
        if node.is_empty() {
            return Err(self.error(body, "empty translator node in"));
        }
        if name.is_empty() {
            return Err(self.error(body, "empty device name after the node in"));
        }
        Ok(Spec::Device { node: Some(node), name })
    }

    fn part(&self, body: &'a str) -> Result<Spec<'a>, NameError> {
        let (number, child) = body
            .split_once(':')
            .ok_or_else(|| self.error(body, "expected NUMBER:STORE in"))?;
        let value = self.number(number, "expected a partition number")?;
        let number = u32::try_from(value)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.error(number, "partitions are numbered from 1 to 4294967295, not"))?;
        Ok(Spec::Part { number, child: Box::new(self.typed(child)?) })
    }

    fn remap(&self, body: &'a str) -> Result<Spec<'a>, NameError> {
        let (runs_part, child) = body
            .split_once(':')
            .ok_or_else(|| self.error(body, "expected RUNS:STORE in"))?;
        if runs_part.is_empty() {
            return Err(self.error(runs_part, "no runs before the store in remap"));
        }
        let pieces: Vec<&str> = runs_part.split(',').collect();
        let mut runs = Vec::with_capacity(pieces.len());
        for (n, piece) in pieces.iter().enumerate() {
            let run = match piece.split_once('+') {
                None => RemapRun { start: self.number(piece, "expected a block number")?, length: Some(1) },
                Some((start, "")) => {
                    if n + 1 != pieces.len() {
                        return Err(self.error(piece, "a run to the end must be the last run:"));
                    }
                    RemapRun { start: self.number(start, "expected a block number")?, length: None }
                }
                Some((start, length)) => RemapRun {
                    start: if start.is_empty() { 0 } else { self.number(start, "expected a block number")? },
                    length: Some(self.number(length, "expected a block count")?),
                },
            };
            runs.push(run);
        }
        Ok(Spec::Remap { runs, child: Box::new(self.typed(child)?) })
    }

    fn children(&self, list: &'a str) -> Result<Vec<Spec<'a>>, NameError> {
        let first = list.chars().next().ok_or_else(|| self.error(list, "no child stores"))?;
        let (class, items) = if first.is_ascii_alphanumeric() {
            let (class, rest) = list
                .split_once(':')
                .filter(|(class, _)| class.bytes().all(|b| b.is_ascii_alphanumeric()))
                .ok_or_else(|| self.error(list, "expected TYPE: or a separator before"))?;
            (Some(class), rest)
        } else {
            (None, list)
        };
        let sep = items.chars().next().ok_or_else(|| self.error(items, "no child stores after the type"))?;
        if sep.is_ascii_alphanumeric() {
            return Err(self.error(&items[..sep.len_utf8()], "the child separator must not be a letter or digit:"));
        }
        let names = items[sep.len_utf8()..].strip_suffix(sep).unwrap_or(&items[sep.len_utf8()..]);
        names
            .split(sep)
            .map(|child| match class {
                _ if child.is_empty() => Err(self.error(child, "empty child store name")),
                Some(class) => self.class(class, Some(child), child),
                None => self.typed(child),
            })
            .collect()
    }

    /// A size: a C number with an optional unit suffix.
    fn size(&self, text: &str) -> Result<u64, NameError> {
        let (digits, unit) = match text.as_bytes().last() {
            Some(b'b') if !text.starts_with("0x") && !text.starts_with("0X") => (&text[..text.len() - 1], 512),
            Some(b'k' | b'K') => (&text[..text.len() - 1], 1 << 10),
            Some(b'm' | b'M') => (&text[..text.len() - 1], 1 << 20),
            Some(b'g' | b'G') => (&text[..text.len() - 1], 1 << 30),
            _ => (text, 1),
        };
        self.number(digits, "expected a size")?
            .checked_mul(unit)
            .ok_or_else(|| self.error(text, "size too large:"))
    }

    /// A number as C's `strtoull(…, 0)` reads it, but whole: `0x` hex, leading `0` octal.
    fn number(&self, text: &str, problem: &'static str) -> Result<u64, NameError> {
        let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(self.error(text, problem));
        }
        u64::from_str_radix(digits, radix).map_err(|_| self.error(text, "number too large:"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn dev(name: &str) -> Spec<'_> {
        Spec::Device { node: None, name }
    }

    #[test]
    fn leaves() {
        assert_eq!(parse("device:wd0").unwrap(), dev("wd0"));
        assert_eq!(
            parse("device:@/dev/disk:wd0").unwrap(),
            Spec::Device { node: Some("/dev/disk"), name: "wd0" }
        );
        assert_eq!(parse("zero:1M").unwrap(), Spec::Zero { size: 1 << 20 });
        assert_eq!(parse("zero:4b").unwrap(), Spec::Zero { size: 2048 });
        assert_eq!(parse("zero:0x1b").unwrap(), Spec::Zero { size: 0x1b });
        assert_eq!(parse("zero:010k").unwrap(), Spec::Zero { size: 8 << 10 });
        assert_eq!(parse("zero").unwrap(), Spec::Zero { size: i64::MAX as u64 });
        assert_eq!(parse("memory:2G").unwrap(), Spec::Memory { size: 2 << 30 });
        assert_eq!(parse("file:/tmp/x:y").unwrap(), Spec::File { path: "/tmp/x:y" });
        assert_eq!(parse(":disk.img").unwrap(), Spec::Query { path: "disk.img" });
        assert_eq!(parse(":/a:b").unwrap(), Spec::Query { path: "/a:b" });
        assert_eq!(parse("query:/dev/wd0").unwrap(), Spec::Query { path: "/dev/wd0" });
        assert_eq!(parse("/dev/wd0").unwrap(), Spec::Query { path: "/dev/wd0" }, "no class: a file to query");
        assert_eq!(parse("disk.img").unwrap(), Spec::Query { path: "disk.img" });
    }

    #[test]
    fn partitions() {
        assert_eq!(parse("part:2:device:wd0").unwrap(), Spec::Part { number: 2, child: Box::new(dev("wd0")) });
        assert_eq!(
            parse("part:0x10:device:@/dev/disk:wd0").unwrap(),
            Spec::Part { number: 16, child: Box::new(Spec::Device { node: Some("/dev/disk"), name: "wd0" }) }
        );
        assert_eq!(
            parse("part:1:disk.img").unwrap(),
            Spec::Part { number: 1, child: Box::new(Spec::Query { path: "disk.img" }) }
        );
    }

    #[test]
    fn remap_runs() {
        let Spec::Remap { runs, child } = parse("remap:2+3,7,+4,9+:device:wd0").unwrap() else { panic!() };
        let expect = |start, length| RemapRun { start, length };
        assert_eq!(runs, vec![expect(2, Some(3)), expect(7, Some(1)), expect(0, Some(4)), expect(9, None)]);
        assert_eq!(*child, dev("wd0"));
    }

    #[test]
    fn child_lists_in_both_notations() {
        let both = Spec::Concat { children: vec![dev("wd0"), dev("wd1")] };
        assert_eq!(parse("concat:@device:wd0@device:wd1").unwrap(), both);
        assert_eq!(parse("concat:device:@wd0@wd1").unwrap(), both);
        assert_eq!(parse("concat:device:@wd0@wd1@").unwrap(), both, "a trailing separator ends the list");
        assert_eq!(
            parse("ileave:64k:,remap:0+8:device:wd0,concat:;zero:1M;device:@/dev/disk:wd1").unwrap(),
            Spec::Ileave {
                interleave: 64 << 10,
                children: vec![
                    Spec::Remap { runs: vec![RemapRun { start: 0, length: Some(8) }], child: Box::new(dev("wd0")) },
                    Spec::Concat {
                        children: vec![
                            Spec::Zero { size: 1 << 20 },
                            Spec::Device { node: Some("/dev/disk"), name: "wd1" },
                        ]
                    },
                ],
            }
        );
    }

    /// The error for `name`: (offending part, its offset, the message).
    fn error(name: &str) -> (String, usize, String) {
        let error = parse(name).unwrap_err();
        (error.part.clone(), error.at, error.to_string())
    }

    #[test]
    fn errors_name_the_offending_part() {
        let (part, at, text) = error("remap:1+x:zero:1M");
        assert_eq!((part.as_str(), at), ("x", 8));
        assert_eq!(text, "bad store name \"remap:1+x:zero:1M\": expected a block count \"x\" at byte 8");
        assert_eq!(error("disk:wd0").0, "disk");
        assert!(error("disk:wd0").2.contains("unknown store class"));
        assert_eq!(error("device:").1, 7);
        assert_eq!(error("zero:12q").0, "12q");
        assert_eq!(error("zero:99999999999999999999").0, "99999999999999999999");
        assert_eq!(error("zero:20000000000G").2, "bad store name \"zero:20000000000G\": size too large: \"20000000000G\" at byte 5");
        assert_eq!(error("remap:1+2:").1, 10);
        assert_eq!(error("remap:1+2").0, "1+2");
        assert_eq!(error("remap:4+,1:zero").0, "4+");
        assert_eq!(error("concat:@zero:1@@zero:1").1, 15, "the empty child between two separators");
        assert_eq!(error("concat:@zero:1@zerox:1").0, "zerox");
        assert_eq!(error("concat:zero").0, "zero");
        assert_eq!(error("concat:zero:x1").0, "x");
        assert_eq!(error("ileave:4k").0, "4k");
        assert_eq!(error("device:@/dev/disk").0, "@/dev/disk");
        assert_eq!(error("device:@:wd0").0, "@:wd0");
        assert_eq!(error("").2, "bad store name \"\": empty store name at byte 0");
        assert_eq!(error(":").2, "bad store name \":\": a file name must follow \"query:\" at byte 1");
        assert_eq!(error("device").2, "bad store name \"device\": a device name must follow \"device:\" \"device\" at byte 0");
        assert_eq!(error("part:0:device:wd0").0, "0");
        assert_eq!(error("part:x:device:wd0").2, "bad store name \"part:x:device:wd0\": expected a partition number \"x\" at byte 5");
        assert_eq!(error("part:4294967296:zero").0, "4294967296");
        assert_eq!(error("part:2").0, "2");
        assert_eq!(error("part:2:").1, 7);
        assert_eq!(error("part:1:part:x:zero").1, 12, "nested names are checked too");
        assert_eq!(error("/dev/x:wd0").0, "/dev/x", "a class-like prefix that is no class is an error");
    }
}
