//! `merchant`: what a seller runs.
//!
//! A tower/axum paywall layer ([`Paywall`], NUT-24 `X-Cashu`) and the `paywall-gateway` reverse
//! proxy answer `402 Payment Required`, check the ecash an agent sends, and redeem it at the mint
//! before the request is served (tokens locked to the merchant's key alone are held after offline
//! checks and redeemed in the background, [`offline`]); collected ecash is settled to Lightning by melting it at the
//! mint, on demand or automatically above a threshold.
//!
//! ```ignore
//! let merchant = Merchant::open("merchant-data").await?;
//! merchant.recover().await?;
//! let paywall = Paywall::new(merchant, PaywallOptions::new(vec![mint_url]).locked(true));
//! let app = Router::new().route("/weather", get(weather).layer(paywall.price(Price::sat(5))));
//! ```

pub use cashu_402;

pub mod auto_settle;
pub mod cli;
pub mod error;
pub mod gateway;
pub mod indoubt;
pub mod invoice_source;
pub mod l402;
pub mod layer;
pub mod merchant;
pub mod offline;
pub mod paywall;
mod receive_recovery;
mod redeem;
mod redeemer;
pub mod seed;
pub mod settle;
pub mod store;
pub mod sync_melt;
pub mod verify;

pub use auto_settle::{AutoSettleConfig, AutoSettler};
pub use error::{refusal_response, refusal_response_with, Challenges, PaywallError};
pub use l402::L402Options;
pub use layer::{PaywallLayer, PaywallService};
pub use merchant::{Balance, Merchant, MerchantError};
pub use paywall::{Offer, Paid, Paywall, PaywallOptions, Price, Schemes};
pub use settle::{settle, SettleError};
pub use store::{Settlement, SettlementSource, Store};
