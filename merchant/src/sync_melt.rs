//! The merchant's connection to a mint: cdk's HTTP client, except that melts are asked for
//! synchronously.
//!
//! cdk's wallet always sends `prefer_async: true` with a melt (NUT-05) and, when the mint answers
//! `PENDING`, waits on a NUT-17 subscription, treating an `UNPAID` state without a payment proof
//! as a failed payment and releasing the proofs. Nutshell 0.20.2 answers an async melt at once
//! and only then starts paying in a background task, so the subscription's first notice (and the
//! HTTP check cdk makes on it) still says `UNPAID`: cdk gives the proofs back to the wallet,
//! reports "Payment failed", and a moment later the mint pays the invoice and spends the proofs.
//! A settlement waits for the payment anyway, so the merchant asks for the synchronous answer
//! (`prefer_async: false`), which every mint gives once the payment is final.

use async_trait::async_trait;
use cdk::mint_url::MintUrl;
use cdk::nuts::{
    BatchCheckMintQuoteRequest, BatchMintRequest, CheckStateRequest, CheckStateResponse, Id,
    KeySet, KeysetResponse, MeltRequest, MintInfo, MintRequest, MintResponse, PaymentMethod,
    RestoreRequest, RestoreResponse, SwapRequest, SwapResponse,
};
use cdk::wallet::{
    AuthWallet, HttpClient, LnurlPayInvoiceResponse, LnurlPayResponse, MintConnector,
};
use cdk::{
    Error, MeltQuoteCreateResponse, MeltQuoteRequest, MeltQuoteResponse, MintQuoteRequest,
    MintQuoteResponse,
};

/// cdk's [`HttpClient`] with synchronous melts.
#[derive(Debug)]
pub struct SyncMeltClient {
    inner: HttpClient,
}

impl SyncMeltClient {
    pub fn new(mint_url: MintUrl) -> Self {
        Self {
            inner: HttpClient::new(mint_url, None),
        }
    }
}

#[async_trait]
impl MintConnector for SyncMeltClient {
    async fn post_melt(
        &self,
        method: &PaymentMethod,
        request: MeltRequest<String>,
    ) -> Result<MeltQuoteResponse<String>, Error> {
        self.inner
            .post_melt(method, request.prefer_async(false))
            .await
    }

    async fn fetch_lnurl_pay_request(&self, url: &str) -> Result<LnurlPayResponse, Error> {
        self.inner.fetch_lnurl_pay_request(url).await
    }

    async fn fetch_lnurl_invoice(&self, url: &str) -> Result<LnurlPayInvoiceResponse, Error> {
        self.inner.fetch_lnurl_invoice(url).await
    }

    async fn get_mint_keys(&self) -> Result<Vec<KeySet>, Error> {
        self.inner.get_mint_keys().await
    }

    async fn get_mint_keyset(&self, keyset_id: Id) -> Result<KeySet, Error> {
        self.inner.get_mint_keyset(keyset_id).await
    }

    async fn get_mint_keysets(&self) -> Result<KeysetResponse, Error> {
        self.inner.get_mint_keysets().await
    }

    async fn post_mint_quote(
        &self,
        request: MintQuoteRequest,
    ) -> Result<MintQuoteResponse<String>, Error> {
        self.inner.post_mint_quote(request).await
    }

    async fn post_mint(
        &self,
        method: &PaymentMethod,
        request: MintRequest<String>,
    ) -> Result<MintResponse, Error> {
        self.inner.post_mint(method, request).await
    }

    async fn post_batch_check_mint_quote_status(
        &self,
        method: &PaymentMethod,
        request: BatchCheckMintQuoteRequest<String>,
    ) -> Result<Vec<MintQuoteResponse<String>>, Error> {
        self.inner
            .post_batch_check_mint_quote_status(method, request)
            .await
    }

    async fn post_batch_mint(
        &self,
        method: &PaymentMethod,
        request: BatchMintRequest<String>,
    ) -> Result<MintResponse, Error> {
        self.inner.post_batch_mint(method, request).await
    }

    async fn post_melt_quote(
        &self,
        request: MeltQuoteRequest,
    ) -> Result<MeltQuoteCreateResponse<String>, Error> {
        self.inner.post_melt_quote(request).await
    }

    async fn get_mint_quote_status(
        &self,
        method: PaymentMethod,
        quote_id: &str,
    ) -> Result<MintQuoteResponse<String>, Error> {
        self.inner.get_mint_quote_status(method, quote_id).await
    }

    async fn get_melt_quote_status(
        &self,
        method: PaymentMethod,
        quote_id: &str,
    ) -> Result<MeltQuoteResponse<String>, Error> {
        self.inner.get_melt_quote_status(method, quote_id).await
    }

    async fn post_swap(&self, request: SwapRequest) -> Result<SwapResponse, Error> {
        self.inner.post_swap(request).await
    }

    async fn get_mint_info(&self) -> Result<MintInfo, Error> {
        self.inner.get_mint_info().await
    }

    async fn post_check_state(
        &self,
        request: CheckStateRequest,
    ) -> Result<CheckStateResponse, Error> {
        self.inner.post_check_state(request).await
    }

    async fn post_restore(&self, request: RestoreRequest) -> Result<RestoreResponse, Error> {
        self.inner.post_restore(request).await
    }

    async fn get_auth_wallet(&self) -> Option<AuthWallet> {
        self.inner.get_auth_wallet().await
    }

    async fn set_auth_wallet(&self, wallet: Option<AuthWallet>) {
        self.inner.set_auth_wallet(wallet).await
    }
}
