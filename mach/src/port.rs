//! Port names and owned port rights. An owned right releases its user reference when dropped:
//! a send or send-once right here, by trap; a receive right or a port set in `task.rs`, by the
//! kernel call that releases it (`mach_port_mod_refs`, a message built by the generated stubs,
//! which sit above this module), with the other operations of rights that are kernel calls.

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
    ($(#[$doc:meta])* $name:ident) => {
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
    };
}

/// `Drop` for an owned right: `$release` gives its user reference back.
macro_rules! release_on_drop {
    ($name:ident, $release:path) => {
        impl Drop for $name {
            fn drop(&mut self) {
                if self.name().is_valid() {
                    // Nothing useful can be done with a failure here: the name is already gone
                    // or was never ours; report it in debug logs.
                    if let Err(error) = $release(self.name()) {
                        log::debug!("releasing {} {:?}: {:?}", stringify!($name), self.name(), error);
                    }
                }
            }
        }
    };
}
pub(crate) use release_on_drop;

owned_right!(
    /// A send right (one user reference).
    SendRight
);
owned_right!(
    /// A send-once right, e.g. the reply right of a request.
    SendOnceRight
);
owned_right!(
    /// A receive right; dropping it destroys the port (its senders see a dead name).
    ReceiveRight
);
owned_right!(
    /// A port set; its members leave the set when it is dropped.
    PortSet
);
release_on_drop!(SendRight, release_send);
release_on_drop!(SendOnceRight, release_send);

fn release_send(name: PortName) -> Result<()> {
    kern::check(sys::port_deallocate(sys::mach_task_self(), name.raw()))
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
}

impl PortSet {
    pub fn new() -> Result<PortSet> {
        let mut name = 0;
        kern::check(sys::port_allocate(sys::mach_task_self(), sys::MACH_PORT_RIGHT_PORT_SET, &mut name))?;
        Ok(PortSet(PortName(name)))
    }
}
