//! The GNU Mach boot ISO: a GRUB rescue image whose one menu entry boots GNU Mach with the boot
//! modules (tasks, data files) and their boot-script words.

use crate::util::{copy, run_quiet, Error};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One boot module: a task binary (or a data file) and the boot-script words after its name.
#[derive(Clone, Debug)]
pub struct Module {
    /// File placed in the ISO's /boot.
    pub file: PathBuf,
    /// The task's argv[0] as GRUB passes it (also the file's name in the ISO).
    pub name: String,
    /// Boot-script words, e.g. `${host-port}`, `$(task-resume)`; each is single-quoted for GRUB.
    pub words: Vec<String>,
}

/// The grub.cfg that boots GNU Mach with `command_line` and `modules`.
pub fn grub_cfg(command_line: &str, modules: &[Module]) -> String {
    let mut cfg = format!(
        "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\nset timeout=0\n\
         menuentry rumpdisk-rs {{\n  multiboot /boot/gnumach.gz {command_line}\n",
    );
    for m in modules {
        let _ = write!(cfg, "  module /boot/{} {}", m.name, m.name);
        for w in &m.words {
            let _ = write!(cfg, " '{w}'");
        }
        cfg.push('\n');
    }
    cfg.push_str("}\n");
    cfg
}

/// Makes `dir/boot.iso`: GNU Mach (`kernel_image`) booted with `command_line` and `modules`.
pub fn build(dir: &Path, kernel_image: &Path, command_line: &str, modules: &[Module]) -> Result<PathBuf, Error> {
    let iso_root = dir.join("iso");
    let _ = fs::remove_dir_all(&iso_root);
    fs::create_dir_all(iso_root.join("boot/grub")).map_err(|e| Error::io(&iso_root, e))?;
    copy(kernel_image, &iso_root.join("boot/gnumach.gz"))?;
    for m in modules {
        copy(&m.file, &iso_root.join("boot").join(&m.name))?;
    }
    let cfg = iso_root.join("boot/grub/grub.cfg");
    fs::write(&cfg, grub_cfg(command_line, modules))
        .map_err(|e| Error::io(&cfg, e))?;
    let iso = dir.join("boot.iso");
    run_quiet(
        Command::new("grub-mkrescue")
            .arg("-o")
            .arg(&iso)
            .arg(&iso_root),
        "grub-mkrescue",
    )?;
    Ok(iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_quotes_boot_script_words() {
        let cfg = grub_cfg("console=com0", &[Module {
            file: "x".into(),
            name: "server".into(),
            words: vec![
                "${host-port}".into(),
                "$(server-task=task-create)".into(),
                "$(task-resume)".into(),
            ],
        }]);
        assert!(cfg.contains("multiboot /boot/gnumach.gz console=com0\n"));
        assert!(cfg.contains("  module /boot/server server '${host-port}' '$(server-task=task-create)' '$(task-resume)'\n"));
    }
}
