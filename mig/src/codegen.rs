//! Rust code for one subsystem and one ABI: pure encoders and decoders, and (for the ABI the
//! crate is built for) the client functions, the server trait and its demux.
//!
//! The generated code uses `crate::mig_rt` (message helpers, the per-ABI header functions)
//! and the runtime's `PortName`, owned rights, `OolMemory` and `kern::{Error, Result}`.

use crate::abi::Abi;
use crate::layout::{self, Data, Descriptor, Item, Message};
use crate::parser::{Arg, ArgKind, Routine, Subsystem};
use crate::types::{name, Count, MsgName, Type};

/// Text with indentation.
struct Out {
    text: String,
    indent: usize,
}

impl Out {
    fn line(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        if line.starts_with('}') || line.starts_with(')') {
            self.indent = self.indent.saturating_sub(1);
        }
        if !line.is_empty() {
            self.text.push_str(&"    ".repeat(self.indent));
        }
        self.text.push_str(line);
        self.text.push('\n');
        if line.ends_with('{') || line.ends_with('(') {
            self.indent += 1;
        }
    }
    fn doc(&mut self, text: &str) {
        for l in text.lines() {
            self.line(format!("/// {l}").trim_end());
        }
    }
}

/// The Rust value type of one element as seen by the sender (`sending`) or receiver.
fn element_type(ty: &Type) -> &'static str {
    match (ty.in_name, ty.element_bits) {
        (MsgName::Fixed(name::BOOLEAN), 32) if !ty.string => "bool",
        (MsgName::Fixed(name::PORT_NAME), _) => "PortName",
        (_, 8) => "u8",
        (_, 16) if ty.unsigned => "u16",
        (_, 16) => "i16",
        (_, 64) if ty.unsigned => "u64",
        (_, 64) => "i64",
        (_, _) if ty.unsigned => "u32",
        _ => "i32",
    }
}

fn is_port_right(ty: &Type) -> bool {
    ty.is_port() && ty.in_name != MsgName::Fixed(name::PORT_NAME)
}

/// The argument type of a port the sender puts in a message.
fn sent_port_type(ty: &Type) -> &'static str {
    match ty.in_name {
        MsgName::Fixed(name::MOVE_SEND) => "SendRight",
        MsgName::Fixed(name::MOVE_SEND_ONCE) => "SendOnceRight",
        MsgName::Fixed(name::MOVE_RECEIVE) => "ReceiveRight",
        MsgName::Polymorphic => "rt::PortArg",
        _ => "PortName",
    }
}

/// The owned type of a right as the receiver gets it.
fn received_port_type(ty: &Type) -> &'static str {
    match ty.out_name {
        MsgName::Fixed(name::PORT_SEND) => "SendRight",
        MsgName::Fixed(name::PORT_SEND_ONCE) => "SendOnceRight",
        MsgName::Fixed(name::PORT_RECEIVE) => "ReceiveRight",
        _ => "rt::Right",
    }
}

/// How one message item is represented on each side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar,
    Port,
    FixedArray(u32),
    FixedString(u32),
    Inline,
    OutOfLine,
    Indefinite,
}

fn shape(ty: &Type, item: &Item) -> Shape {
    match item.data {
        Data::OutOfLine => Shape::OutOfLine,
        Data::Indefinite { .. } => Shape::Indefinite,
        Data::Variable { .. } => Shape::Inline,
        Data::Fixed { bytes } if ty.string => Shape::FixedString(bytes),
        Data::Fixed { .. } if is_port_right(ty) && ty.max_count() == Some(1) => Shape::Port,
        Data::Fixed { .. } => match ty.count {
            Count::Fixed(1) => Shape::Scalar,
            Count::Fixed(n) => Shape::FixedArray(n),
            Count::Variable(_) => Shape::Inline,
        },
    }
}

/// The value a sender passes for `ty` (client request arguments, server reply values).
fn input_type(ty: &Type, item: &Item, server_reply: bool) -> String {
    let elem = element_type(ty);
    match shape(ty, item) {
        Shape::Scalar => elem.to_owned(),
        Shape::Port => sent_port_type(ty).to_owned(),
        Shape::FixedArray(n) => format!("&[{elem}; {n}]"),
        Shape::FixedString(_) => "&[u8]".to_owned(),
        Shape::Inline if server_reply => format!("&[{elem}]"),
        Shape::Inline => format!("&[{elem}]"),
        Shape::OutOfLine | Shape::Indefinite if ty.dealloc || server_reply => "OolMemory".to_owned(),
        Shape::OutOfLine | Shape::Indefinite => format!("&[{elem}]"),
    }
}

/// The value a pure decoder returns for `ty`: raw names for rights, `rt::OolRegion` for
/// out-of-line memory (the caller takes ownership), views into the message otherwise.
fn decoded_type(ty: &Type, item: &Item) -> String {
    let elem = element_type(ty);
    match shape(ty, item) {
        Shape::Scalar => elem.to_owned(),
        Shape::Port if ty.out_name == MsgName::Polymorphic => "rt::PortArg".to_owned(),
        Shape::Port => "PortName".to_owned(),
        Shape::FixedArray(n) => format!("[{elem}; {n}]"),
        Shape::FixedString(_) => "&'a [u8]".to_owned(),
        Shape::Inline if elem == "u8" => "&'a [u8]".to_owned(),
        Shape::Inline => format!("rt::Array<'a, {elem}>"),
        Shape::OutOfLine => "rt::OolRegion".to_owned(),
        Shape::Indefinite => "rt::Indefinite<'a>".to_owned(),
    }
}

/// A .defs name as a Rust identifier: raw when it is a Rust keyword, with a trailing `_` for
/// the keywords that cannot be raw.
fn rust_ident(name: &str) -> String {
    const KEYWORDS: [&str; 48] = [
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else",
        "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match",
        "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait", "true", "try",
        "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    match name {
        "self" | "Self" | "super" | "crate" => format!("{name}_"),
        _ if KEYWORDS.contains(&name) => format!("r#{name}"),
        _ => name.to_owned(),
    }
}

/// The `MACH_MSG_TYPE_*` name of a descriptor name, for comments.
fn type_name(n: u32) -> &'static str {
    match n {
        name::BOOLEAN => "BOOLEAN",
        name::INTEGER_16 => "INTEGER_16",
        name::INTEGER_32 => "INTEGER_32",
        name::CHAR => "CHAR",
        name::BYTE => "BYTE",
        name::REAL => "REAL",
        name::INTEGER_64 => "INTEGER_64",
        name::STRING => "STRING",
        name::PORT_NAME => "PORT_NAME",
        name::MOVE_RECEIVE => "MOVE_RECEIVE",
        name::MOVE_SEND => "MOVE_SEND",
        name::MOVE_SEND_ONCE => "MOVE_SEND_ONCE",
        name::COPY_SEND => "COPY_SEND",
        name::MAKE_SEND => "MAKE_SEND",
        name::MAKE_SEND_ONCE => "MAKE_SEND_ONCE",
        _ => "?",
    }
}

fn describe(d: &Descriptor) -> String {
    let name = d.name.map_or("polymorphic", type_name);
    let mut text = format!("{name}, {} bits", d.size_bits);
    if d.inline {
        text.push_str(&format!(" × {}", d.number));
    } else {
        text.push_str(", out of line");
    }
    if d.long {
        text.push_str(", long form");
    }
    if d.dealloc {
        text.push_str(", dealloc");
    }
    text
}

/// `off` as a Rust expression: a constant, or relative to `end` after a variable item.
fn at(item: &Item, extra: u32) -> String {
    let n = item.offset + extra;
    if item.after_variable {
        if n == 0 { "end".to_owned() } else { format!("end + {n}") }
    } else {
        n.to_string()
    }
}

fn data_at(abi: Abi, item: &Item) -> String {
    at(item, abi.descriptor_size(item.descriptor.long))
}

/// `offset` as an expression that stays valid once the code rebinds `end` (to the end of the
/// item at `offset`): a constant as it is, an `end`-relative offset bound to a local first.
fn pinned(o: &mut Out, offset: String) -> String {
    if offset.contains("end") {
        o.line(format!("let data_at = {offset};"));
        "data_at".to_owned()
    } else {
        offset
    }
}

