//! A task's arguments as the boot script passes them: words of the module line, port names
//! substituted as decimal numbers (`${host-port}`), and `KEY=VALUE` words.

use crate::port::PortName;
use alloc::vec::Vec;
use core::fmt;

/// The argument vector (argv), without the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args<'a> {
    words: Vec<&'a [u8]>,
    vectors: Vectors,
}

/// Where the argument and environment vectors (arrays of string pointers ending with a null
/// one) lie in the task's memory: what `proc_set_arg_locations` tells proc, so that `ps` shows
/// the command line. 0 where there is none to show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vectors {
    pub argv: usize,
    pub envp: usize,
}

/// A missing or malformed argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// No argument at this position.
    MissingIndex(usize),
    /// No `KEY=VALUE` word with this key.
    MissingKey(&'a str),
    /// The text is not a decimal port name (or names the null port).
    NotAPortName(&'a [u8]),
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::MissingIndex(index) => write!(f, "argument {index} is missing"),
            ArgError::MissingKey(key) => write!(f, "no {key}=... argument"),
            ArgError::NotAPortName(text) => {
                write!(f, "`{}` is not a port name (a decimal number other than 0)", text.escape_ascii())
            }
        }
    }
}

impl<'a> Args<'a> {
    pub fn new(words: Vec<&'a [u8]>) -> Args<'a> {
        Args { words, vectors: Vectors::default() }
    }

    /// The words, and where the vectors they came from are.
    pub fn with_vectors(words: Vec<&'a [u8]>, vectors: Vectors) -> Args<'a> {
        Args { words, vectors }
    }

    pub fn vectors(&self) -> Vectors {
        self.vectors
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        self.words.get(index).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.words.iter().copied()
    }

    /// The port name at `index` (argv\[0\] is the program name).
    pub fn port(&self, index: usize) -> Result<PortName, ArgError<'a>> {
        parse_port_name(self.get(index).ok_or(ArgError::MissingIndex(index))?)
    }

    /// The value of the first `key=value` word.
    pub fn value(&self, key: &'static str) -> Option<&'a [u8]> {
        self.words.iter().find_map(|word| {
            let rest = word.strip_prefix(key.as_bytes())?;
            rest.strip_prefix(b"=")
        })
    }

    /// The port name given as `key=NAME`.
    pub fn port_value(&self, key: &'static str) -> Result<PortName, ArgError<'a>> {
        parse_port_name(self.value(key).ok_or(ArgError::MissingKey(key))?)
    }
}

/// A port name as the boot script writes it: decimal digits, not 0, fitting 32 bits.
pub fn parse_port_name(text: &[u8]) -> Result<PortName, ArgError<'_>> {
    let invalid = ArgError::NotAPortName(text);
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    let value = text.iter().try_fold(0u32, |value, digit| {
        value.checked_mul(10)?.checked_add(u32::from(digit - b'0'))
    });
    match value {
        Some(name) if name != 0 => Ok(PortName::new(name)),
        _ => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn args() -> Args<'static> {
        Args::new(vec![b"server".as_slice(), b"1", b"2", b"role=server", b"srvtask=17", b"bad=4294967296"])
    }

    #[test]
    fn positional_and_keyed_port_names_parse() {
        let args = args();
        assert_eq!(args.port(1), Ok(PortName::new(1)));
        assert_eq!(args.port(2), Ok(PortName::new(2)));
        assert_eq!(args.port_value("srvtask"), Ok(PortName::new(17)));
        assert_eq!(args.value("role"), Some(b"server".as_slice()));
        assert_eq!(args.value("rol"), None, "a key matches whole");
    }

    #[test]
    fn bad_port_names_are_errors_that_say_why() {
        let args = args();
        assert_eq!(args.port(0), Err(ArgError::NotAPortName(b"server")));
        assert_eq!(args.port(9), Err(ArgError::MissingIndex(9)));
        assert_eq!(args.port_value("next"), Err(ArgError::MissingKey("next")));
        assert_eq!(args.port_value("bad"), Err(ArgError::NotAPortName(b"4294967296")), "overflow");
        assert_eq!(parse_port_name(b"0"), Err(ArgError::NotAPortName(b"0")));
        assert_eq!(parse_port_name(b""), Err(ArgError::NotAPortName(b"")));
        assert_eq!(parse_port_name(b"-3"), Err(ArgError::NotAPortName(b"-3")));
        assert_eq!(parse_port_name(b"4294967295"), Ok(PortName::DEAD));
        assert_eq!(ArgError::NotAPortName(b"x1").to_string(), "`x1` is not a port name (a decimal number other than 0)");
    }
}
