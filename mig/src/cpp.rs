//! The C preprocessor step, as GNU MIG's `mig` script runs it (`$CC -E -x c`).

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::abi::Abi;

/// Preprocesses `defs` for `abi` with `include` as the gnumach header directory and the given
/// `-D` definitions. `cc` is the C compiler to run (`gcc` unless `CC` says otherwise).
pub fn preprocess(defs: &Path, abi: Abi, include: &Path, defines: &[&str]) -> Result<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_owned());
    let mut command = Command::new(&cc);
    command.args(["-E", "-x", "c"]);
    // The ABI decides `__x86_64__` vs `__i386__`, which the .defs files test.
    command.arg(match abi {
        Abi::X86_64 => "-m64",
        Abi::I686 => "-m32",
    });
    command.arg("-I").arg(include);
    for define in defines {
        command.arg(format!("-D{define}"));
    }
    command.arg(defs);
    let output = command
        .output()
        .map_err(|e| Error::Preprocess(format!("cannot run `{cc}`: {e}")))?;
    if !output.status.success() {
        return Err(Error::Preprocess(format!(
            "`{cc} -E` failed on {}: {}",
            defs.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| Error::Preprocess(format!("{} is not UTF-8", defs.display())))
}