/// Writes the descriptor of `item`; `number`/`name` override the fixed values at run time.
fn put_descriptor(o: &mut Out, abi: Abi, item: &Item, number: Option<&str>, name: Option<&str>) {
    let d = &item.descriptor;
    let bytes = d.bytes(abi);
    let off = at(item, 0);
    let described = describe(d);
    let described = match number {
        Some(_) if d.inline => described.replace(" × ", " × up to "),
        _ => described,
    };
    o.line(format!("// {}: {described}", item.name));
    match (abi, d.long) {
        (Abi::X86_64, _) | (Abi::I686, false) => {
            let mut word = u32::from_le_bytes(bytes[..4].try_into().unwrap());
            if abi == Abi::I686 && number.is_some() {
                // The i686 short form holds the count in bits 16..28: filled in at run time.
                word &= !(0xfff << 16);
            }
            let word = match name {
                Some(n) => format!("{word:#010x} | {n}"),
                None => format!("{word:#010x}"),
            };
            match (abi, number) {
                (Abi::X86_64, n) => {
                    let number = n.map_or(d.number.to_string(), |n| format!("{n} as u32"));
                    o.line(format!("rt::put_u32(buf, {off}, {word});"));
                    o.line(format!("rt::put_u32(buf, {}, {number});", at(item, 4)));
                }
                (Abi::I686, Some(n)) => o.line(format!("rt::put_u32(buf, {off}, {word} | ({n} as u32) << 16);")),
                (Abi::I686, None) => o.line(format!("rt::put_u32(buf, {off}, {word});")),
            }
        }
        (Abi::I686, true) => {
            let head = u32::from_le_bytes(bytes[..4].try_into().unwrap());
            let name_size = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            let name_size = match name {
                Some(n) => format!("{name_size:#010x} | {n}"),
                None => format!("{name_size:#010x}"),
            };
            let number = number.map_or(d.number.to_string(), |n| format!("{n} as u32"));
            o.line(format!("rt::put_u32(buf, {off}, {head:#010x});"));
            o.line(format!("rt::put_u32(buf, {}, {name_size});", at(item, 4)));
            o.line(format!("rt::put_u32(buf, {}, {number});", at(item, 8)));
        }
    }
}

/// Writes the data of a sent item from the Rust value `value`.
fn put_data(o: &mut Out, abi: Abi, ty: &Type, item: &Item, value: &str, complex: &mut bool) {
    let off = data_at(abi, item);
    let align = abi.align();
    match (shape(ty, item), item.data) {
        (Shape::Scalar, Data::Fixed { bytes }) => {
            // The value as an unsigned integer of its own width…
            let unsigned = format!("u{}", bytes * 8);
            let bits = match element_type(ty) {
                "bool" => format!("{unsigned}::from({value})"),
                "PortName" => format!("rt::port_bits({value})"),
                elem if elem == unsigned => value.to_owned(),
                _ => format!("{value} as {unsigned}"),
            };
            // …then zero-extended over its padding, so one store writes both.
            let slot = abi.round(bytes);
            let stored = if slot > bytes { format!("u{}::from({bits})", slot * 8) } else { bits };
            o.line(format!("rt::put_u{}(buf, {off}, {stored});", slot * 8));
        }
        (Shape::Port, Data::Fixed { .. }) => {
            let name = match sent_port_type(ty) {
                "PortName" => format!("rt::port_bits({value})"),
                "rt::PortArg" => format!("rt::port_bits({value}.name)"),
                _ => format!("rt::port_bits({value}.into_name())"),
            };
            if abi == Abi::X86_64 {
                o.line(format!("rt::put_u64(buf, {off}, u64::from({name}));"));
            } else {
                o.line(format!("rt::put_u32(buf, {off}, {name});"));
            }
            *complex = true;
        }
        (Shape::FixedArray(n), Data::Fixed { bytes }) => {
            let eb = bytes / n;
            if eb == 1 {
                o.line(format!("buf[{off}..{off} + {n}].copy_from_slice({value});"));
            } else {
                o.line(format!("rt::put_elements(buf, {off}, {value}, |e| e.to_le_bytes());"));
            }
            pad_fixed(o, abi, item, bytes);
        }
        (Shape::FixedString(bytes), _) => {
            o.line(format!("rt::put_c_string(&mut buf[{off}..{off} + {}], {value})?;", abi.round(bytes)));
        }
        (Shape::Inline, Data::Variable { element_bytes, .. }) => {
            let len = if element_bytes == 1 { format!("{value}.len()") } else { format!("{element_bytes} * {value}.len()") };
            let off = pinned(o, off);
            o.line(format!("let end = {off} + rt::round{align}({len});"));
            // Zero the padding first: the last word, which the data then partly overwrites.
            o.line(format!("rt::zero_padding{align}(buf, {off}, end);"));
            put_slice(o, &off, element_bytes, value);
        }
        (Shape::OutOfLine, _) => {
            let address = if input_type(ty, item, false) == "OolMemory" || value.ends_with(".1") {
                format!("{value}_address")
            } else {
                format!("{value}.as_ptr() as usize")
            };
            if abi == Abi::X86_64 {
                o.line(format!("rt::put_u64(buf, {off}, {address} as u64);"));
            } else {
                o.line(format!("rt::put_u32(buf, {off}, {address} as u32);"));
            }
            *complex = true;
        }
        _ => unreachable!("shape and data agree"),
    }
}

/// Writes slice `value` little-endian from `at`.
fn put_slice(o: &mut Out, at: &str, element_bytes: u32, value: &str) {
    if element_bytes == 1 {
        o.line(format!("buf[{at}..{at} + {value}.len()].copy_from_slice({value});"));
    } else {
        o.line(format!("rt::put_elements(buf, {at}, {value}, |e| e.to_le_bytes());"));
    }
}

/// Writes a 32-bit datum (a return code, a capacity) and its padding in one store.
fn put_word(o: &mut Out, abi: Abi, item: &Item, value: &str) {
    let data = data_at(abi, item);
    match abi {
        Abi::X86_64 => o.line(format!("rt::put_u64(buf, {data}, u64::from({value}));")),
        Abi::I686 => o.line(format!("rt::put_u32(buf, {data}, {value});")),
    }
}

fn pad_fixed(o: &mut Out, abi: Abi, item: &Item, bytes: u32) {
    let padded = abi.round(bytes);
    if padded > bytes {
        let data = abi.descriptor_size(item.descriptor.long);
        o.line(format!("buf[{}..{}].fill(0);", at(item, data + bytes), at(item, data + padded)));
    }
}

/// The element count of a variable sent value.
fn count_expr(ty: &Type, item: &Item, value: &str) -> String {
    if input_type(ty, item, false) == "OolMemory" {
        let bytes = (item.descriptor.size_bits / 8).max(1);
        if bytes == 1 { format!("{value}.len()") } else { format!("{value}.len() / {bytes}") }
    } else {
        format!("{value}.len()")
    }
}

/// Which message a receiver is checking.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A server's request: GNU MIG's servers check sizes against the descriptors only, not
    /// against the arrays' bounds (their receive buffer is the server loop's).
    Request,
    /// A client's reply: GNU MIG's clients receive into a buffer of the largest reply, so
    /// nothing beyond the bounds arrives.
    Reply,
}

impl Side {
    fn error(self) -> &'static str {
        match self {
            Side::Request => "rt::bad_arguments()",
            Side::Reply => "rt::type_error()",
        }
    }
}

struct Gen<'a> {
    abi: Abi,
    subsystem: &'a Subsystem,
    o: Out,
}

/// Generates the module body for `subsystem` in `abi`: the pure encoders and decoders, then
/// (compiled only for that ABI) the client functions, the server trait and its demux.
pub fn generate(subsystem: &Subsystem, abi: Abi) -> String {
    let mut g = Gen { abi, subsystem, o: Out { text: String::new(), indent: 0 } };
    g.messages();
    let pure = std::mem::replace(&mut g.o, Out { text: String::new(), indent: 0 }).text;
    g.native();
    let native = g.o.text;
    let width = match abi {
        Abi::X86_64 => "64",
        Abi::I686 => "32",
    };
    let mut text = format!("use crate::mig_rt::{{self as rt, {} as ABI}};\n", abi.module().to_uppercase());
    text += &imports(&pure, "");
    text += "\n";
    text += &pure;
    text += &format!("\n#[cfg(target_pointer_width = \"{width}\")]\npub use self::native::*;\n\n");
    text += "/// Client functions, the server trait and its demux: for the ABI being built.\n";
    text += &format!("#[cfg(target_pointer_width = \"{width}\")]\nmod native {{\n    use super::*;\n");
    for line in imports(&native, &pure).lines() {
        text += &format!("    {line}\n");
    }
    text += "\n";
    for line in native.lines() {
        text += &if line.is_empty() { "\n".to_owned() } else { format!("    {line}\n") };
    }
    text + "}\n"
}

