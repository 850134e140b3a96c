//! Command-line options of both builds, argp-style as the C rumpdisk takes them:
//! `-h/--host-priv-port PORT`, `-d/--device-master-port PORT`, `-N/--next-task TASK` (port
//! names in decimal, as GNU Mach's boot script substitutes them), plus `--help`, `--usage`,
//! `--version`. Long options take `=VALUE` or the next word; short ones the rest of the word
//! or the next word.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::backend::ata::port_io::IdeChannel;
use crate::backend::ata::{Completion, TransferMode};
use crate::backend::flush_mode::FlushMode;

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub host_priv_port: Option<u32>,
    pub device_master_port: Option<u32>,
    pub next_task: Option<u32>,
    /// `--flush=device|skip|skip-one=K|refuse` (tests only; see `backend::flush_mode`).
    pub flush: FlushMode,
    /// `--ide-channel=all|primary|secondary`: the legacy IDE channels the native ATA backend
    /// drives (`None`: both, the default).
    pub ide_channel: Option<IdeChannel>,
    /// `--ata-transfer=auto|pio|multiple|dma|ahci`: how the native ATA backend moves data, or
    /// (`ahci`) that it drives an AHCI controller's disk instead of the IDE channel.
    pub ata_transfer: TransferMode,
    /// `--completion=interrupt|poll`: how the native ATA backend awaits a command's end.
    pub completion: Completion,
}


