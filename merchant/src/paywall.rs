//! The paywall: what a route costs, which ecash it takes, and the check-then-redeem step that
//! runs before a paid request is served (or, for tokens only the merchant can spend, the
//! check-then-hold step: see [`crate::offline`]).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use cashu_402::l402::L402Challenge;
use cashu_402::x402::{PaymentPayload, PaymentRequired, PaymentRequirements, X402Version};
use cashu_402::Challenge;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PublicKey};
use cdk::Amount;

use crate::error::{refusal_response_with, x_cashu, Challenges, PaywallError};
use crate::l402::{L402Options, L402State};
use crate::layer::PaywallLayer;
use crate::merchant::Merchant;
use crate::{offline, redeem, verify};

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

/// Which 402 schemes a paywall offers and accepts. Cashu (`X-Cashu`) and x402-cashu cost
/// nothing to offer; L402 creates a mint quote at the mint for every challenge, so it is off by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schemes {
    /// NUT-24 `X-Cashu`.
    pub cashu: bool,
    /// `WWW-Authenticate: L402` with an invoice from the merchant's mint.
    pub l402: bool,
    /// x402 with our `cashu` scheme: `PAYMENT-REQUIRED` (v2) and the v1 JSON body.
    pub x402: bool,
}

impl Default for Schemes {
    fn default() -> Self {
        Self {
            cashu: true,
            l402: false,
            x402: true,
        }
    }
}

/// How long a client may take to pay an x402 offer (`maxTimeoutSeconds`).
pub const X402_TIMEOUT_SECS: u64 = 60;

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
    /// The schemes offered and accepted.
    pub schemes: Schemes,
    /// L402 settings (service name, how long a paid credential is valid).
    pub l402: L402Options,
    /// Serve tokens that only the merchant's key can spend (locked offers) at once, after the
    /// offline checks and the replay record, and redeem them in the background
    /// ([`crate::offline`]). On by default; without it every token is swapped before serving.
    pub offline: bool,
    /// How long a token's lock must still hold for offline acceptance (after its locktime,
    /// refund keys or anyone may spend it); a lock ending sooner is redeemed online.
    pub offline_lock_margin: Duration,
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
            schemes: Schemes::default(),
            l402: L402Options::default(),
            offline: true,
            offline_lock_margin: crate::offline::DEFAULT_LOCK_MARGIN,
        }
    }

    pub fn schemes(mut self, schemes: Schemes) -> Self {
        self.schemes = schemes;
        self
    }

    pub fn l402(mut self, l402: L402Options) -> Self {
        self.l402 = l402;
        self
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

    /// Accepts (or not) merchant-locked tokens offline, redeeming them in the background.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    pub fn offline_lock_margin(mut self, margin: Duration) -> Self {
        self.offline_lock_margin = margin;
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
    /// What the merchant's wallet received (value minus the mint's input fee); for a token
    /// accepted offline, what it will receive once the held token is redeemed.
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
    l402: Arc<L402State>,
}

