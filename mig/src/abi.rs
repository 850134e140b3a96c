//! The two message ABIs of GNU Mach's typed IPC (x86_64 and i686): header, descriptor, word and
//! alignment sizes.

/// The two message ABIs of GNU Mach's typed IPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// LP64: 32-byte header, 8-byte descriptors (long form too), 8-byte ports and padding.
    X86_64,
    /// ILP32: 24-byte header, 4-byte short and 12-byte long descriptors, 4-byte padding.
    I686,
}

impl Abi {
    pub const ALL: [Abi; 2] = [Abi::X86_64, Abi::I686];

    pub fn module(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I686 => "i686",
        }
    }
    pub fn header_size(self) -> u32 {
        match self {
            Abi::X86_64 => 32,
            Abi::I686 => 24,
        }
    }
    /// Alignment of every item, and of the message size.
    pub fn align(self) -> u32 {
        match self {
            Abi::X86_64 => 8,
            Abi::I686 => 4,
        }
    }
    pub fn descriptor_size(self, long: bool) -> u32 {
        match (self, long) {
            (Abi::X86_64, _) => 8,
            (Abi::I686, false) => 4,
            (Abi::I686, true) => 12,
        }
    }
    /// Bits of an inline port right, and of a pointer to out-of-line data.
    pub fn word_bits(self) -> u32 {
        match self {
            Abi::X86_64 => 64,
            Abi::I686 => 32,
        }
    }
    /// Bytes of a pointer, as C sees it in this ABI.
    pub fn pointer_size(self) -> usize {
        self.word_bits() as usize / 8
    }
    /// Offset of the return code in a reply (after the header and its descriptor).
    pub fn retcode_offset(self) -> u32 {
        self.header_size() + self.descriptor_size(false)
    }
    /// Size of `mig_reply_header_t`: a reply carrying only an error code.
    pub fn error_reply_size(self) -> u32 {
        self.retcode_offset() + self.align()
    }

    pub fn round(self, n: u32) -> u32 {
        (n + self.align() - 1) & !(self.align() - 1)
    }
}
