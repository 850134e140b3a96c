//! `rumpdisk`: the Hurd build of the translator, over the Hurd's rump disk drivers. It serves
//! `wd*`/`sd*`/`cd*` through rump and forwards every other name to the device master, in one of
//! two roles:
//!
//! - **translator** (`settrans -c /dev/rumpdisk /hurd/rumpdisk`): started with a bootstrap port
//!   and no `--next-task`, it gets the privileged ports from glibc's `get_privileged_ports`
//!   (unless `--host-priv-port`/`--device-master-port` name them), does the `fsys_startup`
//!   hand-shake with the parent filesystem and serves the control port
//!   ([`rumpdisk::translator`]): a lookup of the node gives the device server's master port, so
//!   `/hurd/storeio @/dev/rumpdisk:wd0` opens `wd0` here; `fsys_goaway` ends the process.
//! - **boot server** (`--next-task`, with `--host-priv-port`/`--device-master-port` or a boot
//!   server above it to ask): the next task's bootstrap port, answered as `rumpdisk.static`
//!   answers it ([`rumpdisk::boot`]): privileged ports, `fsys_startup`, `fsys_init`, then
//!   `/dev/rumpdisk`, essential task and shutdown notice.
//!
//! Built two ways: with the `rump` feature it drives disks through the rump kernel as the C
//! rumpdisk does (linked with the rump kernel `cargo xtask hurd` builds; statically, the boot
//! disk server of the `hurd-rump-*` scenarios); without it, through the native ATA driver on
//! the IDE channel `--ide-channel` names. Both link against the Hurd's glibc built by
//! `cargo xtask hurd` and run in the Hurd VM.

// glibc's start-up calls `main` below, not std's: see there.
#![no_main]
#![feature(exitcode_exit_method)]

use std::ffi::{c_char, c_int, CStr, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use mach::args::Vectors;
use mach::port::{PortName, SendRight};
#[cfg(not(feature = "rump"))]
use rumpdisk::backend::ata::units::Units;
#[cfg(not(feature = "rump"))]
use rumpdisk::backend::ata::{port_io, AtaBackend};
use rumpdisk::backend::flush_mode::WithFlushMode;
#[cfg(feature = "rump")]
use rumpdisk::backend::rump::{dma::Contiguous, ffi::LinkedRump, RumpBackend};
use rumpdisk::boot::{self, BootServer, Upstream};
use rumpdisk::device_server::DeviceServer;
use rumpdisk::options::{self, Command, Options};
use rumpdisk::settings::{Running, Settings};
use rumpdisk::translator::{Ended, Translator, O_NORW};

/// Threads serving device requests at most: more start while every one is busy (a slow flush,
/// a forwarded open), so that one slow request never stops the others.
const SERVING_THREADS: usize = 8;

/// `sysexits.h`: a usage error, a failure to start, and missing privileges.
const EX_USAGE: u8 = 64;
const EX_SOFTWARE: u8 = 70;
const EX_NOPERM: u8 = 77;

/// The C `main` glibc's start-up calls, in place of std's runtime set-up: that reopens closed
/// standard streams on `/dev/null` and aborts when it cannot — always so in a boot server,
/// started by GNU Mach before any file system with its descriptors 0 to 2 closed (std's set-up
/// hung `rumpdisk-rump.static` before any line of ours; upstream's C boot servers start there
/// as they are). std works without that set-up; the arguments come from `argv` here.
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mut args: Vec<OsString> = (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: glibc passes `argc` NUL-terminated strings in `argv`, alive for the process.
        .map(|i| OsStr::from_bytes(unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes()).to_owned())
        .collect();
    let program = if args.is_empty() { "rumpdisk".to_owned() } else { args.remove(0).to_string_lossy().into_owned() };
    // SAFETY: glibc's `environ`, set before `main` and not changed by anything running yet.
    let envp = unsafe { environ } as usize;
    run(program, args, Vectors { argv: argv as usize, envp }).exit_process()
}

extern "C" {
    /// glibc's environment vector (unistd.h).
    static environ: *const *const c_char;
}

/// `program`: the name it was started as (`fsysopts` shows it); `args`: its options; `vectors`:
/// where glibc's argv and environ are (`ps` shows them).
fn run(program: String, args: Vec<OsString>, vectors: Vectors) -> ExitCode {
    let words: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    match options::parse(&words) {
        Ok(Command::Help) => print!("{}", options::HELP),
        Ok(Command::Usage) => print!("{}", options::USAGE),
        Ok(Command::Version) => print!("{}", options::VERSION),
        Ok(Command::Serve(options)) => return serve(options, program, vectors),
        Err(error) => {
            // A boot server whose command line does not parse has only the console to say so.
            if let Some(master) = options::device_master_word(&words) {
                let _ = mach::console::init_log(PortName::new(master), log::LevelFilter::Info);
            }
            say(&format!("rumpdisk: {error}"));
            eprintln!("Try `rumpdisk --help' or `rumpdisk --usage' for more information.");
            return ExitCode::from(EX_USAGE);
        }
    }
    ExitCode::SUCCESS
}

/// Says `text` on stderr and, in the boot role, on the console: a boot server has no stderr
/// (as upstream's boot servers, whose standard streams libmachdev opens on the console).
/// Outside the boot role no logger is installed and the log line goes nowhere.
fn say(text: &str) {
    eprintln!("{text}");
    log::error!("{text}");
}

/// In the boot role, a panic's text goes to the console too.
fn panics_to_the_console() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("rumpdisk: {info}");
        default(info);
    }));
}