/// The `use` lines for the runtime names `body` uses and `outer` (whose imports it sees through
/// `super::*`) does not.
fn imports(body: &str, outer: &str) -> String {
    let uses = |text: &str, name: &str| {
        text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '_');
            boundary(before) && boundary(after)
        })
    };
    let groups = [
        ("crate::kern", &["Error", "Result"][..]),
        ("crate::ool", &["OolMemory"][..]),
        ("crate::port", &["PortName", "ReceiveRight", "SendOnceRight", "SendRight"][..]),
    ];
    let mut lines = String::new();
    for (path, names) in groups {
        let names: Vec<&str> = names.iter().copied().filter(|n| uses(body, n) && !uses(outer, n)).collect();
        match names.as_slice() {
            [] => {}
            [one] => lines += &format!("use {path}::{one};\n"),
            many => lines += &format!("use {path}::{{{}}};\n", many.join(", ")),
        }
    }
    lines
}

impl<'a> Gen<'a> {
    /// The constants and, per routine, the request and reply encoders and decoders.
    fn messages(&mut self) {
        self.o.doc(&format!("First message id of the `{}` subsystem.", self.subsystem.name));
        self.o.line(format!("pub const BASE: i32 = {};", self.subsystem.base));
        let max_reply = self.routines().map(|r| layout::reply(self.abi, r).max_size).max().unwrap_or(0).max(self.abi.error_reply_size());
        self.o.doc("Room a reply buffer needs for any routine's reply.");
        self.o.line(format!("pub const MAX_REPLY_SIZE: usize = {max_reply};"));
        let routines: Vec<&'a Routine> = self.routines().collect();
        for routine in &routines {
            self.o.line("");
            self.routine_module(routine);
        }
    }

    /// The client functions, the server trait and the demux.
    fn native(&mut self) {
        let routines: Vec<&'a Routine> = self.routines().collect();
        for routine in &routines {
            self.client(routine);
            self.o.line("");
        }
        self.server_trait(&routines);
        self.o.line("");
        self.demux(&routines);
    }

    fn routines(&self) -> impl Iterator<Item = &'a Routine> + use<'a> {
        self.subsystem.routines.iter().flatten()
    }

    fn routine_doc(&self, routine: &Routine) -> String {
        let kind = if routine.simple { "simpleroutine" } else { "routine" };
        let args: Vec<String> = routine
            .args
            .iter()
            .map(|a| {
                let k = match a.kind {
                    ArgKind::In => "",
                    ArgKind::Out => "out ",
                    ArgKind::InOut => "inout ",
                    ArgKind::RequestPort => "",
                    ArgKind::ReplyPort => "replyport ",
                    ArgKind::SReplyPort => "sreplyport ",
                    ArgKind::UReplyPort => "ureplyport ",
                    ArgKind::MsgSeqno => "msgseqno ",
                    ArgKind::WaitTime => "waittime ",
                    ArgKind::MsgOption => "msgoption ",
                };
                format!("{k}{}: {}", a.name, a.ty.name)
            })
            .collect();
        format!("`{kind} {}({})`, message id {}.", routine.name, args.join("; "), routine.id)
    }

