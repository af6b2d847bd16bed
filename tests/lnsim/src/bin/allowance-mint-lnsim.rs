//! `allowance-mint-lnsim`: the real `allowance-mint` daemon with its Lightning backend replaced
//! by a node of the simulated network (test support only; the release binary cannot do this).
//! It takes the mint's own flags and config; the `[lightning]` fee settings size melt fee
//! reserves, and `/v1/info`, `/ready` and metrics name the backend `lnsim`.

use clap::Parser;

use allowance_mint::cli::GlobalArgs;
use allowance_mint::lightning::InjectedBackend;
use cdk_common::common::FeeReserve;
use cdk_common::Amount;
use lnsim::backend::LnsimBackend;
use lnsim::client::NodeClient;

#[derive(Parser)]
#[command(name = "allowance-mint-lnsim")]
struct Args {
    #[command(flatten)]
    global: GlobalArgs,
    /// The simulated network (`lnsim`) URL.
    #[arg(long, env = "LNSIM_URL")]
    lnsim_url: String,
    /// The mint's node on it (created if new).
    #[arg(long, env = "LNSIM_NODE", default_value = "mint")]
    lnsim_node: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    allowance_mint::serve::init_tracing(args.global.log_format);
    let config = args.global.load_config()?;
    let node = NodeClient::new(&args.lnsim_url, &args.lnsim_node)?;
    let view = node.put(&Default::default()).await?;
    tracing::info!(node = %view.name, pubkey = %view.pubkey, "lnsim node ready");
    let backend = LnsimBackend::new(
        node,
        FeeReserve {
            min_fee_reserve: Amount::from(config.lightning.reserve_fee_min),
            percent_fee_reserve: config.lightning.fee_percent,
        },
    );
    let injected = InjectedBackend {
        name: "lnsim",
        label: "SIMULATED LIGHTNING",
        warning: format!(
            "SIMULATED LIGHTNING (lnsim node {:?}): a test network, this ecash is worth nothing.",
            args.lnsim_node
        ),
        processor: std::sync::Arc::new(backend),
    };
    allowance_mint::serve::serve(config, Some(injected)).await?;
    Ok(())
}
