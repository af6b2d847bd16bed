//! `l402-fixture`: an aperture-like L402 server whose invoices come from its own node on the
//! simulated network (test support only).

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use lnsim::l402_server::{Fixture, HeaderStyle};

#[derive(Parser)]
#[command(name = "l402-fixture")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The simulated network (`lnsim`) URL.
    #[arg(long)]
    lnsim_url: String,
    /// This server's node on it (created if new).
    #[arg(long, default_value = "aperture")]
    node: String,
    /// Service name in the macaroon's caveats.
    #[arg(long, default_value = "fixture")]
    service: String,
    /// Price of every request, in sat.
    #[arg(long, default_value_t = 21)]
    price_sat: u64,
    #[arg(long, value_enum, default_value = "l402")]
    header_style: HeaderStyle,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    allowance_mint::serve::init_tracing(allowance_mint::cli::LogFormat::Text);
    let node = lnsim::client::NodeClient::new(&args.lnsim_url, &args.node)?;
    node.put(&Default::default()).await?;
    let fixture = Fixture::new(node, &args.service, args.price_sat, args.header_style);
    lnsim::serve_router(args.listen, lnsim::l402_server::router(Arc::new(fixture))).await?;
    Ok(())
}
