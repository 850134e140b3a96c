//! Reading a storage-info encoding back into a store (libstore's `store_decode`), checking every
//! count against what the arrays hold: a short or inconsistent encoding is `EINVAL`, never a
//! panic or a read past an array.
//!
//! Differences from upstream, each on purpose: misc data is skipped, not kept (this store has no
//! use for it; upstream's leaf decoder also copies it from the wrong place when a name comes
//! first); a decoded store is active (it arrives with its port), so `STORE_INACTIVE` is dropped;
//! classes upstream knows but this store does not have (network, memory object, task, copy) are
//! `EOPNOTSUPP`, unknown ids `EINVAL`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::{self, Vec};

use crate::encoding::*;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::runs::Run;
use crate::store::Store;
use crate::class::device::{self, DevicePort};
use crate::class::file::{self, FileNode};
use crate::class::{remap, stripe, zero};
use crate::store::Flags;

/// Turns the ports of an encoding into the leaves' RPC endpoints.
pub trait LeafPorts<P> {
    fn device(&self, port: P) -> Result<Box<dyn DevicePort>>;
    fn file(&self, port: P) -> Result<Box<dyn FileNode>>;
}

/// Composites nested deeper than this are refused (each level recurses).
const MAX_DEPTH: usize = 32;

/// The store `enc` describes; ports it does not use are dropped (released, for owned rights).
pub fn decode<P>(enc: Encoding<P>, leaves: &dyn LeafPorts<P>) -> Result<Store> {
    let Encoding { ports, ints, offsets, data } = enc;
    let mut decoder = Decoder { ports: ports.into_iter(), ints: &ints, offsets: &offsets, data: &data, leaves };
    decoder.store(0)
}

struct Decoder<'a, P> {
    ports: vec::IntoIter<P>,
    ints: &'a [i32],
    offsets: &'a [i64],
    data: &'a [u8],
    leaves: &'a dyn LeafPorts<P>,
}

fn invalid(class: &'static str) -> Error {
    Error::class(class, Errno::EINVAL)
}

/// The class name of an id, for errors.
fn class_name(id: i32) -> &'static str {
    match id {
        STORAGE_DEVICE => "device",
        STORAGE_HURD_FILE => "file",
        STORAGE_NETWORK => "network",
        STORAGE_MEMORY => "memory object",
        STORAGE_TASK => "task",
        STORAGE_ZERO => "zero",
        STORAGE_CONCAT => "concat",
        STORAGE_INTERLEAVE => "ileave",
        STORAGE_LAYER => "layer",
        STORAGE_REMAP => "remap",
        STORAGE_COPY => "copy",
        _ => "storage info",
    }
}

/// Flags a decoded store keeps: the generic read-only ones and the backend's enforcement.
const WIRE_FLAGS: Flags = Flags(Flags::READONLY.0 | Flags::HARD_READONLY.0 | Flags::ENFORCED.0);

impl<P> Decoder<'_, P> {
    fn int(&mut self, class: &'static str) -> Result<i32> {
        let (first, rest) = self.ints.split_first().ok_or(invalid(class))?;
        self.ints = rest;
        Ok(*first)
    }

    /// A count or size: a non-negative int.
    fn count(&mut self, class: &'static str) -> Result<usize> {
        usize::try_from(self.int(class)?).map_err(|_| invalid(class))
    }

    fn offset(&mut self, class: &'static str) -> Result<i64> {
        let (first, rest) = self.offsets.split_first().ok_or(invalid(class))?;
        self.offsets = rest;
        Ok(*first)
    }

    fn bytes(&mut self, class: &'static str, len: usize) -> Result<&[u8]> {
        if len > self.data.len() {
            return Err(invalid(class));
        }
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        Ok(taken)
    }

    /// `count` runs; a start of -1 is a hole, other negatives are garbage.
    fn runs(&mut self, class: &'static str, count: usize) -> Result<Vec<Run>> {
        if count > self.offsets.len() / 2 {
            return Err(invalid(class));
        }
        (0..count)
            .map(|_| {
                let (start, length) = (self.offset(class)?, self.offset(class)?);
                let length = u64::try_from(length).map_err(|_| invalid(class))?;
                match start {
                    -1 => Ok(Run::hole(length)),
                    _ => u64::try_from(start).map(|s| Run::new(s, length)).map_err(|_| invalid(class)),
                }
            })
            .collect()
    }

    fn store(&mut self, depth: usize) -> Result<Store> {
        let class = *self.ints.first().ok_or(invalid("storage info"))?;
        let name = class_name(class);
        if depth > MAX_DEPTH {
            return Err(invalid(name));
        }
        // Past the class id, every class has its flags.
        let _ = self.int(name)?;
        let flags = Flags(self.int(name)? as u32).intersection(WIRE_FLAGS);
        let mut store = match class {
            STORAGE_DEVICE | STORAGE_HURD_FILE => return self.leaf(class, name, flags),
            STORAGE_ZERO => {
                let size = u64::try_from(self.offset(name)?).map_err(|_| invalid(name))?;
                zero::create(size)?
            }
            STORAGE_REMAP => {
                let count = self.count(name)?;
                let runs = self.runs(name, count)?;
                remap::create(self.store(depth + 1)?, runs)?
            }
            STORAGE_CONCAT => stripe::concat(self.children(name, depth)?)?,
            STORAGE_INTERLEAVE => {
                let interleave = self.count(name)? as u64;
                stripe::ileave(self.children(name, depth)?, interleave)?
            }
            STORAGE_NETWORK | STORAGE_MEMORY | STORAGE_TASK | STORAGE_COPY => {
                return Err(Error::class(name, Errno::EOPNOTSUPP));
            }
            _ => return Err(invalid(name)),
        };
        store.set_flags(flags.intersection(Flags::READONLY))?;
        Ok(store)
    }

    fn children(&mut self, class: &'static str, depth: usize) -> Result<Vec<Store>> {
        // A count larger than the children present fails at the first missing one.
        (0..self.count(class)?).map(|_| self.store(depth + 1)).collect()
    }

    /// The standard leaf encoding, past TY and FL.
    fn leaf(&mut self, class: i32, name: &'static str, flags: Flags) -> Result<Store> {
        let block_size = u32::try_from(self.int(name)?).ok().filter(|bs| bs.is_power_of_two()).ok_or(invalid(name))?;
        let run_count = self.count(name)?;
        let (name_len, misc_len) = (self.count(name)?, self.count(name)?);
        let port = self.ports.next().ok_or(invalid(name))?;
        let runs = self.runs(name, run_count)?;
        let label = match self.bytes(name, name_len)? {
            [] => None,
            // As upstream's strdup: the name ends at its first NUL.
            [text @ .., 0] => {
                let text = text.split(|b| *b == 0).next().unwrap_or_default();
                Some(String::from_utf8(text.to_vec()).map_err(|_| invalid(name))?)
            }
            _ => return Err(invalid(name)), // not NUL-terminated
        };
        self.bytes(name, misc_len)?;
        match class {
            STORAGE_DEVICE => device::from_port(self.leaves.device(port)?, label, block_size, runs, flags),
            _ => file::from_parts(self.leaves.file(port)?, label, block_size, runs, flags),
        }
    }
}
