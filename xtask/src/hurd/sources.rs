//! Where the Hurd build's inputs from outside the package archive are: the Hurd's tree, the
//! driver stages' archives, our patch series.

use super::drivers;
use crate::util::{project_root, Error};
use std::path::{Path, PathBuf};

/// The folder of the clone holding our patches to the Hurd, applied in name order.
pub const PATCHES: &str = "hurd-patches";

/// The source archives the package archive does not serve here, found in one folder:
/// `$RUMPDISK_SOURCES`, else the shared folder beside the clone. `$HURD_SOURCE_ARCHIVE` names
/// the Hurd's tree elsewhere.
pub struct Sources {
    pub dir: PathBuf,
    /// The Hurd's tree (`git archive --prefix=hurd/`).
    pub hurd: PathBuf,
    /// The driver stages' archives, in [`drivers::ARCHIVES`] order.
    pub drivers: Vec<PathBuf>,
    /// Our patches to the Hurd (`hurd-patches/*.patch` in the clone), in the order they apply.
    pub patches: Vec<PathBuf>,
}

impl Sources {
    pub fn find() -> Result<Sources, Error> {
        let dir = std::env::var_os("RUMPDISK_SOURCES")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_root().join("../shared/sources"));
        let hurd = match std::env::var_os("HURD_SOURCE_ARCHIVE") {
            Some(path) => PathBuf::from(path),
            None => archive(&dir, "hurd-")?,
        };
        let drivers = drivers::ARCHIVES
            .iter()
            .map(|prefix| archive(&dir, prefix))
            .collect::<Result<_, _>>()?;
        Ok(Sources {
            dir,
            hurd,
            drivers,
            patches: patches(&project_root().join(PATCHES))?,
        })
    }
}

/// The `*.patch` files of `dir`, sorted by name (the series' order).
fn patches(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::new(format!("no *.patch in {}", dir.display())));
    }
    Ok(found)
}

/// The one archive in `dir` whose name starts with `prefix`.
fn archive(dir: &Path, prefix: &str) -> Result<PathBuf, Error> {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.contains(".tar.")
            })
        })
        .collect();
    match <[PathBuf; 1]>::try_from(found) {
        Ok([path]) => Ok(path),
        Err(found) => {
            Err(Error::new(format!(
            "{} source archives named {prefix}*.tar.* in {} (one is needed; set RUMPDISK_SOURCES \
             to the folder that holds them{})",
            found.len(),
            dir.display(),
            if prefix == "hurd-" { ", or HURD_SOURCE_ARCHIVE to the Hurd's tree" } else { "" }
        )))
        }
    }
}