/// A glibc thread for the boot server's work after `fsys_init`.
fn spawn_thread(job: Box<dyn FnOnce() + Send>) -> mach::kern::Result<()> {
    std::thread::Builder::new().spawn(job).map(drop).map_err(|_| mach::kern::Error::from_const(mach::kern::KERN_RESOURCE_SHORTAGE))
}

/// The host-priv port and the device master: from the options, or else from the boot server
/// above (`upstream`), or else (a translator) from glibc. On failure, the exit code and why.
fn privileged_ports(options: &Options, upstream: Option<(SendRight, SendRight)>, translator: bool) -> Result<(u32, u32), (u8, String)> {
    match (options.host_priv_port, options.device_master_port, upstream) {
        (Some(host_priv), Some(master), _) => Ok((host_priv, master)),
        (_, _, Some((host_priv, master))) => Ok((host_priv.into_name().raw(), master.into_name().raw())),
        _ if translator => {
            let (mut host_priv, mut master) = (0, 0);
            match mach::sys::get_privileged_ports(&mut host_priv, &mut master) {
                0 => Ok((host_priv, master)),
                error => Err((EX_NOPERM, format!("cannot get the privileged ports (error {error:#x}): not running as root?"))),
            }
        }
        _ => Err((EX_USAGE, "--host-priv-port and --device-master-port are required".into())),
    }
}

/// The disks, through the rump kernel as the Hurd's rumpdisk drives them.
#[cfg(feature = "rump")]
type Disks = WithFlushMode<RumpBackend<LinkedRump, Contiguous>>;

/// The disks, through the native ATA driver on the legacy IDE channel `--ide-channel` names
/// (a build without librump).
#[cfg(not(feature = "rump"))]
type Disks = WithFlushMode<Units<AtaBackend<port_io::LegacyPorts, port_io::Tsc>>>;

/// Called before any thread starts: `rump_init` (here, before serving, as upstream starts it)
/// reads the environment set here, and setting it later would race with other threads' reads.
/// The rump kernel stays off if the kernel behind `master` drives the disk controllers itself;
/// bounce buffers come with `host_priv` (a reference of our own: the caller keeps or releases
/// its own).
#[cfg(feature = "rump")]
fn disks(options: &Options, host_priv: PortName, master: PortName) -> Result<Disks, String> {
    for (name, value) in rumpdisk::backend::rump::RUMP_ENVIRONMENT {
        std::env::set_var(name, value);
    }
    let host_priv = SendRight::copy_of(host_priv).map_err(|e| format!("{e:?}"))?;
    let rump = RumpBackend::beside_kernel(LinkedRump, Contiguous::new(host_priv), master);
    rump.start().map_err(|e| format!("starting the rump kernel: {e:?}"))?;
    Ok(WithFlushMode::new(rump, options.flush))
}

/// The channel's I/O ports come through `master`: in a running Hurd that is the boot disk
/// server's master port, which passes `i386_io_perm_create` on to the kernel.
#[cfg(not(feature = "rump"))]
fn disks(options: &Options, _host_priv: PortName, master: PortName) -> Result<Disks, String> {
    port_io::native_backend(master, options.ide_channels(), options.flush, options.ata_transfer).map_err(|e| format!("{e:?}"))
}

