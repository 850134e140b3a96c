//! Copying one store into another in large chunks, with a progress line on long copies.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use store::Store;

use crate::Failure;

/// Copies shorter than this finish too fast to need a progress line.
const LONG_COPY: u64 = 16 << 20;
const REDRAW: Duration = Duration::from_millis(250);

/// About a MiB, in whole blocks.
pub fn chunk_size(block_size: u32) -> usize {
    (1usize << 20).max(block_size as usize)
}

/// Copies all of `source` to the start of `destination`.
pub fn copy(source: &mut Store, destination: &mut Store) -> Result<(), Failure> {
    let total = source.size();
    if destination.size() < total {
        return Err(Failure::Io(format!(
            "the destination ({} bytes) is smaller than the source ({total} bytes)",
            destination.size()
        )));
    }
    let unit = u64::from(source.block_size().max(destination.block_size()));
    if !total.is_multiple_of(unit) {
        return Err(Failure::Io(format!("the source size {total} is not a multiple of the block size {unit}")));
    }
    let chunk = (chunk_size(unit as u32) as u64 / unit * unit) as usize;
    let mut meter = Meter::new(total);
    let mut done = 0u64;
    while done < total {
        let want = (total - done).min(chunk as u64) as usize;
        let data = source.read_vec(done / u64::from(source.block_size()), want)?;
        if data.len() < want {
            return Err(Failure::Io(format!("the source ended early, at byte {}", done + data.len() as u64)));
        }
        let written = destination.write(done / u64::from(destination.block_size()), &data)?;
        if written < want {
            return Err(Failure::Io(format!("the destination took only {} bytes", done + written as u64)));
        }
        done += want as u64;
        meter.show(done);
    }
    meter.finish();
    Ok(())
}

struct Meter {
    total: u64,
    start: Instant,
    drawn: Option<Instant>,
    visible: bool,
}

impl Meter {
    fn new(total: u64) -> Meter {
        let visible = total >= LONG_COPY && std::io::stderr().is_terminal();
        Meter { total, start: Instant::now(), drawn: None, visible }
    }

    fn show(&mut self, done: u64) {
        if !self.visible || self.drawn.is_some_and(|at| at.elapsed() < REDRAW) && done < self.total {
            return;
        }
        self.drawn = Some(Instant::now());
        let seconds = self.start.elapsed().as_secs_f64().max(1e-3);
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        eprint!(
            "\r{:.1} of {:.1} MiB ({:.0}%), {:.1} MiB/s ",
            mib(done),
            mib(self.total),
            done as f64 * 100.0 / self.total as f64,
            mib(done) / seconds
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.visible {
            eprintln!();
        }
    }
}
