//! Argument values for any routine, in the form GNU MIG's C stubs take them.
//!
//! The routine's shape comes from the mig front end (argument kinds and types); the C parameter
//! lists come from GNU MIG's own headers. A C parameter is matched to its argument by name, as
//! GNU MIG names them: `x`, `xCnt` (element count), `xPoly` (port disposition), `xDealloc`,
//! `xSCopy`. Values are random within the type's bounds, with each variable array's count drawn
//! from {0, 1, its maximum, anything between} by the caller's `Rng`.

use mig::parser::{Arg as MigArg, ArgKind, Routine};
use mig::types::{Count, MsgName};

use super::c_stubs::{Abi, Arg, Prototype};

/// A small deterministic generator (xorshift), so a failure names a seed that reproduces it.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// 0, 1, `max` or anything between, about equally often.
    pub fn count(&mut self, max: u32) -> u32 {
        match self.below(4) {
            0 => 0,
            1 => max.min(1),
            2 => max,
            _ => self.below(u64::from(max) + 1) as u32,
        }
    }
    /// A C string of at most `max - 1` bytes (no NUL inside).
    pub fn c_string(&mut self, max: u32) -> Vec<u8> {
        let len = self.count(max.saturating_sub(1)) as usize;
        (0..len).map(|_| b'!' + self.below(94) as u8).collect()
    }
}

/// Bytes one element takes in the caller's C memory (port names are 4 bytes there).
pub fn c_element_bytes(arg: &MigArg) -> usize {
    if arg.ty.is_port() {
        4
    } else {
        (arg.ty.element_bits as usize).div_ceil(8)
    }
}

/// The largest element count of an argument (unbounded out-of-line arrays get a test bound).
pub fn max_count(arg: &MigArg) -> u32 {
    const UNBOUNDED_TEST_MAX: u32 = 3000;
    match arg.ty.count {
        Count::Fixed(n) => n,
        Count::Variable(Some(n)) => n,
        Count::Variable(None) => UNBOUNDED_TEST_MAX,
    }
}

/// `array[*]`/`array[] of …`: the C out-parameter is a pointer to a buffer pointer, which the
/// callee may point at memory of its own.
fn is_unbounded(arg: &MigArg) -> bool {
    arg.ty.unbounded
}

fn is_scalar(arg: &MigArg) -> bool {
    arg.ty.inline && arg.ty.count == Count::Fixed(1) && !arg.ty.string
}

/// A disposition a sender may choose for a polymorphic port `arg`, among those that arrive as
/// the right its receiver expects (any, when the receiver is polymorphic too).
fn disposition(arg: &MigArg, rng: &mut Rng) -> u32 {
    use mig::types::name::{
        COPY_SEND, MAKE_SEND, MAKE_SEND_ONCE, MOVE_RECEIVE, MOVE_SEND, MOVE_SEND_ONCE,
    };
    let choices: &[u32] = match arg.ty.out_name {
        MsgName::Fixed(MOVE_SEND) => &[MOVE_SEND, COPY_SEND, MAKE_SEND],
        MsgName::Fixed(MOVE_SEND_ONCE) => &[MOVE_SEND_ONCE, MAKE_SEND_ONCE],
        MsgName::Fixed(MOVE_RECEIVE) => &[MOVE_RECEIVE],
        _ => &[
            MOVE_SEND,
            COPY_SEND,
            MAKE_SEND,
            MOVE_SEND_ONCE,
            MAKE_SEND_ONCE,
        ],
    };
    choices[rng.below(choices.len() as u64) as usize]
}

fn find<'r>(routine: &'r Routine, name: &str) -> Option<&'r MigArg> {
    routine.args.iter().find(|a| a.name == name)
}

/// The data of one sent array argument: `(bytes, element count)`.
fn array_value(arg: &MigArg, rng: &mut Rng) -> (Vec<u8>, u32) {
    if arg.ty.string {
        let mut s = rng.c_string(max_count(arg) * arg.ty.element_bits / 8);
        let len = s.len() as u32;
        s.push(0);
        return (s, len + 1);
    }
    let count = match arg.ty.count {
        Count::Fixed(n) => n,
        Count::Variable(_) => rng.count(max_count(arg)),
    };
    let bytes = (count as usize * c_element_bytes(arg))
        .max((count as usize * arg.ty.element_bits as usize).div_ceil(8));
    (rng.bytes(bytes), count)
}

