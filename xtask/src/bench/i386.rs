//! The i386 part of `cargo xtask bench`, in the same run as the amd64 one: the `bench` boot again
//! on trixie's i386 kernel (tasks built for `hurd-target-i686.json`), its figures beside the
//! amd64 ones; and GNU Mach's own IDE driver as a second anchor: the bench task writing and
//! reading `hd0` through the kernel against rumpdisk.static's `wd0` (the secondary channel's disk), request by request.
//!
//! The two drivers never drive the same channel: the kernel's gets the primary channel's disk
//! (`ide1=noprobe` keeps it off the secondary), rumpdisk.static the secondary's
//! (`--ide-channel=secondary`), two disks made alike (zeroed images of the same size, the same
//! QEMU drive options).

use super::gnumach::{bench_scenario, bench_server, boot, io_median, size_label, Guest, DISK_SECTORS, MIB};
use super::goals::Results;
use crate::tasks::{task, tasks_for, Tasks};
use crate::scenario::Scenario;
use crate::vm::{Disk, Expect, Kernel};
use crate::util::Error;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Median ticks per request, by (path, op, bytes).
type IoMedians = BTreeMap<(String, String, u64), u64>;

pub struct OnI386 {
    guest: Guest,
    anchor: IoMedians,
}

/// Boots the bench and the anchor on the i386 kernel.
pub fn measure() -> Result<OnI386, Error> {
    let tasks = tasks_for(Kernel::I386)?;
    let guest = Guest::parse(&boot(&bench_scenario(&tasks, "auto"))?)?;
    let anchor = anchor_medians(&boot(&anchor_scenario(&tasks))?)?;
    Ok(OnI386 { guest, anchor })
}

/// rumpdisk.static on the secondary channel with the bench task (`role=anchor`) as its next
/// task; the kernel's IDE driver on the primary channel's disk.
fn anchor_scenario(tasks: &Tasks) -> Scenario {
    let dir = tasks.kernel.run_dir("bench-hd0");
    Scenario {
        name: "bench-hd0".into(),
        kernel: tasks.kernel,
        modules: vec![
            bench_server(tasks, &["--ide-channel=secondary"]),
            task(tasks, "bench", "bench", &["role=anchor", "kernel-master=${device-port}", "$(bench-task=task-create)"]),
        ],
        disks: vec![
            Disk { kernel_driven: true, ..Disk::fresh(dir.join("hd0.img"), DISK_SECTORS) },
            Disk::fresh(dir.join("wd2.img"), DISK_SECTORS),
        ],
        timeout: Duration::from_secs(600),
        expect: Expect::Pass,
        kill_on: None,
        memory_mib: crate::vm::MEMORY_MIB,
        after: None,
    }
}

/// The anchor run's medians; both paths must have every size and operation.
fn anchor_medians(console: &str) -> Result<IoMedians, Error> {
    let medians = console.lines().filter_map(io_median).collect::<Result<IoMedians, Error>>()?;
    let sizes = |path: &str| medians.keys().filter(|(p, _, _)| p == path).count();
    match (sizes("kernel"), sizes("server")) {
        (0, _) | (_, 0) => Err(Error::new("the anchor run lacks the kernel's or the server's figures")),
        (k, s) if k != s => Err(Error::new("the anchor run measured the kernel and the server unlike")),
        _ => Ok(medians),
    }
}

