//! Integration tests of the agent wallet against an in-process cdk mint (fake Lightning
//! backend) and a tiny in-test NUT-24 merchant. One binary; each module holds one area.

mod support;

mod cli;
mod crash;
mod payments;
mod policy;
