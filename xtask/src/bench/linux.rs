//! The Linux anchor of `cargo xtask bench`: Debian's own kernel (`linux-image-amd64` of the
//! system's suite, through a private apt configuration as set-up's) booted in the same QEMU with
//! the same disk set-up as the rumpdisk bench. Its initramfs holds `busybox-static`, the modules
//! `ata_piix` and `sd_mod` need, and an `/init` that loads them and runs `dd` with `O_DIRECT`
//! between console markers; the host timestamps each marker line as it arrives (no guest clock).

use crate::host::{extract_deb, system_mirror, PrivateApt};
use crate::vm::{self, Bus, Disk};
use crate::util::{project_root, Error};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The modules the initramfs loads, with what they depend on.
const MODULES: [&str; 2] = ["ata_piix", "sd_mod"];
/// Rounds of every measure; the median is kept.
const ROUNDS: usize = 5;
/// Each measure: (operation, request bytes, requests). Offsets as the rumpdisk bench's: 4 MiB in.
const RUNS: [(&str, u64, u64); 4] = [
    ("write", 4096, 2048),
    ("read", 4096, 2048),
    ("write", 1 << 20, 48),
    ("read", 1 << 20, 48),
];
const FIRST_BYTE: u64 = 4 << 20;
/// Sectors of the disk image (64 MiB), as the rumpdisk bench's.
const DISK_SECTORS: u64 = 128 * 1024;
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// Linux's throughput on the bench's disk.
#[derive(Debug)]
pub struct Anchor {
    /// The kernel package, e.g. `linux-image-6.1.0-41-amd64`.
    pub kernel: String,
    /// Median MiB/s by (operation, request bytes).
    pub mib_per_s: BTreeMap<(String, u64), f64>,
}

impl Anchor {
    pub fn rate(&self, op: &str, bytes: u64) -> Option<f64> {
        self.mib_per_s.get(&(op.to_owned(), bytes)).copied()
    }
}

/// Boots the anchor and measures it.
pub fn measure() -> Result<Anchor, Error> {
    measure_on(&MODULES, Bus::Ide, "console.log")
}

/// The same on a disk on an AHCI controller (`-device ahci`), through Linux's `ahci` driver:
/// the anchor of rumpdisk.static's AHCI figures.
pub fn measure_ahci() -> Result<Anchor, Error> {
    measure_on(&["ahci", "sd_mod"], Bus::Ahci, "console-ahci.log")
}

/// Boots the anchor with `modules` in its initramfs, its disk on `bus`, its console in
/// `console`.
fn measure_on(modules: &[&str], bus: Bus, console: &str) -> Result<Anchor, Error> {
    let dir = project_root().join("target/linux-anchor");
    let kernel = fetch_kernel(&dir)?;
    let root = dir.join("root");
    let initrd = dir.join("initrd.cpio");
    fs::write(&initrd, initramfs(&root, modules)?).map_err(|e| Error::io(&initrd, e))?;
    let image = dir.join("sda.img");
    let _ = fs::remove_file(&image);
    fs::File::create(&image)
        .and_then(|f| f.set_len(DISK_SECTORS * 512))
        .map_err(|e| Error::io(&image, e))?;
    let vmlinuz = kernel_image(&root)?;
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(vm::MACHINE)
        .args(["-m", &vm::MEMORY_MIB.to_string()])
        .arg("-kernel")
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .args(vm::disk_args(&Disk { bus, ..Disk::fresh(image, DISK_SECTORS) }, 0));
    let lines = timed_console(qemu, &dir.join(console))?;
    Ok(Anchor {
        kernel,
        mib_per_s: rates(&lines)?,
    })
}

/// Downloads and extracts the kernel package `linux-image-amd64` names and `busybox-static`
/// into `dir/root`, once; returns the kernel package's name.
fn fetch_kernel(dir: &Path) -> Result<String, Error> {
    let stamp = dir.join("FETCHED");
    if let Ok(kernel) = fs::read_to_string(&stamp) {
        return Ok(kernel.trim().to_owned());
    }
    let _ = fs::remove_dir_all(dir);
    let suite = system_suite()?;
    let apt = PrivateApt::new(&dir.join("apt"), "amd64", &suite, &system_mirror()?)?;
    let out = apt
        .command("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .output()
        .map_err(|e| Error::new(format!("cannot run apt-cache: {e}")))?;
    let kernel = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Depends: linux-image-")
                .map(|v| format!("linux-image-{v}"))
        })
        .ok_or_else(|| Error::new(format!("linux-image-amd64 of {suite} names no kernel")))?;
    for deb in apt.download(&[kernel.clone(), "busybox-static".to_owned()])? {
        extract_deb(&deb, &dir.join("root"))?;
    }
    apt.remove()?;
    fs::write(&stamp, &kernel).map_err(|e| Error::io(&stamp, e))?;
    Ok(kernel)
}

