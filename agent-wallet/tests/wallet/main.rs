//! Integration tests of the agent wallet against an in-process cdk mint (fake Lightning
//! backend) and a tiny in-test NUT-24 merchant. One binary; each module holds one area.

// Tests may unwrap (DESIGN §7); clippy does not see this crate's helpers as test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cli;
mod crash;
mod examples;
mod mcp;
mod mcp_readme;
mod payments;
mod policy;
mod schemes;
