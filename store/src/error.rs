//! The error a store operation returns: an errno, the class that produced it, the device's own
//! return code when there was one, and for composite stores which children failed and why.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::errno::{DeviceCode, Errno};
use crate::name::NameError;

mod partition;

pub use partition::{PartitionError, Problem, Scheme};

pub type Result<T> = core::result::Result<T, Error>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A store's own class (or the generic store layer on its behalf) failed.
    Class {
        class: &'static str,
        errno: Errno,
        /// What the device server or kernel answered before it was mapped to `errno`.
        device_code: Option<DeviceCode>,
    },
    /// Children of a composite store failed; every failure, in child order (never empty).
    Children { class: &'static str, failures: Vec<ChildFailure> },
    /// A typed store name could not be parsed.
    Name(Box<NameError>),
    /// The partition a `part:` store asked for could not be found or used.
    Partition(Box<PartitionError>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildFailure {
    pub index: usize,
    pub error: Error,
}

impl Error {
    pub fn class(class: &'static str, errno: Errno) -> Error {
        Error::Class { class, errno, device_code: None }
    }

    /// One child's failure, as seen through its parent.
    pub fn child(class: &'static str, index: usize, error: Error) -> Error {
        Error::Children { class, failures: alloc::vec![ChildFailure { index, error }] }
    }

    /// The errno a caller acts on. For several failed children: the first real failure, so
    /// that `EOPNOTSUPP` ("cannot flush") only shows when no child failed in earnest.
    pub fn errno(&self) -> Errno {
        self.decisive().map_or(Errno::EINVAL, |(errno, _)| errno)
    }

    /// The device return code behind [`Error::errno`], if a device gave one.
    pub fn device_code(&self) -> Option<DeviceCode> {
        self.decisive().and_then(|(_, code)| code)
    }

    fn decisive(&self) -> Option<(Errno, Option<DeviceCode>)> {
        match self {
            Error::Class { errno, device_code, .. } => Some((*errno, *device_code)),
            Error::Children { failures, .. } => {
                let mut found = failures.iter().filter_map(|f| f.error.decisive());
                let first = found.clone().next();
                found.find(|(errno, _)| *errno != Errno::EOPNOTSUPP).or(first)
            }
            Error::Name(_) => None,
            Error::Partition(error) => Some((error.errno(), None)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Class { class, errno, device_code: None } => write!(f, "{class}: {errno}"),
            Error::Class { class, errno, device_code: Some(code) } => {
                write!(f, "{class}: {errno} (device answered {code})")
            }
            Error::Children { class, failures } => {
                write!(f, "{class}: ")?;
                for (n, failure) in failures.iter().enumerate() {
                    if n > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "child {} failed: {}", failure.index, failure.error)?;
                }
                Ok(())
            }
            Error::Name(name) => write!(f, "{name}"),
            Error::Partition(error) => write!(f, "{error}"),
        }
    }
}

impl From<NameError> for Error {
    fn from(error: NameError) -> Error {
        Error::Name(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn a_real_failure_outranks_cannot_flush() {
        let unsupported = Error::class("zero", Errno::EOPNOTSUPP);
        let failed = Error::Class {
            class: "device",
            errno: Errno::EIO,
            device_code: Some(DeviceCode::IO_ERROR),
        };
        let both = Error::Children {
            class: "concat",
            failures: vec![
                ChildFailure { index: 0, error: unsupported.clone() },
                ChildFailure { index: 2, error: failed },
            ],
        };
        assert_eq!(both.errno(), Errno::EIO);
        assert_eq!(both.device_code(), Some(DeviceCode::IO_ERROR));
        assert_eq!(
            both.to_string(),
            "concat: child 0 failed: zero: EOPNOTSUPP (operation not supported); \
             child 2 failed: device: EIO (input/output error) (device answered D_IO_ERROR)"
        );
        assert_eq!(Error::child("remap", 0, unsupported).errno(), Errno::EOPNOTSUPP);
    }
}
