//! A protocol-generic Cashu v1 client: plain HTTP and JSON, blinded messages built here.
//!
//! Nothing in this module calls a mint's library: it uses cdk only for the NUT-00 types and
//! BDHKE (blind, unblind), so the same client drives any mint that speaks Cashu v1.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use cdk::dhke::construct_proofs;
use cdk::nuts::{
    BlindSignature, BlindedMessage, Id, Keys, PreMintSecrets, Proof, PublicKey, SpendingConditions,
};
use cdk::secret::Secret;
use cdk::Amount;
use serde_json::{json, Value};

/// One mint as the client sees it: base URL, the active `sat` keyset and its keys.
#[derive(Clone)]
pub struct MintClient {
    pub http: reqwest::Client,
    pub url: String,
    pub keyset: Id,
    pub keys: Keys,
}

/// Outputs ready to send, with what is needed to unblind the signatures.
pub struct Outputs {
    pub pre: PreMintSecrets,
}

impl Outputs {
    /// Fresh random secrets for `amounts`, blinded for `keyset`.
    pub fn new(keyset: Id, amounts: &[u64]) -> anyhow::Result<Self> {
        let secrets = amounts.iter().map(|_| Secret::generate()).collect();
        let amounts = amounts.iter().map(|a| Amount::from(*a)).collect();
        let pre = PreMintSecrets::from_secrets(keyset, amounts, secrets)?;
        Ok(Self { pre })
    }

    /// Fresh secrets for `amounts`, each P2PK-locked (NUT-11) to `pubkey` alone.
    pub fn locked(keyset: Id, amounts: &[u64], pubkey: PublicKey) -> anyhow::Result<Self> {
        let secrets = amounts
            .iter()
            .map(|_| Secret::try_from(SpendingConditions::new_p2pk(pubkey, None)))
            .collect::<Result<Vec<_>, _>>()?;
        let amounts = amounts.iter().map(|a| Amount::from(*a)).collect();
        let pre = PreMintSecrets::from_secrets(keyset, amounts, secrets)?;
        Ok(Self { pre })
    }

    pub fn blinded(&self) -> Vec<BlindedMessage> {
        self.pre.blinded_messages()
    }

    /// Unblinds the mint's signatures into proofs (without DLEQ, as a plain wallet sends them).
    pub fn unblind(self, sigs: Vec<BlindSignature>, keys: &Keys) -> anyhow::Result<Vec<Proof>> {
        Ok(self
            .unblind_with_dleq(sigs, keys)?
            .into_iter()
            .map(|mut p| {
                p.dleq = None;
                p
            })
            .collect())
    }

    /// Unblinds keeping the NUT-12 DLEQ proofs (with the blinding factor `r`), so that a
    /// receiver can check the mint's signatures offline.
    pub fn unblind_with_dleq(
        self,
        sigs: Vec<BlindSignature>,
        keys: &Keys,
    ) -> anyhow::Result<Vec<Proof>> {
        Ok(construct_proofs(
            sigs,
            self.pre.rs(),
            self.pre.secrets(),
            keys,
        )?)
    }
}

impl MintClient {
    /// Reads `/v1/keysets` and the keys of the active `sat` keyset without input fee.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(60))
            .build()?;
        let url = url.trim_end_matches('/').to_string();
        let sets: Value = get_json(&http, &format!("{url}/v1/keysets")).await?;
        let set = sets["keysets"]
            .as_array()
            .context("keysets")?
            .iter()
            .find(|k| {
                k["active"].as_bool() == Some(true)
                    && k["unit"] == "sat"
                    && k["input_fee_ppk"].as_u64().unwrap_or(0) == 0
            })
            .context("no active sat keyset without input fee")?;
        let id = set["id"].as_str().context("keyset id")?;
        let keyset = Id::from_str(id).map_err(|e| anyhow!("keyset id {id}: {e}"))?;
        let keys: Value = get_json(&http, &format!("{url}/v1/keys/{id}")).await?;
        let keys: Keys = serde_json::from_value(keys["keysets"][0]["keys"].clone())
            .context("keys of the active keyset")?;
        Ok(Self {
            http,
            url,
            keyset,
            keys,
        })
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {}", truncate(&text));
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Asks for a mint quote and waits (bounded) until the mint reports it paid.
    pub async fn paid_mint_quote(&self, amount: u64) -> anyhow::Result<String> {
        let q = self
            .post(
                "/v1/mint/quote/bolt11",
                &json!({ "amount": amount, "unit": "sat" }),
            )
            .await?;
        let id = q["quote"].as_str().context("quote id")?.to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = q["state"].as_str().unwrap_or("").to_string();
        while state != "PAID" && state != "ISSUED" {
            if Instant::now() > deadline {
                bail!("mint quote {id} not paid within 30 s (state {state})");
            }
            let s = get_json(
                &self.http,
                &format!("{}/v1/mint/quote/bolt11/{id}", self.url),
            )
            .await?;
            state = s["state"].as_str().unwrap_or("").to_string();
            if state != "PAID" {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok(id)
    }

    /// Mints `amounts` (one proof per entry) with a paid quote for their sum.
    pub async fn mint(&self, amounts: &[u64]) -> anyhow::Result<Vec<Proof>> {
        let quote = self.paid_mint_quote(amounts.iter().sum()).await?;
        let outputs = Outputs::new(self.keyset, amounts)?;
        let res = self
            .post(
                "/v1/mint/bolt11",
                &json!({ "quote": quote, "outputs": outputs.blinded() }),
            )
            .await?;
        let sigs: Vec<BlindSignature> = serde_json::from_value(res["signatures"].clone())?;
        outputs.unblind(sigs, &self.keys)
    }

    /// Mints `count` proofs of `amount` each, P2PK-locked to `pubkey`, with DLEQ proofs.
    pub async fn mint_locked(
        &self,
        amount: u64,
        count: usize,
        pubkey: PublicKey,
    ) -> anyhow::Result<Vec<Proof>> {
        let quote = self.paid_mint_quote(amount * count as u64).await?;
        let outputs = Outputs::locked(self.keyset, &vec![amount; count], pubkey)?;
        let res = self
            .post(
                "/v1/mint/bolt11",
                &json!({ "quote": quote, "outputs": outputs.blinded() }),
            )
            .await?;
        let sigs: Vec<BlindSignature> = serde_json::from_value(res["signatures"].clone())?;
        outputs.unblind_with_dleq(sigs, &self.keys)
    }

    /// Mints `count` proofs of `amount` each, in requests of at most `batch` outputs.
    pub async fn mint_many(
        &self,
        amount: u64,
        count: usize,
        batch: usize,
    ) -> anyhow::Result<Vec<Proof>> {
        let mut proofs = Vec::with_capacity(count);
        while proofs.len() < count {
            let n = batch.min(count - proofs.len());
            proofs.extend(self.mint(&vec![amount; n]).await?);
        }
        Ok(proofs)
    }
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let res = http.get(url).send().await?;
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", truncate(&text));
    }
    Ok(serde_json::from_str(&text)?)
}

pub fn truncate(s: &str) -> &str {
    match s.char_indices().nth(300) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