    fn request_port<'r>(&self, routine: &'r Routine) -> &'r Arg {
        routine.args.iter().find(|a| a.kind == ArgKind::RequestPort).expect("checked by the parser")
    }

    fn reply_port_arg<'r>(&self, routine: &'r Routine) -> Option<&'r Arg> {
        routine.args.iter().find(|a| matches!(a.kind, ArgKind::ReplyPort | ArgKind::UReplyPort))
    }

    fn routine_module(&mut self, routine: &Routine) {
        self.o.doc(&self.routine_doc(routine));
        self.o.line(format!("pub mod {} {{", routine.name));
        self.o.line("use super::*;");
        self.o.line("");
        self.o.doc("The request's message id.");
        self.o.line(format!("pub const ID: i32 = {};", routine.id));
        self.o.line("");
        self.request_module(routine);
        if !routine.simple {
            self.o.line("");
            self.reply_module(routine);
        }
        self.o.line("}");
    }

    // ---- requests ----

    fn request_module(&mut self, routine: &Routine) {
        let message = layout::request(self.abi, routine);
        self.message_module("request", "The request, as the client sends it.", &message, |g| {
            g.request_encoder(routine, &message);
            g.o.line("");
            g.request_decoder(routine, &message);
        });
    }

    /// `pub mod <name>` with the message's size bounds and the encoder and decoder `body` writes.
    fn message_module(&mut self, name: &str, doc: &str, message: &Message, body: impl FnOnce(&mut Self)) {
        self.o.doc(doc);
        self.o.line(format!("pub mod {name} {{"));
        self.o.line("use super::*;");
        self.o.line("");
        self.o.doc(&format!("Size of the {name} with every variable array empty."));
        self.o.line(format!("pub const MIN_SIZE: usize = {};", message.min_size));
        self.o.doc(&format!("Room the {name} needs: every variable array full."));
        self.o.line(format!("pub const MAX_SIZE: usize = {};", message.max_size));
        self.o.line("");
        body(self);
        self.o.line("}");
    }

    /// (argument name, Rust type) of the client's inputs, in .defs order.
    fn client_inputs(&self, routine: &Routine, message: &Message) -> Vec<(String, String)> {
        let mut inputs = Vec::new();
        for arg in &routine.args {
            match arg.kind {
                ArgKind::RequestPort => inputs.push((rust_ident(&arg.name), sent_port_type(&arg.ty).to_owned())),
                ArgKind::ReplyPort | ArgKind::UReplyPort => inputs.push((rust_ident(&arg.name), sent_port_type(&arg.ty).to_owned())),
                ArgKind::In | ArgKind::InOut => {
                    let item = message.items.iter().find(|i| i.name == arg.name).expect("request item");
                    inputs.push((rust_ident(&arg.name), input_type(&arg.ty, item, false)));
                }
                ArgKind::Out if arg.count_in_out => inputs.push((format!("{}_capacity", arg.name), "u32".to_owned())),
                _ => {}
            }
        }
        inputs
    }

    fn request_encoder(&mut self, routine: &Routine, message: &Message) {
        let abi = self.abi;
        let inputs = self.client_inputs(routine, message);
        let has_reply_arg = self.reply_port_arg(routine).is_some();
        let mut params: Vec<String> = vec!["buf: &mut [u8]".into()];
        params.extend(inputs.iter().map(|(n, t)| format!("{n}: {t}")));
        if !has_reply_arg && !routine.simple {
            params.push("reply_to: PortName".into());
        }
        self.o.doc("Builds the request in `buf` and returns its size. Fails with `MIG_ARRAY_TOO_LARGE` when an array\nexceeds its bound or `buf` is shorter than [`MAX_SIZE`].");
        self.o.line(format!("pub fn encode({}) -> Result<usize> {{", params.join(", ")));
        self.o.line("let buf = rt::room::<MAX_SIZE>(buf)?;");
        // Bounds first, so nothing is written for a request that cannot be sent.
        for arg in routine.args.iter().filter(|a| a.in_request() && a.kind != ArgKind::Out) {
            let item = message.items.iter().find(|i| i.name == arg.name).unwrap();
            if let Data::Variable { max, .. } = item.data {
                self.o.line(format!("if {} > {max} {{", count_expr(&arg.ty, item, &rust_ident(&arg.name))));
                self.o.line("return Err(rt::array_too_large());");
                self.o.line("}");
            }
        }
        let mut complex = false;
        let mut dynamic_complex = Vec::new();
        for item in &message.items {
            let Some(arg) = routine.args.iter().find(|a| a.name == item.name) else {
                // A CountInOut capacity, never more than the array holds (as GNU MIG's clients).
                put_descriptor(&mut self.o, abi, item, None, None);
                let base = item.name.trim_end_matches("Cnt");
                let max = routine.args.iter().find(|a| a.name == base).and_then(|a| a.ty.max_count()).unwrap_or(u32::MAX);
                put_word(&mut self.o, abi, item, &format!("{base}_capacity.min({max})"));
                continue;
            };
            let value = rust_ident(&arg.name);
            if let Data::Indefinite { .. } = item.data {
                let owned = input_type(&arg.ty, item, false) == "OolMemory";
                put_indefinite(&mut self.o, abi, item, &value, owned, &mut dynamic_complex);
                continue;
            }
            let ool_owned = matches!(item.data, Data::OutOfLine) && input_type(&arg.ty, item, false) == "OolMemory";
            if ool_owned {
                self.o.line(format!("let ({value}_address, {value}_len) = {value}.into_raw();"));
            }
            let number = match item.data {
                Data::Variable { .. } => Some(count_expr(&arg.ty, item, &value)),
                Data::OutOfLine if ool_owned => {
                    let eb = (item.descriptor.size_bits / 8).max(1);
                    Some(if eb == 1 { format!("{value}_len") } else { format!("({value}_len / {eb})") })
                }
                Data::OutOfLine => Some(format!("{value}.len()")),
                Data::Fixed { .. } | Data::Indefinite { .. } => None,
            };
            let poly = (item.descriptor.name.is_none()).then(|| {
                dynamic_complex.push(format!("rt::is_port({value}.disposition)"));
                format!("{value}.disposition")
            });
            let mut item = item.clone();
            item.descriptor.dealloc |= arg.dealloc_chosen_by_caller;
            let item = &item;
            put_descriptor(&mut self.o, abi, item, number.as_deref(), poly.as_deref());
            let mut item_complex = false;
            put_data(&mut self.o, abi, &arg.ty, item, &value, &mut item_complex);
            if item_complex && item.descriptor.name.is_some() {
                complex = true;
            }
        }
        let size = size_expr(abi, message);
        // The header last: its bits depend on what the body carries.
        let request_port = self.request_port(routine);
        let (remote, remote_name) = self.sent_port(request_port);
        let (local, local_name) = match self.reply_port_arg(routine) {
            Some(arg) => self.sent_port(arg),
            None if routine.simple => ("0".to_owned(), "PortName::NULL".to_owned()),
            None => (name::MAKE_SEND_ONCE.to_string(), "reply_to".to_owned()),
        };
        let dispositions = if local == "0" { remote } else { format!("{remote} | {local} << 8") };
        self.finish_message(&size, &dispositions, complex, &dynamic_complex, &format!("{remote_name}, {local_name}, ID"));
    }

    /// Ends an encoder: the header (whose complex bit depends on what the body carries, some
    /// of it known only at run time) and the size.
    fn finish_message(&mut self, size: &str, dispositions: &str, complex: bool, dynamic: &[String], ports_and_id: &str) {
        let mut bits = dispositions.to_owned();
        if complex {
            bits.push_str(" | rt::COMPLEX");
        }
        for is_complex in dynamic {
            bits.push_str(&format!(" | rt::complex_if({is_complex})"));
        }
        self.o.line(format!("let size = {size};"));
        self.o.line(format!("ABI.put_header(buf, {bits}, size, {ports_and_id});"));
        self.o.line("Ok(size)");
        self.o.line("}");
    }

    /// (disposition expression, name expression) of a header port the client sends.
    fn sent_port(&self, arg: &Arg) -> (String, String) {
        let v = rust_ident(&arg.name);
        match sent_port_type(&arg.ty) {
            "rt::PortArg" => (format!("{v}.disposition"), format!("{v}.name")),
            "PortName" => (self.fixed_name(arg.ty.in_name), v),
            _ => (self.fixed_name(arg.ty.in_name), format!("{v}.into_name()")),
        }
    }

    fn fixed_name(&self, n: MsgName) -> String {
        match n {
            MsgName::Fixed(n) => n.to_string(),
            MsgName::Polymorphic => unreachable!("polymorphic names come from arguments"),
        }
    }

    fn request_decoder(&mut self, routine: &Routine, message: &Message) {
        let abi = self.abi;
        let lifetime = self.needs_lifetime(routine, message, true);
        let struct_name = if lifetime { "Request<'a>" } else { "Request" };
        let carries = if message.may_be_complex() {
            " Rights and out-of-line memory in it are raw:\nthe receiver now holds them."
        } else {
            ""
        };
        self.o.doc(&format!("A request as the server receives it.{carries}"));
        self.o.line("#[derive(Debug)]");
        // (field, type, value in `decode`, doc)
        let request_port = rust_ident(&self.request_port(routine).name);
        let mut fields = vec![
            (request_port, "PortName".to_owned(), "header.local_port".to_owned(), Some("The port the request arrived on.".to_owned())),
            ("header".to_owned(), "rt::Header".to_owned(), "header".to_owned(), Some("The received header: the reply goes to its `remote_port`.".to_owned())),
        ];
        for arg in routine.args.iter().filter(|a| a.kind == ArgKind::MsgSeqno) {
            fields.push((rust_ident(&arg.name), "u32".to_owned(), "header.seqno".to_owned(), None));
        }
        for item in &message.items {
            match routine.args.iter().find(|a| a.name == item.name) {
                Some(arg) => {
                    let name = rust_ident(&arg.name);
                    fields.push((name.clone(), decoded_type(&arg.ty, item), name, None));
                }
                None => {
                    let base = item.name.trim_end_matches("Cnt");
                    let name = format!("{base}_capacity");
                    fields.push((name.clone(), "u32".to_owned(), name, Some(format!("Room the client has for `{base}`."))));
                }
            }
        }
        self.o.line(format!("pub struct {struct_name} {{"));
        for (name, ty, _, doc) in &fields {
            if let Some(doc) = doc {
                self.o.doc(doc);
            }
            self.o.line(format!("pub {name}: {ty},"));
        }
        self.o.line("}");
        self.o.line("");
        self.o.doc("Checks a received request as GNU MIG's servers do (`MIG_BAD_ARGUMENTS` for a wrong size,\ncomplex bit or descriptor) and decodes it.");
        let ret = if lifetime { "Request<'_>" } else { "Request" };
        self.o.line(format!("pub fn decode(msg: &[u8]) -> Result<{ret}> {{"));
        self.o.line("let header = ABI.header(msg).ok_or(rt::bad_arguments())?;");
        self.o.line("let msg = &msg[..header.size];");
        self.size_and_bits_check(message, Side::Request);
        self.item_checks_and_reads(routine, message, Side::Request);
        self.o.line("Ok(Request {");
        for (name, _, value, _) in &fields {
            if name == value {
                self.o.line(format!("{name},"));
            } else {
                self.o.line(format!("{name}: {value},"));
            }
        }
        self.o.line("})");
        self.o.line("}");
        let _ = abi;
    }

    fn needs_lifetime(&self, routine: &Routine, message: &Message, request: bool) -> bool {
        message.items.iter().any(|item| {
            routine.args.iter().find(|a| a.name == item.name).is_some_and(|arg| {
                (request || arg.kind != ArgKind::In) && decoded_type(&arg.ty, item).contains("'a")
            })
        })
    }

    /// The size and complex-bit checks a receiver makes before reading any item.
    fn size_and_bits_check(&mut self, message: &Message, side: Side) {
        let error = side.error();
        if message.items.iter().any(|i| i.data.fixed_size(self.abi).is_none()) {
            match side {
                Side::Request => self.o.line("if msg.len() < MIN_SIZE {"),
                Side::Reply => self.o.line("if msg.len() < MIN_SIZE || msg.len() > MAX_SIZE {"),
            }
        } else {
            self.o.line("if msg.len() != MIN_SIZE {");
        }
        self.o.line(format!("return Err({error});"));
        self.o.line("}");
        // A message with rights or memory must say so; one without must not — unless a
        // polymorphic or indefinite item decides at run time (checked where it is read).
        if message.complex {
            self.o.line("if !header.complex() {");
        } else if !message.complex_at_run_time() {
            self.o.line("if header.complex() {");
        } else {
            return;
        }
        self.o.line(format!("return Err({error});"));
        self.o.line("}");
    }

    /// Bounds an inline array's count before its size is computed: by the array's bound in a
    /// reply; in a request (whose size alone GNU MIG checks), by the message length, so the
    /// size cannot overflow.
    fn count_bound(&mut self, side: Side, local: &str, max: u32) {
        match side {
            Side::Reply => self.o.line(format!("if {local}_count > {max} {{")),
            Side::Request => self.o.line(format!("if {local}_count > msg.len() {{")),
        }
        self.o.line(format!("return Err({});", side.error()));
        self.o.line("}");
    }

    /// Reads an indefinite array: inline data, or out-of-line memory in a complex message only.
    /// GNU MIG's stubs take the pointer whatever the complex bit says; in a message without it
    /// the kernel copied nothing, so the "address" is whatever the sender wrote, and adopting it
    /// would let a sender unmap the receiver's memory. Refused on purpose.
    #[allow(clippy::too_many_arguments)]
    fn read_indefinite(&mut self, item: &Item, expected: &Descriptor, local: &str, element_bytes: u32, inline_max: u32, is_last: bool, side: Side) {
        let abi = self.abi;
        let error = side.error();
        let off = at(item, 0);
        let data = data_at(abi, item);
        let name = expected.name.unwrap_or(0);
        self.o.line(format!("let {local}_inline = ABI.descriptor_inline(msg, {off});"));
        self.o.line(format!(
            "if !ABI.descriptor_kind_is(msg, {off}, {name}, {}, {local}_inline, true) {{",
            expected.size_bits
        ));
        self.o.line(format!("return Err({error});"));
        self.o.line("}");
        self.o.line(format!("let {local}_count = ABI.descriptor_number(msg, {off}, true) as usize;"));
        let data = pinned(&mut self.o, data);
        self.o.line(format!("let ({local}, end) = if {local}_inline {{"));
        self.count_bound(side, local, inline_max);
        let len = if element_bytes == 1 { format!("{local}_count") } else { format!("{element_bytes} * {local}_count") };
        self.o.line(format!("let end = {data} + rt::round{}({len});", abi.align()));
        self.o.line("if msg.len() < end {");
        self.o.line(format!("return Err({error});"));
        self.o.line("}");
        self.o.line(format!("(rt::Indefinite::Inline(&msg[{data}..{data} + {len}]), end)"));
        self.o.line("} else {");
        self.o.line(format!("let end = {data} + {};", abi.align()));
        self.o.line("if !header.complex() || msg.len() < end {");
        self.o.line(format!("return Err({error});"));
        self.o.line("}");
        let address = if abi == Abi::X86_64 { format!("rt::get_u64(msg, {data}) as usize") } else { format!("rt::get_u32(msg, {data}) as usize") };
        self.o.line(format!("let region = rt::OolRegion {{ address: {address}, len: {len} }};"));
        self.o.line("(rt::Indefinite::OutOfLine(region), end)");
        self.o.line("};");
        if is_last {
            self.o.line("if msg.len() != end {");
            self.o.line(format!("return Err({error});"));
            self.o.line("}");
        }
    }

    /// Checks each item's descriptor and reads its value into a local of the argument's name.
    fn item_checks_and_reads(&mut self, routine: &Routine, message: &Message, side: Side) {
        let error = side.error();
        let abi = self.abi;
        for item in &message.items {
            let arg = routine.args.iter().find(|a| a.name == item.name);
            let expected = match arg {
                Some(arg) => layout::received(abi, arg),
                None => item.descriptor,
            };
            let local = match arg {
                Some(arg) => rust_ident(&arg.name),
                None => format!("{}_capacity", item.name.trim_end_matches("Cnt")),
            };
            if item.after_variable {
                let needed = item.offset + abi.descriptor_size(item.descriptor.long) + item.data.fixed_size(abi).unwrap_or(0);
                // The last item of a fixed size after a variable one ends the message: as GNU
                // MIG's stubs, refuse a message longer than that as well as a shorter one.
                let last = std::ptr::eq(item, message.items.last().unwrap()) && item.data.fixed_size(abi).is_some();
                let compare = if last { "!=" } else { "<" };
                self.o.line(format!("if msg.len() {compare} end + {needed} {{"));
                self.o.line(format!("return Err({error});"));
                self.o.line("}");
            }
            let off = at(item, 0);
            if let Data::Indefinite { element_bytes, inline_max } = item.data {
                let is_last = std::ptr::eq(item, message.items.last().unwrap());
                self.read_indefinite(item, &expected, &local, element_bytes, inline_max, is_last, side);
                continue;
            }
            let check = match (item.data, expected.name, expected.long) {
                (Data::Fixed { .. }, Some(_), false) => {
                    format!("ABI.same_descriptor(msg, {off}, {})", descriptor_literal(abi, &expected))
                }
                (Data::Fixed { .. }, Some(n), true) => {
                    format!("ABI.long_descriptor_is(msg, {off}, {n}, {}, {}, true)", expected.size_bits, expected.number)
                }
                (Data::Fixed { .. }, None, _) => {
                    format!("ABI.polymorphic_descriptor_is(msg, {off}, {}, header.complex())", expected.size_bits)
                }
                (Data::Variable { .. }, n, long) => {
                    format!("ABI.descriptor_kind_is(msg, {off}, {}, {}, true, {long})", n.unwrap_or(0), expected.size_bits)
                }
                (Data::OutOfLine, n, _) => {
                    format!("ABI.descriptor_kind_is(msg, {off}, {}, {}, false, true)", n.unwrap_or(0), expected.size_bits)
                }
                (Data::Indefinite { .. }, _, _) => unreachable!("read by read_indefinite"),
            };
            self.o.line(format!("if !{check} {{"));
            self.o.line(format!("return Err({error});"));
            self.o.line("}");
            let data = data_at(abi, item);
            let ty = arg.map(|a| &a.ty);
            match (ty.map(|t| shape(t, item)), item.data) {
                (None, _) => {
                    // As GNU MIG's servers do: never promise more than the array can hold.
                    let base = item.name.trim_end_matches("Cnt");
                    let max = routine.args.iter().find(|a| a.name == base).and_then(|a| a.ty.max_count()).unwrap_or(u32::MAX);
                    self.o.line(format!("let {local} = rt::get_u32(msg, {data}).min({max});"));
                }
                (Some(Shape::Scalar), Data::Fixed { bytes }) => {
                    let ty = ty.unwrap();
                    let elem = element_type(ty);
                    let get = match bytes {
                        1 => "get_u8",
                        2 => "get_u16",
                        8 => "get_u64",
                        _ => "get_u32",
                    };
                    let expr = match elem {
                        "bool" => format!("rt::{get}(msg, {data}) != 0"),
                        "PortName" => format!("rt::port_from(rt::{get}(msg, {data}))"),
                        "u8" | "u16" | "u32" | "u64" if matches!((elem, bytes), ("u8", 1) | ("u16", 2) | ("u32", 4) | ("u64", 8)) => format!("rt::{get}(msg, {data})"),
                        _ => format!("rt::{get}(msg, {data}) as {elem}"),
                    };
                    self.o.line(format!("let {local} = {expr};"));
                }
                (Some(Shape::Port), _) => {
                    let raw = if abi == Abi::X86_64 { format!("rt::get_u64(msg, {data}) as u32") } else { format!("rt::get_u32(msg, {data})") };
                    if decoded_type(ty.unwrap(), item) == "rt::PortArg" {
                        self.o.line(format!(
                            "let {local} = rt::PortArg {{ name: rt::port_from({raw}), disposition: ABI.descriptor_name(msg, {off}) }};"
                        ));
                    } else {
                        self.o.line(format!("let {local} = rt::port_from({raw});"));
                    }
                }
                (Some(Shape::FixedArray(n)), Data::Fixed { bytes }) => {
                    let elem = element_type(ty.unwrap());
                    let eb = bytes / n;
                    self.o.line(format!("let {local}: [{elem}; {n}] = core::array::from_fn(|i| rt::get_le::<{elem}>(msg, {data} + {eb} * i));"));
                }
                (Some(Shape::FixedString(bytes)), _) => {
                    self.o.line(format!("let {local} = rt::c_string(&msg[{data}..{data} + {bytes}]);"));
                }
                (Some(Shape::Inline), Data::Variable { element_bytes, max }) => {
                    let number = format!("ABI.descriptor_number(msg, {off}, {})", expected.long);
                    self.o.line(format!("let {local}_count = {number} as usize;"));
                    self.count_bound(side, local.as_str(), max);
                    let len = if element_bytes == 1 { format!("{local}_count") } else { format!("{element_bytes} * {local}_count") };
                    let data = pinned(&mut self.o, data);
                    self.o.line(format!("let end = {data} + rt::round{}({len});", abi.align()));
                    let is_last = std::ptr::eq(item, message.items.last().unwrap());
                    if is_last {
                        self.o.line("if msg.len() != end {");
                    } else {
                        self.o.line("if msg.len() < end {");
                    }
                    self.o.line(format!("return Err({error});"));
                    self.o.line("}");
                    let bytes = format!("&msg[{data}..{data} + {len}]");
                    if element_bytes == 1 {
                        self.o.line(format!("let {local} = {bytes};"));
                    } else {
                        self.o.line(format!("let {local} = rt::Array::new({bytes});"));
                    }
                }
                (Some(Shape::OutOfLine), _) => {
                    let number = format!("ABI.descriptor_number(msg, {off}, true)");
                    let address = if abi == Abi::X86_64 { format!("rt::get_u64(msg, {data}) as usize") } else { format!("rt::get_u32(msg, {data}) as usize") };
                    let eb = (expected.size_bits / 8).max(1);
                    let len = if eb == 1 { format!("{number} as usize") } else { format!("{number} as usize * {eb}") };
                    self.o.line(format!("let {local} = rt::OolRegion {{ address: {address}, len: {len} }};"));
                }
                _ => unreachable!("shape and data agree"),
            }
        }
    }

    // ---- replies ----

    fn reply_module(&mut self, routine: &Routine) {
        let message = layout::reply(self.abi, routine);
        self.message_module("reply", "The reply, as the server sends it.", &message, |g| {
            g.reply_encoder(routine, &message);
            g.o.line("");
            g.reply_decoder(routine, &message);
        });
    }

    /// (name, type) of what a server returns for a routine.
    fn server_outputs(&self, routine: &Routine, message: &Message) -> Vec<(String, String)> {
        message
            .items
            .iter()
            .skip(1)
            .map(|item| {
                let arg = routine.args.iter().find(|a| a.name == item.name).unwrap();
                (rust_ident(&arg.name), input_type(&arg.ty, item, true))
            })
            .collect()
    }

    fn reply_encoder(&mut self, routine: &Routine, message: &Message) {
        let abi = self.abi;
        let outputs = self.server_outputs(routine, message);
        let value_type = tuple_type(&outputs);
        self.o.doc("Builds the reply to the request whose reply port and disposition are given, and returns its\nsize: the values on success, or an error reply (return code only).");
        self.o.line(format!(
            "pub fn encode(buf: &mut [u8], reply_port: PortName, reply_disposition: u32, result: Result<{value_type}>) -> Result<usize> {{"
        ));
        self.o.line("let buf = rt::room::<MAX_SIZE>(buf)?;");
        let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
        let pattern = match names.len() {
            0 => "()".to_owned(),
            1 => names[0].to_owned(),
            _ => format!("({})", names.join(", ")),
        };
        let error_reply = "return Ok(ABI.put_error_reply(buf, reply_port, reply_disposition, ID + 100, error))";
        if names.is_empty() {
            self.o.line("if let Err(error) = result {");
            self.o.line(format!("{error_reply};"));
            self.o.line("}");
        } else {
            self.o.line(format!("let {pattern} = match result {{"));
            self.o.line("Ok(values) => values,");
            self.o.line(format!("Err(error) => {error_reply},"));
            self.o.line("};");
        }
        for item in message.items.iter().skip(1) {
            let arg = routine.args.iter().find(|a| a.name == item.name).unwrap();
            if let Data::Variable { max, .. } = item.data {
                self.o.line(format!("if {}.len() > {max} {{", rust_ident(&arg.name)));
                self.o.line("return Err(rt::array_too_large());");
                self.o.line("}");
            }
        }
        let retcode = &message.items[0];
        put_descriptor(&mut self.o, abi, retcode, None, None);
        put_word(&mut self.o, abi, retcode, "0u32");
        let mut complex = false;
        let mut dynamic = Vec::new();
        for item in message.items.iter().skip(1) {
            let arg = routine.args.iter().find(|a| a.name == item.name).unwrap();
            let value = rust_ident(&arg.name);
            if let Data::Indefinite { .. } = item.data {
                put_indefinite(&mut self.o, abi, item, &value, true, &mut dynamic);
                continue;
            }
            let owned = matches!(item.data, Data::OutOfLine);
            if owned {
                self.o.line(format!("let ({value}_address, {value}_len) = {value}.into_raw();"));
            }
            let number = match item.data {
                Data::Variable { .. } => Some(format!("{value}.len()")),
                Data::OutOfLine => {
                    let eb = (item.descriptor.size_bits / 8).max(1);
                    Some(if eb == 1 { format!("{value}_len") } else { format!("({value}_len / {eb})") })
                }
                Data::Fixed { .. } | Data::Indefinite { .. } => None,
            };
            let poly = item.descriptor.name.is_none().then(|| {
                dynamic.push(format!("rt::is_port({value}.disposition)"));
                format!("{value}.disposition")
            });
            put_descriptor(&mut self.o, abi, item, number.as_deref(), poly.as_deref());
            let mut c = false;
            let shown = if owned { format!("{value}_address") } else { value.clone() };
            put_data_reply(&mut self.o, abi, &arg.ty, item, &value, &shown, &mut c);
            if c && item.descriptor.name.is_some() {
                complex = true;
            }
        }
        let size = size_expr(abi, message);
        self.finish_message(&size, "reply_disposition", complex, &dynamic, "reply_port, PortName::NULL, ID + 100");
    }

    fn reply_decoder(&mut self, routine: &Routine, message: &Message) {
        let outputs: Vec<(String, String)> = message
            .items
            .iter()
            .skip(1)
            .map(|item| {
                let arg = routine.args.iter().find(|a| a.name == item.name).unwrap();
                (rust_ident(&arg.name), decoded_type(&arg.ty, item))
            })
            .collect();
        let lifetime = outputs.iter().any(|(_, t)| t.contains("'a"));
        let ret = tuple_type(&outputs).replace("'a", "'_");
        let carries = if message.may_be_complex() {
            "\nRights and out-of-line memory in it are raw: the receiver now holds them."
        } else {
            ""
        };
        self.o.doc(&format!("Checks a reply completely, as GNU MIG's clients do, and decodes it: `MIG_SERVER_DIED` for a\nsend-once notification, `MIG_REPLY_MISMATCH` for another id, `MIG_TYPE_ERROR` for a wrong\nsize, complex bit or descriptor, the server's return code when it is not success.{carries}"));
        let _ = lifetime;
        self.o.line(format!("pub fn decode(msg: &[u8]) -> Result<{ret}> {{"));
        self.o.line("let header = ABI.header(msg).ok_or(rt::type_error())?;");
        self.o.line("rt::check_reply_id(header.id, ID + 100)?;");
        self.o.line("let msg = &msg[..header.size];");
        self.o.line("ABI.check_return_code(msg)?;");
        self.size_and_bits_check(message, Side::Reply);
        let mut items = message.clone();
        items.items.remove(0);
        self.item_checks_and_reads(routine, &items, Side::Reply);
        let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
        match names.len() {
            0 => self.o.line("Ok(())"),
            1 => self.o.line(format!("Ok({})", names[0])),
            _ => self.o.line(format!("Ok(({}))", names.join(", "))),
        }
        self.o.line("}");
    }

    // ---- client ----

    fn client(&mut self, routine: &Routine) {
        let abi = self.abi;
        let request = layout::request(abi, routine);
        let inputs = self.client_inputs(routine, &request);
        let mut params: Vec<String> = inputs.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let args: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        // A `waittime` argument bounds the call, in milliseconds.
        let timeout = match routine.args.iter().find(|a| a.kind == ArgKind::WaitTime) {
            Some(arg) => {
                let name = rust_ident(&arg.name);
                params.push(format!("{name}: u32"));
                format!("Some({name})")
            }
            None => "None".to_owned(),
        };
        if routine.simple {
            self.o.doc(&format!("Sends `{}` (no reply).", routine.name));
            self.o.line(format!("pub fn {}({}) -> Result<()> {{", routine.name, params.join(", ")));
            self.o.line(format!("let mut buf = crate::msg::MsgBuf::<{{ {}::request::MAX_SIZE }}>::new();", routine.name));
            self.o.line(format!("let size = {}::request::encode(buf.as_bytes_mut(), {})?;", routine.name, args.join(", ")));
            self.o.line(format!("crate::msg::send(buf.as_bytes_mut(), size, {timeout})"));
            self.o.line("}");
            return;
        }
        self.o.doc(&format!("Calls `{}` and waits for the reply.", routine.name));
        let reply = layout::reply(abi, routine);
        let outputs: Vec<(String, String, &Arg, &Item)> = reply
            .items
            .iter()
            .skip(1)
            .map(|item| {
                let arg = routine.args.iter().find(|a| a.name == item.name).unwrap();
                (rust_ident(&arg.name), client_output_type(&arg.ty, item), arg, item)
            })
            .collect();
        let ret = tuple_type(&outputs.iter().map(|(n, t, _, _)| (n.clone(), t.clone())).collect::<Vec<_>>());
        self.o.line(format!("pub fn {}({}) -> Result<{ret}> {{", routine.name, params.join(", ")));
        self.o.line(format!(
            "let mut buf = crate::msg::MsgBuf::<{{ rt::max({name}::request::MAX_SIZE, {name}::reply::MAX_SIZE) }}>::new();",
            name = routine.name
        ));
        let mut call_args = args.clone();
        let reply_owned = self.reply_port_arg(routine).is_none();
        if reply_owned {
            call_args.push("crate::reply_port()");
        }
        self.o.line(format!("let size = {}::request::encode(buf.as_bytes_mut(), {})?;", routine.name, call_args.join(", ")));
        self.o.line(format!("let reply = crate::msg::rpc(buf.as_bytes_mut(), size, {timeout})?;"));
        let decode = format!("{}::reply::decode(reply)", routine.name);
        match outputs.as_slice() {
            [] => self.o.line(decode),
            [(_, ty, _, _)] => match conversion(ty) {
                Conversion::None => self.o.line(decode),
                Conversion::Infallible(f) => self.o.line(format!("{decode}.map({f})")),
                Conversion::Fallible(f) => self.o.line(format!("{decode}.and_then({f})")),
            },
            _ => {
                let names: Vec<&str> = outputs.iter().map(|(n, _, _, _)| n.as_str()).collect();
                self.o.line(format!("let ({}) = {decode}?;", names.join(", ")));
                let converted: Vec<String> = outputs
                    .iter()
                    .map(|(n, ty, _, _)| match conversion(ty) {
                        Conversion::None => n.clone(),
                        Conversion::Infallible(f) => format!("{f}({n})"),
                        Conversion::Fallible(f) => format!("{f}({n})?"),
                    })
                    .collect();
                self.o.line(format!("Ok(({}))", converted.join(", ")));
            }
        }
        self.o.line("}");
    }

    // ---- server ----

    fn server_inputs(&self, routine: &Routine, message: &Message) -> Vec<(String, String, String)> {
        // (name, method parameter type, conversion from the decoded request `r`)
        let mut inputs = Vec::new();
        let request_port = self.request_port(routine);
        inputs.push((rust_ident(&request_port.name), "PortName".to_owned(), format!("r.{}", rust_ident(&request_port.name))));
        for arg in &routine.args {
            if arg.kind == ArgKind::MsgSeqno {
                inputs.push((rust_ident(&arg.name), "u32".into(), format!("r.{}", rust_ident(&arg.name))));
            }
        }
        for item in &message.items {
            match routine.args.iter().find(|a| a.name == item.name) {
                Some(arg) => {
                    let n = rust_ident(&arg.name);
                    let decoded = decoded_type(&arg.ty, item);
                    let (t, conv) = match decoded.as_str() {
                        "PortName" if is_port_right(&arg.ty) => {
                            let owned = received_port_type(&arg.ty);
                            (owned.to_owned(), format!("{owned}::from_name(r.{n})"))
                        }
                        "rt::PortArg" => ("rt::Right".to_owned(), format!("rt::Right::from_arg(r.{n})")),
                        "rt::OolRegion" | "rt::Indefinite<'a>" => ("OolMemory".to_owned(), format!("rt::into_ool(r.{n})")),
                        other if other.starts_with('[') => (other.to_owned(), format!("r.{n}")),
                        other if other.contains("'a") => (other.replace("'a ", "").replace("<'a, ", "<'_, "), format!("r.{n}")),
                        other => (other.to_owned(), format!("r.{n}")),
                    };
                    inputs.push((n, t, conv));
                }
                None => {
                    let base = item.name.trim_end_matches("Cnt");
                    inputs.push((format!("{base}_capacity"), "u32".into(), format!("r.{base}_capacity")));
                }
            }
        }
        inputs
    }

    fn server_trait(&mut self, routines: &[&Routine]) {
        self.o.doc(&format!(
            "A server of the `{}` interface: one method per routine. Every method has a default body that\nanswers `MIG_BAD_ID`, so a server implements the routines it serves. A routine's method gets its\n`reply_to` port; calling [`rt::ReplyPort::defer`] keeps it to answer later with the routine's\n`reply::encode`, and the demux then sends nothing.",
            self.subsystem.name
        ));
        self.o.line("pub trait Server {");
        for (i, routine) in routines.iter().enumerate() {
            if i > 0 {
                self.o.line("");
            }
            let request = layout::request(self.abi, routine);
            let inputs = self.server_inputs(routine, &request);
            let mut params = vec!["&mut self".to_owned()];
            if !routine.simple {
                params.push("reply_to: rt::ReplyPort<'_>".into());
            }
            params.extend(inputs.iter().map(|(n, t, _)| format!("{n}: {t}")));
            let ret = if routine.simple {
                "Result<()>".to_owned()
            } else {
                let reply = layout::reply(self.abi, routine);
                format!("Result<{}>", tuple_type(&self.server_outputs(routine, &reply)))
            };
            self.o.doc(&self.routine_doc(routine));
            self.o.line("#[allow(unused_variables)]");
            self.o.line(format!("fn {}({}) -> {ret} {{", routine.name, params.join(", ")));
            self.o.line("Err(rt::bad_id())");
            self.o.line("}");
        }
        self.o.line("}");
    }

    fn demux(&mut self, routines: &[&Routine]) {
        self.o.doc(&format!(
            "Serves one request of the `{}` interface: checks it as GNU MIG's servers do, calls the\n`server` method and writes the reply into `reply`. Never reads past `request`.",
            self.subsystem.name
        ));
        self.o.line("pub fn demux<S: Server + ?Sized>(server: &mut S, request: &[u8], reply: &mut [u8]) -> rt::Demuxed {");
        self.o.line("let Some(header) = ABI.header(request) else {");
        self.o.line("return rt::Demuxed::Malformed;");
        self.o.line("};");
        self.o.line("match header.id {");
        for routine in routines {
            let name = &routine.name;
            let request = layout::request(self.abi, routine);
            let inputs = self.server_inputs(routine, &request);
            self.o.line(format!("{name}::ID => {{"));
            let error_reply = if routine.simple { "{ let _ = error; rt::Demuxed::Rejected(0) }".to_owned() } else {
                format!("rt::Demuxed::Rejected(ABI.put_error_reply(reply, header.remote_port, header.reply_disposition(), {name}::ID + 100, error))")
            };
            self.o.line(format!("let r = match {name}::request::decode(request) {{"));
            self.o.line("Ok(r) => r,");
            self.o.line(format!("Err(error) => return {error_reply},"));
            self.o.line("};");
            let mut convs: Vec<String> = Vec::new();
            for (n, _, conv) in &inputs {
                if conv.starts_with("rt::into_ool") {
                    self.o.line(format!("let {n} = match {conv} {{"));
                    self.o.line("Ok(memory) => memory,");
                    self.o.line(format!("Err(error) => return {error_reply},"));
                    self.o.line("};");
                    convs.push(n.clone());
                } else {
                    convs.push(conv.clone());
                }
            }
            if routine.simple {
                self.o.line(format!("let _ = server.{name}({});", convs.join(", ")));
                self.o.line("rt::Demuxed::NoReply");
            } else {
                self.o.line("let mut deferred = false;");
                self.o.line("let port = rt::ReplyPort::new(r.header.remote_port, r.header.reply_disposition(), &mut deferred);");
                let mut all = vec!["port"];
                all.extend(convs.iter().map(String::as_str));
                self.o.line(format!("let result = server.{name}({});", all.join(", ")));
                self.o.line("if deferred {");
                self.o.line("return rt::Demuxed::NoReply;");
                self.o.line("}");
                self.o.line(format!("match {name}::reply::encode(reply, r.header.remote_port, r.header.reply_disposition(), result) {{"));
                self.o.line("Ok(size) => rt::Demuxed::Reply(size),");
                self.o.line(format!("Err(error) => rt::Demuxed::Reply(ABI.put_error_reply(reply, r.header.remote_port, r.header.reply_disposition(), {name}::ID + 100, error)),"));
                self.o.line("}");
            }
            self.o.line("}");
        }
        self.o.line("_ => rt::Demuxed::UnknownId(ABI.put_error_reply(reply, header.remote_port, header.reply_disposition(), header.id.wrapping_add(100), rt::bad_id())),");
        self.o.line("}");
        self.o.line("}");
    }
}

