//! What a boot server does once the system runs (after `fsys_init`), each step one function:
//! reach the root directory through the root filesystem's control port, sit on its device node
//! as the active translator, register with the startup server as an essential task and ask it
//! for the shutdown notice. The caller decides what a failure means (the boot survives each).

use mach::interfaces::{fs, fsys, startup};
use mach::kern::Result;
use mach::mig_rt::PortArg;
use mach::port::{PortName, ReceiveRight, SendRight};

use super::lookup;
use crate::errno::EIO;
use crate::hurd_fs::{open, FS_RETRY_NORMAL};

/// The node the boot server sits on, as the C rumpdisk's (`/dev/` and its name).
pub const DEVICE_NODE: &[u8] = b"/dev/rumpdisk";
/// The startup server's node (the Hurd's `_SERVERS_STARTUP`).
pub const STARTUP_NODE: &[u8] = b"/servers/startup";
/// The name the startup server shows for this task (at a crash, or while waiting at shutdown).
pub const TASK_NAME: &[u8] = b"rumpdisk";

/// `FS_TRANS_SET` (the Hurd's `hurd_types.h`): set (or clear) the translator.
pub const FS_TRANS_SET: i32 = 0x4;

/// The root directory of the filesystem whose control port is `fs_control`, as root (uids and
/// gids 0) would open it.
pub fn root_directory(fs_control: PortName) -> Result<SendRight> {
    // No directory above the root.
    let (retry, retry_name, root) = fsys::fsys_getroot(fs_control, PortArg::copy_send(PortName::NULL), &[0; 3], &[0; 3], 0)?;
    if retry != FS_RETRY_NORMAL || !retry_name.as_slice().is_empty() {
        return Err(EIO);
    }
    Ok(root)
}

/// Makes `control` the active translator of `node` (looked up without its translator), so
/// that a lookup of the node reaches this server (`fsys_getroot` on `control`). Returns the
/// node itself: its owner and permissions are the translator's node's.
pub fn sit_on_node(root: PortName, node: &[u8], control: PortName) -> Result<SendRight> {
    let node = lookup::lookup(root, node, open::NOTRANS)?;
    // The passive translator (none given) is left alone; the filesystem keeps its own right.
    fs::file_set_translator(node.name(), 0, FS_TRANS_SET, 0, &[], PortArg::make_send(control))?;
    Ok(node)
}

/// Registers this task as essential: if it dies, the startup server brings the system down
/// (a dead disk server leaves the root filesystem without its disk).
pub fn register_essential(root: PortName, host_priv: PortName) -> Result<()> {
    let startup = lookup::lookup(root, STARTUP_NODE, 0)?;
    let task = PortName::new(mach::sys::mach_task_self());
    // No exception port of our own for startup to watch: it watches the task's death.
    let no_exception_port = ReceiveRight::from_name(PortName::NULL);
    startup::startup_essential_task(startup.name(), task, no_exception_port, TASK_NAME, host_priv)
}

/// Asks the startup server for a `startup_dosync` on `notify` before the system goes down.
pub fn request_shutdown_notice(root: PortName, notify: PortName) -> Result<()> {
    let startup = lookup::lookup(root, STARTUP_NODE, 0)?;
    startup::startup_request_notification(startup.name(), PortArg::make_send(notify), TASK_NAME)
}
