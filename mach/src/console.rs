//! A `log` backend writing to the kernel `console` device (`device_open` +
//! `device_write_inband`), the only output a boot-module task has.

use crate::constants::D_WRITE;
use crate::interfaces::device;
use crate::kern::Result;
use crate::port::{PortName, SendRight};
use crate::sync::Mutex;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

/// `device_write_inband` carries at most this many bytes per call.
const INBAND_MAX: usize = 128;

/// The console device, opened through a device master port.
pub struct Console {
    device: SendRight,
}

impl Console {
    pub fn open(device_master: PortName) -> Result<Console> {
        let device = device::device_open(device_master, D_WRITE, b"console")?;
        Ok(Console { device })
    }

    /// Write `bytes` in chunks the inband call accepts.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        write_to(self.device.name(), bytes)
    }
}

fn write_to(device: PortName, bytes: &[u8]) -> Result<()> {
    for chunk in bytes.chunks(INBAND_MAX) {
        device::device_write_inband(device, 0, 0, chunk)?;
    }
    Ok(())
}

/// The console device the logger writes to (0 until the console is open).
static LOG_DEVICE: AtomicU32 = AtomicU32::new(0);
/// The device master to open the console through once records were deferred ([`defer_log`]).
static LOG_MASTER: AtomicU32 = AtomicU32::new(0);
/// Records logged before the console opened, in order.
static HELD: Mutex<Held> = Mutex::new(Held::new());

struct ConsoleLog;

static LOGGER: ConsoleLog = ConsoleLog;

/// Send `log` records to the console: `info` lines as they are (test results), other levels
/// prefixed with the level. The console right is kept for the task's life; records held by
/// [`defer_log`] go out first.
pub fn init_log(device_master: PortName, level: log::LevelFilter) -> Result<()> {
    install(level);
    open_console(device_master)
}

/// Like [`init_log`], but the console opens only at [`open_log`] or at the first warning or
/// error: opening it is a first-time kernel path that costs a boot-time server milliseconds
/// before its first answer. Until then, records wait in a bounded buffer.
pub fn defer_log(device_master: PortName, level: log::LevelFilter) {
    LOG_MASTER.store(device_master.raw(), Ordering::Relaxed);
    install(level);
}

/// Opens the console [`defer_log`] deferred (nothing to do if it is open) and writes the
/// records held meanwhile.
pub fn open_log() -> Result<()> {
    open_console(PortName::new(LOG_MASTER.load(Ordering::Relaxed)))
}

fn install(level: log::LevelFilter) {
    // A second call changes only the level: the logger is already installed.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

fn open_console(device_master: PortName) -> Result<()> {
    // Under the lock, so no record is held after the held ones are written.
    let mut held = HELD.lock();
    if LOG_DEVICE.load(Ordering::Relaxed) != 0 {
        return Ok(());
    }
    let device = Console::open(device_master)?.device.into_name();
    // Logging has nowhere to report its own failure.
    let _ = write_to(device, held.text());
    if held.dropped > 0 {
        let mut out = ChunkWriter { device, buf: [0; INBAND_MAX], len: 0 };
        let _ = writeln!(out, "console: {} bytes of early records dropped", held.dropped);
        out.flush();
    }
    *held = Held::new();
    LOG_DEVICE.store(device.raw(), Ordering::Relaxed);
    Ok(())
}

/// What was logged before the console opened: the first [`HELD_MAX`] bytes, then a count.
struct Held {
    bytes: [u8; HELD_MAX],
    len: usize,
    dropped: usize,
}

/// Bytes of records held before the console opens (a few dozen lines).
const HELD_MAX: usize = 2048;

impl Held {
    const fn new() -> Held {
        Held { bytes: [0; HELD_MAX], len: 0, dropped: 0 }
    }

    fn text(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends one whole line, or counts it as dropped: a record is never cut.
    fn push_line(&mut self, line: &[u8]) {
        match self.bytes.get_mut(self.len..self.len + line.len()) {
            Some(room) => {
                room.copy_from_slice(line);
                self.len += line.len();
            }
            None => self.dropped += line.len(),
        }
    }
}

/// Formats a record into 128-byte pieces, each written as it fills.
struct ChunkWriter {
    device: PortName,
    buf: [u8; INBAND_MAX],
    len: usize,
}

impl ChunkWriter {
    fn flush(&mut self) {
        // Logging has nowhere to report its own failure.
        let _ = write_to(self.device, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for ChunkWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if self.len == INBAND_MAX {
                self.flush();
            }
            self.buf[self.len] = byte;
            self.len += 1;
        }
        Ok(())
    }
}

impl log::Log for ConsoleLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(device) = console_for(record) else { return };
        let mut out = ChunkWriter { device, buf: [0; INBAND_MAX], len: 0 };
        let _ = write_record(&mut out, record);
        out.flush();
    }

    fn flush(&self) {}
}

