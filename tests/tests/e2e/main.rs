//! End-to-end tests: the real binaries on loopback, driven by real clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]
//!
//! One test binary for the whole crate; each module holds one area.

mod support;

mod architecture;
mod smoke;
