//! The host as the other layers find it: the sysroot `cargo xtask setup` fills, the Debian
//! mirror the system's apt uses, apt configurations of our own, `.deb` extraction.

use crate::util::{project_root, run_quiet, Error};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `cargo xtask setup` puts the GNU Mach kernels, their headers and GNU MIG:
/// `$RUMPDISK_SYSROOT`, else `target/sysroot`.
pub fn sysroot_dir() -> PathBuf {
    std::env::var_os("RUMPDISK_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/sysroot"))
}

/// The first Debian archive URI the system's apt is configured with (not the security archive).
pub fn system_mirror() -> Result<String, Error> {
    let mut texts = Vec::new();
    if let Ok(t) = fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let name = p.to_string_lossy().into_owned();
            if name.ends_with(".list") || name.ends_with(".sources") {
                texts.push(fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(mirror_in_line)
        .next()
        .ok_or_else(|| {
            Error::new(
                "no Debian archive URI found in /etc/apt/sources.list or /etc/apt/sources.list.d; \
                 configure apt with a Debian mirror first",
            )
        })
}

/// A Debian archive URI named by one line of a one-line-style or deb822 apt source.
fn mirror_in_line(line: &str) -> Option<String> {
    let line = line.trim();
    let uris: Vec<&str> = if let Some(rest) = line.strip_prefix("URIs:") {
        rest.split_whitespace().collect()
    } else if line.starts_with("deb ") {
        line.split_whitespace()
            .filter(|w| w.contains("://"))
            .take(1)
            .collect()
    } else {
        Vec::new()
    };
    uris.into_iter()
        .map(|u| u.trim_end_matches('/'))
        .find(|u| u.starts_with("http") && u.ends_with("/debian"))
        .map(str::to_owned)
}

/// An apt configuration of one architecture and suite of `mirror`, all of its state in a folder
/// of its own: it never touches the system's apt state or sources.
pub struct PrivateApt {
    dir: PathBuf,
    options: Vec<String>,
}

impl PrivateApt {
    /// Sets the configuration up in `dir` and downloads the suite's index.
    pub fn new(dir: &Path, arch: &str, suite: &str, mirror: &str) -> Result<PrivateApt, Error> {
        for d in ["state/lists/partial", "cache/archives/partial", "download"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| Error::io(dir, e))?;
        }
        fs::write(dir.join("state/status"), "").map_err(|e| Error::io(dir, e))?;
        fs::write(
            dir.join("sources.list"),
            format!(
                "deb [arch={arch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {suite} main\n"
            ),
        )
        .map_err(|e| Error::io(dir, e))?;
        let a = dir.display();
        let options = vec![
            format!("Dir::State={a}/state"),
            format!("Dir::State::status={a}/state/status"),
            format!("Dir::Cache={a}/cache"),
            format!("Dir::Etc::SourceList={a}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".to_owned(),
            format!("APT::Architecture={arch}"),
            format!("APT::Architectures={arch}"),
            "Acquire::Languages=none".to_owned(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_owned(),
            // Downloads land in a root-owned folder; apt's sandbox user could not write there.
            "APT::Sandbox::User=root".to_owned(),
        ];
        let apt = PrivateApt {
            dir: dir.to_owned(),
            options,
        };
        // apt-get update exits 0 when only some index files fail; a broken index shows as "E:" lines.
        let out = apt
            .command("apt-get")
            .arg("update")
            .output()
            .map_err(|e| Error::new(format!("cannot run apt-get: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.lines().any(|l| l.starts_with("E:")) {
            return Err(Error::new(format!(
                "apt-get update: {}",
                first_error(&stderr)
            )));
        }
        Ok(apt)
    }

    /// `program` (`apt-get`, `apt-cache`) with this configuration, run in its download folder.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for o in &self.options {
            c.arg("-o").arg(o);
        }
        c.current_dir(self.dir.join("download"));
        c
    }

    /// Downloads `packages` (no dependencies); returns the .deb files in the download folder.
    pub fn download(&self, packages: &[String]) -> Result<Vec<PathBuf>, Error> {
        let out = self
            .command("apt-get")
            .args(["download", "-q"])
            .args(packages)
            .output()
            .map_err(|e| Error::new(format!("cannot run apt-get: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "apt-get download: {}",
                first_error(&String::from_utf8_lossy(&out.stderr))
            )));
        }
        let download = self.dir.join("download");
        Ok(fs::read_dir(&download)
            .map_err(|e| Error::io(&download, e))?
            .flatten()
            .map(|e| e.path())
            .collect())
    }

    /// Removes the configuration's folder.
    pub fn remove(self) -> Result<(), Error> {
        fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }
}

/// Extracts a .deb's files into `into`.
pub fn extract_deb(deb: &Path, into: &Path) -> Result<(), Error> {
    run_quiet(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(into),
        "dpkg-deb -x",
    )
}

fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("E:"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("failed without a message")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::mirror_in_line;

    #[test]
    fn reads_mirror_from_both_source_formats() {
        assert_eq!(
            mirror_in_line("URIs: http://example.invalid/debian"),
            Some("http://example.invalid/debian".into())
        );
        assert_eq!(
            mirror_in_line("deb [arch=amd64] https://example.invalid/debian/ bookworm main"),
            Some("https://example.invalid/debian".into())
        );
        assert_eq!(
            mirror_in_line("URIs: http://example.invalid/debian-security"),
            None
        );
        assert_eq!(
            mirror_in_line("# deb http://example.invalid/debian bookworm main"),
            None
        );
    }
}
