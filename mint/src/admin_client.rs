//! A client of the admin API, for the `allowance-mint allowance …` commands (the serving
//! process holds the data directory, so they talk to it rather than to the database).

use std::path::Path;
use std::time::Duration;

use cashu_402::allowance::{AllowanceView, CreateMetered, CreatePrepaid, TopUp, Withdraw};
use cashu_402::error_body::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admin::token::TOKEN_FILE;
use crate::config::Config;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no admin token: {0}")]
    Token(String),
    #[error("cannot reach the admin API at {url}: {source} (is the mint running?)")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the admin API refused the token (401)")]
    Unauthorized,
    #[error("{detail} (code {code}, HTTP {status})")]
    Refused {
        status: u16,
        code: u32,
        detail: String,
    },
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

pub struct AdminClient {
    base: String,
    token: Secret,
    http: reqwest::Client,
}

impl AdminClient {
    /// Finds the admin API and its token from the mint's configuration: `url` overrides
    /// `http://<admin.listen>`; the token is `admin.token` (a reference) or the data dir's file.
    pub fn from_config(config: &Config, url: Option<&str>) -> Result<Self, ClientError> {
        let base = url
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{}", config.admin.listen));
        let token = match &config.admin.token {
            Some(r) => r.resolve().map_err(|e| ClientError::Token(e.to_string()))?,
            None => read_token_file(&config.data_dir)?,
        };
        Self::new(base, token)
    }

    pub fn new(base: String, token: Secret) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(150))
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Self { base, token, http })
    }

    pub async fn create_prepaid(&self, req: &CreatePrepaid) -> Result<AllowanceView, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/admin/v1/allowances/prepaid",
            Some(req),
        )
        .await
    }

    pub async fn create_metered(&self, req: &CreateMetered) -> Result<AllowanceView, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/admin/v1/allowances/metered",
            Some(req),
        )
        .await
    }

    pub async fn show(&self, id: &str) -> Result<AllowanceView, ClientError> {
        self.call::<(), _>(
            reqwest::Method::GET,
            &format!("/admin/v1/allowances/{id}"),
            None,
        )
        .await
    }

    pub async fn list(&self) -> Result<Vec<AllowanceView>, ClientError> {
        self.call::<(), _>(reqwest::Method::GET, "/admin/v1/allowances", None)
            .await
    }

    pub async fn top_up(&self, id: &str, amount: u64) -> Result<AllowanceView, ClientError> {
        let path = format!("/admin/v1/allowances/{id}/topup");
        self.call(reqwest::Method::POST, &path, Some(&TopUp { amount }))
            .await
    }

    pub async fn revoke(&self, id: &str) -> Result<AllowanceView, ClientError> {
        let path = format!("/admin/v1/allowances/{id}/revoke");
        self.call::<(), _>(reqwest::Method::POST, &path, None).await
    }

    pub async fn withdraw(&self, id: &str, invoice: &str) -> Result<AllowanceView, ClientError> {
        let path = format!("/admin/v1/allowances/{id}/withdraw");
        let body = Withdraw {
            invoice: invoice.to_string(),
        };
        self.call(reqwest::Method::POST, &path, Some(&body)).await
    }

    pub async fn books(&self) -> Result<serde_json::Value, ClientError> {
        self.call::<(), _>(reqwest::Method::GET, "/admin/v1/books", None)
            .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let post = method == reqwest::Method::POST;
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.expose());
        if let Some(b) = body {
            req = req.json(b);
        } else if post {
            req = req.header("content-type", "application/json").body("{}");
        }
        let response = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if status.as_u16() == 401 {
            return Err(ClientError::Unauthorized);
        }
        if !status.is_success() {
            let e: ErrorBody = serde_json::from_slice(&bytes).map_err(|_| {
                ClientError::Protocol(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))
            })?;
            return Err(ClientError::Refused {
                status: status.as_u16(),
                code: e.code,
                detail: e.detail,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

fn read_token_file(data_dir: &Path) -> Result<Secret, ClientError> {
    let path = data_dir.join(TOKEN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ClientError::Token(format!(
            "{}: {e} (start the mint once, or set admin.token)",
            path.display()
        ))
    })?;
    Ok(Secret::new(text.trim().to_string()))
}
