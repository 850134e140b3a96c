//! The Hurd a scenario boots: the system (upstream's or patched), the boot disk driver and its
//! controller, the root image with the scenario's script, GRUB's modules, and the scenario with
//! its root disk made from them.

use crate::barrier::log::Log;
use crate::hurd::fscheck;
use crate::hurd::image::{self, Contents, GuestFile};
use crate::hurd::partition::{self, Partition};
use crate::util::Error;
use crate::iso::Module;
use crate::scenario::Scenario;
use crate::vm::{run_dir, Bus, Disk, Expect, Fresh, Kernel, SUCCESS_MARKER};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The root file system's size: room for the system (18 MiB) and the workloads.
pub(super) const IMAGE_MIB: u64 = 64;

/// What the scenario script starts with: a `PATH` and `check NAME COMMAND...`, which prints the
/// harness's test line for the command's exit status (and its last output lines on failure).
pub(super) const PRELUDE: &str = r#"#!/bin/sh
PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin
export PATH
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then
        echo "test $name ... ok"
    else
        echo "test $name ... FAILED: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    fi
}
"#;

/// `runsystem`, which the Hurd's `startup` runs once the system is up: the scenario's script,
/// then a shell on the console.
pub(super) const RUNSYSTEM: &str = r#"#!/bin/sh
PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin
export PATH
echo "runsystem: the Hurd is up"
if [ -x /etc/rumpdisk-rs/run ]; then /etc/rumpdisk-rs/run; fi
exec /bin/sh -i
"#;

/// The pieces every Hurd scenario shares.
pub struct Hurd {
    /// The system this scenario boots: [`Hurd::upstream`] or [`Hurd::patched`].
    pub(super) system: PathBuf,
    /// The system as upstream's Hurd builds it (stage `system`).
    pub(super) upstream: PathBuf,
    /// The system with our patch series applied to the Hurd (stage `system-patched`).
    pub(super) patched: PathBuf,
    /// Which of the two this scenario boots.
    pub(super) variant: System,
    /// The project's Debian packages, unpacked (`dpkg-deb -x`): the root image gets them as
    /// `dpkg` would install them, and GRUB loads the packaged boot disk server.
    pub(super) packages: PathBuf,
    pub(super) guest: PathBuf,
    /// The boot disk driver the scenarios boot with.
    pub(super) driver: Driver,
    /// The controller the boot disk is on.
    pub(super) controller: Controller,
}

/// Where a Hurd scenario's boot disk is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// The PIIX IDE controller's primary master (QEMU's `pc` machine has it built in).
    Ide,
    /// The first port of an AHCI controller of its own (`-device ahci`, an ICH9 AHCI); the boot
    /// CD stays on the IDE controller. Scenarios named `NAME-ahci`.
    Ahci,
    /// The `q35` machine's own AHCI controller (ICH9), the machine without IDE a Q35 board is.
    /// Scenarios named `NAME-q35`.
    Q35,
}

/// The boot disk driver of a Hurd scenario. Both boot as Debian's GRUB entry has it:
/// `pci-arbiter.static` first (holding the privileged ports, starting the driver), then the
/// driver, then `ext2fs.static -T typed part:2:device:wd0` on the disk's second partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// rumpdisk-rs.static with its native ATA driver, from the project's Debian package.
    Ours,
    /// Upstream's C `rumpdisk.static` with the NetBSD rump kernel, built from the Hurd's sources
    /// with Debian's rump kernel (`cargo xtask hurd`).
    Upstream,
    /// rumpdisk-rs built with the rump backend and linked statically with the same rump kernel
    /// (`rumpdisk-rump.static`): `DEV_FLUSH_CACHE` → `DIOCCACHESYNC` in the boot role.
    OursRump,
}

/// Which build of the Hurd a scenario boots. Every Hurd scenario boots the upstream Hurd unless
/// it says otherwise; those that show one of upstream's bugs run on both, failing on the upstream
/// one in the recorded way ([`Expect::Gap`]) and passing on the patched one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// The Hurd as upstream has it (stage `system`).
    Upstream,
    /// The Hurd with our patch series, `hurd-patches/` (stage `system-patched`).
    Patched,
}

/// The root file system's disk, as the host checks it afterwards.
#[derive(Clone, Debug)]
pub struct Root {
    /// The file system image the disk's root partition started as.
    pub fs: PathBuf,
    /// Where it lies on the disk.
    pub partition: Partition,
}

/// A disk's write log, read and parsed; the error names the file.
pub fn read_log(path: &Path) -> Result<Log, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Log::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

impl Root {
    /// The disk's write log, seen from the root partition.
    pub fn log(&self, write_log: &Path) -> Result<Log, String> {
        let log = read_log(write_log)?;
        fscheck::within(&log, self.partition)
    }
}

