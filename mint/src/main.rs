//! `allowance-mint`: parse flags, start tracing, then serve or run a maintenance command.

mod allowance_cmd;

use allowance_mint::cli::{Cli, Command, ConfigCommand, KeysetCommand};
use allowance_mint::config::EXAMPLE;
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    allowance_mint::serve::init_tracing(cli.global.log_format);
    match cli.command {
        Some(Command::Config(ConfigCommand::Example)) => {
            print!("{EXAMPLE}");
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Check)) => {
            let config = cli.global.load_config()?;
            // The config holds only references to secrets, never their values: safe to print.
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Some(Command::Keyset(KeysetCommand::Rotate)) => {
            let config = cli.global.load_config()?;
            let (old, new) = allowance_mint::mint_setup::rotate_keyset(&config).await?;
            println!("rotated sat keyset: {old} -> {new} (the old keyset stays redeemable)");
            Ok(())
        }
        Some(Command::Keyset(KeysetCommand::List)) => {
            let config = cli.global.load_config()?;
            let assembled = allowance_mint::mint_setup::assemble(&config).await?;
            for k in assembled.mint.keysets().keysets {
                println!(
                    "{}\t{}\t{}\tfee_ppk={}",
                    k.id,
                    k.unit,
                    if k.active { "active" } else { "inactive" },
                    k.input_fee_ppk
                );
            }
            Ok(())
        }
        Some(Command::Allowance(args)) => {
            let config = cli.global.load_config()?;
            allowance_cmd::run(&config, args).await
        }
        None | Some(Command::Serve) => {
            allowance_mint::serve::serve(cli.global.load_config()?, None).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn example_is_not_empty() {
        assert!(super::EXAMPLE.contains("[limits]"));
    }
}