/// The console to write `record` to now; None when the record was held until the console
/// opens (or there is no console to write to).
fn console_for(record: &log::Record<'_>) -> Option<PortName> {
    let open = || Some(PortName::new(LOG_DEVICE.load(Ordering::Relaxed))).filter(|device| device.is_valid());
    if let Some(device) = open() {
        return Some(device);
    }
    if LOG_MASTER.load(Ordering::Relaxed) == 0 {
        return None;
    }
    if record.level() <= log::Level::Warn {
        // A warning or an error goes out now, after what was held.
        open_log().ok()?;
        return open();
    }
    let mut held = HELD.lock();
    // Again under the lock: the console may have opened (and written what was held) meanwhile.
    if let Some(device) = open() {
        return Some(device);
    }
    let mut line = LineBuf { bytes: [0; INBAND_MAX], len: 0, cut: false };
    let _ = write_record(&mut line, record);
    held.push_line(line.text());
    None
}

fn write_record(out: &mut impl Write, record: &log::Record<'_>) -> fmt::Result {
    match record.level() {
        log::Level::Info => writeln!(out, "{}", record.args()),
        level => writeln!(out, "{level}: {}", record.args()),
    }
}

/// One held record: at most a line of [`INBAND_MAX`] bytes; a longer one is cut and ends in
/// "…" and a newline.
struct LineBuf {
    bytes: [u8; INBAND_MAX],
    len: usize,
    cut: bool,
}

impl LineBuf {
    const CUT_MARK: &'static [u8] = "…\n".as_bytes();

    fn text(&mut self) -> &[u8] {
        if self.cut {
            let at = INBAND_MAX - Self::CUT_MARK.len();
            self.bytes[at..].copy_from_slice(Self::CUT_MARK);
            self.len = INBAND_MAX;
        }
        &self.bytes[..self.len]
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = INBAND_MAX - self.len;
        let taken = text.len().min(room);
        self.bytes[self.len..self.len + taken].copy_from_slice(&text.as_bytes()[..taken]);
        self.len += taken;
        self.cut |= taken < text.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_records_keep_their_order_and_overflow_is_counted_whole() {
        let mut held = Held::new();
        held.push_line(b"first\n");
        held.push_line(&[b'x'; HELD_MAX - 12]);
        held.push_line(b"too long!!!\n"); // 12 bytes: 6 more than the room left
        held.push_line(b"fits\n");
        assert_eq!(&held.text()[..6], b"first\n");
        assert!(held.text().ends_with(b"xfits\n"));
        assert_eq!(held.len, HELD_MAX - 1);
        assert_eq!(held.dropped, 12);
    }

    #[test]
    fn a_held_line_longer_than_a_write_is_cut_with_a_mark() {
        let mut line = LineBuf { bytes: [0; INBAND_MAX], len: 0, cut: false };
        write!(line, "{}", "a".repeat(200)).unwrap();
        let text = line.text();
        assert_eq!(text.len(), INBAND_MAX);
        assert!(text.ends_with("…\n".as_bytes()));
        let mut short = LineBuf { bytes: [0; INBAND_MAX], len: 0, cut: false };
        writeln!(short, "ata: wd0: {} sectors", 131072).unwrap();
        assert_eq!(short.text(), b"ata: wd0: 131072 sectors\n");
    }
}
