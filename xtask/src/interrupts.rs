//! Whether a scenario's rumpdisk.static completed its commands by interrupt: the driver says so
//! when it takes an IDE channel's or AHCI port's line (`ata: Primary channel: commands complete
//! by interrupt (IRQ 14)`, `ahci: port 0: ...`) and logs the interrupts taken at the first and
//! each power of 4 (`ata: Primary channel: IRQ 14: 256 interrupts taken`).

use std::fs;
use std::path::Path;

/// What a console shows of the IDE driver's interrupts.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// No disk was opened: nothing to check.
    NoDisk,
    /// The most interrupts one line logged (a power of 4, so a lower bound of the count).
    AtLeast(u64),
}

/// What `text` (a console) shows; an error when a disk was driven without interrupts.
pub fn taken(text: &str) -> Result<Taken, String> {
    if !text.lines().any(|l| l.contains("ata: wd") || l.contains("ahci: wd")) {
        return Ok(Taken::NoDisk);
    }
    if !text.lines().any(|l| l.contains("commands complete by interrupt")) {
        let why = text.lines().find(|l| l.contains("no irq device") || l.contains("completion=poll") || l.contains("cannot be had") || l.contains(": polling"));
        return Err(format!("the driver polled: {}", why.unwrap_or("no line about its interrupt")));
    }
    let counts = text.lines().filter_map(|l| {
        let (_, after) = l.split_once(": IRQ ")?;
        let (_, count) = after.split_once(": ")?;
        count.strip_suffix(" interrupts taken")?.trim().parse::<u64>().ok()
    });
    match counts.max() {
        Some(count) => Ok(Taken::AtLeast(count)),
        None => Err("the driver took its line but no interrupt".into()),
    }
}

/// Checks the console at `console` (see [`taken`]) and prints the count under `label`.
pub fn check(console: &Path, label: &str) -> Result<(), String> {
    let text = fs::read_to_string(console).map_err(|e| format!("{}: {e}", console.display()))?;
    if let Taken::AtLeast(count) = taken(&text)? {
        println!("  {label}: at least {count} interrupts taken");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENED: &str = "ata: wd0: \"QEMU HARDDISK\", 131072 sectors, transfer Dma\n";

    #[test]
    fn the_highest_count_logged_is_the_lower_bound() {
        let text = format!(
            "ata: Primary channel: commands complete by interrupt (IRQ 14)\n{OPENED}\
             ata: Primary channel: IRQ 14: 1 interrupts taken\n\
             ata: Primary channel: IRQ 14: 256 interrupts taken\n\
             ata: Primary channel: IRQ 14: 4 interrupts taken\n"
        );
        assert_eq!(taken(&text), Ok(Taken::AtLeast(256)));
    }

    #[test]
    fn a_disk_without_interrupts_fails_with_the_driver_s_reason() {
        let polled = format!("ata: no irq device (D_NO_SUCH_DEVICE (0x9c6)): commands complete by polling\n{OPENED}");
        assert!(taken(&polled).unwrap_err().contains("ata: no irq device"));
        let silent = format!("ata: Primary channel: commands complete by interrupt (IRQ 14)\n{OPENED}");
        assert_eq!(taken(&silent), Err("the driver took its line but no interrupt".into()));
        let forced = format!("ata: --completion=poll: commands complete by polling\n{OPENED}");
        assert!(taken(&forced).unwrap_err().contains("--completion=poll"));
        let shared = "ahci: 2 disk ports share IRQ 11: polling\nahci: wd0: port 0\n";
        assert!(taken(shared).unwrap_err().contains("share IRQ 11"));
        let ahci = "ahci: port 0: commands complete by interrupt (IRQ 11)\nahci: wd0: port 0\nahci: port 0: IRQ 11: 16 interrupts taken\n";
        assert_eq!(taken(ahci), Ok(Taken::AtLeast(16)));
        assert_eq!(taken("rumpdisk: started\n"), Ok(Taken::NoDisk));
    }
}
