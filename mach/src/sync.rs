//! Locks for Mach threads: a spin lock whose waiters give the processor away.
//!
//! A plain spin lock is wrong on GNU Mach's uniprocessor: a waiter spins until the scheduler
//! preempts it, while the holder — the only thread that can release the lock — cannot run. Mach's
//! own cthreads answered this the same way: spin on the word, and `swtch_pri` between tries so
//! the holder (at any priority) gets the processor back at once.

/// Between two tries at a held lock: lets every other runnable thread go first.
pub struct YieldToHolder;

impl spin::RelaxStrategy for YieldToHolder {
    fn relax() {
        crate::sys::swtch_pri(0);
    }
}

/// A mutual-exclusion lock whose waiters yield to the holder.
pub type Mutex<T> = spin::mutex::SpinMutex<T, YieldToHolder>;
pub type MutexGuard<'a, T> = spin::mutex::SpinMutexGuard<'a, T>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn threads_contending_for_the_lock_all_get_it() {
        let counter = Arc::new(Mutex::new(0u32));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *counter.lock() += 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*counter.lock(), 40_000);
    }
}
