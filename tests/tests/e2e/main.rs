//! End-to-end tests: the real binaries on loopback, driven by real clients.
//!
//! One test binary for the whole crate; each module holds one area.

mod support;

mod architecture;
mod smoke;
