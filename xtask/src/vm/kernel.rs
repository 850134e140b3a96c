//! The GNU Mach kernels the VM scenarios boot: Debian's packages, fetched by set-up into the
//! sysroot (`xtask/src/setup.rs`).

use super::disk::{run_dir, Bus, Disk};
use crate::host::sysroot_dir;
use crate::util::Error;
use std::path::PathBuf;

/// The PC's legacy IDE channels, each with a disk of a scenario as its master.
const IDE_CHANNELS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// trixie's `gnumach-image-1.8-amd64-up`: the reference every scenario was written on.
    Amd64,
    /// trixie's `gnumach-image-1.8-486-up`: Debian's main GNU/Hurd port.
    I386,
    /// sid's `gnumach-image-1.8-amd64-up`: the newest kernel, so a change that breaks the project
    /// shows before Debian ships it.
    SidAmd64,
}

impl Kernel {
    pub const ALL: [Kernel; 3] = [Kernel::Amd64, Kernel::I386, Kernel::SidAmd64];

    /// Its name in result lines and in `cargo xtask vm --kernel`.
    pub fn label(self) -> &'static str {
        match self {
            Kernel::Amd64 => "amd64",
            Kernel::I386 => "i386",
            Kernel::SidAmd64 => "sid-amd64",
        }
    }

    pub fn from_label(label: &str) -> Result<Kernel, Error> {
        Kernel::ALL.into_iter().find(|k| k.label() == label).ok_or_else(|| {
            let known: Vec<&str> = Kernel::ALL.iter().map(|k| k.label()).collect();
            Error::new(format!("no kernel named `{label}` (known: {})", known.join(", ")))
        })
    }

    /// Splits `cargo xtask vm`'s arguments into the kernels `--kernel LABEL` names (every kernel
    /// when none is) and the scenario names.
    pub fn select(args: &[String]) -> Result<(Vec<Kernel>, Vec<String>), Error> {
        let (mut kernels, mut names) = (Vec::new(), Vec::new());
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--kernel" => {
                    let label = args.next().ok_or_else(|| Error::new("--kernel needs a kernel's name"))?;
                    let kernel = Kernel::from_label(label)?;
                    if !kernels.contains(&kernel) {
                        kernels.push(kernel);
                    }
                }
                _ => names.push(arg.clone()),
            }
        }
        if kernels.is_empty() {
            kernels = Kernel::ALL.to_vec();
        }
        Ok((kernels, names))
    }

    /// The kernel image in the sysroot.
    pub fn image(self) -> PathBuf {
        sysroot_dir().join(match self {
            Kernel::Amd64 => "amd64/boot/gnumach-1.8-amd64-up.gz",
            Kernel::I386 => "i386/boot/gnumach-1.8-486-up.gz",
            Kernel::SidAmd64 => "amd64-sid/boot/gnumach-1.8-amd64-up.gz",
        })
    }

    /// The QEMU that runs it (the machine is the same PC either way).
    pub fn qemu(self) -> &'static str {
        match self {
            Kernel::I386 => "qemu-system-i386",
            Kernel::Amd64 | Kernel::SidAmd64 => "qemu-system-x86_64",
        }
    }

    /// The target json the freestanding tasks it boots are built for.
    pub fn task_target(self) -> &'static str {
        match self {
            Kernel::I386 => "hurd-target-i686.json",
            Kernel::Amd64 | Kernel::SidAmd64 => "hurd-target.json",
        }
    }

    /// The kernel command line for a boot with `disks` (disk N is the master of IDE channel N).
    /// The i386 kernel has GNU Mach's own IDE driver (from Linux), which probes both legacy
    /// channels at boot and would drive the disks our drivers drive: `noide` keeps it off
    /// altogether; when it drives a disk of its own, `ideN=noprobe` keeps it off every other
    /// channel (see docs/kernels.md). Its AHCI driver is probed from the IDE driver's set-up,
    /// unless the line has `noahci` (gnumach's `linux/src/drivers/block/ide.c`): a disk on an
    /// AHCI controller adds it. The amd64 kernels have neither driver.
    pub fn command_line(self, disks: &[Disk]) -> Result<String, Error> {
        let mut line = String::from("console=com0");
        let kernel_driven = disks.iter().any(|d| d.kernel_driven);
        match self {
            Kernel::I386 if kernel_driven => {
                for channel in (0..IDE_CHANNELS).filter(|&n| !disks.get(n).is_some_and(|d| d.kernel_driven)) {
                    line += &format!(" ide{channel}=noprobe");
                }
            }
            Kernel::I386 => line += " noide",
            Kernel::Amd64 | Kernel::SidAmd64 if kernel_driven => {
                return Err(Error::new(format!("the {} kernel has no IDE driver of its own", self.label())));
            }
            Kernel::Amd64 | Kernel::SidAmd64 => {}
        }
        if self == Kernel::I386 && disks.iter().any(|d| d.bus != Bus::Ide) {
            line += " noahci";
        }
        Ok(line)
    }

    /// Whether its RAM disk (`rd0`) answers `DEV_FLUSH_CACHE` with success. trixie's kernels
    /// answer any `device_set_status` on it with success (`nulldev_setstat`); sid's refuses the
    /// flavor with `D_INVALID_OPERATION` (see docs/kernels.md).
    pub fn ram_disk_flushes(self) -> bool {
        match self {
            Kernel::Amd64 | Kernel::I386 => true,
            Kernel::SidAmd64 => false,
        }
    }

    /// Where scenario `name`'s files go on this kernel (the reference kernel keeps the plain name).
    pub fn run_dir(self, name: &str) -> PathBuf {
        match self {
            Kernel::Amd64 => run_dir(name),
            _ => run_dir(&format!("{name}-{}", self.label())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_has_its_own_label_run_dir_and_image() {
        for (i, a) in Kernel::ALL.iter().enumerate() {
            assert_eq!(Kernel::from_label(a.label()).unwrap(), *a);
            for b in &Kernel::ALL[i + 1..] {
                assert_ne!(a.run_dir("disk"), b.run_dir("disk"));
                assert_ne!(a.image(), b.image());
            }
        }
        assert!(Kernel::from_label("hurd").unwrap_err().to_string().contains("known: amd64, i386, sid-amd64"));
    }

    #[test]
    fn vm_arguments_select_kernels_and_scenarios() {
        let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let (kernels, names) = Kernel::select(&args(&["disk", "--kernel", "i386", "runtime"])).unwrap();
        assert_eq!((kernels, names), (vec![Kernel::I386], args(&["disk", "runtime"])));
        assert_eq!(Kernel::select(&[]).unwrap().0, Kernel::ALL.to_vec());
        let twice = Kernel::select(&args(&["--kernel", "sid-amd64", "--kernel", "sid-amd64"])).unwrap();
        assert_eq!(twice.0, vec![Kernel::SidAmd64], "a kernel named twice runs once");
        assert!(Kernel::select(&args(&["--kernel"])).is_err());
        assert!(Kernel::select(&args(&["--kernel", "arm"])).is_err());
    }

    #[test]
    fn only_the_i386_kernel_boots_32_bit_tasks() {
        assert_eq!(Kernel::I386.task_target(), "hurd-target-i686.json");
        assert_eq!(Kernel::Amd64.task_target(), "hurd-target.json");
        assert_eq!(Kernel::SidAmd64.task_target(), "hurd-target.json");
    }

    #[test]
    fn the_i386_kernel_s_ide_driver_keeps_off_the_disks_it_does_not_own() {
        let ours = Disk::fresh("a.img".into(), 8);
        let kernel = Disk { kernel_driven: true, ..ours.clone() };
        assert_eq!(Kernel::I386.command_line(std::slice::from_ref(&ours)).unwrap(), "console=com0 noide");
        assert_eq!(Kernel::I386.command_line(&[]).unwrap(), "console=com0 noide");
        assert_eq!(
            Kernel::I386.command_line(&[kernel.clone(), ours.clone()]).unwrap(),
            "console=com0 ide1=noprobe"
        );
        assert_eq!(Kernel::I386.command_line(&[ours.clone(), kernel.clone()]).unwrap(), "console=com0 ide0=noprobe");
        assert_eq!(Kernel::I386.command_line(std::slice::from_ref(&kernel)).unwrap(), "console=com0 ide1=noprobe");
        for amd64 in [Kernel::Amd64, Kernel::SidAmd64] {
            assert_eq!(amd64.command_line(std::slice::from_ref(&ours)).unwrap(), "console=com0");
            assert!(amd64.command_line(std::slice::from_ref(&kernel)).unwrap_err().to_string().contains("no IDE driver"));
        }
    }

    /// A disk on AHCI keeps the i386 kernel's AHCI driver off it; amd64 has none to keep off.
    #[test]
    fn a_disk_on_ahci_adds_noahci_on_i386() {
        let on_ahci = Disk { bus: Bus::Ahci, ..Disk::fresh("a.img".into(), 8) };
        assert_eq!(Kernel::I386.command_line(std::slice::from_ref(&on_ahci)).unwrap(), "console=com0 noide noahci");
        assert_eq!(Kernel::Amd64.command_line(std::slice::from_ref(&on_ahci)).unwrap(), "console=com0");
    }
}