/// Writes an indefinite array: inline when it fits GNU MIG's limit, else out of line (`owned`:
/// the value is `OolMemory`, given up with the deallocate bit; otherwise a slice the kernel
/// copies while the message is sent).
fn put_indefinite(o: &mut Out, abi: Abi, item: &Item, value: &str, owned: bool, dynamic_complex: &mut Vec<String>) {
    let Data::Indefinite { element_bytes, inline_max } = item.data else {
        unreachable!("called for indefinite items")
    };
    let off = at(item, 0);
    let data = data_at(abi, item);
    let d = &item.descriptor;
    let name = d.name.unwrap_or(0);
    let align = abi.align();
    o.line(format!("// {}: {}, inline up to {inline_max} elements, else out of line", item.name, describe(d)));
    if owned || element_bytes == 1 {
        o.line(format!("let {value}_bytes = {value}.len();"));
    } else {
        o.line(format!("let {value}_bytes = {element_bytes} * {value}.len();"));
    }
    let count = if element_bytes == 1 { format!("{value}_bytes") } else { format!("{value}_bytes / {element_bytes}") };
    o.line(format!("let {value}_inline = {value}_bytes <= {};", inline_max * element_bytes));
    let data = pinned(o, data);
    o.line(format!("let end = if {value}_inline {{"));
    o.line(format!(
        "ABI.put_long_descriptor(buf, {off}, {name}, {}, ({count}) as u32, true, false);",
        d.size_bits
    ));
    o.line(format!("let end = {data} + rt::round{align}({value}_bytes);"));
    o.line(format!("rt::zero_padding{align}(buf, {data}, end);"));
    if owned {
        put_slice(o, &data, 1, &format!("{value}.as_slice()"));
    } else {
        put_slice(o, &data, element_bytes, value);
    }
    o.line("end");
    o.line("} else {");
    o.line(format!(
        "ABI.put_long_descriptor(buf, {off}, {name}, {}, ({count}) as u32, false, {owned});",
        d.size_bits
    ));
    let address = if owned { format!("{value}.into_raw().0") } else { format!("{value}.as_ptr() as usize") };
    if abi == Abi::X86_64 {
        o.line(format!("rt::put_u64(buf, {data}, {address} as u64);"));
    } else {
        o.line(format!("rt::put_u32(buf, {data}, {address} as u32);"));
    }
    o.line(format!("{data} + {align}"));
    o.line("};");
    dynamic_complex.push(format!("!{value}_inline"));
}

