//! `cargo xtask package`: the Debian binary packages for hurd-amd64 that `debian/` describes —
//! `rumpdisk-rs` (the translator and the boot disk server) and `storectl` — built into
//! `target/debian/` and checked with lintian.
//!
//! This is the project's `debian/rules binary`: the programs come from the existing builds
//! (`hurd::link` for the Hurd programs, `tasks::build_tasks` for the GNU Mach boot task), are
//! stripped as `dh_strip` strips them, documentation is compressed as `dh_compress` does, the
//! library dependencies come from the symbol versions the programs need (no `libc0.3` symbols
//! file is reachable here for `dpkg-shlibdeps`), and dpkg's own tools write the control files
//! (`dpkg-gencontrol`) and the packages (`dpkg-deb`).

use crate::host::extract_deb;
use crate::hurd::link::{self, HurdElf};
use crate::util::{copy, output_of, project_root, run_quiet, Error};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Debian architecture of every package: the programs are x86-64 GNU/Hurd ELF files.
pub const ARCHITECTURE: &str = "hurd-amd64";

/// The binary packages `debian/control` names, in its order.
pub const PACKAGES: &[&str] = &["rumpdisk-rs", "storectl"];

/// Where a packaged file comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A program linked for the Hurd (the folder `hurd::link` builds into): stripped.
    HurdProgram(&'static str),
    /// A GNU Mach boot task (the folder `tasks::build_tasks` builds into): stripped.
    BootTask(&'static str),
    /// A file of `debian/`, compressed with `gzip -9n` (changelogs, manual pages and larger
    /// documentation, as `dh_compress` does).
    DebianGzipped(&'static str),
    /// A file of `debian/` as it is.
    Debian(&'static str),
}

/// One file of one package.
struct Install {
    package: &'static str,
    /// Its path in the installed system, without the leading `/`.
    path: &'static str,
    source: Source,
    mode: u32,
}

/// What each package installs besides its `copyright` and changelog. The Hurd package owns
/// `/hurd/rumpdisk` and `/hurd/rumpdisk.static`: ours are installed beside them, never over them.
const INSTALLS: &[Install] = &[
    Install {
        package: "rumpdisk-rs",
        path: "hurd/rumpdisk-rs",
        source: Source::HurdProgram("rumpdisk"),
        mode: 0o755,
    },
    Install {
        package: "rumpdisk-rs",
        path: "hurd/rumpdisk-rs.static",
        source: Source::BootTask("rumpdisk-static"),
        mode: 0o755,
    },
    Install {
        package: "rumpdisk-rs",
        // Over 4 KiB: compressed, as dh_compress does such documentation.
        path: "usr/share/doc/rumpdisk-rs/README.Debian.gz",
        source: Source::DebianGzipped("README.Debian"),
        mode: 0o644,
    },
    Install {
        package: "storectl",
        path: "usr/bin/storectl",
        source: Source::HurdProgram("storectl"),
        mode: 0o755,
    },
    Install {
        package: "storectl",
        path: "usr/share/man/man1/storectl.1.gz",
        source: Source::DebianGzipped("storectl.1"),
        mode: 0o644,
    },
];

/// The Debian package of each shared library the programs may need, and the prefix of that
/// library's symbol versions, whose highest one the package's version must reach (what the
/// library's symbols file would say).
const LIBRARY_PACKAGES: &[(&str, &str, &str)] = &[
    ("libc.so.0.3", "libc0.3", "GLIBC_"),
    // glibc's RPC stubs of the Hurd's interfaces (storectl's file_get_storage_info).
    ("libhurduser.so.0.3", "libc0.3", "GLIBC_"),
    // ... and of Mach's (rumpdisk's `mach_port_mod_refs` for the ports it gives glibc).
    ("libmachuser.so.1", "libc0.3", "GLIBC_"),
    ("libgcc_s.so.1", "libgcc-s1", "GCC_"),
];

/// The packages' folder: `target/debian/` (or under `$CARGO_TARGET_DIR`).
pub fn out_dir() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from);
    project_root().join(target_dir).join("debian")
}

fn debian_dir() -> PathBuf {
    project_root().join("debian")
}

/// `cargo xtask package` (and the test suite's step): builds the programs and the packages,
/// shows each package's size and contents, and runs lintian, which must report no error.
pub fn build_and_lint() -> Result<(), Error> {
    crate::hurd::build()?;
    let programs = link::build_and_check()?;
    let tasks = crate::tasks::build_tasks()?;
    let start = Instant::now();
    let debs = build(&programs, &tasks)?;
    let built = start.elapsed();
    for deb in &debs {
        let size = fs::metadata(deb).map_err(|e| Error::io(deb, e))?.len();
        println!("{} ({size} bytes):", deb.display());
        print!(
            "{}",
            output_of(Command::new("dpkg-deb").arg("-c").arg(deb), "dpkg-deb -c")?
        );
    }
    println!("packages built in {:.1} s", built.as_secs_f64());
    let start = Instant::now();
    let verdict = lintian(&debs);
    println!("lintian ran in {:.1} s", start.elapsed().as_secs_f64());
    verdict
}

/// Builds every package of [`PACKAGES`] from the Hurd programs in `programs` and the boot tasks
/// in `tasks`; returns the `.deb` files, in `target/debian/`.
pub fn build(programs: &Path, tasks: &Path) -> Result<Vec<PathBuf>, Error> {
    let out = out_dir();
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let changelog = debian_dir().join("changelog");
    let version = changelog_field(&changelog, "Version")?;
    let timestamp = changelog_field(&changelog, "Timestamp")?;
    PACKAGES
        .iter()
        .map(|package| {
            let root = out.join(package);
            stage(package, &root, programs, tasks)?;
            control(package, &root, &out)?;
            let deb = out.join(deb_name(package, &version));
            run_quiet(
                Command::new("dpkg-deb")
                    // The packaged files' times are the changelog's, so a rebuild is identical.
                    .env("SOURCE_DATE_EPOCH", &timestamp)
                    .args(["--root-owner-group", "-Zxz", "--build"])
                    .arg(&root)
                    .arg(&deb),
                "dpkg-deb --build",
            )?;
            Ok(deb)
        })
        .collect()
}

/// The file name `dpkg-name` would give the package.
fn deb_name(package: &str, version: &str) -> String {
    // An epoch is not part of the file name.
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    format!("{package}_{version}_{ARCHITECTURE}.deb")
}

/// Installs `package`'s files under `root`, as `dpkg` will install them.
fn stage(package: &str, root: &Path, programs: &Path, tasks: &Path) -> Result<(), Error> {
    let debian = debian_dir();
    let doc = format!("usr/share/doc/{package}");
    let mut files = vec![
        (
            format!("{doc}/copyright"),
            Source::Debian("copyright"),
            0o644,
        ),
        // A native package's changelog is `changelog.gz` (Debian Policy 12.7).
        (
            format!("{doc}/changelog.gz"),
            Source::DebianGzipped("changelog"),
            0o644,
        ),
    ];
    files.extend(
        INSTALLS
            .iter()
            .filter(|i| i.package == package)
            .map(|i| (i.path.to_owned(), i.source, i.mode)),
    );
    for (path, source, mode) in files {
        let to = root.join(&path);
        fs::create_dir_all(to.parent().unwrap_or(root)).map_err(|e| Error::io(&to, e))?;
        match source {
            Source::HurdProgram(bin) => install_stripped(&programs.join(bin), &to)?,
            Source::BootTask(bin) => install_stripped(&tasks.join(bin), &to)?,
            Source::Debian(name) => copy(&debian.join(name), &to)?,
            Source::DebianGzipped(name) => {
                let plain = to.with_extension("");
                copy(&debian.join(name), &plain)?;
                // -n: no name or time in the header, so a rebuild gives the same bytes.
                run_quiet(Command::new("gzip").arg("-9nf").arg(&plain), "gzip")?;
            }
        }
        set_mode(&to, mode)?;
    }
    write_md5sums(root)?;
    write_substvars(package, root)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))
}

