//! The tower layer: put a price on any axum route or tower service.
//!
//! ```ignore
//! let paywall = Paywall::new(merchant, PaywallOptions::new(vec![mint_url]));
//! let app = Router::new()
//!     .route("/weather", get(weather).layer(paywall.price(Price::sat(5))))
//!     .route("/health", get(health));
//! ```
//!
//! A request without a credential gets `402` and the challenge; a bad credential gets a 400 (or
//! 402 when it is only too little) with a fresh challenge. The inner service runs only after
//! the token was redeemed, without the `X-Cashu` header, and with a [`Paid`] extension.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service, ServiceExt};

use crate::paywall::{Offer, Paid, Paywall};

/// Charges one [`Offer`] for every request through the wrapped service.
#[derive(Clone)]
pub struct PaywallLayer {
    paywall: Paywall,
    offer: Arc<Offer>,
}

impl PaywallLayer {
    pub fn new(paywall: Paywall, offer: Offer) -> Self {
        Self {
            paywall,
            offer: Arc::new(offer),
        }
    }

    pub fn offer(&self) -> &Offer {
        &self.offer
    }
}

impl<S> Layer<S> for PaywallLayer {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaywallService {
            inner,
            paywall: self.paywall.clone(),
            offer: self.offer.clone(),
        }
    }
}

/// The service [`PaywallLayer`] makes.
#[derive(Clone)]
pub struct PaywallService<S> {
    inner: S,
    paywall: Paywall,
    offer: Arc<Offer>,
}

impl<S> Service<Request<Body>> for PaywallService<S>
where
    S: Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service is driven to readiness in `call` (oneshot), after payment.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let paywall = self.paywall.clone();
        let offer = self.offer.clone();
        Box::pin(async move {
            let path = req.uri().path().to_string();
            match paywall.authorize(&offer, req.headers(), &path).await {
                Ok(paid) => {
                    crate::paywall::strip_credentials(req.headers_mut());
                    req.extensions_mut().insert::<Paid>(paid);
                    let response = inner.oneshot(req).await?;
                    Ok(response.into_response())
                }
                Err(error) => Ok(paywall.refusal(&offer, &error, &path).await),
            }
        })
    }
}
