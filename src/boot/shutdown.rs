//! The shutdown notice: the startup server sends `startup_dosync` to every server that asked
//! (`startup_request_notification`) before the system goes down, and waits for the answer. A
//! disk server answers once every open disk's volatile cache is on stable storage.

use alloc::boxed::Box;
use mach::interfaces::startup_notify;
use mach::kern::Result;
use mach::mig_rt as rt;
use mach::port::{PortName, ReceiveRight};

use crate::backend::Backend;
use crate::device_server::DeviceServer;

/// Answers `startup_dosync` for the disks of one device server.
pub struct ShutdownNotice<B: Backend + 'static> {
    devices: &'static DeviceServer<B>,
}

impl<B: Backend + 'static> startup_notify::Server for ShutdownNotice<B> {
    fn startup_dosync(&mut self, _reply: rt::ReplyPort<'_>, _notify_port: PortName) -> Result<()> {
        // Before the answer: the startup server goes on with the shutdown once it has it.
        let flushed = self.devices.core().flush_all();
        match flushed {
            Ok(()) => log::info!("rumpdisk: disk caches flushed for the shutdown"),
            Err(error) => log::error!("rumpdisk: a disk's cache was not flushed for the shutdown: {error:?}"),
        }
        flushed
    }
}

/// Makes the port the shutdown notice arrives on and serves it beside the boot port; returns
/// its name (the startup server gets a send right made from it).
pub fn serve<B: Backend + 'static>(devices: &'static DeviceServer<B>) -> Result<PortName> {
    let port = ReceiveRight::new()?;
    let name = port.name();
    devices.serve_port(
        port,
        Box::new(move |request: &[u8], reply: &mut [u8]| startup_notify::demux(&mut ShutdownNotice { devices }, request, reply).disposition()),
    )?;
    Ok(name)
}
