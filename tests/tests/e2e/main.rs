//! End-to-end tests: the real binaries on loopback, driven by real clients.
//!
//! One test binary for the whole crate; each module holds one area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod agent_allowance;
mod allowance_cli;
mod allowances;
mod architecture;
mod client_errors;
mod crash;
mod crash_loop;
mod crash_services;
mod deploy;
mod hostile;
mod http_errors;
mod interop_cashu_ts;
mod interop_nutshell;
mod interop_nutshell_mint;
mod interop_nutshell_nuts;
mod interop_paywall;
mod l402_agent;
mod l402_fixture;
mod l402_merchant;
mod lifecycle;
mod lightning_sim;
mod nuts;
mod offline_paywall;
mod pay_per_request;
mod postgres;
mod postgres_allowances;
mod replicas;
mod smoke;
mod web_page;
