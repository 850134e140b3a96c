//! A `log` backend writing to the kernel `console` device (`device_open` +
//! `device_write_inband`), the only output a boot-module task has.

use crate::interfaces::constants::D_WRITE;
use crate::interfaces::device;
use crate::kern::Result;
use crate::port::{PortName, SendRight};
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

/// The console device the logger writes to (0 until [`init_log`]).
static LOG_DEVICE: AtomicU32 = AtomicU32::new(0);

struct ConsoleLog;

static LOGGER: ConsoleLog = ConsoleLog;

/// Send `log` records to the console: `info` lines as they are (test results), other levels
/// prefixed with the level. The console right is kept for the task's life.
pub fn init_log(device_master: PortName, level: log::LevelFilter) -> Result<()> {
    let console = Console::open(device_master)?;
    LOG_DEVICE.store(console.device.into_name().raw(), Ordering::Relaxed);
    // A second call only replaces the device: the logger is already installed.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    Ok(())
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
        let device = PortName::new(LOG_DEVICE.load(Ordering::Relaxed));
        if !device.is_valid() || !self.enabled(record.metadata()) {
            return;
        }
        let mut out = ChunkWriter { device, buf: [0; INBAND_MAX], len: 0 };
        let _ = match record.level() {
            log::Level::Info => writeln!(out, "{}", record.args()),
            level => writeln!(out, "{level}: {}", record.args()),
        };
        out.flush();
    }

    fn flush(&self) {}
}