/// Writes reply data (`owned` out-of-line memory has been split into `<name>_address`).
fn put_data_reply(o: &mut Out, abi: Abi, ty: &Type, item: &Item, value: &str, shown: &str, complex: &mut bool) {
    if matches!(item.data, Data::OutOfLine) {
        let off = data_at(abi, item);
        if abi == Abi::X86_64 {
            o.line(format!("rt::put_u64(buf, {off}, {shown} as u64);"));
        } else {
            o.line(format!("rt::put_u32(buf, {off}, {shown} as u32);"));
        }
        *complex = true;
    } else {
        put_data(o, abi, ty, item, value, complex);
    }
}

/// What a client function returns for a reply value: owned rights and memory.
fn client_output_type(ty: &Type, item: &Item) -> String {
    match decoded_type(ty, item).as_str() {
        "PortName" if is_port_right(ty) => received_port_type(ty).to_owned(),
        "rt::PortArg" => "rt::Right".to_owned(),
        "rt::OolRegion" | "rt::Indefinite<'a>" => "OolMemory".to_owned(),
        "rt::Array<'a, i32>" | "rt::Array<'a, u32>" | "rt::Array<'a, i16>" | "rt::Array<'a, u16>" | "rt::Array<'a, i64>" | "rt::Array<'a, u64>" | "rt::Array<'a, PortName>" | "rt::Array<'a, bool>" => {
            format!("rt::Inline<{}, {}>", element_type(ty), item_max(item))
        }
        "&'a [u8]" => format!("rt::Inline<u8, {}>", item_max(item)),
        other => other.to_owned(),
    }
}

