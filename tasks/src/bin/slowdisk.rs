//! The slow-disk bench task (`cargo xtask bench slow`): what the driver's way of awaiting a
//! command's end costs the rest of the system while a slow disk works. Not a test: it prints
//! measurements, and one `test` line so the harness knows the run completed.
//!
//! Two roles of this binary run beside rumpdisk.static, in one boot:
//! - `role=neighbour`: a CPU-bound task that only counts, in a variable of a page of its own;
//! - `role=client neighbour=${neighbour-task}` (rumpdisk.static's next task): resumes the
//!   neighbour, then, phase by phase, reads the neighbour's count (`vm_read` of that page through
//!   its task port), the TSC, and the processor time the threads of the driver's task (the boot
//!   hand-off gives its task port), of the neighbour and of its own task used (`task_info`), at
//!   both ends of each phase of `ROUNDS` rounds per request size (4 KiB, then 1 MiB):
//!   1. `idle`: the client sleeps (a receive that times out): the neighbour alone;
//!   2. `write`, then `read`: `REQUESTS` writes, then as many reads of what was written
//!      (checked after the phase), through rumpdisk.static, one after another.
//!
//! Lines: `slowdisk: phase what=W bytes=B requests=N ticks=T count=C driver_ns=D
//! neighbour_ns=M client_ns=L` (ticks of the TSC; count: the neighbour's progress; the `_ns` as GNU Mach
//! counts them, in its own clock, which the host calibrates with the idle phases).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use mach::args::Args;
use mach::constants::{D_READ, D_WRITE};
use mach::interfaces::{device, RecNum};
use mach::kern::MACH_RCV_TIMED_OUT;
use mach::msg::MsgBuf;
use mach::port::{PortName, ReceiveRight};
use mach::times::{thread_times, CpuTime};
use rumpdisk::backend::ata::port_io::Tsc;
use rumpdisk::backend::ata::Clock;
use tasks::{ensure, Context, Outcome, Suite};

mach::task_main!(main);

const PAGE: usize = 4096;
/// The neighbour's count, alone in its page: `vm_read` takes whole pages.
#[repr(C, align(4096))]
struct CountPage {
    count: AtomicU64,
}
static COUNT: CountPage = CountPage { count: AtomicU64::new(0) };

/// Requests of each size a round writes, then reads back: about 250 ms each way on the
/// bench's disk (200 requests/s, 20 MiB/s).
const REQUESTS: [(usize, usize); 2] = [(4 << 10, 50), (1 << 20, 5)];
/// Rounds per size, each an idle phase then the writes and the reads: short phases taking
/// turns, so that a change of the shared host's speed (which slows the neighbour's count per
/// TSC tick whatever the guest does) falls on idle and busy phases alike.
const ROUNDS: usize = 8;
/// Each idle phase.
const IDLE_MS: u32 = 250;
/// The requests go to records from here (4 MiB in).
const FIRST_RECORD: RecNum = 8192;
const SECTOR: usize = 512;

fn main(args: Args<'static>) -> i32 {
    match args.value("role") {
        Some(b"neighbour") => neighbour(),
        _ => client(&args),
    }
}