/// Copies an ELF program without its symbols, `.comment` and `.note` sections (what `dh_strip`
/// does to a program; the `.note.*` sections, the Hurd ABI tag among them, stay).
fn install_stripped(from: &Path, to: &Path) -> Result<(), Error> {
    run_quiet(
        Command::new("strip")
            .args(["--remove-section=.comment", "--remove-section=.note", "-o"])
            .arg(to)
            .arg(from),
        &format!("strip {}", from.display()),
    )
}

/// `DEBIAN/md5sums`, as `dh_md5sums` writes it.
fn write_md5sums(root: &Path) -> Result<(), Error> {
    let mut files = Vec::new();
    collect_files(root, root, &mut files)?;
    files.sort();
    let sums = output_of(
        Command::new("md5sum").args(&files).current_dir(root),
        "md5sum",
    )?;
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian).map_err(|e| Error::io(&debian, e))?;
    let path = debian.join("md5sums");
    fs::write(&path, sums).map_err(|e| Error::io(&path, e))?;
    set_mode(&path, 0o644)
}

/// The files under `dir`, as paths relative to `root`.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_owned());
        }
    }
    Ok(())
}

/// `shlibs:Depends` for the dynamically linked programs under `root` (the boot task links
/// nothing), in a substvars file beside the package's folder.
fn write_substvars(package: &str, root: &Path) -> Result<(), Error> {
    let mut needs = Vec::new();
    for install in INSTALLS.iter().filter(|i| i.package == package) {
        if let Source::HurdProgram(_) = install.source {
            let path = root.join(install.path);
            let elf = HurdElf::read(&path).map_err(Error::new)?;
            let versions = output_of(Command::new("readelf").arg("-VW").arg(&path), "readelf -V")?;
            needs.push(ProgramNeeds {
                libraries: elf.needed,
                versions: parse_version_needs(&versions),
            });
        }
    }
    let depends = shlibs_depends(&needs).map_err(|why| Error::new(format!("{package}: {why}")))?;
    let path = substvars_path(root);
    fs::write(&path, format!("shlibs:Depends={depends}\nmisc:Depends=\n"))
        .map_err(|e| Error::io(&path, e))
}

