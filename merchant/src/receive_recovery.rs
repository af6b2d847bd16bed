//! Finishing the receive sagas (redemption swaps) that a crash or a timeout interrupted, without
//! trusting the counter range cdk recorded for them.
//!
//! cdk 0.18.3's receive reserves its range of NUT-13 counters atomically, but records the range
//! in its saga by reading the counter again a moment later. With concurrent redemptions that
//! read includes other redemptions' reservations, and the recorded range derives the wrong
//! secrets: cdk's recovery then either fails on every start (the token's proofs stay reserved
//! for good) or drops outputs the mint signed (the merchant holds less than it redeemed).
//!
//! So the merchant settles its receive sagas itself, before cdk's recovery runs: it finds the
//! derivation index of every output the swap asked for by searching the counters below the
//! current one for its blinded message, asks the mint which of them it signed (NUT-09 restore),
//! and then either stores the proofs (the swap went through), executes the swap again (the mint
//! never executed it: the token's proofs are unspent), gives the reservation back (the mint
//! refuses the swap, or someone else spent the token first), or leaves the saga for later (the
//! mint cannot be reached, or the token is still pending there).

use std::collections::HashMap;

use cdk::dhke::{construct_proofs, hash_to_curve};
use cdk::nuts::{
    BlindSignature, BlindedMessage, CheckStateRequest, Id, PreMint, PreMintSecrets, PublicKey,
    RestoreRequest, State, SwapRequest,
};
use cdk::types::ProofInfo;
use cdk::wallet::types::{OperationData, ReceiveSagaState, WalletSaga, WalletSagaState};
use cdk::wallet::{HttpClient, MintConnector, Wallet};

use crate::merchant::{Merchant, MerchantError};

/// How far below the current counter an output's derivation index is looked for. A redemption
/// takes a handful of counters; this covers hundreds of concurrent ones.
const SEARCH_WINDOW: u32 = 4096;
/// Counters derived per step of the search.
const SEARCH_STEP: u32 = 256;

/// What [`settle_receive_sagas`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The mint had signed the outputs, or signed them when the swap was sent again: the proofs
    /// are stored and the saga is gone.
    pub finished: usize,
    /// The mint refuses the swap (or the token was spent elsewhere): the reservation is given
    /// back and the saga is gone.
    pub released: usize,
    /// Left for later: the mint is unreachable, or the swap still pending there. cdk's recovery
    /// must not run then: it would replay the swap, find the inputs pending, and roll back.
    pub later: usize,
    /// Left to cdk's recovery (its outputs derive from no counter near the current one).
    pub to_cdk: usize,
}

/// Settles every incomplete receive saga of `wallet` whose swap was sent. The caller holds the
/// recovery lock exclusively.
pub(crate) async fn settle_receive_sagas(
    merchant: &Merchant,
    wallet: &Wallet,
) -> Result<Settled, MerchantError> {
    let db = merchant.localstore();
    let client = HttpClient::new(wallet.mint_url.clone(), None);
    let mut settled = Settled::default();
    for saga in db.get_incomplete_sagas().await? {
        if saga.mint_url != wallet.mint_url || saga.unit != wallet.unit {
            continue;
        }
        if !matches!(
            saga.state,
            WalletSagaState::Receive(ReceiveSagaState::SwapRequested)
        ) {
            continue;
        }
        let blinded = match &saga.data {
            OperationData::Receive(data) => match data.blinded_messages.as_deref() {
                Some(b) if !b.is_empty() => b.to_vec(),
                _ => continue,
            },
            _ => continue,
        };
        match settle_one(merchant, wallet, &client, &saga, &blinded).await {
            Ok(Outcome::Finished) => settled.finished += 1,
            Ok(Outcome::Released) => settled.released += 1,
            Ok(Outcome::Later) => settled.later += 1,
            Ok(Outcome::ToCdk) => settled.to_cdk += 1,
            Err(e) => {
                tracing::warn!(saga = %saga.id, error = %e, "cannot settle a receive saga yet");
                settled.later += 1;
            }
        }
    }
    Ok(settled)
}

enum Outcome {
    Finished,
    Released,
    Later,
    ToCdk,
}

