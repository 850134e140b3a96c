//! The Hurd's file-protocol numbers that travel in `dir_lookup` and its answers: open modes
//! (glibc's Hurd `bits/fcntl.h`) and lookup retry types (`hurd_types.h`).

/// The Hurd's open modes.
pub mod open {
    pub const READ: i32 = 0x1;
    pub const WRITE: i32 = 0x2;
    pub const EXEC: i32 = 0x4;
    /// Open the node itself, not the translator on it.
    pub const NOTRANS: i32 = 0x80;
    /// What a node port keeps of the lookup's flags (as trivfs: `O_HURD` without the bits
    /// that only mean something during the lookup).
    pub const KEPT: i32 = 0xffff & !(CREAT | EXCL | NOLINK | NOTRANS);
    const CREAT: i32 = 0x10;
    const EXCL: i32 = 0x20;
    const NOLINK: i32 = 0x40;
}

/// `enum retry_type`: use the returned port as it is, looking up the retry name (empty:
/// nothing) from it.
pub const FS_RETRY_NORMAL: u32 = 1;
/// `enum retry_type`: the retry name is magical; one starting with `/` is looked up from the
/// root.
pub const FS_RETRY_MAGICAL: u32 = 3;
