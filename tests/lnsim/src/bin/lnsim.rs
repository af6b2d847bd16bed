//! `lnsim`: the simulated Lightning network over HTTP (test support only).

use std::net::SocketAddr;

use clap::Parser;

/// A simulated Lightning network for tests: nodes, invoices, payments with delays, failures
/// and fees. Never money.
#[derive(Parser)]
#[command(name = "lnsim")]
struct Args {
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Nodes to create at start (more can be added with `PUT /v1/nodes/{node}`).
    #[arg(long = "node")]
    nodes: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    allowance_mint::serve::init_tracing(allowance_mint::cli::LogFormat::Text);
    let network = lnsim::network::Network::new();
    for node in &args.nodes {
        network.put_node(node, &Default::default());
    }
    lnsim::serve_router(args.listen, lnsim::server::router(network)).await?;
    Ok(())
}