async fn settle_one(
    merchant: &Merchant,
    wallet: &Wallet,
    client: &HttpClient,
    saga: &WalletSaga,
    blinded: &[BlindedMessage],
) -> Result<Outcome, MerchantError> {
    let db = merchant.localstore();
    let reserved = db.get_reserved_proofs(&saga.id).await?;
    if reserved.is_empty() {
        // Nothing held: cdk's recovery removes such a saga.
        return Ok(Outcome::ToCdk);
    }
    let input_ys: Vec<PublicKey> = reserved.iter().map(|p| p.y).collect();
    let keyset_id = blinded[0].keyset_id;
    let Some(premints) = find_premints(merchant, keyset_id, blinded).await? else {
        tracing::warn!(saga = %saga.id, "the outputs of a receive saga derive from no counter \
            near the current one; leaving it to cdk's recovery");
        return Ok(Outcome::ToCdk);
    };

    match signed(client, blinded).await? {
        Signed::All(outputs, signatures) => {
            store_outputs(
                merchant, wallet, saga, &premints, &outputs, signatures, input_ys,
            )
            .await?;
            return Ok(Outcome::Finished);
        }
        Signed::Some => {
            tracing::warn!(saga = %saga.id, "the mint signed only some outputs of a swap");
            return Ok(Outcome::Later);
        }
        Signed::None => {}
    }

    // Nothing signed: the swap did not happen, unless it is still running at the mint.
    let states = client
        .post_check_state(CheckStateRequest {
            ys: input_ys.clone(),
        })
        .await?;
    if states.states.len() != input_ys.len()
        || states.states.iter().any(|s| s.state == State::Pending)
    {
        return Ok(Outcome::Later);
    }
    if states.states.iter().all(|s| s.state == State::Unspent) {
        // The mint never executed the swap: execute it now, as cdk's recovery would.
        let inputs = reserved.iter().map(|p| p.proof.clone()).collect();
        match client
            .post_swap(SwapRequest::new(inputs, blinded.to_vec()))
            .await
        {
            Ok(response) if response.signatures.len() == blinded.len() => {
                store_outputs(
                    merchant,
                    wallet,
                    saga,
                    &premints,
                    blinded,
                    response.signatures,
                    input_ys,
                )
                .await?;
                return Ok(Outcome::Finished);
            }
            Ok(_) => {
                return Err(MerchantError::Wallet(cdk::Error::InvalidMintResponse(
                    "swap: signatures and outputs differ in number".into(),
                )))
            }
            Err(e) if e.is_definitive_failure() => {
                tracing::info!(saga = %saga.id, error = %e, "the mint refuses the swap again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The original swap may have gone through since the first look (it raced this recovery):
    // look again before giving the reservation back.
    match signed(client, blinded).await? {
        Signed::All(outputs, signatures) => {
            store_outputs(
                merchant, wallet, saga, &premints, &outputs, signatures, input_ys,
            )
            .await?;
            return Ok(Outcome::Finished);
        }
        Signed::Some => return Ok(Outcome::Later),
        Signed::None => {}
    }
    // Refused, or spent by someone else: the token is not the merchant's.
    db.update_proofs(Vec::new(), input_ys).await?;
    db.delete_saga(&saga.id).await?;
    tracing::info!(saga = %saga.id, "released the reservation of a redemption that did not go through");
    Ok(Outcome::Released)
}

/// Which of a swap's outputs the mint signed (NUT-09 restore).
enum Signed {
    None,
    Some,
    /// All of them: the outputs in the order of the signatures.
    All(Vec<BlindedMessage>, Vec<BlindSignature>),
}

async fn signed(client: &HttpClient, blinded: &[BlindedMessage]) -> Result<Signed, MerchantError> {
    let restored = client
        .post_restore(RestoreRequest {
            outputs: blinded.to_vec(),
        })
        .await?;
    if restored.outputs.len() != restored.signatures.len() {
        return Err(MerchantError::Wallet(cdk::Error::InvalidMintResponse(
            "restore: outputs and signatures differ in number".into(),
        )));
    }
    Ok(if restored.signatures.is_empty() {
        Signed::None
    } else if restored.signatures.len() == blinded.len() {
        Signed::All(restored.outputs, restored.signatures)
    } else {
        Signed::Some
    })
}

/// Stores the proofs `signatures` make of `outputs` (in the same order) in place of the
/// swap's inputs, and ends its saga.
async fn store_outputs(
    merchant: &Merchant,
    wallet: &Wallet,
    saga: &WalletSaga,
    premints: &HashMap<PublicKey, PreMint>,
    outputs: &[BlindedMessage],
    signatures: Vec<BlindSignature>,
    input_ys: Vec<PublicKey>,
) -> Result<(), MerchantError> {
    let db = merchant.localstore();
    let mut rs = Vec::new();
    let mut secrets = Vec::new();
    let mut indexes = Vec::new();
    for output in outputs {
        let premint = premints.get(&output.blinded_secret).ok_or_else(|| {
            MerchantError::Wallet(cdk::Error::InvalidMintResponse(
                "an output the swap did not ask for".into(),
            ))
        })?;
        rs.push(premint.r.clone());
        secrets.push(premint.secret.clone());
        indexes.push(premint.derivation_index);
    }
    let Some(first) = outputs.first() else {
        return Ok(());
    };
    let keys = wallet.keyset(first.keyset_id).await?.keys;
    let proofs = construct_proofs(signatures, rs, secrets, &keys)
        .map_err(|e| MerchantError::Wallet(e.into()))?;
    let mut infos = Vec::new();
    for (proof, index) in proofs.into_iter().zip(indexes) {
        let info = ProofInfo::new(
            proof,
            wallet.mint_url.clone(),
            State::Unspent,
            wallet.unit.clone(),
        )?;
        infos.push(match index {
            Some(i) => info.with_derivation_index(i),
            None => info,
        });
    }
    let held = db
        .get_proofs_by_ys(infos.iter().map(|p| p.y).collect())
        .await?;
    infos.retain(|p| !held.iter().any(|h| h.y == p.y));
    let amount: u64 = infos.iter().map(|p| u64::from(p.proof.amount)).sum();
    db.update_proofs(infos, input_ys).await?;
    db.delete_saga(&saga.id).await?;
    tracing::info!(saga = %saga.id, amount, "stored the outputs of an interrupted redemption");
    Ok(())
}

/// The secrets behind `blinded`, by blinded secret, found by deriving the counters below the
/// current one; `None` unless every output is found.
async fn find_premints(
    merchant: &Merchant,
    keyset_id: Id,
    blinded: &[BlindedMessage],
) -> Result<Option<HashMap<PublicKey, PreMint>>, MerchantError> {
    let current = merchant
        .localstore()
        .increment_keyset_counter(&keyset_id, 0)
        .await?;
    let seed = *merchant.seed().as_bytes();
    let wanted: Vec<PublicKey> = blinded.iter().map(|b| b.blinded_secret).collect();
    // Deriving thousands of secrets is CPU work: keep it off the async workers.
    let found = tokio::task::spawn_blocking(move || {
        let mut found: HashMap<PublicKey, PreMint> = HashMap::new();
        let floor = current.saturating_sub(SEARCH_WINDOW);
        let mut end = current;
        while end > floor && found.len() < wanted.len() {
            let start = end.saturating_sub(SEARCH_STEP).max(floor);
            let batch = PreMintSecrets::restore_batch(keyset_id, &seed, start, end)?;
            for premint in batch.secrets {
                if wanted.contains(&premint.blinded_message.blinded_secret) {
                    found.insert(premint.blinded_message.blinded_secret, premint);
                }
            }
            end = start;
        }
        Ok::<_, cdk::nuts::nut13::Error>(found)
    })
    .await
    .map_err(|e| MerchantError::Wallet(cdk::Error::Custom(e.to_string())))?
    .map_err(|e| MerchantError::Wallet(e.into()))?;
    Ok((found.len() == blinded.len()).then_some(found))
}

/// The Y values (hex) of the proofs the outputs `blinded` become, re-derived from the seed;
/// empty if their counters are not found.
pub(crate) async fn output_ys(
    merchant: &Merchant,
    blinded: &[BlindedMessage],
) -> Result<Vec<String>, MerchantError> {
    let Some(first) = blinded.first() else {
        return Ok(Vec::new());
    };
    let Some(premints) = find_premints(merchant, first.keyset_id, blinded).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for premint in premints.values() {
        let y = hash_to_curve(premint.secret.as_bytes())
            .map_err(|e| MerchantError::Wallet(e.into()))?;
        out.push(y.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// The outputs of a swap whose counters lie anywhere below the current counter (within the
    /// window) are found, whatever range cdk recorded; outputs from further back are not.
    #[tokio::test]
    async fn outputs_are_found_by_their_counters_not_by_the_recorded_range() {
        let dir = tempfile::tempdir().unwrap();
        let merchant = Merchant::open(dir.path()).await.unwrap();
        let keyset = Id::from_str("009a1f293253e41e").unwrap();
        let seed = *merchant.seed().as_bytes();
        merchant
            .localstore()
            .increment_keyset_counter(&keyset, 5000)
            .await
            .unwrap();
        // Three outputs reserved at 4990 (the "recorded" range would say 4997..5000).
        let premints = PreMintSecrets::restore_batch(keyset, &seed, 4990, 4993).unwrap();
        let blinded: Vec<BlindedMessage> = premints
            .secrets
            .iter()
            .map(|p| p.blinded_message.clone())
            .collect();
        let mut expected: Vec<String> = premints
            .secrets
            .iter()
            .map(|p| hash_to_curve(p.secret.as_bytes()).unwrap().to_string())
            .collect();
        let mut found = output_ys(&merchant, &blinded).await.unwrap();
        expected.sort();
        found.sort();
        assert_eq!(found, expected);

        let far = PreMintSecrets::restore_batch(keyset, &seed, 10, 12).unwrap();
        let blinded: Vec<BlindedMessage> = far
            .secrets
            .iter()
            .map(|p| p.blinded_message.clone())
            .collect();
        assert!(output_ys(&merchant, &blinded).await.unwrap().is_empty());
    }
}
