//! `query:PATH` (also `:PATH`, and a bare name that is no class): the store under a file system
//! node, found as libstore's `store_open` finds it. The node's translator is asked with
//! `file_get_storage_info` and its answer decoded (storeio answers with its device, ext2fs with
//! a file's blocks on the disk); when it cannot say — a translator without the routine, an answer
//! this store cannot decode — the node's contents are used through the file class instead.
//!
//! The file system is reached through [`Nodes`], so the sequence is tested on the host with a
//! stand-in; on the Hurd the implementation calls `file_name_lookup` and the fs interface.

use crate::class::file;
use crate::decode::{decode, LeafPorts};
use crate::encoding::Encoding;
use crate::errno::Errno;
use crate::error::Result;
use crate::store::{Flags, Store};

/// What `query:` needs from the file system.
pub trait Nodes: LeafPorts<Self::Port> {
    /// A send right to a node (a Hurd `file_t`), or a stand-in.
    type Port;
    /// `file_name_lookup(path, O_READ | O_WRITE)`, or `O_READ` alone when `writable` is false.
    fn lookup(&self, path: &str, writable: bool) -> Result<Self::Port>;
    /// `file_get_storage_info` on `node`.
    fn storage_info(&self, node: &Self::Port) -> Result<Encoding<Self::Port>>;
}

/// The store under the node at `path`. `flags` may hold [`Flags::HARD_READONLY`] to look the
/// node up for reading only; a node that refuses writing (`EACCES`, `EROFS`) is looked up again
/// for reading, as upstream does, and the store is then read-only.
pub fn open<N: Nodes>(nodes: &N, path: &str, flags: Flags) -> Result<Store> {
    let (node, read_only) = lookup(nodes, path, flags)?;
    let mut store = match nodes.storage_info(&node).and_then(|enc| decode(enc, nodes)) {
        Ok(store) => store,
        Err(_) => file_store(nodes, node, path, read_only)?,
    };
    if read_only {
        store.set_flags(Flags::READONLY)?;
    }
    Ok(store)
}

/// `file:PATH`: the contents of the node at `path` through the file class (libstore's
/// `store_file_open`), looked up as [`open`] does.
pub fn open_file<N: Nodes>(nodes: &N, path: &str, flags: Flags) -> Result<Store> {
    let (node, read_only) = lookup(nodes, path, flags)?;
    file_store(nodes, node, path, read_only)
}

fn file_store<N: Nodes>(nodes: &N, node: N::Port, path: &str, read_only: bool) -> Result<Store> {
    let flags = if read_only { Flags::HARD_READONLY } else { Flags::NONE };
    file::create(nodes.file(node)?, Some(path), flags)
}

/// The node and whether it was opened for reading only.
fn lookup<N: Nodes>(nodes: &N, path: &str, flags: Flags) -> Result<(N::Port, bool)> {
    if flags.contains(Flags::HARD_READONLY) {
        return Ok((nodes.lookup(path, false)?, true));
    }
    match nodes.lookup(path, true) {
        Ok(node) => Ok((node, false)),
        Err(error) if [Errno::EACCES, Errno::EROFS].contains(&error.errno()) => Ok((nodes.lookup(path, false)?, true)),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests;
