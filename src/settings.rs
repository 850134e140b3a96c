//! The options of a running server, as `fsysopts` sees and changes them: `fsys_get_options`
//! (and the node's `file_get_fs_options`) answer the current ones; `fsys_set_options` applies
//! new ones. Only `--flush` can change while the server runs; the ports and the IDE channel are
//! fixed at start, and a request to change them is refused whole.

use alloc::vec::Vec;
use mach::kern::Result;
use mach::sync::Mutex;

use crate::backend::flush_mode::WithFlushMode;
use crate::options::{self, Command, Options};
use crate::translator::EINVAL;

/// What a server answers and does for `fsysopts`.
pub trait Settings: Sync {
    /// The current options, as an argz vector led by the program name.
    fn options(&self) -> Vec<u8>;
    /// Applies `words` (options without the program name, as `fsysopts NODE WORDS...` sends
    /// them) over the current options: all of them, or none and an error.
    fn set_options(&self, words: &[&[u8]]) -> Result<()>;
}

/// The settings of a server over disks whose flush mode can change.
pub struct Running<'a, B> {
    program: &'static str,
    options: Mutex<Options>,
    disks: &'a WithFlushMode<B>,
}

impl<'a, B> Running<'a, B> {
    /// `options` as the server started with them, over `disks`.
    pub fn new(program: &'static str, options: Options, disks: &'a WithFlushMode<B>) -> Self {
        Running { program, options: Mutex::new(options), disks }
    }
}

impl<B: Sync + Send> Settings for Running<'_, B> {
    fn options(&self) -> Vec<u8> {
        let mut options = self.options.lock().clone();
        options.flush = self.disks.mode();
        options.to_argz(self.program)
    }

    fn set_options(&self, words: &[&[u8]]) -> Result<()> {
        let mut current = self.options.lock();
        // The new words after the current ones: the later spelling of an option wins.
        let argz = current.to_argz(self.program);
        let mut all: Vec<&[u8]> = argz.strip_suffix(&[0]).unwrap_or(&argz).split(|&b| b == 0).skip(1).collect();
        all.extend_from_slice(words);
        let Ok(Command::Serve(new)) = options::parse(&all) else { return Err(EINVAL) };
        if (Options { flush: current.flush, ..new.clone() }) != *current {
            return Err(EINVAL);
        }
        self.disks.set_mode(new.flush);
        *current = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ata::port_io::IdeChannel;
    use crate::backend::flush_mode::FlushMode;
    use crate::backend::memory::MemoryBackend;

    fn started() -> Options {
        Options { ide_channel: IdeChannel::Secondary, ..Options::default() }
    }

    #[test]
    fn the_flush_mode_changes_and_the_rest_stays() {
        let disks = WithFlushMode::new(MemoryBackend::default(), FlushMode::Device);
        let running = Running::new("/hurd/rumpdisk", started(), &disks);
        assert_eq!(running.options(), b"/hurd/rumpdisk\0--ide-channel=secondary\0");
        assert_eq!(running.set_options(&[b"--flush=refuse"]), Ok(()));
        assert_eq!(disks.mode(), FlushMode::Refuse);
        assert_eq!(running.options(), b"/hurd/rumpdisk\0--flush=refuse\0--ide-channel=secondary\0");
        // Restating a fixed option as it is changes nothing and is accepted.
        assert_eq!(running.set_options(&[b"--ide-channel=secondary", b"--flush", b"device"]), Ok(()));
        assert_eq!(disks.mode(), FlushMode::Device);
        assert_eq!(running.set_options(&[]), Ok(()));
        assert_eq!(disks.mode(), FlushMode::Device);
    }

    #[test]
    fn fixed_or_bad_options_are_refused_whole() {
        let disks = WithFlushMode::new(MemoryBackend::default(), FlushMode::Device);
        let running = Running::new("rumpdisk", started(), &disks);
        for words in [&[&b"--flush=skip"[..], b"--ide-channel=primary"][..], &[b"--flush=skip", b"-h", b"7"], &[b"--flush=often"], &[b"--frobnicate"], &[b"--help"]] {
            assert_eq!(running.set_options(words), Err(EINVAL), "{words:?}");
            assert_eq!(disks.mode(), FlushMode::Device, "nothing applied: {words:?}");
        }
        assert_eq!(running.options(), b"rumpdisk\0--ide-channel=secondary\0");
    }
}