/// The outcome of parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Serve(Options),
    Help,
    Usage,
    Version,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    Unknown(&'a [u8]),
    MissingValue(&'static str),
    BadPort { option: &'static str, value: &'a [u8] },
    BadFlushMode(&'a [u8]),
    BadChannel(&'a [u8]),
    BadTransfer(&'a [u8]),
    BadCompletion(&'a [u8]),
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(word) => write!(f, "unrecognized option '{}'", word.escape_ascii()),
            OptionError::MissingValue(option) => write!(f, "option '--{option}' requires an argument"),
            OptionError::BadFlushMode(value) => {
                write!(f, "--flush: '{}' is not device, skip, skip-one=K or refuse", value.escape_ascii())
            }
            OptionError::BadChannel(value) => {
                write!(f, "--ide-channel: '{}' is not all, primary or secondary", value.escape_ascii())
            }
            OptionError::BadTransfer(value) => {
                write!(f, "--ata-transfer: '{}' is not {}", value.escape_ascii(), TransferMode::NAMES)
            }
            OptionError::BadCompletion(value) => {
                write!(f, "--completion: '{}' is not {}", value.escape_ascii(), Completion::NAMES)
            }
            OptionError::BadPort { option, value } => {
                write!(f, "--{option}: '{}' is not a port name (a decimal number)", value.escape_ascii())
            }
        }
    }
}

pub const USAGE: &str = "Usage: rumpdisk [-h PORT] [-d PORT] [-N TASK] [--host-priv-port=PORT] \
[--device-master-port=PORT] [--next-task=TASK] [--flush=MODE] [--ide-channel=CHANNEL] \
[--ata-transfer=MODE] [--completion=MODE] [--help] [--usage] [--version]\n";

pub const HELP: &str = "Usage: rumpdisk [OPTION...]
Serve GNU Mach's device interface for disks (wd0, wd1, ...), with DEV_FLUSH_CACHE as a write barrier.
Other device names are forwarded to the device master.
As a translator (settrans -c /dev/rumpdisk /hurd/rumpdisk), -h and -d default to the
privileged ports of a root process; as a boot server, give -h, -d and -N.

  -h, --host-priv-port=PORT     Host private port PORT
  -d, --device-master-port=PORT Device master port PORT
  -N, --next-task=TASK          Next bootstrap task TASK
      --flush=MODE              What DEV_FLUSH_CACHE does: device (default) flushes the
                                drive's cache; skip, skip-one=K (the Kth flush
                                only) and refuse exist only for tests
      --ide-channel=CHANNEL     The IDE channels the native ATA driver drives: all
                                (the default), primary or secondary; disks are
                                named wd0, wd1, ... in the order they are found
                                (primary master, primary slave, secondary master,
                                secondary slave, then AHCI ports), as NetBSD names them
      --ata-transfer=MODE       How the native ATA driver moves data: auto (the
                                default: the fastest that works; the disk of an AHCI
                                controller when the IDE channel has none), pio (a
                                sector per data request), multiple (READ/WRITE
                                MULTIPLE), dma (bus-master DMA) or ahci (the first
                                AHCI controller's disks alone); dma and ahci:
                                rumpdisk.static only
      --completion=MODE         How the native ATA driver awaits a command's end:
                                interrupt (the default, where the kernel has an irq
                                device: rumpdisk.static) or poll (spin on the
                                controller's status, for comparison)
      --help                    Give this help list
      --usage                   Give a short usage message
      --version                 Print program version
";

pub const VERSION: &str = concat!("rumpdisk (rumpdisk-rs) ", env!("CARGO_PKG_VERSION"), "\n");

/// The options of each kind: short letter, long name, the field it sets.
const PORT_OPTIONS: [(u8, &str); 3] = [(b'h', "host-priv-port"), (b'd', "device-master-port"), (b'N', "next-task")];

/// Parses the arguments after the program name. Words that are not options are ignored, as
/// boot-script leftovers may be.
pub fn parse<'a>(args: &[&'a [u8]]) -> Result<Command, OptionError<'a>> {
    let mut options = Options::default();
    let mut words = args.iter().copied();
    while let Some(word) = words.next() {
        let (long_name, inline_value) = if let Some(long) = word.strip_prefix(b"--") {
            match long.iter().position(|&b| b == b'=') {
                Some(eq) => (Some(&long[..eq]), Some(&long[eq + 1..])),
                None => (Some(long), None),
            }
        } else if word.len() >= 2 && word[0] == b'-' {
            (None, (word.len() > 2).then(|| &word[2..]))
        } else {
            continue;
        };
        match long_name {
            Some(b"help") => return Ok(Command::Help),
            Some(b"usage") => return Ok(Command::Usage),
            Some(b"version") => return Ok(Command::Version),
            Some(b"flush") => {
                let value = inline_value.or_else(|| words.next()).ok_or(OptionError::MissingValue("flush"))?;
                options.flush = FlushMode::parse(value).ok_or(OptionError::BadFlushMode(value))?;
                continue;
            }
            Some(b"ide-channel") => {
                let value = inline_value.or_else(|| words.next()).ok_or(OptionError::MissingValue("ide-channel"))?;
                options.ide_channel = match value {
                    b"all" => None,
                    b"primary" => Some(IdeChannel::Primary),
                    b"secondary" => Some(IdeChannel::Secondary),
                    _ => return Err(OptionError::BadChannel(value)),
                };
                continue;
            }
            Some(b"ata-transfer") => {
                let value = inline_value.or_else(|| words.next()).ok_or(OptionError::MissingValue("ata-transfer"))?;
                options.ata_transfer = TransferMode::parse(value).ok_or(OptionError::BadTransfer(value))?;
                continue;
            }
            Some(b"completion") => {
                let value = inline_value.or_else(|| words.next()).ok_or(OptionError::MissingValue("completion"))?;
                options.completion = Completion::parse(value).ok_or(OptionError::BadCompletion(value))?;
                continue;
            }
            _ => {}
        }
        let known = PORT_OPTIONS.iter().find(|(short, long)| match long_name {
            Some(name) => name == long.as_bytes(),
            None => word[1] == *short,
        });
        let Some(&(short, name)) = known else { return Err(OptionError::Unknown(word)) };
        let value = match inline_value {
            Some(value) => value,
            None => words.next().ok_or(OptionError::MissingValue(name))?,
        };
        let port = parse_port(value).ok_or(OptionError::BadPort { option: name, value })?;
        let field = match short {
            b'h' => &mut options.host_priv_port,
            b'd' => &mut options.device_master_port,
            _ => &mut options.next_task,
        };
        *field = Some(port);
    }
    Ok(Command::Serve(options))
}

impl Options {
    /// The legacy IDE channels to drive, in attach order.
    pub fn ide_channels(&self) -> &'static [IdeChannel] {
        match self.ide_channel {
            None => &IdeChannel::ALL,
            Some(IdeChannel::Primary) => &IdeChannel::ALL[..1],
            Some(IdeChannel::Secondary) => &IdeChannel::ALL[1..],
        }
    }

    /// The options as an argz vector (words each ended by a NUL) after `program`, in the
    /// spelling `parse` takes back: what `fsysopts` shows. Defaults are left out.
    pub fn to_argz(&self, program: &str) -> Vec<u8> {
        let mut words: Vec<String> = alloc::vec![program.into()];
        for (&(_, name), port) in PORT_OPTIONS.iter().zip([self.host_priv_port, self.device_master_port, self.next_task]) {
            words.extend(port.map(|port| format!("--{name}={port}")));
        }
        if self.flush != FlushMode::default() {
            words.push(format!("--flush={}", self.flush));
        }
        if let Some(channel) = self.ide_channel {
            words.push(format!("--ide-channel={}", channel.name()));
        }
        if self.ata_transfer != TransferMode::default() {
            words.push(format!("--ata-transfer={}", self.ata_transfer.name()));
        }
        if self.completion != Completion::default() {
            words.push(format!("--completion={}", self.completion.name()));
        }
        words.into_iter().flat_map(|word| word.into_bytes().into_iter().chain([0])).collect()
    }
}