/// How the boot disk server answers `DEV_FLUSH_CACHE`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    Honoured,
    /// `--flush=skip`: answers without flushing (the negative control).
    Skipped,
    /// `--flush=skip-one=K`: answers its Kth flush since boot without flushing (the negative
    /// control of one missing flush among many).
    SkipOne(u32),
    /// Honoured by the server, but the disk fails its `n`th flush (QEMU `blkdebug`): the error
    /// reaches ext2fs, and upstream's goes on as if the flush had been made.
    DiskFailsFlush(u32),
}

impl Barrier {
    /// The boot disk server's `--flush` option for this mode, if it needs one.
    pub(super) fn option(self) -> Option<String> {
        match self {
            Barrier::Honoured | Barrier::DiskFailsFlush(_) => None,
            Barrier::Skipped => Some("--flush=skip".into()),
            Barrier::SkipOne(k) => Some(format!("--flush=skip-one={k}")),
        }
    }
}

impl Hurd {
    /// The pieces, with `systems` built first (or found in the cache).
    pub fn new(tasks: &Path, systems: crate::hurd::Systems) -> Result<Hurd, Error> {
        let system = crate::hurd::build_for(systems)?;
        let guest = crate::hurd::link::build_and_check()?;
        let debs = crate::package::build(&guest, tasks)?;
        let packages = crate::package::out_dir().join("unpacked");
        crate::package::unpack(&debs, &packages)?;
        Ok(Hurd {
            upstream: system.clone(),
            patched: crate::hurd::patched_system(),
            system,
            variant: System::Upstream,
            packages,
            guest,
            driver: Driver::Ours,
            controller: Controller::Ide,
        })
    }

    /// The same pieces, booting with `driver`.
    pub fn with(&self, driver: Driver) -> Hurd {
        Hurd {
            driver,
            ..self.clone_pieces()
        }
    }

    /// The same pieces, booting the Hurd `variant`.
    pub fn with_system(&self, variant: System) -> Hurd {
        Hurd {
            system: match variant {
                System::Upstream => self.upstream.clone(),
                System::Patched => self.patched.clone(),
            },
            variant,
            ..self.clone_pieces()
        }
    }

    /// The same pieces, the boot disk on `controller`.
    pub fn on(&self, controller: Controller) -> Hurd {
        Hurd {
            controller,
            ..self.clone_pieces()
        }
    }

    pub(super) fn clone_pieces(&self) -> Hurd {
        Hurd {
            system: self.system.clone(),
            upstream: self.upstream.clone(),
            patched: self.patched.clone(),
            variant: self.variant,
            packages: self.packages.clone(),
            guest: self.guest.clone(),
            driver: self.driver,
            controller: self.controller,
        }
    }

    /// The scenario `base` (`hurd-NAME`) as this driver's, this system's and this controller's:
    /// `hurd-c-NAME` for upstream's C driver, `hurd-patched-NAME` on the patched Hurd,
    /// `hurd-NAME-ahci` with the boot disk on AHCI.
    pub(super) fn named(&self, base: &str) -> String {
        let base = match self.variant {
            System::Upstream => base.to_owned(),
            System::Patched => base.replacen("hurd-", "hurd-patched-", 1),
        };
        let base = match self.controller {
            Controller::Ide => base,
            Controller::Ahci => format!("{base}-ahci"),
            Controller::Q35 => format!("{base}-q35"),
        };
        match self.driver {
            Driver::Ours => base,
            Driver::Upstream => base.replacen("hurd-", "hurd-c-", 1),
            Driver::OursRump => base.replacen("hurd-", "hurd-rump-", 1),
        }
    }

    /// What a scenario showing upstream's bug `gap` expects: the gap on the upstream Hurd, a
    /// pass on the patched one.
    pub(super) fn expect_fixed(&self, gap: &'static str) -> Expect {
        match self.variant {
            System::Upstream => Expect::Gap(gap),
            System::Patched => Expect::Pass,
        }
    }

    /// GNU Mach's boot modules, in the order Debian's GRUB entry for a rumpdisk root has them.
    pub(super) fn modules(&self, flush: Barrier) -> Vec<Module> {
        let words = |w: &[&str]| w.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let privileged = [
            "--host-priv-port=${host-port}",
            "--device-master-port=${device-port}",
        ];
        let mut arbiter_words = words(&privileged);
        arbiter_words.extend(words(&[
            "--next-task=${disk-task}",
            "$(pci-task=task-create)",
            "$(task-resume)",
        ]));
        let mut disk_words = words(&["--next-task=${fs-task}"]);
        // Upstream's C driver has no such option: its scenarios only honour flushes.
        if self.driver != Driver::Upstream {
            disk_words.extend(flush.option());
        }
        disk_words.push("$(disk-task=task-create)".to_owned());
        let mut modules = vec![
            Module {
                file: self.system.join("hurd/pci-arbiter.static"),
                name: "pci-arbiter.static".into(),
                words: arbiter_words,
            },
            Module {
                file: self.driver_program(),
                name: "rumpdisk.static".into(),
                words: disk_words,
            },
        ];
        modules.push(Module {
            file: self.system.join("hurd/ext2fs.static"),
            name: "ext2fs.static".into(),
            words: words(&[
                "--multiboot-command-line=${kernel-command-line}",
                "--exec-server-task=${exec-task}",
                "-T",
                "typed",
                "part:2:device:wd0",
                "$(fs-task=task-create)",
            ]),
        });
        modules.push(Module {
            file: self.system.join("lib/ld-x86-64.so.1"),
            name: "exec".into(),
            words: words(&["/hurd/exec", "$(exec-task=task-create)"]),
        });
        modules
    }

