//! Copying one store into another in large chunks, reporting progress on standard error as
//! `dd status=progress` does: a line redrawn in place on a terminal, or a new line each second
//! elsewhere (a log, a console), then always a closing line with the bytes copied, the time and
//! the rate.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use store::Store;

use crate::Failure;

/// How often the progress line is redrawn on a terminal, and printed anew elsewhere.
const REDRAW: Duration = Duration::from_millis(250);
const NEW_LINE: Duration = Duration::from_secs(1);

/// About a MiB, in whole blocks.
pub fn chunk_size(block_size: u32) -> usize {
    (1usize << 20).max(block_size as usize)
}

/// Copies all of `source` to the start of `destination`, with progress on standard error.
pub fn copy(source: &mut Store, destination: &mut Store) -> Result<(), Failure> {
    let stderr = std::io::stderr();
    let in_place = stderr.is_terminal();
    let every = if in_place { REDRAW } else { NEW_LINE };
    copy_with(source, destination, &mut Meter::new(source.size(), every, in_place, stderr))
}

fn copy_with<W: Write>(source: &mut Store, destination: &mut Store, meter: &mut Meter<W>) -> Result<(), Failure> {
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
        if done < total {
            meter.show(done);
        }
    }
    meter.finish();
    Ok(())
}

/// Progress of one copy, written to `out` (standard error; a buffer in the tests).
struct Meter<W: Write> {
    total: u64,
    start: Instant,
    shown: Instant,
    every: Duration,
    /// Redraw one line (`\r`) rather than print a line each time.
    in_place: bool,
    out: W,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

impl<W: Write> Meter<W> {
    fn new(total: u64, every: Duration, in_place: bool, out: W) -> Meter<W> {
        let start = Instant::now();
        Meter { total, start, shown: start, every, in_place, out }
    }

    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64().max(1e-3)
    }

    /// `done` bytes of the copy are written; a progress line if it is time for one.
    fn show(&mut self, done: u64) {
        if self.shown.elapsed() < self.every {
            return;
        }
        self.shown = Instant::now();
        let line = format!(
            "{:.1} of {:.1} MiB ({:.0}%), {:.1} MiB/s",
            mib(done),
            mib(self.total),
            done as f64 * 100.0 / self.total as f64,
            mib(done) / self.seconds()
        );
        // Progress is advice: a closed standard error must not fail the copy.
        let _ = if self.in_place { write!(self.out, "\r{line} ") } else { writeln!(self.out, "{line}") };
        let _ = self.out.flush();
    }

    /// The closing line, on a line of its own.
    fn finish(&mut self) {
        let seconds = self.seconds();
        let _ = writeln!(
            self.out,
            "{}copied {} bytes ({:.1} MiB) in {seconds:.2} s, {:.1} MiB/s",
            if self.in_place { "\r" } else { "" },
            self.total,
            mib(self.total),
            mib(self.total) / seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::class::memory;

    /// Copies `mib` MiB of numbered bytes between memory stores with a meter printing each
    /// `every`; returns what the meter wrote.
    fn copied(mib: usize, every: Duration) -> String {
        let data: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
        let mut source = memory::create(data.len() as u64, 512).unwrap();
        source.write(0, &data).unwrap();
        let mut destination = memory::create(data.len() as u64, 512).unwrap();
        let mut meter = Meter::new(source.size(), every, false, Vec::new());
        assert!(copy_with(&mut source, &mut destination, &mut meter).is_ok());
        assert_eq!(destination.read_vec(0, data.len()).unwrap(), data);
        String::from_utf8(meter.out).unwrap()
    }

    #[test]
    fn a_line_for_each_chunk_when_due_then_the_closing_line() {
        let text = copied(3, Duration::ZERO);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("1.0 of 3.0 MiB (33%), "), "{text}");
        assert!(lines[1].starts_with("2.0 of 3.0 MiB (67%), "), "{text}");
        assert!(lines[2].starts_with("copied 3145728 bytes (3.0 MiB) in "), "{text}");
        assert!(lines[2].ends_with(" MiB/s"), "{text}");
    }

    #[test]
    fn a_short_copy_prints_only_the_closing_line() {
        let text = copied(2, Duration::from_secs(3600));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("copied 2097152 bytes (2.0 MiB) in "), "{text}");
    }
}
