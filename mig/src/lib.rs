//! Mach Interface Generator: .defs files to Rust client stubs and server traits.
