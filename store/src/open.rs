//! Opening a store from a typed name: parse it whole, then open the leaves and build the
//! composites around them.

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::class::{device, memory, remap, stripe, zero};
use crate::class::device::DeviceMaster;
use crate::errno::Errno;
use crate::error::{Error, Result};
use crate::name::{self, Spec};
use crate::runs::Run;
use crate::store::{Flags, Store};

/// Where leaves come from: device masters and, for tools with a file system, files.
pub trait Opener {
    /// The device master for names under translator `node` (`device:@NODE:NAME`), or the
    /// kernel's device master (`None`).
    fn device_master(&self, node: Option<&str>) -> Result<Rc<dyn DeviceMaster>>;

    /// A store over file `path`.
    fn file(&self, _path: &str, _flags: Flags) -> Result<Store> {
        Err(Error::class("file", Errno::EOPNOTSUPP))
    }
}

/// Opens the store a typed name describes (see [`crate::name`]). `flags` may ask for
/// [`Flags::READONLY`] and [`Flags::HARD_READONLY`] (devices are then opened for reading only).
pub fn open(name: &str, flags: Flags, opener: &dyn Opener) -> Result<Store> {
    let spec = name::parse(name)?;
    let mut store = open_spec(&spec, flags, opener)?;
    store.set_flags(flags.intersection(Flags::READONLY))?;
    Ok(store)
}

/// Opens a parsed name.
pub fn open_spec(spec: &Spec<'_>, flags: Flags, opener: &dyn Opener) -> Result<Store> {
    let leaf_flags = flags.intersection(Flags::HARD_READONLY);
    let children = |specs: &[Spec<'_>]| -> Result<Vec<Store>> {
        specs.iter().map(|child| open_spec(child, flags, opener)).collect()
    };
    match spec {
        Spec::Device { node, name } => device::open(opener.device_master(*node)?, name, leaf_flags),
        Spec::File { path } => opener.file(path, leaf_flags),
        Spec::Memory { size } => memory::create(*size, 1),
        Spec::Zero { size } => zero::create(*size),
        Spec::Remap { runs, child } => {
            let child = open_spec(child, flags, opener)?;
            let runs = runs
                .iter()
                .map(|run| {
                    let to_end = child.blocks().checked_sub(run.start);
                    run.length.or(to_end).map(|length| Run::new(run.start, length))
                })
                .collect::<Option<Vec<Run>>>()
                .ok_or(Error::class("remap", Errno::EINVAL))?;
            remap::create(child, runs)
        }
        Spec::Concat { children: specs } => stripe::concat(children(specs)?),
        Spec::Ileave { interleave, children: specs } => stripe::ileave(children(specs)?, *interleave),
    }
}

/// An opener with one device master and no file system (a boot-time task, a test).
pub struct WithMaster(pub Rc<dyn DeviceMaster>);

impl Opener for WithMaster {
    fn device_master(&self, node: Option<&str>) -> Result<Rc<dyn DeviceMaster>> {
        match node {
            None => Ok(self.0.clone()),
            // Reaching a translator needs a file system to look its node up in.
            Some(_) => Err(Error::class("device", Errno::EOPNOTSUPP)),
        }
    }
}