impl OnI386 {
    /// The section of docs/bench.md: i386 figures beside the amd64 ones (`amd64`), then the anchor.
    pub fn markdown(&self, amd64: &Results) -> String {
        let mib_per_s = |bytes: u64, ticks: u64| bytes as f64 / MIB / (ticks as f64 / amd64.tsc_hz);
        let us = |ticks: u64| ticks as f64 / amd64.tsc_hz * 1e6;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "\n## On trixie's i386 kernel\n\n\
             The same `bench` boot on `gnumach-image-1.8-486-up` (booted by `qemu-system-i386`, its tasks \
             and rumpdisk.static built for `hurd-target-i686.json`, the kernel's own IDE driver off: \
             `noide`), in the same run as the amd64 figures above.\n\n\
             | measure | amd64 | i386 |\n|---|---|---|"
        );
        let call = |guest: &Guest, what: &str| guest.call(what).map_or("—".to_owned(), |t| format!("{:.2} µs", us(t)));
        for (measure, what) in [
            ("null RPC between two tasks", "task-null"),
            ("null RPC to the kernel (mach_port_get_refs)", "kernel-null"),
            ("server round trip (device_read_inband, 1 byte)", "server-read-inband-1"),
            ("direct driver's sector read", "direct-read-512"),
        ] {
            let _ = writeln!(md, "| {measure} | {} | {} |", call(amd64.guest(), what), call(&self.guest, what));
        }
        let first_open = |g: &Guest| format!("{:.2} ms", us(g.first_open.saturating_sub(g.server_started)) / 1e3);
        let _ = writeln!(
            md,
            "| server start → first device_open answered | {} | {} |",
            first_open(amd64.guest()),
            first_open(&self.guest)
        );
        for bytes in [4 << 10, 1 << 20] {
            for op in ["read", "write"] {
                let ratio = |g: &Guest| match (g.ticks("server", op, bytes), g.ticks("direct", op, bytes)) {
                    (Some(s), Some(d)) => {
                        format!("{:.3}× ({:.2} / {:.2} MiB/s)", d as f64 / s as f64, mib_per_s(bytes, s), mib_per_s(bytes, d))
                    }
                    _ => "—".to_owned(),
                };
                let _ = writeln!(
                    md,
                    "| device_{op} throughput, {}: server / direct | {} | {} |",
                    size_label(bytes),
                    ratio(amd64.guest()),
                    ratio(&self.guest)
                );
            }
        }
        let _ = writeln!(
            md,
            "\n### GNU Mach's own IDE driver as a second anchor\n\n\
             The i386 kernel still has GNU Mach's IDE driver (from Linux 2.0): `hd0`. The bench task \
             writes, then reads, requests of each size through the kernel (`hd0`) and through \
             rumpdisk.static (its `wd0`, the secondary channel's disk), taking turns request by request, in one boot. The two drivers \
             never drive the same channel: the kernel's has the primary channel's disk \
             (`ide1=noprobe` keeps it off the secondary), rumpdisk.static the secondary's \
             (`--ide-channel=secondary`); two disks made alike (zeroed 64 MiB images, the same QEMU \
             drive options).\n\n\
             | request | kernel read | rumpdisk.static read | ratio | kernel write | rumpdisk.static write | ratio |\n\
             |---|---|---|---|---|---|---|"
        );
        let mut sizes: Vec<u64> = self.anchor.keys().map(|(_, _, b)| *b).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for bytes in sizes {
            let mut cells = vec![size_label(bytes)];
            for op in ["read", "write"] {
                let ticks = |path: &str| self.anchor.get(&(path.to_owned(), op.to_owned(), bytes)).copied();
                match (ticks("kernel"), ticks("server")) {
                    (Some(k), Some(s)) => cells.extend([
                        format!("{:.2} MiB/s", mib_per_s(bytes, k)),
                        format!("{:.2} MiB/s", mib_per_s(bytes, s)),
                        format!("{:.3}×", k as f64 / s as f64),
                    ]),
                    _ => cells.extend(["—".to_owned(), "—".to_owned(), "—".to_owned()]),
                }
            }
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(
            md,
            "\n\"ratio\" is rumpdisk.static's throughput / the kernel driver's. The kernel's driver moves \
             the data by bus-master DMA (its boot log: `Intel 82371 PIIX3 (dual FIFO) DMA Bus Mastering \
             IDE`), and so does rumpdisk.static's ATA backend (`--ata-transfer=auto` chose DMA; its \
             driver's line on the console says which): the gap left is the server's, mostly the \
             reply pages' first-touch faults and their move between tasks at large requests (see the \
             DMA breakdown above)."
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_needs_both_paths_at_every_size() {
        let line = |path: &str, bytes: u64| format!("bench: io path={path} op=read bytes={bytes} count=16 median=900\n");
        let both = line("kernel", 512) + &line("server", 512);
        assert_eq!(anchor_medians(&both).unwrap().len(), 2);
        assert!(anchor_medians(&line("server", 512)).is_err(), "no kernel figures");
        let uneven = both + &line("server", 4096);
        assert!(anchor_medians(&uneven).is_err(), "a size measured on one path only");
        assert!(anchor_medians("bench: io path=kernel op=read bytes=512\n").is_err(), "no median");
    }
}