fn substvars_path(root: &Path) -> PathBuf {
    root.with_extension("substvars")
}

/// What one dynamically linked program needs.
#[derive(Clone, Debug)]
struct ProgramNeeds {
    /// Its libraries (`DT_NEEDED`).
    libraries: Vec<String>,
    /// The symbol versions it needs of each library ([`parse_version_needs`]).
    versions: BTreeMap<String, Vec<String>>,
}

/// The symbol versions a program needs from each library: `readelf -V`'s version needs section
/// (`File: libc.so.0.3  Cnt: 2` lines, each followed by its `Name: GLIBC_2.38` lines).
fn parse_version_needs(readelf: &str) -> BTreeMap<String, Vec<String>> {
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_needs = false;
    let mut file: Option<String> = None;
    for line in readelf.lines() {
        if line.starts_with("Version needs section") {
            in_needs = true;
            continue;
        }
        if line.starts_with("Version ") && line.contains("section") {
            in_needs = false;
            file = None;
        }
        if !in_needs {
            continue;
        }
        let word_after = |key: &str| {
            let at = line.find(key)? + key.len();
            line[at..].split_whitespace().next().map(str::to_owned)
        };
        if let Some(name) = word_after("File: ") {
            needs.entry(name.clone()).or_default();
            file = Some(name);
        } else if let (Some(version), Some(file)) = (word_after("Name: "), &file) {
            needs.entry(file.clone()).or_default().push(version);
        }
    }
    needs
}

