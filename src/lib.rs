//! rumpdisk: the device server.
#![no_std]
