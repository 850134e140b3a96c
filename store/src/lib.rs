//! Rust libstore.
#![no_std]
