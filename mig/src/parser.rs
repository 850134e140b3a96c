//! The MIG language: statements of a preprocessed .defs file into a [`Subsystem`].
//!
//! Types are resolved as they are declared (as MIG does), so a routine's arguments carry
//! complete [`Type`]s.

use std::collections::HashMap;

use crate::error::{Error, Position, Result};
use crate::abi::Abi;
use crate::lexer::{Spanned, Token};
use crate::types::{builtin_name, name, sender_chooses, Count, MsgName, Type, INLINE_LIMIT_BYTES};

/// One interface file.
#[derive(Debug)]
pub struct Subsystem {
    pub name: String,
    pub base: i32,
    /// `serverprefix`/`userprefix`: the C names GNU MIG gives the server and user functions
    /// (the Rust names are the routines' own; tests comparing with GNU MIG's C need these).
    pub server_prefix: String,
    pub user_prefix: String,
    /// Routines by id offset; `None` for `skip`.
    pub routines: Vec<Option<Routine>>,
}

#[derive(Debug)]
pub struct Routine {
    pub name: String,
    pub id: i32,
    /// A `simpleroutine`: no reply.
    pub simple: bool,
    pub args: Vec<Arg>,
    pub at: Position,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    RequestPort,
    ReplyPort,
    /// The reply port, seen only by the server.
    SReplyPort,
    /// The reply port, given by the user (simpleroutines).
    UReplyPort,
    In,
    Out,
    InOut,
    MsgSeqno,
    WaitTime,
    MsgOption,
}

#[derive(Debug)]
pub struct Arg {
    pub name: String,
    pub kind: ArgKind,
    pub ty: Type,
    /// `dealloc`: out-of-line memory the kernel takes from the sender.
    pub dealloc: bool,
    /// `CountInOut`: the caller sends its buffer's capacity.
    pub count_in_out: bool,
    /// `dealloc[]`: GNU MIG's stub takes the deallocate bit as an argument; the Rust API always
    /// gives the memory up (the descriptor constant stays without the bit).
    pub dealloc_chosen_by_caller: bool,
}

impl Arg {
    pub fn in_request(&self) -> bool {
        matches!(self.kind, ArgKind::In | ArgKind::InOut) || (self.kind == ArgKind::Out && self.count_in_out)
    }
    pub fn in_reply(&self) -> bool {
        matches!(self.kind, ArgKind::Out | ArgKind::InOut)
    }
}

/// The bound written in `array[…]`.
enum Bound {
    /// `[N]`
    Fixed(u32),
    /// `[*:N]`
    Max(u32),
    /// `[*]`: to GNU MIG the same as `[]`.
    InlineLimit,
    /// `[]`: inline up to GNU MIG's inline limit, out of line beyond it.
    None,
}

/// Parses the tokens of one file preprocessed for `abi` (which sizes word-sized types).
pub fn parse(tokens: &[Spanned], abi: Abi) -> Result<Subsystem> {
    let mut parser = Parser { tokens, pos: 0, types: HashMap::new(), abi };
    parser.define_builtins();
    parser.file()
}

struct Parser<'t> {
    tokens: &'t [Spanned],
    pos: usize,
    types: HashMap<String, Type>,
    abi: Abi,
}

fn int_type(name: &str, bits: u32, unsigned: bool) -> Type {
    let descriptor = match bits {
        16 => name::INTEGER_16,
        64 => name::INTEGER_64,
        _ => name::INTEGER_32,
    };
    Type {
        name: name.into(),
        in_name: MsgName::Fixed(descriptor),
        out_name: MsgName::Fixed(descriptor),
        element_bits: bits,
        count: Count::Fixed(1),
        inline: true,
        dealloc: false,
        unsigned,
        string: false,
        unbounded: false,
        indefinite: false,
    }
}