/// Counts as fast as it is let run, forever. One writer: a load and a store, no locked add.
fn neighbour() -> i32 {
    loop {
        COUNT.count.store(COUNT.count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

fn client(args: &Args<'static>) -> i32 {
    let Ok(tasks::Privileges { host_priv, device_master: master, fs_task: driver }) = tasks::privileges_from_bootstrap() else {
        return 2;
    };
    let wd0 = device::device_open(master.name(), D_READ | D_WRITE, b"wd0");
    if mach::console::init_log(master.name(), log::LevelFilter::Info).is_err() {
        return 3;
    }
    let mut suite = Suite::new(host_priv.name());
    suite.run("slowdisk", || {
        let wd0 = wd0.context("device_open(wd0) through rumpdisk.static")?;
        let neighbour = args.port_value("neighbour").context("neighbour=")?;
        mach::interfaces::mach::task_resume(neighbour).context("resume the neighbour")?;
        let probe = Probe { driver: driver.name(), neighbour, client: PortName::new(mach::sys::mach_task_self()) };
        let data: Vec<u8> = (0..REQUESTS[REQUESTS.len() - 1].0).map(|i| (i as u8).wrapping_mul(31).wrapping_add(3)).collect();
        for (bytes, requests) in REQUESTS {
            let record = |i: usize| FIRST_RECORD + (i * bytes / SECTOR) as RecNum;
            for _ in 0..ROUNDS {
                idle(&probe, bytes)?;
                let start = probe.sample()?;
                for i in 0..requests {
                    device::device_write(wd0.name(), D_WRITE, record(i), &data[..bytes]).context("device_write")?;
                }
                let written = probe.sample()?;
                written.since(&start).print("write", bytes, requests);
                // The reads' memory is compared after the phase: the client touching it is no
                // part of what the disk costs.
                let mut reads = Vec::with_capacity(requests);
                for i in 0..requests {
                    reads.push(device::device_read(wd0.name(), D_READ, record(i), bytes as i32).context("device_read")?);
                }
                probe.sample()?.since(&written).print("read", bytes, requests);
                let differ = reads.iter().filter(|read| read.as_slice() != &data[..bytes]).count();
                ensure!(differ == 0, "{differ} of {requests} reads of {bytes} bytes differ from what was written");
            }
        }
        Ok(())
    });
    suite.finish()
}

/// The two tasks whose progress and processor time each sample reads.
struct Probe {
    driver: PortName,
    neighbour: PortName,
    client: PortName,
}

/// What a sample read, or (`since`) the difference of two.
struct Sample {
    tsc: u64,
    count: u64,
    driver: CpuTime,
    neighbour: CpuTime,
    client: CpuTime,
}

impl Probe {
    fn sample(&self) -> Result<Sample, alloc::string::String> {
        // The clock last, so the RPCs of the sample fall outside the phase it ends... and inside
        // the one it starts; both are a few tens of µs against phases of seconds.
        let driver = thread_times(self.driver).context("task_info of the driver's task")?;
        let neighbour = thread_times(self.neighbour).context("task_info of the neighbour")?;
        let client = thread_times(self.client).context("task_info of this task")?;
        let count = self.count()?;
        Ok(Sample { tsc: Tsc.now(), count, driver, neighbour, client })
    }

    /// The neighbour's count, from a copy of its page.
    fn count(&self) -> Result<u64, alloc::string::String> {
        let address = &COUNT as *const CountPage as usize;
        let page = mach::interfaces::mach::vm_read(self.neighbour, address as _, PAGE as _).context("vm_read of the neighbour's count")?;
        let bytes = page.as_slice().get(..8).ok_or("vm_read gave less than a word")?;
        Ok(u64::from_ne_bytes(bytes.try_into().expect("8 bytes")))
    }
}

impl Sample {
    fn since(&self, start: &Sample) -> Sample {
        let ns = |end: CpuTime, start: CpuTime| CpuTime {
            user_ns: end.user_ns.saturating_sub(start.user_ns),
            system_ns: end.system_ns.saturating_sub(start.system_ns),
        };
        Sample {
            tsc: self.tsc - start.tsc,
            count: self.count.wrapping_sub(start.count),
            driver: ns(self.driver, start.driver),
            neighbour: ns(self.neighbour, start.neighbour),
            client: ns(self.client, start.client),
        }
    }

    fn print(&self, what: &str, bytes: usize, requests: usize) {
        log::info!(
            "slowdisk: phase what={what} bytes={bytes} requests={requests} ticks={} count={} driver_ns={} neighbour_ns={} client_ns={}",
            self.tsc,
            self.count,
            self.driver.total_ns(),
            self.neighbour.total_ns(),
            self.client.total_ns()
        );
    }
}

/// A phase in which the client sleeps (a receive on a port nobody sends to, timing out), before
/// the I/O of `bytes`.
fn idle(probe: &Probe, bytes: usize) -> Outcome {
    let port = ReceiveRight::new().context("a port to sleep on")?;
    let start = probe.sample()?;
    let mut buf = MsgBuf::<64>::new();
    match mach::msg::receive(buf.as_bytes_mut(), port.name(), Some(IDLE_MS)) {
        Err(error) if error.code() == MACH_RCV_TIMED_OUT => {}
        other => return Err(alloc::format!("sleeping: {:?}", other.map(drop))),
    }
    probe.sample()?.since(&start).print("idle", bytes, 0);
    Ok(())
}
