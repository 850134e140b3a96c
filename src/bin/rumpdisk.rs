//! `rumpdisk`: the Hurd build of the translator, over the Hurd's rump disk drivers. As a boot
//! server it takes the C rumpdisk's options (`--host-priv-port`, `--device-master-port`,
//! `--next-task`) and hands the next task its device master the way `rumpdisk.static` does; it
//! serves `wd*`/`sd*`/`cd*` through rump and forwards every other name to the device master.
//!
//! Not implemented: the translator-node role (`settrans -c /dev/rumpdisk /hurd/rumpdisk`,
//! which needs the trivfs `fsys_startup` hand-shake and the io interface on the node).
//! Compile-checked only: no Hurd libc or linker is reachable on the build host.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use mach::port::{PortName, SendRight};
use rumpdisk::backend::rump::ffi::LinkedRump;
use rumpdisk::backend::rump::RumpBackend;
use rumpdisk::boot::{self, Privileges};
use rumpdisk::device_server::DeviceServer;
use rumpdisk::options::{self, Command, Options};

/// Threads serving device requests: with more than one, flushes merge while one runs.
const SERVING_THREADS: usize = 4;

/// `sysexits.h`: a usage error, and a failure to start.
const EX_USAGE: u8 = 64;
const EX_SOFTWARE: u8 = 70;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let words: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    match options::parse(&words) {
        Ok(Command::Help) => print!("{}", options::HELP),
        Ok(Command::Usage) => print!("{}", options::USAGE),
        Ok(Command::Version) => print!("{}", options::VERSION),
        Ok(Command::Serve(options)) => return serve(options),
        Err(error) => {
            eprintln!("rumpdisk: {error}\nTry `rumpdisk --help' or `rumpdisk --usage' for more information.");
            return ExitCode::from(EX_USAGE);
        }
    }
    ExitCode::SUCCESS
}

fn serve(options: Options) -> ExitCode {
    let (Some(host_priv), Some(master)) = (options.host_priv_port, options.device_master_port) else {
        eprintln!("rumpdisk: --host-priv-port and --device-master-port are required");
        return ExitCode::from(EX_USAGE);
    };
    let backend = RumpBackend::new(LinkedRump);
    let server = match DeviceServer::new(backend, Some(SendRight::from_name(PortName::new(master)))) {
        // Every serving thread borrows the server for the process's whole life.
        Ok(server) => &*Box::leak(Box::new(server)),
        Err(error) => {
            eprintln!("rumpdisk: cannot make the server's ports: {error:?}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    if let Some(next_task) = options.next_task {
        let privileges =
            Privileges { host_priv: PortName::new(host_priv), device_master: server.master().name(), next_task: PortName::new(next_task) };
        std::thread::spawn(move || eprintln!("rumpdisk: boot hand-off ended: {:?}", boot::hand_off(privileges)));
    }
    for _ in 1..SERVING_THREADS {
        std::thread::spawn(move || eprintln!("rumpdisk: a serving thread ended: {:?}", server.serve()));
    }
    eprintln!("rumpdisk: serving ended: {:?}", server.serve());
    ExitCode::from(EX_SOFTWARE)
}