impl<'t> Parser<'t> {
    /// Types MIG knows without a declaration (C's `int`, `short`, `char`, and `kern_return_t`).
    fn define_builtins(&mut self) {
        self.types.insert("int".into(), int_type("int", 32, false));
        self.types.insert("short".into(), int_type("short", 16, false));
        let mut char = int_type("char", 8, false);
        char.in_name = MsgName::Fixed(name::CHAR);
        char.out_name = MsgName::Fixed(name::CHAR);
        self.types.insert("char".into(), char);
        self.types.insert("kern_return_t".into(), int_type("kern_return_t", 32, false));
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos].token
    }

    /// The token after the next one (`End` at the end).
    fn peek_second(&self) -> &Token {
        self.tokens.get(self.pos + 1).map_or(&Token::End, |t| &t.token)
    }

    fn at(&self) -> &Position {
        &self.tokens[self.pos].at
    }

    fn next(&mut self) -> &Spanned {
        let token = &self.tokens[self.pos];
        if token.token != Token::End {
            self.pos += 1;
        }
        token
    }

    fn error<T>(&self, expected: &str) -> Result<T> {
        let found = match self.peek() {
            Token::Ident(s) => format!("`{s}`"),
            Token::Number(n) => format!("`{n}`"),
            Token::Header(h) => format!("`{h}`"),
            Token::Symbol(c) => format!("`{c}`"),
            Token::End => "end of file".into(),
        };
        Err(Error::at(self.at(), format!("expected {expected}, found {found}")))
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Token::Ident(s) if s.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.is_word(word);
        if found {
            self.next();
        }
        found
    }

    fn eat(&mut self, symbol: char) -> bool {
        let found = *self.peek() == Token::Symbol(symbol);
        if found {
            self.next();
        }
        found
    }

    fn expect(&mut self, symbol: char) -> Result<()> {
        if self.eat(symbol) {
            Ok(())
        } else {
            self.error(&format!("`{symbol}`"))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Token::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => self.error(what),
        }
    }

    /// A constant expression: numbers joined by `+`, `-`, `*` (left to right, `*` first).
    fn expr(&mut self) -> Result<u32> {
        let mut sum = self.product()?;
        loop {
            if self.eat('+') {
                sum = sum.checked_add(self.product()?).ok_or_else(|| Error::at(self.at(), "number too large"))?;
            } else if self.eat('-') {
                sum = sum.checked_sub(self.product()?).ok_or_else(|| Error::at(self.at(), "negative size"))?;
            } else {
                return Ok(sum);
            }
        }
    }

    fn product(&mut self) -> Result<u32> {
        let mut value = self.number()?;
        while self.eat('*') {
            value = value.checked_mul(self.number()?).ok_or_else(|| Error::at(self.at(), "number too large"))?;
        }
        Ok(value)
    }

    fn number(&mut self) -> Result<u32> {
        match *self.peek() {
            Token::Number(n) => {
                let at = self.at().clone();
                self.next();
                u32::try_from(n).map_err(|_| Error::at(&at, "number too large"))
            }
            _ => self.error("a number"),
        }
    }

    fn file(&mut self) -> Result<Subsystem> {
        let mut subsystem = None::<Subsystem>;
        loop {
            if *self.peek() == Token::End {
                break;
            }
            if self.eat(';') {
                continue;
            }
            let at = self.at().clone();
            let keyword = self.ident("a statement (subsystem, type, routine, …)")?;
            match keyword.to_ascii_lowercase().as_str() {
                "subsystem" => {
                    if subsystem.is_some() {
                        return Err(Error::at(&at, "a second `subsystem` statement"));
                    }
                    subsystem = Some(self.subsystem()?);
                }
                "serverprefix" | "userprefix" => {
                    let prefix = self.ident("a prefix")?;
                    let s = subsystem.as_mut().ok_or_else(|| Error::at(&at, "`subsystem` must come first"))?;
                    if keyword.eq_ignore_ascii_case("serverprefix") {
                        s.server_prefix = prefix;
                    } else {
                        s.user_prefix = prefix;
                    }
                    self.expect(';')?;
                }
                // The name of GNU MIG's C demux function: the Rust one is `demux`.
                "serverdemux" => {
                    self.ident("a C name")?;
                    self.expect(';')?;
                }
                "rcsid" => {
                    self.next();
                    self.expect(';')?;
                }
                "nowaittime" => self.expect(';')?,
                // They would change every client call; no interface file here uses them, and
                // ignoring them would change behaviour silently.
                "waittime" | "msgoption" => {
                    return Err(Error::at(&at, format!("file-wide `{keyword}` is not supported; use a `{keyword}` argument")));
                }
                "import" | "uimport" | "simport" => {
                    match self.peek() {
                        Token::Header(_) => {
                            self.next();
                        }
                        _ => return self.error("a header name in quotes or angle brackets"),
                    }
                    self.expect(';')?;
                }
                "type" => {
                    let name = self.ident("a type name")?;
                    self.expect('=')?;
                    let ty = self.type_spec(&name)?;
                    self.expect(';')?;
                    self.types.insert(name, ty);
                }
                "routine" | "simpleroutine" => {
                    let s = subsystem.as_mut().ok_or_else(|| Error::at(&at, "`subsystem` must come first"))?;
                    let id = s.base + s.routines.len() as i32;
                    let routine = self.routine(id, keyword.eq_ignore_ascii_case("simpleroutine"), at)?;
                    s.routines.push(Some(routine));
                }
                "skip" => {
                    let s = subsystem.as_mut().ok_or_else(|| Error::at(&at, "`subsystem` must come first"))?;
                    s.routines.push(None);
                    self.expect(';')?;
                }
                _ => return Err(Error::at(&at, format!("expected a statement, found `{keyword}`"))),
            }
        }
        subsystem.ok_or_else(|| Error::at(self.at(), "no `subsystem` statement"))
    }

    fn subsystem(&mut self) -> Result<Subsystem> {
        // `KernelUser`/`KernelServer` change only the C GNU MIG writes for the kernel.
        while self.eat_word("KernelUser") || self.eat_word("KernelServer") {}
        let name = self.ident("the subsystem name")?;
        let base = self.number()? as i32;
        self.expect(';')?;
        Ok(Subsystem { name, base, server_prefix: String::new(), user_prefix: String::new(), routines: Vec::new() })
    }

    fn routine(&mut self, id: i32, simple: bool, at: Position) -> Result<Routine> {
        let name = self.ident("the routine name")?;
        self.expect('(')?;
        let mut args = Vec::new();
        if !self.eat(')') {
            loop {
                args.push(self.arg(&name)?);
                if self.eat(')') {
                    break;
                }
                if !self.eat(';') {
                    return self.error("`;` or `)`");
                }
                if self.eat(')') {
                    break;
                }
            }
        }
        self.expect(';')?;
        let mut routine = Routine { name, id, simple, args, at };
        self.check_routine(&mut routine)?;
        Ok(routine)
    }

    /// MIG's defaults: the first plain argument is the request port.
    fn check_routine(&self, routine: &mut Routine) -> Result<()> {
        if !routine.args.iter().any(|a| a.kind == ArgKind::RequestPort) {
            match routine.args.first_mut() {
                Some(first) if first.kind == ArgKind::In => first.kind = ArgKind::RequestPort,
                _ => return Err(Error::at(&routine.at, format!("routine `{}` has no request port", routine.name))),
            }
        }
        for arg in &routine.args {
            let port_kind = matches!(
                arg.kind,
                ArgKind::RequestPort | ArgKind::ReplyPort | ArgKind::SReplyPort | ArgKind::UReplyPort
            );
            if port_kind && !arg.ty.is_port() {
                return Err(Error::at(&routine.at, format!("`{}` of `{}` must be a port", arg.name, routine.name)));
            }
            if routine.simple && matches!(arg.kind, ArgKind::Out | ArgKind::InOut) {
                return Err(Error::at(&routine.at, format!("simpleroutine `{}` cannot have out arguments", routine.name)));
            }
        }
        Ok(())
    }

    fn arg(&mut self, routine: &str) -> Result<Arg> {
        let kinds = [
            ("in", ArgKind::In),
            ("out", ArgKind::Out),
            ("inout", ArgKind::InOut),
            ("requestport", ArgKind::RequestPort),
            ("replyport", ArgKind::ReplyPort),
            ("sreplyport", ArgKind::SReplyPort),
            ("ureplyport", ArgKind::UReplyPort),
            ("msgseqno", ArgKind::MsgSeqno),
            ("waittime", ArgKind::WaitTime),
            ("msgoption", ArgKind::MsgOption),
        ];
        let mut kind = ArgKind::In;
        // `in` etc. are keywords only when another identifier (the argument name) follows.
        if let (Token::Ident(word), Token::Ident(_)) = (self.peek(), self.peek_second()) {
            if let Some((_, k)) = kinds.iter().find(|(w, _)| word.eq_ignore_ascii_case(w)) {
                kind = *k;
                self.next();
            }
        }
        let name = self.ident(&format!("an argument name in `{routine}`"))?;
        self.expect(':')?;
        let mut ty = if matches!(self.peek_second(), Token::Symbol('=')) {
            let type_name = self.ident("a type name")?;
            self.expect('=')?;
            self.type_spec(&type_name)?
        } else {
            let ty = self.ipc_type()?;
            self.annotations()?;
            ty
        };
        let (mut dealloc, mut count_in_out, mut dealloc_chosen_by_caller) = (ty.dealloc, false, false);
        while self.eat(',') {
            let flag = self.ident("an argument flag (dealloc, CountInOut, ServerCopy, …)")?;
            match flag.to_ascii_lowercase().as_str() {
                "dealloc" => {
                    dealloc = true;
                    if self.eat('[') {
                        self.expect(']')?;
                        dealloc_chosen_by_caller = true;
                    }
                }
                "notdealloc" => dealloc = false,
                "countinout" => count_in_out = true,
                "servercopy" | "samecount" | "physicalcopy" | "overwrite" | "retcode" | "auto" | "const" => {}
                _ => return Err(Error::at(self.at(), format!("unknown argument flag `{flag}`"))),
            }
        }
        // An indefinite array travels out of line when it is large: `dealloc` is for that case.
        if dealloc && ty.inline && !ty.indefinite {
            return Err(Error::at(self.at(), format!("`dealloc` on inline argument `{name}`")));
        }
        if count_in_out && !(kind == ArgKind::Out && ty.is_variable()) {
            return Err(Error::at(self.at(), format!("`CountInOut` needs a variable-size out argument, not `{name}`")));
        }
        ty.dealloc = dealloc;
        Ok(Arg { name, kind, ty, dealloc, count_in_out, dealloc_chosen_by_caller })
    }

    /// `ipc-type [annotations]`, as in `type x = …;` or inline in an argument.
    fn type_spec(&mut self, declared: &str) -> Result<Type> {
        let mut ty = self.ipc_type()?;
        // MIG has no signedness: C's names say it where an integer type is first declared
        // (`uint32_t`, `unsigned`, `natural_t`); aliases inherit it.
        if ty.name.starts_with("MACH_MSG_TYPE_INTEGER") {
            ty.unsigned = declared.starts_with("uint") || declared == "unsigned" || declared == "natural_t";
        }
        ty.name = declared.to_owned();
        self.annotations()?;
        Ok(ty)
    }

    /// `ctype:`, `cusertype:`, `cservertype:`, `intran:`, `outtran:`, `destructor:`,
    /// `intranpayload:` — C-side translations that do not change the message layout.
    fn annotations(&mut self) -> Result<()> {
        const WORDS: [&str; 7] =
            ["ctype", "cusertype", "cservertype", "intran", "outtran", "destructor", "intranpayload"];
        while WORDS.iter().any(|w| self.is_word(w)) {
            self.next();
            self.expect(':')?;
            self.ident("a C type or function")?;
            while let Token::Ident(word) = self.peek() {
                if WORDS.iter().any(|w| word.eq_ignore_ascii_case(w)) {
                    break;
                }
                self.next();
            }
            if self.eat('(') {
                self.ident("a C type")?;
                self.expect(')')?;
            }
        }
        Ok(())
    }

    fn ipc_type(&mut self) -> Result<Type> {
        let at = self.at().clone();
        let mut ty = self.primary_type()?;
        if self.eat('|') {
            let other = self.primary_type()?;
            if !ty.is_port() || !other.is_port() {
                return Err(Error::at(&at, "`|` joins two port types"));
            }
            ty.out_name = other.out_name;
        }
        Ok(ty)
    }

    fn primary_type(&mut self) -> Result<Type> {
        let at = self.at().clone();
        if self.eat('(') {
            let word = self.ident("a MACH_MSG_TYPE_* name")?;
            let Some((descriptor, _)) = builtin_name(&word) else {
                return Err(Error::at(&at, format!("`{word}` is not a MACH_MSG_TYPE_* name")));
            };
            self.expect(',')?;
            let bits = self.expr()?;
            let mut dealloc = false;
            if self.eat(',') {
                let flag = self.ident("`dealloc`")?;
                if !flag.eq_ignore_ascii_case("dealloc") {
                    return Err(Error::at(&at, format!("expected `dealloc`, found `{flag}`")));
                }
                dealloc = true;
            }
            self.expect(')')?;
            let mut ty = self.basic(&word, descriptor, bits);
            ty.dealloc = dealloc;
            return Ok(ty);
        }
        if self.eat('^') {
            // Out of line: `^array[…] of T`, or `^T` (a variable run of T).
            let mut ty = self.primary_type()?;
            ty.name = format!("^{}", ty.name);
            ty.inline = false;
            ty.indefinite = false;
            if ty.unbounded || ty.count == Count::Fixed(1) {
                ty.count = Count::Variable(None);
            }
            return Ok(ty);
        }
        let word = self.ident("a type")?;
        match word.to_ascii_lowercase().as_str() {
            "array" => {
                self.expect('[')?;
                let bound = if self.eat(']') {
                    Bound::None
                } else if self.eat('*') {
                    if self.eat(']') {
                        Bound::InlineLimit
                    } else {
                        self.expect(':')?;
                        let max = self.expr()?;
                        self.expect(']')?;
                        Bound::Max(max)
                    }
                } else {
                    let n = self.expr()?;
                    self.expect(']')?;
                    Bound::Fixed(n)
                };
                if !self.eat_word("of") {
                    return self.error("`of`");
                }
                let element = self.ipc_type()?;
                self.array_of(&at, bound, element)
            }
            "struct" => {
                if self.eat('{') {
                    return self.struct_fields(&at);
                }
                self.expect('[')?;
                let n = self.expr()?;
                self.expect(']')?;
                if !self.eat_word("of") {
                    return self.error("`of`");
                }
                let element = self.ipc_type()?;
                self.array_of(&at, Bound::Fixed(n), element)
            }
            "c_string" => {
                self.expect('[')?;
                let count = if self.eat('*') {
                    self.expect(':')?;
                    Count::Variable(Some(self.expr()?))
                } else {
                    Count::Fixed(self.expr()?)
                };
                self.expect(']')?;
                let mut ty = self.basic("c_string", name::STRING_C, 8);
                ty.count = count;
                Ok(ty)
            }
            "polymorphic" => Ok(self.basic("polymorphic", name::POLYMORPHIC, 0)),
            _ => {
                if let Some((descriptor, bits)) = builtin_name(&word) {
                    let Some(bits) = bits else {
                        return Err(Error::at(&at, format!("`{word}` needs a size: write `({word}, bits)`")));
                    };
                    let mut ty = self.basic(&word, descriptor, bits);
                    if sender_chooses(&word) {
                        ty.in_name = MsgName::Polymorphic;
                    }
                    return Ok(ty);
                }
                if let Some(ty) = self.types.get(&word) {
                    return Ok(ty.clone());
                }
                if word == "uintptr_t" || word == "intptr_t" {
                    let bits = self.abi.word_bits();
                    return Ok(int_type(&word, bits, word == "uintptr_t"));
                }
                Err(Error::at(&at, format!("unknown type `{word}`")))
            }
        }
    }

    /// A type straight from a `MACH_MSG_TYPE_*` word (named after it until a `type` names it).
    fn basic(&self, word: &str, descriptor: u32, bits: u32) -> Type {
        let msg_name = if descriptor == name::POLYMORPHIC { MsgName::Polymorphic } else { MsgName::Fixed(descriptor) };
        let string = descriptor == name::STRING;
        let mut out_name = msg_name;
        if let MsgName::Fixed(n) = msg_name {
            out_name = MsgName::Fixed(match n {
                name::COPY_SEND | name::MAKE_SEND => name::PORT_SEND,
                name::MAKE_SEND_ONCE => name::PORT_SEND_ONCE,
                other => other,
            });
        }
        Type {
            name: word.to_owned(),
            in_name: msg_name,
            out_name,
            element_bits: bits,
            count: Count::Fixed(1),
            inline: true,
            dealloc: false,
            unsigned: false,
            string,
            unbounded: false,
            indefinite: false,
        }
    }

    fn array_of(&self, at: &Position, bound: Bound, element: Type) -> Result<Type> {
        let Count::Fixed(per_element) = element.count else {
            return Err(Error::at(at, "an array of variable-size elements"));
        };
        let element_bytes = (element.element_bits * per_element).div_ceil(8).max(1);
        let at_inline_limit = Count::Variable(Some(INLINE_LIMIT_BYTES / element_bytes * per_element));
        let name = match bound {
            Bound::Fixed(n) => format!("array[{n}] of {}", element.name),
            Bound::Max(n) => format!("array[*:{n}] of {}", element.name),
            Bound::InlineLimit => format!("array[*] of {}", element.name),
            Bound::None => format!("array[] of {}", element.name),
        };
        let element = Type { name, ..element };
        let ty = match bound {
            Bound::Fixed(n) => Type { count: Count::Fixed(n * per_element), ..element },
            Bound::Max(n) => Type { count: Count::Variable(Some(n * per_element)), ..element },
            // Rights cannot travel in an indefinite array: GNU MIG sends them out of line.
            Bound::InlineLimit | Bound::None if element.is_port() => {
                Type { count: Count::Variable(None), inline: false, unbounded: true, ..element }
            }
            Bound::InlineLimit | Bound::None => {
                Type { count: at_inline_limit, unbounded: true, indefinite: true, ..element }
            }
        };
        Ok(ty)
    }

    /// `struct { type name; … }`: sent as an array of integers as wide as its widest member,
    /// at most the ABI's word, covering its C size (as GNU MIG does): each member aligned to its
    /// element's width (at most the word: 64-bit members of an i686 struct are 4-aligned), the
    /// whole rounded up to its widest alignment.
    fn struct_fields(&mut self, at: &Position) -> Result<Type> {
        let word_bits = self.abi.word_bits();
        let (mut end_bits, mut align_bits) = (0u32, 32u32);
        let mut any = false;
        while !self.eat('}') {
            let member = self.ipc_type()?;
            self.ident("a member name")?;
            self.expect(';')?;
            if !member.inline || member.is_variable() {
                return Err(Error::at(at, "struct members must be fixed-size inline data"));
            }
            let align = member.element_bits.clamp(8, word_bits);
            end_bits = end_bits.next_multiple_of(align) + member.element_bits * member.max_count().unwrap_or(1);
            align_bits = align_bits.max(align);
            any = true;
        }
        if !any {
            return Err(Error::at(at, "an empty struct"));
        }
        let total = end_bits.next_multiple_of(align_bits);
        Ok(Type { count: Count::Fixed(total / align_bits), ..int_type("struct", align_bits, false) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn parse_text(text: &str) -> Result<Subsystem> {
        parse(&tokenize(text, "t.defs")?, Abi::X86_64)
    }

    const PRELUDE: &str = "subsystem test 100;\n\
        type int32_t = MACH_MSG_TYPE_INTEGER_32;\n\
        type uint32_t = MACH_MSG_TYPE_INTEGER_32;\n\
        type mach_port_t = MACH_MSG_TYPE_COPY_SEND;\n";

    #[test]
    fn routines_types_and_skips() {
        let s = parse_text(&format!(
            "{PRELUDE}type name_t = (MACH_MSG_TYPE_STRING_C, 8*128);\n\
             type status_t = array[*:1024] of int;\n\
             type data_t = ^array[] of MACH_MSG_TYPE_INTEGER_8;\n\
             routine open(master: mach_port_t; mode: uint32_t; name: name_t; out dev: mach_port_t);\n\
             skip;\n\
             simpleroutine tell(port: mach_port_t; in data: data_t, dealloc);\n\
             routine get(port: mach_port_t; out status: status_t, CountInOut);"
        ))
        .unwrap();
        assert_eq!((s.name.as_str(), s.base), ("test", 100));
        assert_eq!(s.routines.len(), 4);
        let open = s.routines[0].as_ref().unwrap();
        assert_eq!(open.args[0].kind, ArgKind::RequestPort);
        assert!(open.args[1].ty.unsigned);
        assert_eq!(open.args[2].ty.element_bits, 1024);
        assert!(s.routines[1].is_none());
        let tell = s.routines[2].as_ref().unwrap();
        assert_eq!(tell.id, 102);
        assert!(tell.simple && tell.args[1].dealloc && !tell.args[1].ty.inline);
        let get = s.routines[3].as_ref().unwrap();
        assert!(get.args[1].count_in_out && get.args[1].in_request() && get.args[1].in_reply());
        assert_eq!(get.args[1].ty.count, Count::Variable(Some(1024)));
    }

    #[test]
    fn port_types_name_what_each_side_sees() {
        let s = parse_text(&format!(
            "{PRELUDE}type reply_t = MACH_MSG_TYPE_MAKE_SEND_ONCE | polymorphic;\n\
             routine r(p: mach_port_t; in send: MACH_MSG_TYPE_PORT_SEND; sreplyport rp: reply_t);"
        ))
        .unwrap();
        let r = s.routines[0].as_ref().unwrap();
        assert_eq!(r.args[0].ty.out_name, MsgName::Fixed(name::PORT_SEND));
        assert_eq!(r.args[1].ty.in_name, MsgName::Polymorphic);
        assert_eq!(r.args[1].ty.out_name, MsgName::Fixed(name::PORT_SEND));
        assert_eq!(r.args[2].ty.in_name, MsgName::Fixed(name::MAKE_SEND_ONCE));
        assert_eq!(r.args[2].ty.out_name, MsgName::Polymorphic);
    }

    #[test]
    fn struct_members_become_an_array() {
        let s = parse_text(&format!(
            "{PRELUDE}type st = struct {{ int32_t a; uint32_t b; int32_t c; }};\n\
             routine r(p: mach_port_t; in s: st);"
        ))
        .unwrap();
        assert_eq!(s.routines[0].as_ref().unwrap().args[1].ty.count, Count::Fixed(3));
        let s = parse_text(&format!(
            "{PRELUDE}type t64 = MACH_MSG_TYPE_INTEGER_64; type st = struct {{ t64 a; t64 b; }};\n\
             routine r(p: mach_port_t; in s: st);"
        ))
        .unwrap();
        let ty = &s.routines[0].as_ref().unwrap().args[1].ty;
        assert_eq!((ty.element_bits, ty.count), (64, Count::Fixed(2)));
    }

    #[test]
    fn struct_members_are_padded_as_c_pads_them_on_each_abi() {
        // io_statbuf_t's shape: a 64-bit member after a 32-bit one, and a 32-bit tail.
        let text = format!(
            "{PRELUDE}type t64 = MACH_MSG_TYPE_INTEGER_64; type st = struct {{ int32_t a; t64 b; int32_t c; }};\n\
             routine r(p: mach_port_t; in s: st);"
        );
        let ty = |abi| parse(&tokenize(&text, "t.defs").unwrap(), abi).unwrap().routines[0].as_ref().unwrap().args[1].ty.clone();
        let x86_64 = ty(Abi::X86_64);
        assert_eq!((x86_64.element_bits, x86_64.count), (64, Count::Fixed(3)), "4 + pad 4 + 8 + 4 + pad 4");
        let i686 = ty(Abi::I686);
        assert_eq!((i686.element_bits, i686.count), (32, Count::Fixed(4)), "64-bit members are 4-aligned");
    }

    #[test]
    fn arrays_without_a_bound_are_indefinite_either_way() {
        let s = parse_text(&format!(
            "{PRELUDE}type pair = struct[2] of uint32_t;\n\
             routine r(p: mach_port_t; star: array[*] of pair; empty: array[] of pair; out_of_line: ^array[*] of pair);"
        ))
        .unwrap();
        let r = s.routines[0].as_ref().unwrap();
        for ty in [&r.args[1].ty, &r.args[2].ty] {
            assert!(ty.indefinite && ty.inline, "{}", ty.name);
            assert_eq!(ty.count, Count::Variable(Some(INLINE_LIMIT_BYTES / 4)), "{}", ty.name);
        }
        assert!(!r.args[3].ty.indefinite && !r.args[3].ty.inline);
    }

    #[test]
    fn errors_name_position_and_expectation() {
        let cases = [
            ("routine r(p: mach_port_t);", "t.defs:1:1: `subsystem` must come first"),
            ("subsystem s 1; routine r(p: nothing_t);", "t.defs:1:29: unknown type `nothing_t`"),
            ("subsystem s 1; routine r(p: int", "t.defs:2:1: expected `;` or `)`, found end of file"),
            ("subsystem s 1; type t = array[*:4 of int;", "t.defs:1:35: expected `]`, found `of`"),
            ("subsystem s 1; type t = (FOO, 8);", "t.defs:1:25: `FOO` is not a MACH_MSG_TYPE_* name"),
            ("subsystem s 1; bogus;", "t.defs:1:16: expected a statement, found `bogus`"),
            ("subsystem s 1; waittime 10;", "t.defs:1:16: file-wide `waittime` is not supported; use a `waittime` argument"),
            ("subsystem s 1; routine r(p: int);", "t.defs:1:16: `p` of `r` must be a port"),
            ("subsystem s 1; type t = MACH_MSG_TYPE_STRING;", "t.defs:1:25: `MACH_MSG_TYPE_STRING` needs a size: write `(MACH_MSG_TYPE_STRING, bits)`"),
            ("subsystem s 1; type t = (MACH_MSG_TYPE_CHAR, 99999999999);", "t.defs:1:46: number too large"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_text(text).unwrap_err().to_string(), message, "for {text}");
        }
    }

    #[test]
    fn truncated_inputs_never_panic() {
        let text = format!(
            "{PRELUDE}type s = array[*:8] of int; routine r(p: mach_port_t; out x: s, CountInOut; in y: ^array[] of char, dealloc);"
        );
        for end in 0..text.len() {
            if let Ok(tokens) = tokenize(&text[..end], "t.defs") {
                let _ = parse(&tokens, Abi::I686);
            }
        }
    }
}
