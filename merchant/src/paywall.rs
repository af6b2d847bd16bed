//! The paywall: what a route costs, which ecash it takes, and the check-then-redeem step that
//! runs before a paid request is served.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use cashu_402::Challenge;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PublicKey};
use cdk::Amount;

use crate::error::{refusal_response, x_cashu, PaywallError};
use crate::layer::PaywallLayer;
use crate::merchant::Merchant;
use crate::{redeem, verify};

/// A route's price: an amount the merchant must net (after the mint's input fee) in a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub amount: Amount,
    pub unit: CurrencyUnit,
}

impl Price {
    pub fn new(amount: u64, unit: CurrencyUnit) -> Self {
        Self {
            amount: Amount::from(amount),
            unit,
        }
    }

    /// `amount` satoshis.
    pub fn sat(amount: u64) -> Self {
        Self::new(amount, CurrencyUnit::Sat)
    }
}

/// Everything one route asks of a payment: the price, the accepted mints, the lock and whether
/// every proof must carry a DLEQ proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub price: Price,
    /// Mints whose ecash is accepted (never empty).
    pub mints: Vec<MintUrl>,
    /// When set, proofs must be P2PK-locked to this key (the merchant's).
    pub lock: Option<PublicKey>,
    /// Require a valid NUT-12 DLEQ proof on every proof.
    pub require_dleq: bool,
}

impl Offer {
    /// The NUT-24 challenge for this offer.
    pub fn challenge(&self) -> Challenge {
        let mut c = Challenge {
            amount: self.price.amount,
            unit: self.price.unit.clone(),
            mints: self.mints.clone(),
            request_id: None,
            description: None,
            lock: None,
        };
        if let Some(pk) = self.lock {
            c = c.locked_to(pk);
        }
        c
    }

    /// The `X-Cashu` header value of the challenge.
    pub fn challenge_header(&self) -> Result<HeaderValue, PaywallError> {
        let encoded = self
            .challenge()
            .encode()
            .map_err(|e| PaywallError::Internal {
                detail: format!("cannot encode the challenge: {e}"),
            })?;
        HeaderValue::from_str(&encoded).map_err(|e| PaywallError::Internal {
            detail: format!("challenge is not a header value: {e}"),
        })
    }
}

/// Defaults every route of one paywall shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaywallOptions {
    /// Accepted mints.
    pub mints: Vec<MintUrl>,
    /// Ask for tokens P2PK-locked to the merchant's key (NUT-11), so that an intercepted
    /// token is worthless to anyone else.
    pub lock: bool,
    /// Require DLEQ proofs (NUT-12) on every proof. Defaults to `lock`.
    pub require_dleq: bool,
    /// `Retry-After` of a 503 when the mint cannot be reached.
    pub retry_after: Duration,
    /// Longest a redemption (the swap at the mint) may take before the request gets a 503 and
    /// the redemption is treated as in doubt.
    pub redeem_timeout: Duration,
}

impl PaywallOptions {
    /// Accepts ecash from `mints`, unlocked, without requiring DLEQ proofs.
    pub fn new(mints: Vec<MintUrl>) -> Self {
        Self {
            mints,
            lock: false,
            require_dleq: false,
            retry_after: Duration::from_secs(5),
            redeem_timeout: Duration::from_secs(30),
        }
    }

    /// Requires (or not) tokens locked to the merchant's key, and with them DLEQ proofs.
    pub fn locked(mut self, lock: bool) -> Self {
        self.lock = lock;
        self.require_dleq = lock;
        self
    }

    pub fn require_dleq(mut self, require: bool) -> Self {
        self.require_dleq = require;
        self
    }

    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    pub fn redeem_timeout(mut self, timeout: Duration) -> Self {
        self.redeem_timeout = timeout;
        self
    }
}

/// What a paid request carries into the inner service (as a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub mint_url: MintUrl,
    pub unit: CurrencyUnit,
    /// Face value of the token.
    pub value: Amount,
    /// What the merchant's wallet received (value minus the mint's input fee).
    pub received: Amount,
    /// The replay-record key of the token (hash of its sorted proof Y values).
    pub token_key: String,
}

/// A paywall over one merchant. Clone it freely; make per-route layers with
/// [`Paywall::price`] or [`Paywall::offer_layer`].
#[derive(Clone)]
pub struct Paywall {
    merchant: Merchant,
    options: Arc<PaywallOptions>,
}

impl Paywall {
    pub fn new(merchant: Merchant, options: PaywallOptions) -> Self {
        Self {
            merchant,
            options: Arc::new(options),
        }
    }

    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    pub fn options(&self) -> &PaywallOptions {
        &self.options
    }

    /// The offer for `price` under this paywall's defaults.
    pub fn offer(&self, price: Price) -> Offer {
        Offer {
            price,
            mints: self.options.mints.clone(),
            lock: self.options.lock.then(|| self.merchant.pubkey()),
            require_dleq: self.options.require_dleq,
        }
    }

    /// A layer that charges `price` for every request through it.
    pub fn price(&self, price: Price) -> PaywallLayer {
        self.offer_layer(self.offer(price))
    }

    /// A layer for an explicit offer (other mints, another lock than the defaults).
    pub fn offer_layer(&self, offer: Offer) -> PaywallLayer {
        PaywallLayer::new(self.clone(), offer)
    }

    /// Checks the request's `X-Cashu` credential against `offer` and redeems it at the mint.
    /// `Ok` only once the ecash is in the merchant's wallet.
    pub async fn authorize(
        &self,
        offer: &Offer,
        headers: &HeaderMap,
    ) -> Result<Paid, PaywallError> {
        let Some(header) = headers.get(x_cashu()) else {
            return Err(PaywallError::PaymentRequired);
        };
        let checked = verify::check(&self.merchant, offer, header).await?;
        redeem::redeem(&self.merchant, checked, self.options.redeem_timeout).await
    }

    /// The answer to a refused request: the error, a fresh challenge, `Retry-After` on a 503.
    pub fn refusal(&self, offer: &Offer, error: &PaywallError) -> Response {
        match offer.challenge_header() {
            Ok(challenge) => refusal_response(error, Some(&challenge), self.options.retry_after),
            Err(e) => refusal_response(&e, None, self.options.retry_after),
        }
    }
}