/// The system's Debian suite (`VERSION_CODENAME` of /etc/os-release).
fn system_suite() -> Result<String, Error> {
    let release = fs::read_to_string("/etc/os-release")
        .map_err(|e| Error::io(Path::new("/etc/os-release"), e))?;
    release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::new("/etc/os-release names no VERSION_CODENAME"))
}

fn kernel_image(root: &Path) -> Result<PathBuf, Error> {
    let boot = root.join("boot");
    fs::read_dir(&boot)
        .map_err(|e| Error::io(&boot, e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| Error::new(format!("no vmlinuz in {}", boot.display())))
}

/// The initramfs (newc cpio): busybox, the modules in load order, `/dev/console`, and `/init`.
fn initramfs(root: &Path, modules: &[&str]) -> Result<Vec<u8>, Error> {
    let modules = load_order(&module_files(root)?, modules)?;
    let busybox = root.join("bin/busybox");
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "modules"] {
        cpio.directory(dir);
    }
    cpio.console("dev/console");
    cpio.file(
        "bin/busybox",
        0o755,
        &fs::read(&busybox).map_err(|e| Error::io(&busybox, e))?,
    );
    for (name, path) in &modules {
        cpio.file(
            &format!("modules/{name}.ko"),
            0o644,
            &fs::read(path).map_err(|e| Error::io(path, e))?,
        );
    }
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    cpio.file("init", 0o755, init_script(&names).as_bytes());
    Ok(cpio.finish())
}

/// `/init`: load the modules, wait for the disk, then every measure `ROUNDS` times between
/// markers, with an empty `dd` (its start-up alone) beside each; then power off.
fn init_script(modules: &[&str]) -> String {
    let mut script = String::from(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\n\
         mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\n",
    );
    for m in modules {
        script += &format!("insmod /modules/{m}.ko || echo \"anchor: insmod {m} failed\"\n");
    }
    script += "i=0; while [ ! -b /dev/sda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n\
               [ -b /dev/sda ] || { echo 'anchor: no /dev/sda'; poweroff -f; }\n\
               echo 'anchor: ready'\n\
               run() { name=$1; shift; echo \"anchor: begin $name\"; dd \"$@\" 2>/dev/null; echo \"anchor: end $name\"; }\n";
    script += &format!(
        "for round in {}; do\n",
        (1..=ROUNDS)
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (op, bytes, count) in RUNS {
        let blocks = FIRST_BYTE / bytes;
        let (files, position, flag) = match op {
            "write" => ("if=/dev/zero of=/dev/sda", "seek", "oflag=direct"),
            _ => ("if=/dev/sda of=/dev/null", "skip", "iflag=direct"),
        };
        script += &format!(
            "  run '{op} {bytes}' {files} bs={bytes} count={count} {position}={blocks} {flag}\n"
        );
        script += &format!(
            "  run '{op} {bytes} empty' {files} bs={bytes} count=0 {position}={blocks} {flag}\n"
        );
    }
    script += "done\necho 'anchor: done'\npoweroff -f\n";
    script
}

/// Module name → file, for every module of the kernel tree under `root` (`-` and `_` alike).
fn module_files(root: &Path) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.join("lib/modules")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".ko"))
            {
                found.insert(name.replace('-', "_"), path);
            }
        }
    }
    Ok(found)
}