    /// The root image of scenario `name`, running `script` (after [`PRELUDE`]) at boot.
    pub(super) fn image(&self, name: &str, script: &str) -> Result<PathBuf, Error> {
        let dir = run_dir(name);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let template = dir.join("root-template.img");
        let bin = |b: &str| GuestFile {
            path: format!("/usr/local/bin/{b}"),
            contents: Contents::Copy(self.guest.join(b)),
            mode: 0o755,
        };
        let files = [
            GuestFile {
                path: "/libexec/runsystem".into(),
                contents: Contents::Bytes(RUNSYSTEM.into()),
                mode: 0o755,
            },
            GuestFile {
                path: "/etc/rumpdisk-rs/run".into(),
                contents: Contents::Bytes(format!("{PRELUDE}{script}").into_bytes()),
                mode: 0o755,
            },
            GuestFile {
                path: "/etc/hostname".into(),
                contents: Contents::Bytes(b"rumpdisk-rs\n".to_vec()),
                mode: 0o644,
            },
            // Test programs, in no package.
            bin("fs-barrier"),
            bin("rust-std-check"),
            bin("hurd-bench"),
            GuestFile {
                path: format!("/hurd/{}", crate::hurd::link::RUMP_PROGRAM),
                contents: Contents::Copy(self.guest.join(crate::hurd::link::RUMP_PROGRAM)),
                mode: 0o755,
            },
        ];
        image::build(
            &[&self.system, &self.packages],
            &files,
            &template,
            IMAGE_MIB,
        )?;
        Ok(template)
    }

    pub(super) fn scenario(
        &self,
        name: &str,
        script: &str,
        flush: Barrier,
    ) -> Result<(Scenario, Root), Error> {
        let template = self.image(name, script)?;
        let disk_template = disk_template(name);
        let root = Root {
            partition: partition::debian_disk(&template, &disk_template)?,
            fs: template,
        };
        let disk = Disk {
            fresh: Some(Fresh::CopyOf(disk_template)),
            bus: match self.controller {
                Controller::Ide => Bus::Ide,
                Controller::Ahci => Bus::Ahci,
                Controller::Q35 => Bus::Q35,
            },
            ..Disk::fresh(run_dir(name).join("wd0.img"), 0)
        };
        let scenario = Scenario {
            name: name.to_owned(),
            kernel: Kernel::Amd64,
            modules: self.modules(flush),
            disks: vec![disk],
            // NetBSD's probe and attach make upstream's boot 30 to 45 s under TCG.
            timeout: Duration::from_secs(match self.driver {
                Driver::Ours => 120,
                Driver::Upstream | Driver::OursRump => 240,
            }),
            expect: Expect::Pass,
            // Nothing after the scenario's last line needs a clean shutdown.
            kill_on: Some(SUCCESS_MARKER.to_owned()),
            memory_mib: crate::vm::MEMORY_MIB,
            after: None,
        };
        Ok((scenario, root))
    }

    /// The root file system's first sector on the disk.
    pub(super) fn root_start(&self) -> u64 {
        partition::root_partition(IMAGE_MIB << 20).start
    }

    /// The boot disk driver's program, as GRUB loads it.
    pub fn driver_program(&self) -> PathBuf {
        match self.driver {
            Driver::Ours => self.packages.join("hurd/rumpdisk-rs.static"),
            Driver::Upstream => self.system.join("hurd/rumpdisk.static"),
            Driver::OursRump => self.guest.join(crate::hurd::link::RUMP_STATIC_PROGRAM),
        }
    }
}

/// The disk a scenario's root disk starts as: its root image, partitioned.
pub(super) fn disk_template(name: &str) -> PathBuf {
    run_dir(name).join("disk-template.img")
}

/// Keeps the boot disk server to the primary IDE channel: the secondary's disk is the
/// translator's under test (one driver per channel). Its disk is then the translator's `wd0`:
/// each server names the disks it drives in attach order, as NetBSD does.
pub(super) fn boot_disk_on_primary(scenario: &mut Scenario) {
    for module in scenario.modules.iter_mut().filter(|m| m.name == "rumpdisk.static") {
        let at = module.words.iter().position(|w| w.starts_with("$(")).unwrap_or(module.words.len());
        module.words.insert(at, "--ide-channel=primary".to_owned());
    }
}
