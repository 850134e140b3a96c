//! The AHCI part of `cargo xtask bench`, in the same run as the IDE one and reported apart: the
//! `bench` boot with its disk on an AHCI controller (`-device ahci`, the same drive options) and
//! rumpdisk.static driving it (`--ata-transfer=ahci --completion=poll`, the bench task's direct driver
//! too: both on one port, they poll), against
//! Debian's Linux on the same AHCI set-up through its `ahci` driver.

use super::linux::{self, Anchor};
use super::gnumach::{bench_scenario, bench_server, boot, size_label, Guest, MIB};
use crate::tasks::Tasks;
use crate::vm::Bus;
use crate::util::Error;
use std::fmt::Write as _;

pub struct OnAhci {
    guest: Guest,
    anchor: Anchor,
}

/// Boots the bench on AHCI, then the Linux anchor on AHCI.
pub fn measure(tasks: &Tasks) -> Result<OnAhci, Error> {
    let mut scenario = bench_scenario(tasks, "ahci");
    scenario.disks[0].bus = Bus::Ahci;
    // The server polls too: the port's interrupts that the client's direct driver causes would
    // go to the server, idle then, and its next wait timed out. (IDE's status read clears them.)
    scenario.modules[0] = bench_server(tasks, &["--ata-transfer=ahci", "--completion=poll"]);
    let guest = Guest::parse(&boot(&scenario)?)?;
    let anchor = linux::measure_ahci()?;
    Ok(OnAhci { guest, anchor })
}

impl OnAhci {
    /// The section of docs/bench.md: the IDE table's columns for the AHCI disk; ticks become
    /// seconds at the host's TSC rate `tsc_hz`.
    pub fn markdown(&self, tsc_hz: f64) -> String {
        let measures = [(4096, "read"), (4096, "write"), (1 << 20, "read"), (1 << 20, "write")];
        let mib_per_s = |bytes: u64, ticks: u64| bytes as f64 / MIB / (ticks as f64 / tsc_hz);
        let mut md = format!(
            "\n## On AHCI\n\n\
             The disk on QEMU's AHCI controller (`-device ahci`, ICH9; the same `ide-hd` drive \
             options on its first port), in the same run. Debian's {} through its `ahci` driver \
             (with `sd_mod`), `dd` with O_DIRECT as above; ours: rumpdisk.static with \
             `--ata-transfer=ahci` (READ/WRITE DMA EXT through command slot 0, out-of-line \
             requests straight to and from their pages by the IDE path's rule, else a 1 MiB \
             bounce buffer, completion polled), and the same driver linked into the bench task (no \
             server).\n\n| path |",
            self.anchor.kernel
        );
        for (bytes, op) in measures {
            let _ = write!(md, " {} {op} |", size_label(bytes));
        }
        md.push_str("\n|---|---|---|---|---|\n| Linux, `ahci` |");
        for (bytes, op) in measures {
            let rate = self.anchor.rate(op, bytes);
            let _ = write!(md, " {} |", rate.map_or("—".to_owned(), |r| format!("{r:.2} MiB/s")));
        }
        for (label, path) in [("rumpdisk.static, `--ata-transfer=ahci`", "server"), ("the same driver in the client (no server)", "direct")] {
            let _ = write!(md, "\n| {label} |");
            for (bytes, op) in measures {
                let cell = self.guest.ticks(path, op, bytes).zip(self.anchor.rate(op, bytes)).map_or("—".to_owned(), |(ticks, linux)| {
                    let ours = mib_per_s(bytes, ticks);
                    format!("{:.3}× ({ours:.2} MiB/s)", ours / linux)
                });
                let _ = write!(md, " {cell} |");
            }
        }
        md.push_str("\n\nRatios are to Linux on AHCI.\n");
        if let (Ok(server), Ok(null)) = (self.guest.call("server-get-size"), self.guest.call("task-null")) {
            let micros = |ticks: u64| ticks as f64 / tsc_hz * 1e6;
            let _ = writeln!(
                md,
                "\nA server RPC without the drive (`device_get_status`) takes {:.1} µs here, {:.2}× a null RPC \
                 between tasks ({:.1} µs): an AHCI server holds no I/O ports once set up, so GNU Mach copies \
                 no I/O bitmap when it switches to it (compare the IDE table's row).",
                micros(server),
                server as f64 / null as f64,
                micros(null)
            );
        }
        md
    }
}
