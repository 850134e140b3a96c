//! Values in generated signatures: polymorphic rights, out-of-line regions, inline arrays.

use core::marker::PhantomData;

use crate::kern::Result;
use crate::ool::OolMemory;
use crate::port::{PortName, ReceiveRight, SendOnceRight, SendRight};

/// A right sent with a disposition chosen at run time (polymorphic and `PORT_*` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortArg {
    pub name: PortName,
    /// `MACH_MSG_TYPE_MOVE_SEND`, `COPY_SEND`, `MAKE_SEND`, …
    pub disposition: u32,
}

impl PortArg {
    pub const fn copy_send(name: PortName) -> PortArg {
        PortArg { name, disposition: 19 }
    }
    pub const fn make_send(receive: PortName) -> PortArg {
        PortArg { name: receive, disposition: 20 }
    }
    pub const fn make_send_once(receive: PortName) -> PortArg {
        PortArg { name: receive, disposition: 21 }
    }
    pub fn move_send(right: SendRight) -> PortArg {
        PortArg { name: right.into_name(), disposition: 17 }
    }
    pub fn move_send_once(right: SendOnceRight) -> PortArg {
        PortArg { name: right.into_name(), disposition: 18 }
    }
    pub fn move_receive(right: ReceiveRight) -> PortArg {
        PortArg { name: right.into_name(), disposition: 16 }
    }
}

/// What a received polymorphic item holds: a right (owned), or a plain name.
#[derive(Debug)]
pub enum Right {
    Receive(ReceiveRight),
    Send(SendRight),
    SendOnce(SendOnceRight),
    /// Not a right (e.g. `MACH_MSG_TYPE_PORT_NAME`): just a name, nothing owned.
    Name(PortName),
}

impl Right {
    /// Takes ownership of the right a received polymorphic item carries, by the type the
    /// receiver holds it as (a disposition as sent counts as what it becomes).
    pub fn from_arg(arg: PortArg) -> Right {
        match arg.disposition {
            16 => Right::Receive(ReceiveRight::from_name(arg.name)),
            17 | 19 | 20 => Right::Send(SendRight::from_name(arg.name)),
            18 | 21 => Right::SendOnce(SendOnceRight::from_name(arg.name)),
            _ => Right::Name(arg.name),
        }
    }
}

/// Out-of-line memory as a message describes it; the receiver owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OolRegion {
    pub address: usize,
    pub len: usize,
}

/// An indefinite array (`array[]` of data) as received: inline bytes in the message, or
/// out-of-line memory the receiver now owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indefinite<'a> {
    Inline(&'a [u8]),
    OutOfLine(OolRegion),
}

/// Received data that becomes `OolMemory`.
pub trait IntoOol {
    fn into_ool(self) -> Result<OolMemory>;
}

impl IntoOol for OolRegion {
    fn into_ool(self) -> Result<OolMemory> {
        OolMemory::adopt(self.address, self.len)
    }
}

impl IntoOol for Indefinite<'_> {
    fn into_ool(self) -> Result<OolMemory> {
        match self {
            Indefinite::Inline(bytes) => OolMemory::copy_from(bytes),
            Indefinite::OutOfLine(region) => region.into_ool(),
        }
    }
}

/// A little-endian integer element of a message array.
pub trait Le: Copy {
    const SIZE: usize;
    fn read(bytes: &[u8]) -> Self;
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn read(bytes: &[u8]) -> $t {
                let mut raw = [0; core::mem::size_of::<$t>()];
                raw.copy_from_slice(&bytes[..Self::SIZE]);
                <$t>::from_le_bytes(raw)
            }
        }
    )*};
}
le!(u8, i8, u16, i16, u32, i32, u64, i64);

impl Le for bool {
    const SIZE: usize = 4;
    fn read(bytes: &[u8]) -> bool {
        u32::read(bytes) != 0
    }
}

impl Le for PortName {
    const SIZE: usize = 4;
    fn read(bytes: &[u8]) -> PortName {
        PortName::new(u32::read(bytes))
    }
}

/// An inline array in a received message, read element by element (the message bytes need
/// not be aligned for `T`).
#[derive(Clone, Copy, Debug)]
pub struct Array<'a, T: Le> {
    bytes: &'a [u8],
    element: PhantomData<T>,
}

impl<'a, T: Le + 'a> Array<'a, T> {
    /// The elements in `bytes` (whose length is a multiple of the element size).
    pub fn new(bytes: &'a [u8]) -> Self {
        Array { bytes, element: PhantomData }
    }
    pub fn len(&self) -> usize {
        self.bytes.len() / T::SIZE
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub fn get(&self, index: usize) -> Option<T> {
        self.bytes.get(index * T::SIZE..(index + 1) * T::SIZE).map(T::read)
    }
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        self.bytes.chunks_exact(T::SIZE).map(T::read)
    }
    /// Copies the elements into `out` (as many as fit); returns how many.
    pub fn copy_to(&self, out: &mut [T]) -> usize {
        let mut n = 0;
        for (slot, value) in out.iter_mut().zip(self.iter()) {
            *slot = value;
            n += 1;
        }
        n
    }
}

/// An inline array a client function returns: up to `N` elements, owned.
#[derive(Clone, Debug)]
pub struct Inline<T: Le, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Le + Default, const N: usize> Inline<T, N> {
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T: Le + Default, const N: usize> From<Array<'_, T>> for Inline<T, N> {
    fn from(array: Array<'_, T>) -> Self {
        let mut items = [T::default(); N];
        let len = array.copy_to(&mut items);
        Inline { items, len }
    }
}

impl<const N: usize> From<&[u8]> for Inline<u8, N> {
    fn from(bytes: &[u8]) -> Self {
        let mut items = [0; N];
        let len = bytes.len().min(N);
        items[..len].copy_from_slice(&bytes[..len]);
        Inline { items, len }
    }
}
