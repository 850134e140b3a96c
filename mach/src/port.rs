//! Port names and owned port rights. An owned right releases its user reference when dropped.

use crate::kern::{self, Result};
use crate::sys;

/// A port name in the task's name space (`mach_port_t`). Naming a right does not own it.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PortName(u32);

impl PortName {
    /// `MACH_PORT_NULL`.
    pub const NULL: PortName = PortName(0);
    /// `MACH_PORT_DEAD`.
    pub const DEAD: PortName = PortName(!0);

    pub const fn new(raw: u32) -> PortName {
        PortName(raw)
    }

    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Neither null nor dead (`MACH_PORT_VALID`).
    pub const fn is_valid(self) -> bool {
        self.0 != 0 && self.0 != !0
    }
}

use crate::constants::{MACH_MSG_TYPE_COPY_SEND as COPY_SEND, MACH_MSG_TYPE_MAKE_SEND as MAKE_SEND};

macro_rules! owned_right {
    ($(#[$doc:meta])* $name:ident, $release:path) => {
        $(#[$doc])*
        #[derive(Debug, PartialEq, Eq, Hash)]
        pub struct $name(PortName);

        impl $name {
            /// Take ownership of one user reference the caller holds under `name`.
            pub fn from_name(name: PortName) -> $name {
                $name(name)
            }

            pub fn name(&self) -> PortName {
                self.0
            }

            /// Give up ownership without releasing the right (e.g. to move it in a message).
            pub fn into_name(self) -> PortName {
                let name = self.0;
                core::mem::forget(self);
                name
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                if self.0.is_valid() {
                    // Nothing useful can be done with a failure here: the name is already gone
                    // or was never ours; report it in debug logs.
                    if let Err(error) = $release(self.0) {
                        log::debug!("releasing {} {:?}: {:?}", stringify!($name), self.0, error);
                    }
                }
            }
        }
    };
}

owned_right!(
    /// A send right (one user reference).
    SendRight, release_send
);
owned_right!(
    /// A send-once right, e.g. the reply right of a request.
    SendOnceRight, release_send
);
owned_right!(
    /// A receive right; dropping it destroys the port (its senders see a dead name).
    ReceiveRight, release_receive
);
owned_right!(
    /// A port set; its members leave the set when it is dropped.
    PortSet, release_port_set
);

fn release_send(name: PortName) -> Result<()> {
    kern::check(sys::port_deallocate(sys::mach_task_self(), name.raw()))
}

fn release_receive(name: PortName) -> Result<()> {
    crate::task::port_mod_refs(name, sys::MACH_PORT_RIGHT_RECEIVE, -1)
}

fn release_port_set(name: PortName) -> Result<()> {
    crate::task::port_mod_refs(name, sys::MACH_PORT_RIGHT_PORT_SET, -1)
}

impl SendRight {
    /// Another user reference to the same right.
    pub fn try_clone(&self) -> Result<SendRight> {
        let name = self.0.raw();
        kern::check(sys::port_insert_right(sys::mach_task_self(), name, name, COPY_SEND))?;
        Ok(SendRight(self.0))
    }

    /// A user reference of its own to the send right `name`, whose reference the caller keeps.
    pub fn copy_of(name: PortName) -> Result<SendRight> {
        core::mem::ManuallyDrop::new(SendRight::from_name(name)).try_clone()
    }
}

impl ReceiveRight {
    /// A new port.
    pub fn new() -> Result<ReceiveRight> {
        let mut name = 0;
        kern::check(sys::port_allocate(sys::mach_task_self(), sys::MACH_PORT_RIGHT_RECEIVE, &mut name))?;
        Ok(ReceiveRight(PortName(name)))
    }

    /// A new port under a chosen name (`mach_port_allocate_name`).
    pub fn with_name(name: PortName) -> Result<ReceiveRight> {
        kern::check(sys::port_allocate_name(sys::mach_task_self(), sys::MACH_PORT_RIGHT_RECEIVE, name.raw()))?;
        Ok(ReceiveRight(name))
    }

    /// A send right to this port (same name, one more user reference).
    pub fn make_send(&self) -> Result<SendRight> {
        let name = self.0.raw();
        kern::check(sys::port_insert_right(sys::mach_task_self(), name, name, MAKE_SEND))?;
        Ok(SendRight(self.0))
    }

    /// Asks for a `MACH_NOTIFY_NO_SENDERS` message on this port once no send right to it is
    /// left and at least `sync` were made (the make-send count it carries tells a stale
    /// notification from a real one). Replaces an earlier request.
    pub fn request_no_senders(&self, sync: u32) -> Result<()> {
        crate::task::request_no_senders(self.0, sync)
    }

    /// Whether a no-senders notice carrying make-send count `mscount` is stale, `sends_made`
    /// send rights having been made from this port: one was made after the kernel sent it, so a
    /// client holds it. The notice is then asked for again.
    pub fn no_senders_is_stale(&self, mscount: u32, sends_made: u32) -> bool {
        if mscount >= sends_made {
            return false;
        }
        if let Err(error) = self.request_no_senders(sends_made) {
            log::warn!("no-senders notification refused again: {error:?}");
        }
        true
    }
}

impl PortSet {
    pub fn new() -> Result<PortSet> {
        let mut name = 0;
        kern::check(sys::port_allocate(sys::mach_task_self(), sys::MACH_PORT_RIGHT_PORT_SET, &mut name))?;
        Ok(PortSet(PortName(name)))
    }

    /// Receive `member`'s messages through this set.
    pub fn insert(&self, member: &ReceiveRight) -> Result<()> {
        crate::task::port_move_member(member.name(), self.0)
    }

    /// Take `member` out of whatever set it is in.
    pub fn remove(&self, member: &ReceiveRight) -> Result<()> {
        crate::task::port_move_member(member.name(), PortName::NULL)
    }
}
