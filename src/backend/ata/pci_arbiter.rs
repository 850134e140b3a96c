//! PCI configuration space through the Hurd's pci-arbiter, as libpciaccess's Hurd back end
//! reaches it: `device_open(master, "pci")` on the device master the arbiter gave its next task
//! is the root of the arbiter's tree, where each function has a file `DDDD/BB/DD/F/config`
//! answering `pci_conf_read` and `pci_conf_write`. The arbiter serialises every access: two
//! tasks at ports 0xCF8/0xCFC would interleave their address and data cycles.

use alloc::collections::BTreeMap;
use alloc::format;
use mach::interfaces::{device, fs, pci};
use mach::kern::Result;
use mach::port::{PortName, SendRight};

use super::pci::{ConfigSpace, Function};
use crate::device::{mode, D_NO_SUCH_DEVICE};
use crate::hurd_fs::{open, FS_RETRY_NORMAL};

/// The arbiter's tree, looked up a level at a time so that an absent bus or device costs one
/// lookup, not one per function below it. `None`: the arbiter has nothing there.
pub struct ArbiterConfig {
    root: SendRight,
    buses: BTreeMap<u8, Option<SendRight>>,
    devices: BTreeMap<(u8, u8), Option<SendRight>>,
    configs: BTreeMap<Function, Option<SendRight>>,
}

impl ArbiterConfig {
    /// The arbiter behind `device_master`, or `None` when it is the kernel's own (no PCI
    /// device there: the driver runs before any arbiter).
    pub fn open(device_master: PortName) -> Result<Option<ArbiterConfig>> {
        match device::device_open(device_master, mode::READ | mode::WRITE, b"pci") {
            Ok(root) => Ok(Some(ArbiterConfig { root, buses: BTreeMap::new(), devices: BTreeMap::new(), configs: BTreeMap::new() })),
            Err(error) if error == D_NO_SUCH_DEVICE => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The config file of `function`, looked up once.
    fn config(&mut self, function: Function) -> Option<PortName> {
        let Function { bus, device, function: number } = function;
        if !self.buses.contains_key(&bus) {
            let found = lookup(self.root.name(), &format!("0000/{bus:02x}"), 0);
            self.buses.insert(bus, found);
        }
        let bus_directory = self.buses[&bus].as_ref()?.name();
        if !self.devices.contains_key(&(bus, device)) {
            let found = lookup(bus_directory, &format!("{device:02x}"), 0);
            self.devices.insert((bus, device), found);
        }
        let device_directory = self.devices[&(bus, device)].as_ref()?.name();
        if !self.configs.contains_key(&function) {
            // The arbiter checks the open modes on each access.
            let found = lookup(device_directory, &format!("{number}/config"), open::READ | open::WRITE);
            self.configs.insert(function, found);
        }
        self.configs[&function].as_ref().map(SendRight::name)
    }
}

/// `name` under `directory` in the arbiter's own tree (no retry to another server), or `None`
/// when the arbiter has no such entry.
fn lookup(directory: PortName, name: &str, flags: i32) -> Option<SendRight> {
    match fs::dir_lookup(directory, name.as_bytes(), flags, 0) {
        Ok((FS_RETRY_NORMAL, retry_name, found)) if retry_name.as_slice().is_empty() => Some(found),
        _ => None,
    }
}

impl ConfigSpace for ArbiterConfig {
    /// All ones, the bus's answer for nothing, where the arbiter has no such function or cannot
    /// read it (said on the log: the function is there).
    fn read(&mut self, function: Function, offset: u8) -> u32 {
        let Some(config) = self.config(function) else { return !0 };
        match pci::pci_conf_read(config, i32::from(offset), 4) {
            Ok(data) => match <[u8; 4]>::try_from(data.as_slice()) {
                Ok(bytes) => u32::from_le_bytes(bytes),
                Err(_) => {
                    log::warn!("pci: {function:?} at {offset:#x}: the arbiter read {} bytes, not 4", data.len());
                    !0
                }
            },
            Err(error) => {
                log::warn!("pci: {function:?} at {offset:#x}: the arbiter refused to read: {error:?}");
                !0
            }
        }
    }

    fn write(&mut self, function: Function, offset: u8, value: u32) {
        let written = match self.config(function) {
            Some(config) => pci::pci_conf_write(config, i32::from(offset), &value.to_le_bytes()),
            None => Ok(0),
        };
        if written != Ok(4) {
            log::warn!("pci: {function:?} at {offset:#x}: the arbiter did not write {value:#x}: {written:?}");
        }
    }
}

#[cfg(test)]
mod tests;
