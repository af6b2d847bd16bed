//! A client for one node of the simulated network.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{
    CreateInvoice, ErrorBody, InvoiceView, NodeSettings, NodeView, PayInvoice, PaymentView,
    SettledFeed,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the simulated network: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the simulated network answered {status}: {message}")]
    Status { status: u16, message: String },
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status: 404, .. })
    }
}

/// Talks to node `node` of the network at `base` (e.g. `http://127.0.0.1:PORT`).
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    base: String,
    node: String,
}

impl NodeClient {
    pub fn new(base: &str, node: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            node: node.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.node
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v1/nodes/{}{rest}", self.base, self.node)
    }

    /// Creates the node if it is new and applies the settings given.
    pub async fn put(&self, settings: &NodeSettings) -> Result<NodeView, ClientError> {
        answer(self.http.put(self.url("")).json(settings).send().await?).await
    }

    pub async fn info(&self) -> Result<NodeView, ClientError> {
        answer(self.http.get(self.url("")).send().await?).await
    }

    pub async fn create_invoice(&self, req: &CreateInvoice) -> Result<InvoiceView, ClientError> {
        self.post("/invoices", req).await
    }

    pub async fn invoice(&self, payment_hash: &str) -> Result<InvoiceView, ClientError> {
        answer(
            self.http
                .get(self.url(&format!("/invoices/{payment_hash}")))
                .send()
                .await?,
        )
        .await
    }

    /// Invoices settled after position `after`, waiting up to `wait` for one.
    pub async fn settled(&self, after: u64, wait: Duration) -> Result<SettledFeed, ClientError> {
        let url = self.url(&format!(
            "/settled?after={after}&wait_ms={}",
            wait.as_millis()
        ));
        answer(self.http.get(url).send().await?).await
    }

    pub async fn pay(&self, req: &PayInvoice) -> Result<PaymentView, ClientError> {
        self.post("/payments", req).await
    }

    pub async fn payment(&self, payment_hash: &str) -> Result<PaymentView, ClientError> {
        answer(
            self.http
                .get(self.url(&format!("/payments/{payment_hash}")))
                .send()
                .await?,
        )
        .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        rest: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        answer(self.http.post(self.url(rest)).json(body).send().await?).await
    }
}

async fn answer<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.json().await?);
    }
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or(text);
    Err(ClientError::Status {
        status: status.as_u16(),
        message,
    })
}
