//! The MIG type model: what one message item carries, resolved from `type` declarations.

/// `MACH_MSG_TYPE_*` names used in type descriptors (gnumach `mach/message.h`).
pub mod name {
    pub const UNSTRUCTURED: u32 = 0;
    pub const BIT: u32 = 0;
    pub const BOOLEAN: u32 = 0;
    pub const INTEGER_16: u32 = 1;
    pub const INTEGER_32: u32 = 2;
    pub const CHAR: u32 = 8;
    pub const BYTE: u32 = 9;
    pub const INTEGER_8: u32 = 9;
    pub const REAL: u32 = 10;
    pub const INTEGER_64: u32 = 11;
    pub const STRING: u32 = 12;
    pub const STRING_C: u32 = 12;
    pub const PORT_NAME: u32 = 15;
    pub const MOVE_RECEIVE: u32 = 16;
    pub const MOVE_SEND: u32 = 17;
    pub const MOVE_SEND_ONCE: u32 = 18;
    pub const COPY_SEND: u32 = 19;
    pub const MAKE_SEND: u32 = 20;
    pub const MAKE_SEND_ONCE: u32 = 21;
    pub const PORT_RECEIVE: u32 = MOVE_RECEIVE;
    pub const PORT_SEND: u32 = MOVE_SEND;
    pub const PORT_SEND_ONCE: u32 = MOVE_SEND_ONCE;
    pub const POLYMORPHIC: u32 = !0;
}

/// A descriptor name as MIG knows it: a fixed `MACH_MSG_TYPE_*`, or chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgName {
    Fixed(u32),
    Polymorphic,
}

impl MsgName {
    pub fn is_port(self) -> bool {
        match self {
            MsgName::Fixed(n) => (name::MOVE_RECEIVE..=name::MAKE_SEND_ONCE).contains(&n),
            MsgName::Polymorphic => true,
        }
    }
}

/// The MIG name → descriptor value, size in bits (0 = port, sized per ABI; `None` = must be given).
pub fn builtin_name(ident: &str) -> Option<(u32, Option<u32>)> {
    let upper = ident.to_ascii_uppercase();
    let short = upper.strip_prefix("MACH_MSG_TYPE_")?;
    Some(match short {
        "UNSTRUCTURED" => (name::UNSTRUCTURED, None),
        "BIT" => (name::BIT, Some(1)),
        "BOOLEAN" => (name::BOOLEAN, Some(32)),
        "INTEGER_16" => (name::INTEGER_16, Some(16)),
        "INTEGER_32" => (name::INTEGER_32, Some(32)),
        "INTEGER_64" => (name::INTEGER_64, Some(64)),
        "CHAR" => (name::CHAR, Some(8)),
        "BYTE" | "INTEGER_8" => (name::BYTE, Some(8)),
        "REAL" => (name::REAL, None),
        "STRING" | "STRING_C" => (name::STRING, None),
        "PORT_NAME" => (name::PORT_NAME, Some(32)),
        "MOVE_RECEIVE" | "PORT_RECEIVE" => (name::MOVE_RECEIVE, Some(0)),
        "MOVE_SEND" | "PORT_SEND" => (name::MOVE_SEND, Some(0)),
        "MOVE_SEND_ONCE" | "PORT_SEND_ONCE" => (name::MOVE_SEND_ONCE, Some(0)),
        "COPY_SEND" => (name::COPY_SEND, Some(0)),
        "MAKE_SEND" => (name::MAKE_SEND, Some(0)),
        "MAKE_SEND_ONCE" => (name::MAKE_SEND_ONCE, Some(0)),
        "POLYMORPHIC" => (name::POLYMORPHIC, Some(0)),
        _ => return None,
    })
}

/// `PORT_SEND`, `PORT_RECEIVE` and `PORT_SEND_ONCE` let the sender choose the disposition
/// (MIG treats them as polymorphic on the sending side).
pub fn sender_chooses(ident: &str) -> bool {
    matches!(
        ident.to_ascii_uppercase().as_str(),
        "MACH_MSG_TYPE_PORT_SEND" | "MACH_MSG_TYPE_PORT_RECEIVE" | "MACH_MSG_TYPE_PORT_SEND_ONCE"
    )
}

/// How many elements an item holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    Fixed(u32),
    /// Variable, with an upper bound (`array[*:N]`) or none (`array[]`).
    Variable(Option<u32>),
}

/// One resolved MIG type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    /// The name it was declared under (or the inline spelling), for documentation.
    pub name: String,
    /// What the sender writes into the descriptor.
    pub in_name: MsgName,
    /// What the receiver finds there (ports change: COPY_SEND arrives as PORT_SEND).
    pub out_name: MsgName,
    /// `msgt_size` of one element, in bits; 0 for a port (sized by the ABI).
    pub element_bits: u32,
    pub count: Count,
    /// Carried in the message body (false: out of line, a pointer).
    pub inline: bool,
    /// Out-of-line memory the kernel deallocates from the sender.
    pub dealloc: bool,
    /// Integers from unsigned C types (`uint32_t`, `natural_t`, …).
    pub unsigned: bool,
    /// A `c_string`/`STRING` item: bytes up to a NUL.
    pub string: bool,
    /// Declared without a bound (`array[]`, `array[*]`): always the long descriptor form.
    pub unbounded: bool,
    /// `array[]`/`array[*]` of data: inline when it fits GNU MIG's inline limit, out of line
    /// otherwise; the sender decides, the receiver accepts both whatever the complex bit says.
    pub indefinite: bool,
}

/// GNU MIG's room for an array without a bound (`array[]`, `array[*]`) that travels inline.
pub const INLINE_LIMIT_BYTES: u32 = 2048;

impl Type {
    pub fn is_port(&self) -> bool {
        self.in_name.is_port() || self.out_name.is_port()
    }

    pub fn is_variable(&self) -> bool {
        matches!(self.count, Count::Variable(_))
    }

    /// The largest element count: the fixed count, the bound, or none.
    pub fn max_count(&self) -> Option<u32> {
        match self.count {
            Count::Fixed(n) => Some(n),
            Count::Variable(max) => max,
        }
    }
}
