//! The write-barrier proof: QEMU's device write log, read back and checked on the host.

pub mod check;
pub mod log;

use crate::Error;
use std::fs;
use std::path::Path;

/// Reads the files a VM run left behind and checks them.
pub fn check_run(log: &Path, console: &Path, image: Option<&Path>) -> Result<check::Verdict, Error> {
    let read = |p: &Path| fs::read(p).map_err(|e| Error::io(p, e));
    let log = log::Log::parse(&read(log)?).map_err(|e| Error::new(format!("{}: {e}", log.display())))?;
    let console = check::Console::parse(&String::from_utf8_lossy(&read(console)?));
    let image = image.map(read).transpose()?;
    Ok(check::check(&log, &console, image.as_deref()))
}

/// `cargo xtask check-barrier LOG CONSOLE [IMAGE]`.
pub fn check_files(args: &[String]) -> Result<(), Error> {
    let [log, console, rest @ ..] = args else {
        return Err(Error::new("usage: cargo xtask check-barrier LOG CONSOLE [IMAGE]"));
    };
    let verdict = check_run(Path::new(log), Path::new(console), rest.first().map(Path::new))?;
    println!("{}", verdict.summary());
    for v in &verdict.violations {
        println!("  violation: {v}");
    }
    if verdict.holds() {
        Ok(())
    } else {
        Err(Error::new("the write barrier does not hold"))
    }
}
