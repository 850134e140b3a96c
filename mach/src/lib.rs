//! no_std GNU Mach runtime.
#![no_std]