/// The device master's port name among `args`, read leniently (the first `-d`/
/// `--device-master-port` with a valid value, whatever else the words hold): a boot server
/// whose command line does not parse needs it to open the console and say why it stops.
pub fn device_master_word(args: &[&[u8]]) -> Option<u32> {
    let mut words = args.iter().copied();
    while let Some(word) = words.next() {
        let value = if let Some(value) = word.strip_prefix(b"--device-master-port=") {
            Some(value)
        } else if word == b"--device-master-port" || word == b"-d" {
            words.next()
        } else if let Some(value) = word.strip_prefix(b"-d") {
            Some(value)
        } else {
            continue;
        };
        if let Some(port) = value.and_then(parse_port) {
            return Some(port);
        }
    }
    None
}

fn parse_port(value: &[u8]) -> Option<u32> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn words(line: &str) -> alloc::vec::Vec<&[u8]> {
        line.split(' ').filter(|w| !w.is_empty()).map(str::as_bytes).collect()
    }

    /// The options `line` asks to serve with, or what parsing gave instead.
    fn served(line: &str) -> Result<Options, Result<Command, OptionError<'_>>> {
        match parse(&words(line)) {
            Ok(Command::Serve(options)) => Ok(options),
            other => Err(other),
        }
    }

    #[test]
    fn every_spelling_of_the_port_options_parses() {
        let expected = Options { host_priv_port: Some(1), device_master_port: Some(2), next_task: Some(13), ..Options::default() };
        for line in [
            "--host-priv-port=1 --device-master-port=2 --next-task=13",
            "--host-priv-port 1 --device-master-port 2 --next-task 13",
            "-h 1 -d 2 -N 13",
            "-h1 -d2 -N13",
            "rumpdisk -h1 -d2 $(task-create) -N13",
        ] {
            assert_eq!(parse(&words(line)), Ok(Command::Serve(expected.clone())), "{line}");
        }
        assert_eq!(parse(&[]), Ok(Command::Serve(Options::default())));
    }

    #[test]
    fn flush_mode() {
        let serve = |line| match parse(&words(line)) {
            Ok(Command::Serve(options)) => Ok(options.flush),
            other => Err(other),
        };
        assert_eq!(serve("-h 1"), Ok(FlushMode::Device));
        assert_eq!(serve("--flush=skip"), Ok(FlushMode::Skip));
        assert_eq!(serve("--flush refuse"), Ok(FlushMode::Refuse));
        assert_eq!(parse(&words("--flush=maybe")), Err(OptionError::BadFlushMode(b"maybe")));
        assert_eq!(parse(&words("--flush")), Err(OptionError::MissingValue("flush")));
        let seven = FlushMode::SkipOne(core::num::NonZeroU32::new(7).unwrap());
        assert_eq!(serve("--flush=skip-one=7"), Ok(seven));
        assert_eq!(serve("--flush skip-one=7"), Ok(seven));
        for bad in ["skip-one=0", "skip-one=", "skip-one=-1", "skip-one=+7", "skip-one=7x", "skip-one=4294967296", "skip-one"] {
            let line = alloc::format!("--flush={bad}");
            assert_eq!(parse(&words(&line)), Err(OptionError::BadFlushMode(bad.as_bytes())), "{bad}");
        }
    }

    #[test]
    fn ide_channel() {
        let channel = |line| match parse(&words(line)) {
            Ok(Command::Serve(options)) => Ok(options.ide_channel),
            other => Err(other),
        };
        assert_eq!(channel("-h 1"), Ok(None), "both channels");
        assert_eq!(channel("--ide-channel=secondary"), Ok(Some(IdeChannel::Secondary)));
        assert_eq!(channel("--ide-channel primary"), Ok(Some(IdeChannel::Primary)));
        assert_eq!(channel("--ide-channel=primary --ide-channel=all"), Ok(None));
        assert_eq!(parse(&words("--ide-channel=tertiary")), Err(OptionError::BadChannel(b"tertiary")));
    }

    #[test]
    fn the_argz_parses_back_to_the_same_options() {
        let options = Options {
            host_priv_port: Some(1),
            device_master_port: Some(2),
            next_task: Some(13),
            flush: FlushMode::Refuse,
            ide_channel: Some(IdeChannel::Secondary),
            ata_transfer: TransferMode::Multiple,
            completion: Completion::Poll,
        };
        let argz = options.to_argz("/hurd/rumpdisk");
        assert_eq!(argz, b"/hurd/rumpdisk\0--host-priv-port=1\0--device-master-port=2\0--next-task=13\0--flush=refuse\0--ide-channel=secondary\0--ata-transfer=multiple\0--completion=poll\0");
        let words: alloc::vec::Vec<&[u8]> = argz.strip_suffix(&[0]).unwrap().split(|&b| b == 0).skip(1).collect();
        assert_eq!(parse(&words), Ok(Command::Serve(options)));
        assert_eq!(Options::default().to_argz("rumpdisk"), b"rumpdisk\0", "defaults are left out");
        // Every flush mode, skip-one with its K, round-trips through the listing fsysopts shows.
        let k = |k| FlushMode::SkipOne(core::num::NonZeroU32::new(k).unwrap());
        for (flush, word) in [
            (FlushMode::Skip, "--flush=skip"),
            (FlushMode::Refuse, "--flush=refuse"),
            (k(1), "--flush=skip-one=1"),
            (k(40), "--flush=skip-one=40"),
            (k(u32::MAX), "--flush=skip-one=4294967295"),
        ] {
            let options = Options { flush, ..Options::default() };
            let argz = options.to_argz("rumpdisk");
            assert_eq!(argz, alloc::format!("rumpdisk\0{word}\0").into_bytes(), "{flush:?}");
            let words: alloc::vec::Vec<&[u8]> = argz.strip_suffix(&[0]).unwrap().split(|&b| b == 0).skip(1).collect();
            assert_eq!(parse(&words), Ok(Command::Serve(options)), "{flush:?}");
        }
    }

    #[test]
    fn ata_transfer() {
        let transfer = |line| served(line).map(|options| options.ata_transfer);
        assert_eq!(transfer("-h 1"), Ok(TransferMode::Auto));
        assert_eq!(transfer("--ata-transfer=pio"), Ok(TransferMode::Pio));
        assert_eq!(transfer("--ata-transfer multiple"), Ok(TransferMode::Multiple));
        assert_eq!(transfer("--ata-transfer=dma"), Ok(TransferMode::Dma));
        assert_eq!(transfer("--ata-transfer=ahci"), Ok(TransferMode::Ahci));
        let bad = parse(&words("--ata-transfer=fast")).unwrap_err();
        assert_eq!(bad, OptionError::BadTransfer(b"fast"));
        assert_eq!(bad.to_string(), "--ata-transfer: 'fast' is not auto, pio, multiple, dma or ahci");
        assert_eq!(parse(&words("--ata-transfer")), Err(OptionError::MissingValue("ata-transfer")));
    }

    #[test]
    fn completion() {
        for (line, completion) in [
            ("-h 1", Completion::Interrupt), // interrupts unless told
            ("--completion=poll", Completion::Poll),
            ("--completion poll", Completion::Poll),
            ("--completion=poll --completion=interrupt", Completion::Interrupt),
            ("--completion=interrupt --ata-transfer=ahci", Completion::Interrupt),
        ] {
            assert_eq!(served(line).map(|options| options.completion), Ok(completion), "{line}");
        }
        let bad = parse(&words("--completion=irq")).unwrap_err();
        assert_eq!(bad, OptionError::BadCompletion(b"irq"));
        assert_eq!(bad.to_string(), "--completion: 'irq' is not interrupt or poll");
        assert_eq!(parse(&words("--completion")), Err(OptionError::MissingValue("completion")));
        // The listing fsysopts shows names polling, and reads back as polling.
        let polling = Options { completion: Completion::Poll, ..Options::default() };
        let argz = polling.to_argz("rumpdisk");
        assert_eq!(argz, b"rumpdisk\0--completion=poll\0");
        assert_eq!(parse(&[b"--completion=poll"]), Ok(Command::Serve(polling)));
    }

    #[test]
    fn help_usage_and_version() {
        assert_eq!(parse(&words("--help")), Ok(Command::Help));
        assert_eq!(parse(&words("-h 1 --usage")), Ok(Command::Usage));
        assert_eq!(parse(&words("--version")), Ok(Command::Version));
        assert!(VERSION.starts_with("rumpdisk (rumpdisk-rs) 0."));
    }

    #[test]
    fn the_device_master_is_found_in_a_command_line_that_does_not_parse() {
        for line in ["--frobnicate -d 7", "-d7 --flush=often", "--device-master-port=7 -N", "--flush=often --device-master-port 7"] {
            assert!(parse(&words(line)).is_err(), "{line}");
            assert_eq!(device_master_word(&words(line)), Some(7), "{line}");
        }
        assert_eq!(device_master_word(&words("--frobnicate -d ${device-port} -h 1")), None);
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(parse(&words("--frobnicate")), Err(OptionError::Unknown(b"--frobnicate")));
        assert_eq!(parse(&words("-x")), Err(OptionError::Unknown(b"-x")));
        assert_eq!(parse(&words("--next-task")), Err(OptionError::MissingValue("next-task")));
        let bad = parse(&words("-d ${device-port}")).unwrap_err();
        assert_eq!(bad.to_string(), "--device-master-port: '${device-port}' is not a port name (a decimal number)");
        assert!(matches!(parse(&words("-h 99999999999")), Err(OptionError::BadPort { .. })));
        assert!(matches!(parse(&words("--host-priv-port=")), Err(OptionError::BadPort { .. })));
    }
}