fn serve(options: Options, program: String, vectors: Vectors) -> ExitCode {
    // A boot server's bootstrap port is the server's that started it (if any); only without
    // --next-task is this process a translator on a node.
    let (bootstrap, upstream) = match (options.next_task, boot::own_bootstrap_port()) {
        (None, bootstrap) => (bootstrap, None),
        (Some(_), None) => (None, None),
        (Some(_), Some(above)) => match Upstream::contact(above) {
            Ok((host_priv, master, upstream)) => (None, Some((host_priv, master, upstream))),
            Err(error) => {
                say(&format!("rumpdisk: warning: the server that started this one gave no privileged ports: {error:?}"));
                (None, None)
            }
        },
    };
    let (upstream_ports, upstream) = match upstream {
        Some((host_priv, master, upstream)) => (Some((host_priv, master)), Some(upstream)),
        None => (None, None),
    };
    let given = options.host_priv_port.is_some() && options.device_master_port.is_some();
    let (host_priv, master) = match privileged_ports(&options, upstream_ports, bootstrap.is_some()) {
        Ok(ports) => ports,
        Err((code, error)) => {
            say(&format!("rumpdisk: {error}"));
            return ExitCode::from(code);
        }
    };
    if options.next_task.is_some() {
        // A boot server has no stderr before the system runs: its lines and panics go to the
        // kernel console, as upstream's boot servers write there.
        if let Err(error) = mach::console::init_log(PortName::new(master), log::LevelFilter::Info) {
            eprintln!("rumpdisk: no console for warnings: {error:?}");
        }
        panics_to_the_console();
    }
    // Before any thread starts: the rump kernel's `ioperm`, libpciaccess and the `irq` device's
    // open ask glibc for these, and a boot server has no proc server for glibc to ask.
    let error = mach::sys::give_privileged_ports(host_priv, master);
    if error != 0 {
        say(&format!("rumpdisk: warning: glibc keeps no privileged ports (error {error:#x})"));
    }
    let backend = match disks(&options, PortName::new(host_priv), PortName::new(master)) {
        Ok(backend) => backend,
        Err(error) => {
            say(&format!("rumpdisk: cannot drive the disks: {error}"));
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    let server = match DeviceServer::new(backend, Some(SendRight::from_name(PortName::new(master)))) {
        // Every serving thread borrows the server for the process's whole life.
        Ok(server) => &*Box::leak(Box::new(server)),
        Err(error) => {
            say(&format!("rumpdisk: cannot make the server's ports: {error:?}"));
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    // It may drive the disk the default pager swaps to: as upstream, its memory and its serving
    // threads are wired, or it does not start.
    if let Err(error) = SendRight::copy_of(PortName::new(host_priv)).and_then(|host_priv| server.keep_in_memory(host_priv)) {
        say(&format!("rumpdisk: cannot wire the task's memory: {error:?}"));
        return ExitCode::from(EX_SOFTWARE);
    }
    let settings: &'static dyn Settings = Box::leak(Box::new(Running::new(program.leak(), options.clone(), server.core().backend(), server.core())));
    if let Some(next_task) = options.next_task {
        // The next task's bootstrap port is served by a thread of its own.
        let host_priv = SendRight::from_name(PortName::new(host_priv));
        if let Err(error) = BootServer::start(server, host_priv, upstream, Some(PortName::new(next_task)), spawn_thread, settings, vectors) {
            say(&format!("rumpdisk: cannot start the next task: {error:?}"));
            return ExitCode::from(EX_SOFTWARE);
        }
    } else if !given {
        // From glibc; the server keeps a reference of its own for wiring threads and ports.
        drop(SendRight::from_name(PortName::new(host_priv)));
    }
    if let Some(bootstrap) = bootstrap {
        return serve_translator(server, bootstrap, settings);
    }
    server.grow(spawn_thread, SERVING_THREADS);
    say(&format!("rumpdisk: serving ended: {:?}", server.serve()));
    ExitCode::from(EX_SOFTWARE)
}

/// The translator role: the hand-shake, device requests on their own threads, the control port
/// on this one until `fsys_goaway`.
fn serve_translator(server: &'static DeviceServer<Disks>, bootstrap: SendRight, settings: &'static dyn Settings) -> ExitCode {
    let translator = match Translator::start(server, bootstrap, O_NORW, settings, std::process::id()) {
        Ok(translator) => translator,
        Err(error) => {
            say(&format!("rumpdisk: contacting the parent filesystem (fsys_startup): {error:?}"));
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    translator.authenticate_with(SendRight::from_name(PortName::new(mach::sys::getauth())));
    // Device requests on threads of their own, as many as they need up to the bound; the
    // control port and the node ports on this one.
    server.grow(spawn_thread, SERVING_THREADS);
    std::thread::spawn(move || say(&format!("rumpdisk: a serving thread ended: {:?}", server.serve())));
    match translator.serve() {
        // The goaway is answered; the open devices (a forced goaway) die with the process.
        Ended::GoneAway { .. } | Ended::Orphaned => ExitCode::SUCCESS,
        Ended::Failed(error) => {
            say(&format!("rumpdisk: serving the control port ended: {error:?}"));
            ExitCode::from(EX_SOFTWARE)
        }
    }
}
