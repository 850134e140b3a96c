//! The processor time a task's threads have used, as GNU Mach counts it:
//! `task_info(TASK_THREAD_TIMES_INFO)`, the user and system time of its live threads. A bench
//! reads it for another task (the driver's, whose task port it holds) before and after a
//! workload: threads that end take their time with them, which a server whose threads stay for
//! its whole life never does.
//!
//! The answer is `task_thread_times_info` in `integer_t` words: the two `rpc_time_value_t`s
//! (seconds `rpc_long_integer_t`, microseconds `integer_t`: 16 bytes with padding on x86_64, 8 on
//! i686), then, from kernels that have them, the same two as `time_value64_t` (seconds and
//! nanoseconds, 64 bits each). The 64-bit pair is read when the kernel sent it.

use crate::interfaces::mach;
use crate::kern::Result;
use crate::port::PortName;

/// `TASK_THREAD_TIMES_INFO` of `mach/task_info.h`.
const TASK_THREAD_TIMES_INFO: i32 = 3;
/// Words of the longest answer (x86_64 with the 64-bit pair).
const MAX_WORDS: usize = 16;

/// Which user-space ABI's `task_thread_times_info` the words hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// x86_64: `rpc_long_integer_t` is 64-bit.
    X86_64,
    /// i686: every field is 32-bit.
    I686,
}

impl Abi {
    /// The ABI of the target being built.
    #[cfg(target_pointer_width = "64")]
    pub const TARGET: Abi = Abi::X86_64;
    /// The ABI of the target being built.
    #[cfg(target_pointer_width = "32")]
    pub const TARGET: Abi = Abi::I686;
}

/// User and system time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub user_ns: u64,
    pub system_ns: u64,
}

impl CpuTime {
    pub fn total_ns(self) -> u64 {
        self.user_ns + self.system_ns
    }
}

/// The time `task`'s live threads have used.
pub fn thread_times(task: PortName) -> Result<CpuTime> {
    let words = mach::task_info(task, TASK_THREAD_TIMES_INFO, MAX_WORDS as u32)?;
    decode(words.as_slice(), Abi::TARGET).ok_or_else(|| crate::kern::Error::from_const(crate::kern::MIG_TYPE_ERROR))
}

/// A `task_thread_times_info` of `abi` in `words`; `None` when it is too short for even the
/// `rpc_time_value_t` pair.
pub fn decode(words: &[i32], abi: Abi) -> Option<CpuTime> {
    let word = |i: usize| words.get(i).map(|&w| w as u32);
    let long = |i: usize| Some(u64::from(word(i)?) | u64::from(word(i + 1)?) << 32);
    // (words of one rpc_time_value_t, whether its seconds take two words)
    let (rpc_words, long_seconds) = match abi {
        Abi::X86_64 => (4, true),
        Abi::I686 => (2, false),
    };
    let time64 = |at: usize| Some(long(at)?.saturating_mul(1_000_000_000).saturating_add(long(at + 2)?));
    let from64 = 2 * rpc_words;
    if let (Some(user_ns), Some(system_ns)) = (time64(from64), time64(from64 + 4)) {
        return Some(CpuTime { user_ns, system_ns });
    }
    let rpc = |at: usize| {
        let (seconds, micros) = if long_seconds { (long(at)?, word(at + 2)?) } else { (u64::from(word(at)?), word(at + 1)?) };
        Some(seconds.saturating_mul(1_000_000_000).saturating_add(u64::from(micros) * 1000))
    };
    Some(CpuTime { user_ns: rpc(0)?, system_ns: rpc(rpc_words)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as the kernel lays them out: (seconds, microseconds) twice, then optionally
    /// (seconds, nanoseconds) twice.
    fn x86_64(rpc: [(i64, i32); 2], time64: Option<[(i64, i64); 2]>) -> alloc::vec::Vec<i32> {
        let mut words = alloc::vec::Vec::new();
        for (seconds, micros) in rpc {
            words.extend([seconds as i32, (seconds >> 32) as i32, micros, 0]);
        }
        for (seconds, nanos) in time64.into_iter().flatten() {
            words.extend([seconds as i32, (seconds >> 32) as i32, nanos as i32, (nanos >> 32) as i32]);
        }
        words
    }

    #[test]
    fn the_64_bit_pair_is_read_when_sent() {
        let words = x86_64([(1, 500_000), (2, 0)], Some([(1, 500_000_123), (2, 7)]));
        assert_eq!(words.len(), MAX_WORDS);
        assert_eq!(decode(&words, Abi::X86_64), Some(CpuTime { user_ns: 1_500_000_123, system_ns: 2_000_000_007 }));
        let i686 = [1, 500_000, 2, 0, 1, 0, 500_000_123, 0, 2, 0, 7, 0];
        assert_eq!(decode(&i686, Abi::I686), Some(CpuTime { user_ns: 1_500_000_123, system_ns: 2_000_000_007 }));
    }

    #[test]
    fn an_older_kernel_s_microseconds_are_read_alone() {
        let words = x86_64([(3, 250), (0, 999_999)], None);
        let times = decode(&words, Abi::X86_64).unwrap();
        assert_eq!(times, CpuTime { user_ns: 3_000_250_000, system_ns: 999_999_000 });
        assert_eq!(times.total_ns(), 4_000_249_000);
        assert_eq!(decode(&[3, 250, 0, 999_999], Abi::I686), Some(times));
        // Seconds past 2^32 keep their high word on x86_64.
        let long = x86_64([(1 << 32, 0), (0, 0)], None);
        assert_eq!(decode(&long, Abi::X86_64).unwrap().user_ns, (1u64 << 32) * 1_000_000_000);
        assert_eq!(decode(&words[..6], Abi::X86_64), None, "too short for the pair");
    }
}
