//! The options of a running server, as `fsysopts` sees and changes them: `fsys_get_options`
//! (and the node's `file_get_fs_options`) answer the current ones; `fsys_set_options` applies
//! new ones. Only `--flush` can change while the server runs; the ports and the IDE channel are
//! fixed at start, and a request to change them is refused whole.
//!
//! What is listed is what a user chose: the settings that differ from the defaults. The port
//! names the boot script or glibc gave (`--host-priv-port`, `--device-master-port`,
//! `--next-task`) are not listed: they name rights in this task only, as upstream's rumpdisk
//! lists none of them. A flush mode that answers without flushing is not set at run time
//! while a client has a disk open for writing (a mounted file system would lose its barriers
//! silently) unless the request says `--force`: `EBUSY` otherwise.

use alloc::vec::Vec;
use mach::kern::Result;
use mach::sync::Mutex;

use crate::backend::flush_mode::{FlushMode, WithFlushMode};
use crate::backend::Backend;
use crate::flush::Waiter;
use crate::options::{self, Command, Options};
use crate::server::Server;
use crate::errno::{EBUSY, EINVAL};

/// The word of `fsys_set_options` that sets a flush mode that does not flush while a disk is
/// open for writing (it is no option of the command line, and is never listed).
pub const FORCE: &[u8] = b"--force";

/// Whether `mode` answers `DEV_FLUSH_CACHE` with success without flushing every time (any mode
/// but flushing and refusing): a file system over it loses its barriers without knowing.
fn drops_barriers(mode: FlushMode) -> bool {
    !matches!(mode, FlushMode::Device | FlushMode::Refuse)
}

/// Whether clients have disks open for writing (a mounted file system, say).
pub trait OpenDisks: Sync {
    fn open_for_writing(&self) -> bool;
}

impl<B: Backend + Sync, W: Waiter + Send> OpenDisks for Server<B, W> {
    fn open_for_writing(&self) -> bool {
        Server::open_for_writing(self)
    }
}

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
    /// Who has the disks open (the server's core).
    open: &'a dyn OpenDisks,
}

impl<'a, B> Running<'a, B> {
    /// `options` as the server started with them, over `disks`, which `open` serves.
    pub fn new(program: &'static str, options: Options, disks: &'a WithFlushMode<B>, open: &'a dyn OpenDisks) -> Self {
        Running { program, options: Mutex::new(options), disks, open }
    }

    /// What a user chose, as an argz vector led by the program name: no port names.
    fn listed(&self, options: &Options) -> Vec<u8> {
        Options { host_priv_port: None, device_master_port: None, next_task: None, ..options.clone() }.to_argz(self.program)
    }
}

impl<B: Sync + Send> Settings for Running<'_, B> {
    fn options(&self) -> Vec<u8> {
        let mut options = self.options.lock().clone();
        options.flush = self.disks.mode();
        self.listed(&options)
    }

    fn set_options(&self, words: &[&[u8]]) -> Result<()> {
        let mut current = self.options.lock();
        let force = words.contains(&FORCE);
        // The new words after the current ones: the later spelling of an option wins.
        let argz = self.listed(&current);
        let mut all: Vec<&[u8]> = argz.strip_suffix(&[0]).unwrap_or(&argz).split(|&b| b == 0).skip(1).collect();
        all.extend(words.iter().filter(|word| **word != FORCE));
        let Ok(Command::Serve(new)) = options::parse(&all) else { return Err(EINVAL) };
        // Port names are not listed: restating one as it is changes nothing.
        let new = Options {
            host_priv_port: new.host_priv_port.or(current.host_priv_port),
            device_master_port: new.device_master_port.or(current.device_master_port),
            next_task: new.next_task.or(current.next_task),
            ..new
        };
        if (Options { flush: current.flush, ..new.clone() }) != *current {
            return Err(EINVAL);
        }
        let mode = self.disks.mode();
        if new.flush != mode && drops_barriers(new.flush) && !force && self.open.open_for_writing() {
            log::warn!("rumpdisk: --flush={} refused while a disk is open for writing (add --force)", new.flush);
            return Err(EBUSY);
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
        Options { ide_channel: Some(IdeChannel::Secondary), ..Options::default() }
    }

    /// Disks open for writing, or not, as the test says.
    struct Open(core::sync::atomic::AtomicBool);

    impl OpenDisks for Open {
        fn open_for_writing(&self) -> bool {
            self.0.load(core::sync::atomic::Ordering::Relaxed)
        }
    }

    static NONE_OPEN: Open = Open(core::sync::atomic::AtomicBool::new(false));

    #[test]
    fn a_mode_that_does_not_flush_needs_force_while_a_disk_is_open_for_writing() {
        let disks = WithFlushMode::new(MemoryBackend::default(), FlushMode::Device);
        let open = Open(core::sync::atomic::AtomicBool::new(true));
        let running = Running::new("rumpdisk", started(), &disks, &open);
        assert_eq!(running.set_options(&[b"--flush=skip"]), Err(EBUSY), "a mounted file system would lose its barriers");
        assert_eq!(disks.mode(), FlushMode::Device);
        assert_eq!(running.set_options(&[b"--flush=refuse"]), Ok(()), "refusing is no silent loss");
        assert_eq!(running.set_options(&[b"--flush=skip", FORCE]), Ok(()));
        assert_eq!(disks.mode(), FlushMode::Skip);
        assert_eq!(running.options(), b"rumpdisk\0--flush=skip\0--ide-channel=secondary\0", "--force is not listed");
        assert_eq!(running.set_options(&[b"--flush=skip"]), Ok(()), "restating the mode changes nothing");
        assert_eq!(running.set_options(&[b"--flush=device"]), Ok(()));
        open.0.store(false, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(running.set_options(&[b"--flush=skip"]), Ok(()), "no disk open for writing");
        assert_eq!(disks.mode(), FlushMode::Skip);
    }

    #[test]
    fn the_port_names_are_not_listed_and_restating_them_is_no_change() {
        let disks = WithFlushMode::new(MemoryBackend::default(), FlushMode::Device);
        let booted = Options { host_priv_port: Some(1), device_master_port: Some(2), next_task: Some(13), ..Options::default() };
        let running = Running::new("rumpdisk.static", booted, &disks, &NONE_OPEN);
        assert_eq!(running.options(), b"rumpdisk.static\0");
        assert_eq!(running.set_options(&[b"--next-task=13", b"--flush=refuse"]), Ok(()));
        assert_eq!(running.options(), b"rumpdisk.static\0--flush=refuse\0");
        assert_eq!(running.set_options(&[b"--next-task=14"]), Err(EINVAL), "a port name is fixed");
    }

    #[test]
    fn the_flush_mode_changes_and_the_rest_stays() {
        let disks = WithFlushMode::new(MemoryBackend::default(), FlushMode::Device);
        let running = Running::new("/hurd/rumpdisk", started(), &disks, &NONE_OPEN);
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
        let running = Running::new("rumpdisk", started(), &disks, &NONE_OPEN);
        for words in [&[&b"--flush=skip"[..], b"--ide-channel=primary"][..], &[b"--ide-channel=all"], &[b"--flush=skip", b"-h", b"7"], &[b"--flush=often"], &[b"--frobnicate"], &[b"--help"]] {
            assert_eq!(running.set_options(words), Err(EINVAL), "{words:?}");
            assert_eq!(disks.mode(), FlushMode::Device, "nothing applied: {words:?}");
        }
        assert_eq!(running.options(), b"rumpdisk\0--ide-channel=secondary\0");
    }
}
