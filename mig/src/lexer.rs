//! Tokens of the preprocessed MIG language, each with the source position the preprocessor's
//! `# line "file"` markers give it, so errors point into the original .defs file.

use crate::error::{Error, Position, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Ident(String),
    Number(u64),
    /// `"file.h"` or `<file.h>` as written after `import`.
    Header(String),
    Symbol(char),
    End,
}

#[derive(Clone, Debug)]
pub struct Spanned {
    pub token: Token,
    pub at: Position,
}

/// Splits preprocessed text into tokens.
pub fn tokenize(text: &str, initial_file: &str) -> Result<Vec<Spanned>> {
    let mut tokens = Vec::new();
    let mut file = initial_file.to_owned();
    let mut line_number = 1u32;
    for raw_line in text.lines() {
        let this_line = line_number;
        line_number += 1;
        if let Some(marker) = raw_line.trim_start().strip_prefix('#') {
            if let Some((line, name)) = parse_line_marker(marker) {
                file = name;
                line_number = line;
            }
            continue;
        }
        lex_line(raw_line, &file, this_line, &mut tokens)?;
    }
    tokens.push(Spanned { token: Token::End, at: Position { file, line: line_number, column: 1 } });
    Ok(tokens)
}

/// `# 12 "device.defs" 2` or `#line 12 "device.defs"` → (12, "device.defs").
fn parse_line_marker(marker: &str) -> Option<(u32, String)> {
    let marker = marker.trim_start();
    let marker = marker.strip_prefix("line").unwrap_or(marker).trim_start();
    let digits_end = marker.find(|c: char| !c.is_ascii_digit())?;
    let line = marker[..digits_end].parse().ok()?;
    let rest = marker[digits_end..].trim_start().strip_prefix('"')?;
    let name = &rest[..rest.find('"')?];
    Some((line, name.to_owned()))
}

fn lex_line(line: &str, file: &str, line_number: u32, out: &mut Vec<Spanned>) -> Result<()> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at = Position { file: file.to_owned(), line: line_number, column: i as u32 + 1 };
        let c = bytes[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == '/' && bytes.get(i + 1) == Some(&b'/') {
            break;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = scan(bytes, i, |b| b.is_ascii_alphanumeric() || b == b'_');
            out.push(Spanned { token: Token::Ident(line[i..end].to_owned()), at });
            i = end;
        } else if c.is_ascii_digit() {
            let end = scan(bytes, i, |b| b.is_ascii_alphanumeric());
            let text = &line[i..end];
            let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            let value = value.map_err(|_| Error::at(&at, format!("`{text}` is not a number")))?;
            out.push(Spanned { token: Token::Number(value), at });
            i = end;
        } else if c == '"' || c == '<' {
            let close = if c == '"' { '"' } else { '>' };
            let Some(len) = line[i + 1..].find(close) else {
                return Err(Error::at(&at, format!("unterminated header name: expected `{close}`")));
            };
            out.push(Spanned { token: Token::Header(line[i..i + len + 2].to_owned()), at });
            i += len + 2;
        } else if ";:,()[]=|^*{}+-".contains(c) {
            out.push(Spanned { token: Token::Symbol(c), at });
            i += 1;
        } else {
            return Err(Error::at(&at, format!("unexpected character `{c}`")));
        }
    }
    Ok(())
}

fn scan(bytes: &[u8], start: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes[start..].iter().position(|&b| !keep(b)).map_or(bytes.len(), |n| start + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_markers_set_file_and_line() {
        let tokens = tokenize("# 7 \"dev.defs\"\n\n  routine x;", "<stdin>").unwrap();
        assert_eq!(tokens[0].token, Token::Ident("routine".into()));
        assert_eq!(tokens[0].at.to_string(), "dev.defs:8:3");
        assert_eq!(tokens[2].token, Token::Symbol(';'));
    }

    #[test]
    fn numbers_headers_and_symbols() {
        let tokens = tokenize("import <mach/std_types.h>; (x, 0x10*8)", "f").unwrap();
        let kinds: Vec<_> = tokens.iter().map(|t| t.token.clone()).collect();
        assert_eq!(kinds[1], Token::Header("<mach/std_types.h>".into()));
        assert!(kinds.contains(&Token::Number(16)));
        assert!(kinds.contains(&Token::Symbol('*')));
    }

    #[test]
    fn bad_character_is_an_error_with_position() {
        let err = tokenize("type a = @;", "x.defs").unwrap_err();
        assert_eq!(err.to_string(), "x.defs:1:10: unexpected character `@`");
        let err = tokenize("import <a.h", "x.defs").unwrap_err();
        assert!(err.to_string().starts_with("x.defs:1:8: unterminated"));
    }
}