/// `wanted` and what they depend on (each module's `depends=`), dependencies first.
fn load_order(
    files: &BTreeMap<String, PathBuf>,
    wanted: &[&str],
) -> Result<Vec<(String, PathBuf)>, Error> {
    fn visit(
        name: &str,
        files: &BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), Error> {
        let key = name.replace('-', "_");
        if !seen.insert(key.clone()) {
            return Ok(());
        }
        let path = files
            .get(&key)
            .ok_or_else(|| Error::new(format!("no module {name} in the kernel package")))?;
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        for dependency in depends(&bytes) {
            visit(&dependency, files, seen, order)?;
        }
        order.push((key, path.clone()));
        Ok(())
    }
    let (mut seen, mut order) = (BTreeSet::new(), Vec::new());
    for name in wanted {
        visit(name, files, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// The module names of a module's `depends=` modinfo string.
fn depends(module: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"depends=";
    let Some(at) = module.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &module[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A newc cpio archive, as the kernel unpacks an initramfs.
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.inode += 1;
        let fields = [
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn directory(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, permissions: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | permissions, (0, 0), data);
    }

    /// The console character device (5, 1), for `/init`'s standard streams.
    fn console(&mut self, name: &str) {
        self.entry(name, 0o020_600, (5, 1), &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }
}

/// Runs QEMU and returns each console line with the time it arrived; the console is kept.
fn timed_console(mut qemu: Command, console: &Path) -> Result<Vec<(Instant, String)>, Error> {
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::new(format!("cannot run qemu-system-x86_64: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if send.send((Instant::now(), text)).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let mut lines = Vec::new();
    let finished = loop {
        match receive.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((at, line)) => {
                let done = line.contains("anchor: done");
                lines.push((at, line));
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    fs::write(console, text).map_err(|e| Error::io(console, e))?;
    if !finished {
        return Err(Error::new(format!(
            "the Linux anchor did not finish (console: {})",
            console.display()
        )));
    }
    Ok(lines)
}

/// Median MiB/s of each measure: its time between markers less the median time of its empty
/// `dd`.
fn rates(lines: &[(Instant, String)]) -> Result<BTreeMap<(String, u64), f64>, Error> {
    let mut began: BTreeMap<&str, Instant> = BTreeMap::new();
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for (at, line) in lines {
        if let Some(name) = line.split("anchor: begin ").nth(1) {
            began.insert(name, *at);
        } else if let Some(name) = line.split("anchor: end ").nth(1) {
            let start = began
                .remove(name)
                .ok_or_else(|| Error::new(format!("anchor: `{name}` ended before it began")))?;
            times.entry(name).or_default().push(*at - start);
        } else if line.contains("anchor: ")
            && !line.contains("anchor: ready")
            && !line.contains("anchor: done")
        {
            return Err(Error::new(format!("the Linux anchor failed: {line}")));
        }
    }
    let median = |name: &str| -> Result<Duration, Error> {
        let mut samples = times
            .get(name)
            .cloned()
            .filter(|s| s.len() == ROUNDS)
            .ok_or_else(|| {
                Error::new(format!(
                    "the Linux anchor lacks its {ROUNDS} rounds of `{name}`"
                ))
            })?;
        samples.sort();
        Ok(samples[ROUNDS / 2])
    };
    let mut rates = BTreeMap::new();
    for (op, bytes, count) in RUNS {
        let name = format!("{op} {bytes}");
        let busy = median(&name)?.saturating_sub(median(&format!("{name} empty"))?);
        let mib = (bytes * count) as f64 / f64::from(1 << 20);
        rates.insert((op.to_owned(), bytes), mib / busy.as_secs_f64().max(1e-9));
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_reads_the_modinfo_string() {
        assert_eq!(
            depends(b"\x7fELF...license=GPL\0depends=scsi_mod,t10-pi\0retpoline=Y\0"),
            ["scsi_mod", "t10-pi"]
        );
        assert!(depends(b"license=GPL\0depends=\0").is_empty());
        assert!(depends(b"no modinfo").is_empty());
    }

    #[test]
    fn modules_load_after_what_they_depend_on() {
        let dir = std::env::temp_dir().join(format!("anchor-modules-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut files = BTreeMap::new();
        for (name, deps) in [
            ("ata_piix", "libata"),
            ("libata", "scsi_mod,scsi_common"),
            ("scsi_mod", "scsi_common"),
            ("scsi_common", ""),
            ("t10-pi", ""),
        ] {
            let path = dir.join(format!("{name}.ko"));
            fs::write(&path, format!("depends={deps}\0")).unwrap();
            files.insert(name.replace('-', "_"), path);
        }
        let order: Vec<String> = load_order(&files, &["ata_piix", "t10-pi"])
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            order,
            ["scsi_common", "scsi_mod", "libata", "ata_piix", "t10_pi"]
        );
        assert!(load_order(&files, &["sd_mod"]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut cpio = Cpio::default();
        cpio.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = cpio.finish();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(&bytes[6 + 8..6 + 16], b"000081ed");
        assert!(bytes.len().is_multiple_of(4));
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn rates_take_the_median_less_the_empty_dd() {
        let start = Instant::now();
        let mut lines = Vec::new();
        let mut at = |ms: u64, line: String| lines.push((start + Duration::from_millis(ms), line));
        let mut t = 0;
        for _ in 0..ROUNDS {
            for (op, bytes, _) in RUNS {
                for (suffix, took) in [("", 110), (" empty", 10)] {
                    at(t, format!("anchor: begin {op} {bytes}{suffix}"));
                    t += took;
                    at(t, format!("anchor: end {op} {bytes}{suffix}"));
                }
            }
        }
        let rates = rates(&lines).unwrap();
        // 2048 requests of 4 KiB (8 MiB) in 100 ms.
        assert!((rates[&("read".to_owned(), 4096)] - 80.0).abs() < 1e-6);
        assert!(
            super::rates(&lines[..lines.len() - 2]).is_err(),
            "a round missing"
        );
    }
}