/// The Depends field for `programs`: one entry per library package, at the highest symbol
/// version any program needs of it.
fn shlibs_depends(programs: &[ProgramNeeds]) -> Result<String, String> {
    let mut minimum: BTreeMap<&str, Option<Vec<u32>>> = BTreeMap::new();
    for ProgramNeeds {
        libraries,
        versions,
    } in programs
    {
        for library in libraries {
            let Some((_, package, prefix)) = LIBRARY_PACKAGES.iter().find(|(l, _, _)| l == library)
            else {
                return Err(format!(
                    "no Debian package is known for the library {library} (add it to LIBRARY_PACKAGES)"
                ));
            };
            let highest = versions
                .get(library)
                .into_iter()
                .flatten()
                .filter_map(|v| numeric_version(v.strip_prefix(prefix)?))
                .max();
            let entry = minimum.entry(package).or_default();
            *entry = entry.clone().max(highest);
        }
    }
    // In LIBRARY_PACKAGES's order, so the field reads the same on every build; a package
    // providing several libraries (listed next to each other) once.
    let mut packages: Vec<&str> = LIBRARY_PACKAGES.iter().map(|&(_, package, _)| package).collect();
    packages.dedup();
    Ok(packages
        .into_iter()
        .filter_map(|package| Some((package, minimum.get(package)?)))
        .map(|(package, version)| match version {
            Some(v) => {
                let dotted: Vec<String> = v.iter().map(u32::to_string).collect();
                format!("{package} (>= {})", dotted.join("."))
            }
            None => package.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// `2.38` → `[2, 38]`; `None` for what is not a dotted number (`GLIBC_PRIVATE`).
fn numeric_version(text: &str) -> Option<Vec<u32>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

/// `DEBIAN/control` of `package`, written by `dpkg-gencontrol` from `debian/control`, the
/// changelog and the substvars (it also sums up `Installed-Size`).
fn control(package: &str, root: &Path, out: &Path) -> Result<(), Error> {
    let debian = debian_dir();
    let meta = root.join("DEBIAN");
    fs::create_dir_all(&meta).map_err(|e| Error::io(&meta, e))?;
    run_quiet(
        Command::new("dpkg-gencontrol")
            // The architecture the packages are for, not the build machine's.
            .env("DEB_HOST_ARCH", ARCHITECTURE)
            .arg(format!("-p{package}"))
            .arg(format!("-c{}", debian.join("control").display()))
            .arg(format!("-l{}", debian.join("changelog").display()))
            .arg(format!("-T{}", substvars_path(root).display()))
            // The list of built files goes beside the packages, not into the source tree.
            .arg(format!("-f{}", out.join("files").display()))
            .arg(format!("-P{}", root.display()))
            .current_dir(project_root()),
        "dpkg-gencontrol",
    )
}

/// One field of the changelog's latest entry (`dpkg-parsechangelog -S`).
fn changelog_field(changelog: &Path, field: &str) -> Result<String, Error> {
    let value = output_of(
        Command::new("dpkg-parsechangelog")
            .arg(format!("-l{}", changelog.display()))
            .args(["-S", field]),
        "dpkg-parsechangelog",
    )?;
    Ok(value.trim().to_owned())
}

/// lintian on `debs`: its report is shown, and any error fails the run.
pub fn lintian(debs: &[PathBuf]) -> Result<(), Error> {
    let out = Command::new("lintian")
        // The hurd-amd64 pattern lintian 2.116 lacks (see the file).
        .arg("--include-dir")
        .arg(project_root().join("xtask/lintian"))
        .args(["--fail-on", "error", "--display-info"])
        .args(debs)
        .output()
        .map_err(|e| Error::new(format!("cannot run lintian: {e}")))?;
    let report = String::from_utf8_lossy(&out.stdout);
    print!("{report}");
    let count = |level: &str| report.lines().filter(|l| l.starts_with(level)).count();
    let summary = format!(
        "{} errors, {} warnings, {} informational tags",
        count("E:"),
        count("W:"),
        count("I:")
    );
    if out.status.success() {
        println!("lintian: {summary}");
        return Ok(());
    }
    Err(Error::new(format!(
        "lintian failed ({}): {summary}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Extracts `debs` into `dir` (`dpkg-deb -x`), as `dpkg` would install them under that root.
pub fn unpack(debs: &[PathBuf], dir: &Path) -> Result<(), Error> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for deb in debs {
        extract_deb(deb, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `readelf -VW` of a Hurd program (trimmed): two libraries, versions out of order.
    const READELF_V: &str = "\
Version symbols section '.gnu.version' contains 40 entries:
 Addr: 0x0000000000000ad0  Offset: 0x00000ad0  Link: 6 (.dynsym)
  000:   0 (*local*)       3 (GLIBC_2.38)    2 (GCC_3.0)

Version needs section '.gnu.version_r' contains 2 entries:
 Addr: 0x0000000000000b20  Offset: 0x00000b20  Link: 7 (.dynstr)
  000000: Version: 1  File: libgcc_s.so.1  Cnt: 2
  0x0010:   Name: GCC_4.2.0  Flags: none  Version: 4
  0x0020:   Name: GCC_3.0  Flags: none  Version: 2
  0x0030: Version: 1  File: libc.so.0.3  Cnt: 3
  0x0040:   Name: GLIBC_2.41  Flags: none  Version: 6
  0x0050:   Name: GLIBC_PRIVATE  Flags: none  Version: 5
  0x0060:   Name: GLIBC_2.38  Flags: none  Version: 3
";

    fn needs(libraries: &[&str], readelf: &str) -> ProgramNeeds {
        ProgramNeeds {
            libraries: libraries.iter().map(|l| l.to_string()).collect(),
            versions: parse_version_needs(readelf),
        }
    }

    #[test]
    fn each_library_is_needed_at_its_highest_symbol_version() {
        let versions = parse_version_needs(READELF_V);
        assert_eq!(
            versions["libc.so.0.3"],
            ["GLIBC_2.41", "GLIBC_PRIVATE", "GLIBC_2.38"]
        );
        assert_eq!(versions["libgcc_s.so.1"], ["GCC_4.2.0", "GCC_3.0"]);
        let program = needs(&["libgcc_s.so.1", "libc.so.0.3"], READELF_V);
        assert_eq!(
            shlibs_depends(std::slice::from_ref(&program)).unwrap(),
            "libc0.3 (>= 2.41), libgcc-s1 (>= 4.2.0)"
        );
        // A second program needing less changes nothing; one needing more raises the version.
        let older = needs(&["libc.so.0.3"], &READELF_V.replace("2.41", "2.39"));
        let newer = needs(&["libc.so.0.3"], &READELF_V.replace("2.41", "2.43"));
        assert_eq!(
            shlibs_depends(&[program.clone(), older]).unwrap(),
            "libc0.3 (>= 2.41), libgcc-s1 (>= 4.2.0)"
        );
        assert!(shlibs_depends(&[program, newer])
            .unwrap()
            .starts_with("libc0.3 (>= 2.43)"));
        // Two libraries of one package (libhurduser is glibc's, unversioned): one entry.
        let with_hurduser = needs(&["libc.so.0.3", "libhurduser.so.0.3", "libgcc_s.so.1"], READELF_V);
        assert_eq!(shlibs_depends(&[with_hurduser]).unwrap(), "libc0.3 (>= 2.41), libgcc-s1 (>= 4.2.0)");
        // Numbers, not text: 2.9 is older than 2.10.
        assert!(numeric_version("2.10") > numeric_version("2.9"));
    }

    #[test]
    fn a_library_without_versions_is_needed_unversioned_and_an_unknown_one_is_an_error() {
        let unversioned = needs(&["libc.so.0.3"], "");
        assert_eq!(shlibs_depends(&[unversioned]).unwrap(), "libc0.3");
        let unknown = needs(&["libc.so.0.3", "libfoo.so.1"], "");
        let why = shlibs_depends(&[unknown]).unwrap_err();
        assert!(why.contains("libfoo.so.1"), "{why}");
    }

    /// The package's version is the project's (a native package: no Debian revision).
    #[test]
    fn the_changelog_s_version_is_the_workspace_s() {
        let version = changelog_field(&debian_dir().join("changelog"), "Version").unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        assert_eq!(
            deb_name("storectl", "1:0.1.0"),
            "storectl_0.1.0_hurd-amd64.deb"
        );
    }

    /// `PACKAGES` and `INSTALLS` name exactly the binary packages of `debian/control`.
    #[test]
    fn the_packages_built_are_those_debian_control_names() {
        let control = fs::read_to_string(debian_dir().join("control")).unwrap();
        let named: Vec<&str> = control
            .lines()
            .filter_map(|l| l.strip_prefix("Package:"))
            .map(str::trim)
            .collect();
        assert_eq!(named, PACKAGES);
        for install in INSTALLS {
            assert!(PACKAGES.contains(&install.package), "{}", install.path);
        }
    }

    /// dpkg-gencontrol, as [`control`] runs it, writes a hurd-amd64 control file with the
    /// changelog's version and the dependencies the substvars give.
    #[test]
    fn control_files_are_for_hurd_amd64_with_the_substituted_depends() {
        let scratch = std::env::temp_dir().join(format!("rumpdisk-package-{}", std::process::id()));
        let root = scratch.join("storectl");
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("usr/bin/storectl"), vec![0u8; 5000]).unwrap();
        fs::write(
            substvars_path(&root),
            "shlibs:Depends=libc0.3 (>= 2.38)\nmisc:Depends=\n",
        )
        .unwrap();
        control("storectl", &root, &scratch).unwrap();
        let written = fs::read_to_string(root.join("DEBIAN/control")).unwrap();
        fs::remove_dir_all(&scratch).unwrap();
        let field = |name: &str| {
            written
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} in\n{written}"))
                .to_owned()
        };
        assert_eq!(field("Package"), "storectl");
        assert_eq!(field("Architecture"), ARCHITECTURE);
        assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
        assert_eq!(field("Depends"), "libc0.3 (>= 2.38)");
        // In KiB: the 5000-byte file, and dpkg's 1 KiB for each folder.
        assert!(
            field("Installed-Size").parse::<u64>().unwrap() >= 5,
            "{written}"
        );
    }
}