fn item_max(item: &Item) -> u32 {
    match item.data {
        Data::Variable { max, .. } => max,
        Data::Fixed { bytes } => bytes,
        Data::OutOfLine | Data::Indefinite { .. } => 0,
    }
}

/// How a client turns a decoded reply value into what it returns.
enum Conversion {
    None,
    Infallible(String),
    Fallible(&'static str),
}

fn conversion(ty: &str) -> Conversion {
    match ty {
        "SendRight" | "SendOnceRight" | "ReceiveRight" => Conversion::Infallible(format!("{ty}::from_name")),
        "rt::Right" => Conversion::Infallible("rt::Right::from_arg".to_owned()),
        "OolMemory" => Conversion::Fallible("rt::into_ool"),
        t if t.starts_with("rt::Inline") => Conversion::Infallible("rt::Inline::from".to_owned()),
        _ => Conversion::None,
    }
}

/// The size of an encoded message: constant, or `end` (the end of the last item sized at run
/// time) plus what follows it.
fn size_expr(abi: Abi, message: &Message) -> String {
    let Some(last_variable) = message.items.iter().rposition(|i| i.data.fixed_size(abi).is_none()) else {
        return message.min_size.to_string();
    };
    let trailing: u32 = message.items[last_variable + 1..]
        .iter()
        .map(|i| abi.descriptor_size(i.descriptor.long) + i.data.fixed_size(abi).unwrap_or(0))
        .sum();
    if trailing == 0 {
        "end".to_owned()
    } else {
        format!("end + {trailing}")
    }
}

fn tuple_type(values: &[(String, String)]) -> String {
    match values.len() {
        0 => "()".to_owned(),
        1 => values[0].1.clone(),
        _ => format!("({})", values.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(", ")),
    }
}

/// The expected descriptor as a Rust literal for `ABI.same_descriptor`.
fn descriptor_literal(abi: Abi, d: &Descriptor) -> String {
    let bytes = d.bytes(abi);
    match abi {
        Abi::X86_64 => format!("{:#018x}", u64::from_le_bytes(bytes[..8].try_into().unwrap())),
        Abi::I686 => format!("{:#010x}", u32::from_le_bytes(bytes[..4].try_into().unwrap())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;
    use crate::parser::parse;

    fn generated(defs: &str, abi: Abi) -> String {
        generate(&parse(&tokenize(defs, "t.defs").unwrap(), abi).unwrap(), abi)
    }

    const PRELUDE: &str = "subsystem t 100; type int32_t = MACH_MSG_TYPE_INTEGER_32; type port_t = MACH_MSG_TYPE_COPY_SEND;";

    #[test]
    fn keywords_become_raw_identifiers() {
        assert_eq!(rust_ident("type"), "r#type");
        assert_eq!(rust_ident("self"), "self_");
        assert_eq!(rust_ident("mode"), "mode");
        let code = generated(&format!("{PRELUDE} routine r(p: port_t; type: int32_t);"), Abi::X86_64);
        assert!(code.contains("r#type: i32"), "{code}");
    }

    #[test]
    fn simpleroutines_have_no_reply_and_send_without_waiting() {
        let code = generated(&format!("{PRELUDE} simpleroutine s(p: port_t; x: int32_t);"), Abi::I686);
        assert!(!code.contains("pub mod reply"));
        assert!(code.contains("crate::msg::send("));
        assert!(code.contains("rt::Demuxed::NoReply"));
    }

    #[test]
    fn the_header_says_complex_only_when_the_body_carries_rights() {
        let plain = generated(&format!("{PRELUDE} routine r(p: port_t; x: int32_t);"), Abi::X86_64);
        assert!(!plain.contains("rt::COMPLEX"));
        let with_port = generated(&format!("{PRELUDE} routine r(p: port_t; q: port_t);"), Abi::X86_64);
        assert!(with_port.contains("19 | 21 << 8 | rt::COMPLEX"), "{with_port}");
    }

    #[test]
    fn only_the_runtime_names_used_are_imported() {
        let code = generated(&format!("{PRELUDE} routine r(p: port_t; x: int32_t);"), Abi::X86_64);
        assert!(code.contains("use crate::kern::Result;"));
        assert!(!code.contains("OolMemory"));
        assert!(!code.contains("SendOnceRight"));
    }
}
