//! Mach return codes: `kern_return_t` values other than success.

use core::fmt;
use core::num::NonZeroI32;

/// A non-zero `kern_return_t`: a Mach error, a MIG error, or a server's own return code
/// (`D_*`, errno) carried in the same field.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(NonZeroI32);

/// The result of a Mach call.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The error for `code`, or `None` for `KERN_SUCCESS` (0).
    pub const fn new(code: i32) -> Option<Error> {
        match NonZeroI32::new(code) {
            Some(code) => Some(Error(code)),
            None => None,
        }
    }

    /// The raw `kern_return_t`.
    pub const fn code(self) -> i32 {
        self.0.get()
    }

    /// A constant error; `code` must not be 0 (checked at compile time in const contexts).
    pub const fn from_const(code: i32) -> Error {
        match Error::new(code) {
            Some(error) => error,
            None => panic!("KERN_SUCCESS is not an error"),
        }
    }

    /// The name of a well-known code, for messages.
    pub fn name(self) -> Option<&'static str> {
        KNOWN.iter().find(|(code, _)| *code == self.code()).map(|(_, name)| *name)
    }
}

/// `Ok(())` for `KERN_SUCCESS`, the error otherwise.
pub fn check(code: i32) -> Result<()> {
    match Error::new(code) {
        None => Ok(()),
        Some(error) => Err(error),
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#x})", self.code()),
            None => write!(f, "kern_return {} ({:#x})", self.code(), self.code()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Re-export header constants as `kern_return_t` (`i32`), the type `Error` carries
/// (bindgen gives the positive ones as `u32`).
macro_rules! return_codes {
    ($($name:ident),* $(,)?) => {
        $(pub const $name: i32 = crate::constants::$name as i32;)*
    };
}

return_codes!(
    KERN_SUCCESS,
    KERN_INVALID_ADDRESS,
    KERN_NO_SPACE,
    KERN_INVALID_ARGUMENT,
    KERN_FAILURE,
    KERN_RESOURCE_SHORTAGE,
    KERN_NOT_RECEIVER,
    KERN_NOT_IN_SET,
    KERN_NAME_EXISTS,
    KERN_INVALID_NAME,
    KERN_INVALID_TASK,
    KERN_INVALID_RIGHT,
    KERN_INVALID_VALUE,
    KERN_UREFS_OVERFLOW,
    KERN_INVALID_CAPABILITY,
    KERN_RIGHT_EXISTS,
    MACH_SEND_INVALID_DATA,
    MACH_SEND_INVALID_DEST,
    MACH_SEND_TIMED_OUT,
    MACH_SEND_INTERRUPTED,
    MACH_SEND_MSG_TOO_SMALL,
    MACH_SEND_INVALID_REPLY,
    MACH_SEND_INVALID_RIGHT,
    MACH_SEND_INVALID_MEMORY,
    MACH_SEND_INVALID_TYPE,
    MACH_SEND_INVALID_HEADER,
    MACH_RCV_INVALID_NAME,
    MACH_RCV_TIMED_OUT,
    MACH_RCV_TOO_LARGE,
    MACH_RCV_INTERRUPTED,
    MACH_RCV_PORT_DIED,
    MIG_TYPE_ERROR,
    MIG_REPLY_MISMATCH,
    MIG_BAD_ID,
    MIG_BAD_ARGUMENTS,
    MIG_NO_REPLY,
    MIG_ARRAY_TOO_LARGE,
    MIG_SERVER_DIED,
);

const KNOWN: &[(i32, &str)] = &[
    (KERN_INVALID_ADDRESS, "KERN_INVALID_ADDRESS"),
    (KERN_NO_SPACE, "KERN_NO_SPACE"),
    (KERN_INVALID_ARGUMENT, "KERN_INVALID_ARGUMENT"),
    (KERN_FAILURE, "KERN_FAILURE"),
    (KERN_RESOURCE_SHORTAGE, "KERN_RESOURCE_SHORTAGE"),
    (KERN_NOT_RECEIVER, "KERN_NOT_RECEIVER"),
    (KERN_NOT_IN_SET, "KERN_NOT_IN_SET"),
    (KERN_NAME_EXISTS, "KERN_NAME_EXISTS"),
    (KERN_INVALID_NAME, "KERN_INVALID_NAME"),
    (KERN_INVALID_TASK, "KERN_INVALID_TASK"),
    (KERN_INVALID_RIGHT, "KERN_INVALID_RIGHT"),
    (KERN_INVALID_VALUE, "KERN_INVALID_VALUE"),
    (KERN_UREFS_OVERFLOW, "KERN_UREFS_OVERFLOW"),
    (KERN_INVALID_CAPABILITY, "KERN_INVALID_CAPABILITY"),
    (KERN_RIGHT_EXISTS, "KERN_RIGHT_EXISTS"),
    (MACH_SEND_INVALID_DATA, "MACH_SEND_INVALID_DATA"),
    (MACH_SEND_INVALID_DEST, "MACH_SEND_INVALID_DEST"),
    (MACH_SEND_TIMED_OUT, "MACH_SEND_TIMED_OUT"),
    (MACH_SEND_INTERRUPTED, "MACH_SEND_INTERRUPTED"),
    (MACH_SEND_MSG_TOO_SMALL, "MACH_SEND_MSG_TOO_SMALL"),
    (MACH_SEND_INVALID_REPLY, "MACH_SEND_INVALID_REPLY"),
    (MACH_SEND_INVALID_RIGHT, "MACH_SEND_INVALID_RIGHT"),
    (MACH_SEND_INVALID_MEMORY, "MACH_SEND_INVALID_MEMORY"),
    (MACH_SEND_INVALID_TYPE, "MACH_SEND_INVALID_TYPE"),
    (MACH_SEND_INVALID_HEADER, "MACH_SEND_INVALID_HEADER"),
    (MACH_RCV_INVALID_NAME, "MACH_RCV_INVALID_NAME"),
    (MACH_RCV_TIMED_OUT, "MACH_RCV_TIMED_OUT"),
    (MACH_RCV_TOO_LARGE, "MACH_RCV_TOO_LARGE"),
    (MACH_RCV_INTERRUPTED, "MACH_RCV_INTERRUPTED"),
    (MACH_RCV_PORT_DIED, "MACH_RCV_PORT_DIED"),
    (MIG_TYPE_ERROR, "MIG_TYPE_ERROR"),
    (MIG_REPLY_MISMATCH, "MIG_REPLY_MISMATCH"),
    (MIG_BAD_ID, "MIG_BAD_ID"),
    (MIG_BAD_ARGUMENTS, "MIG_BAD_ARGUMENTS"),
    (MIG_NO_REPLY, "MIG_NO_REPLY"),
    (MIG_ARRAY_TOO_LARGE, "MIG_ARRAY_TOO_LARGE"),
    (MIG_SERVER_DIED, "MIG_SERVER_DIED"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_not_an_error() {
        assert!(Error::new(KERN_SUCCESS).is_none());
        assert_eq!(check(0), Ok(()));
        assert_eq!(check(MIG_BAD_ID).unwrap_err().code(), -303);
    }

    #[test]
    fn debug_names_known_codes_and_shows_unknown_ones() {
        let known = alloc::format!("{:?}", Error::from_const(MACH_RCV_TIMED_OUT));
        assert_eq!(known, "MACH_RCV_TIMED_OUT (0x10004003)");
        let device_error = alloc::format!("{:?}", Error::from_const(2505));
        assert_eq!(device_error, "kern_return 2505 (0x9c9)");
    }
}