/// Arguments for the C user stub of `routine`; `params` are its C parameters' sizes and whether
/// each is a pointer.
pub fn user_args(
    abi: Abi,
    routine: &Routine,
    stub: &Prototype,
    params: &[(usize, bool)],
    rng: &mut Rng,
) -> Result<Vec<Arg>, String> {
    let mut counts = std::collections::HashMap::new();
    let mut args = Vec::new();
    for ((_, name), &(size, pointer)) in stub.params.iter().zip(params) {
        let arg = if let Some(arg) = find(routine, name) {
            match arg.kind {
                ArgKind::Out => {
                    let capacity = if arg.ty.inline && !is_unbounded(arg) {
                        max_count(arg) as usize * c_element_bytes(arg)
                    } else {
                        abi.pointer_size()
                    };
                    Arg::Buffer(vec![0; capacity.max(4)])
                }
                ArgKind::InOut if is_scalar(arg) => Arg::Buffer(rng.bytes(c_element_bytes(arg))),
                _ if !pointer => Arg::Value(scalar_value(arg, size, rng)),
                _ => {
                    let (bytes, count) = array_value(arg, rng);
                    counts.insert(arg.name.clone(), count);
                    Arg::Buffer(bytes)
                }
            }
        } else if let Some(base) = name.strip_suffix("Cnt").and_then(|b| find(routine, b)) {
            match base.kind {
                // No room for an unbounded array: the stub allocates what arrives.
                ArgKind::Out if base.ty.inline && !is_unbounded(base) => {
                    Arg::Buffer(max_count(base).to_le_bytes().to_vec())
                }
                ArgKind::Out => Arg::Buffer(vec![0; 4]),
                _ => Arg::Value(
                    counts
                        .get(&base.name)
                        .copied()
                        .unwrap_or(0)
                        .to_le_bytes()
                        .to_vec(),
                ),
            }
        } else if let Some(base) = name.strip_suffix("Poly").and_then(|b| find(routine, b)) {
            if base.kind == ArgKind::Out {
                Arg::Buffer(vec![0; 4])
            } else {
                Arg::Value(disposition(base, rng).to_le_bytes().to_vec())
            }
        } else if name
            .strip_suffix("Dealloc")
            .and_then(|b| find(routine, b))
            .is_some()
        {
            Arg::Value((rng.below(2) as u32).to_le_bytes().to_vec())
        } else {
            return Err(format!(
                "{}: no argument for C parameter `{name}`",
                routine.name
            ));
        };
        if let Arg::Value(v) = &arg {
            if v.len() != size {
                return Err(format!(
                    "{}: `{name}` is {size} bytes in C, {} from the model",
                    routine.name,
                    v.len()
                ));
            }
        }
        args.push(arg);
    }
    Ok(args)
}

/// A value for a scalar (or small fixed inline array passed by value) argument.
fn scalar_value(arg: &MigArg, size: usize, rng: &mut Rng) -> Vec<u8> {
    let mut v = rng.bytes(size);
    if arg.ty.in_name == MsgName::Fixed(mig::types::name::BOOLEAN) && arg.ty.element_bits == 32 {
        v = (rng.below(2) as u32).to_le_bytes().to_vec();
    }
    v
}

/// What the server handler returns through each of its parameters (see `driver.c`'s `script`),
/// for a success reply.
pub fn handler_ops(routine: &Routine, handler: &Prototype, rng: &mut Rng) -> Vec<String> {
    let hex = super::c_stubs::hex;
    let mut counts = std::collections::HashMap::new();
    let mut ops = Vec::new();
    for (_, name) in &handler.params {
        let op = if let Some(arg) = find(routine, name).filter(|a| a.in_reply()) {
            if !arg.ty.inline || is_unbounded(arg) {
                let count = rng.count(max_count(arg).min(4096));
                counts.insert(arg.name.clone(), count);
                format!(
                    "a{}",
                    hex(&rng.bytes(count as usize * c_element_bytes(arg)))
                )
            } else if is_scalar(arg) || matches!(arg.ty.count, Count::Fixed(_)) {
                let n = match arg.ty.count {
                    Count::Fixed(n) => n as usize,
                    Count::Variable(_) => 1,
                };
                format!("w{}", hex(&rng.bytes(n * c_element_bytes(arg))))
            } else {
                // The server hands the handler its reply buffer with room for the maximum.
                let count = rng.count(max_count(arg));
                counts.insert(arg.name.clone(), count);
                format!(
                    "w{}",
                    hex(&rng.bytes(count as usize * c_element_bytes(arg)))
                )
            }
        } else if let Some(base) = name
            .strip_suffix("Cnt")
            .and_then(|b| find(routine, b))
            .filter(|a| a.in_reply())
        {
            format!(
                "w{}",
                hex(&counts.get(&base.name).copied().unwrap_or(0).to_le_bytes())
            )
        } else if let Some(base) = name
            .strip_suffix("Poly")
            .and_then(|b| find(routine, b))
            .filter(|a| a.in_reply())
        {
            format!("w{}", hex(&disposition(base, rng).to_le_bytes()))
        } else {
            "-".to_owned()
        };
        ops.push(op);
    }
    ops
}

/// Ops that only record (for requests the handler should refuse).
pub fn record_only(handler: &Prototype) -> Vec<String> {
    vec!["-".to_owned(); handler.params.len()]
}