impl Paywall {
    /// The paywall over `merchant`. This starts the merchant's background redeemer (it needs a
    /// tokio runtime), which redeems tokens accepted offline, also those an earlier run
    /// accepted and did not redeem (even if offline acceptance is now off).
    pub fn new(merchant: Merchant, options: PaywallOptions) -> Self {
        merchant.start_redeemer();
        Self {
            merchant,
            options: Arc::new(options),
            l402: Arc::new(L402State::default()),
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

    /// Checks the request's credential against `offer` and redeems it: `Authorization: L402`
    /// (verified, its quote claimed once), `X-Cashu`, or x402's `PAYMENT-SIGNATURE` /
    /// `X-PAYMENT` (the token inside goes through the same checks as `X-Cashu`). `Ok` only
    /// once the payment is the merchant's. `path` is the request path (L402 scope).
    pub async fn authorize(
        &self,
        offer: &Offer,
        headers: &HeaderMap,
        path: &str,
    ) -> Result<Paid, PaywallError> {
        let schemes = self.options.schemes;
        if schemes.l402 {
            let l402 = headers
                .get_all(axum::http::header::AUTHORIZATION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| {
                    let scheme = v.trim_start().split(' ').next().unwrap_or("");
                    scheme.eq_ignore_ascii_case("L402") || scheme.eq_ignore_ascii_case("LSAT")
                });
            if let Some(header) = l402 {
                return self
                    .l402
                    .authorize(&self.merchant, &self.options.l402, offer, path, header)
                    .await;
            }
        }
        let token = if let Some(header) = headers.get(x_cashu()).filter(|_| schemes.cashu) {
            header.clone()
        } else if let Some(header) = [X402Version::V2, X402Version::V1]
            .iter()
            .find_map(|v| headers.get(v.credential_header()))
            .filter(|_| schemes.x402)
        {
            x402_token(header)?
        } else {
            return Err(PaywallError::PaymentRequired);
        };
        let offline = self.options.offline && offer.lock.is_some();
        // Offline acceptance verifies the DLEQ proofs while the held token is committed.
        let mut checked = verify::check(&self.merchant, offer, &token, offline).await?;
        if offline {
            let margin = self.options.offline_lock_margin;
            if let Some(paid) = offline::accept(&self.merchant, offer, &checked, margin).await? {
                return Ok(paid);
            }
        }
        if offer.require_dleq && !checked.dleq_verified {
            verify::dleq(&checked).await?;
            checked.dleq_verified = true;
        }
        redeem::redeem(&self.merchant, checked, self.options.redeem_timeout).await
    }

    /// The answer to a refused request: the error, fresh challenges of every enabled scheme
    /// (an L402 challenge needs a mint quote; if the mint cannot give one, it is left out),
    /// `Retry-After` on a 503.
    pub async fn refusal(&self, offer: &Offer, error: &PaywallError, path: &str) -> Response {
        let retry = self.options.retry_after;
        if !error.status().is_client_error() {
            return refusal_response_with(error, &Challenges::default(), retry);
        }
        match self.challenges(offer, path).await {
            Ok(c) => refusal_response_with(error, &c, retry),
            Err(e) => refusal_response_with(&e, &Challenges::default(), retry),
        }
    }

    /// Every enabled scheme's challenge for `offer`.
    pub async fn challenges(&self, offer: &Offer, path: &str) -> Result<Challenges, PaywallError> {
        let schemes = self.options.schemes;
        let mut out = Challenges::default();
        if schemes.cashu {
            out.headers.push((x_cashu(), offer.challenge_header()?));
        }
        if schemes.l402 {
            match self
                .l402
                .issue(&self.merchant, &self.options.l402, offer, path)
                .await
            {
                Ok(c) => out.headers.push((
                    axum::http::header::WWW_AUTHENTICATE,
                    header_value(&L402Challenge::encode(&c))?,
                )),
                Err(e) => tracing::warn!("no L402 challenge: {e}"),
            }
        }
        if schemes.x402 {
            let challenge = offer.challenge();
            let entry = |v| {
                PaymentRequirements::for_cashu(&challenge, v, Some(path), X402_TIMEOUT_SECS)
                    .map_err(|e| PaywallError::Internal {
                        detail: format!("x402 entry: {e}"),
                    })
            };
            let v2 = PaymentRequired {
                x402_version: 2,
                error: Some("payment required".into()),
                resource: Some(serde_json::json!({ "url": path })),
                accepts: vec![entry(X402Version::V2)?],
                extensions: None,
            };
            out.headers.push((
                HeaderName::from_static("payment-required"),
                header_value(&v2.to_header())?,
            ));
            let mut v1 = serde_json::Map::new();
            v1.insert("x402Version".into(), 1.into());
            v1.insert("error".into(), "X-PAYMENT header is required".into());
            v1.insert(
                "accepts".into(),
                serde_json::to_value(vec![entry(X402Version::V1)?]).unwrap_or_default(),
            );
            out.x402_v1 = Some(v1);
        }
        Ok(out)
    }
}

/// Removes every payment credential (`X-Cashu`, x402's headers, an L402 `Authorization`) so
/// that the service behind the paywall never sees them.
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(x_cashu());
    headers.remove("payment-signature");
    headers.remove("x-payment");
    let is_l402 = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let scheme = v.trim_start().split(' ').next().unwrap_or("");
            scheme.eq_ignore_ascii_case("L402") || scheme.eq_ignore_ascii_case("LSAT")
        })
        .unwrap_or(false);
    if is_l402 {
        headers.remove(axum::http::header::AUTHORIZATION);
    }
}

fn header_value(s: &str) -> Result<HeaderValue, PaywallError> {
    HeaderValue::from_str(s).map_err(|e| PaywallError::Internal {
        detail: format!("challenge is not a header value: {e}"),
    })
}

/// The `cashuB` token inside an x402 credential, as an `X-Cashu` value.
fn x402_token(header: &HeaderValue) -> Result<HeaderValue, PaywallError> {
    let text = header
        .to_str()
        .map_err(|_| PaywallError::Malformed("the x402 header is not ASCII".into()))?;
    let payload =
        PaymentPayload::from_header(text).map_err(|e| PaywallError::Malformed(e.to_string()))?;
    let token = payload
        .cashu_token()
        .map_err(|e| PaywallError::Malformed(e.to_string()))?;
    HeaderValue::from_str(&token.to_string())
        .map_err(|e| PaywallError::Malformed(format!("token: {e}")))
}
