//! The mint's signatory: cdk's `DbSignatory` (keys derived from the seed, keysets in the
//! database, rotation) called directly by the request that needs it, instead of through cdk's
//! embedded actor.
//!
//! Why not cdk's default (`MintBuilder::build_with_seed`): it wraps `DbSignatory` in
//! `cdk_signatory::embedded::Service`, one task fed by a channel, so every blind signature and
//! proof check of every request runs one after the other on one core, and each request pays two
//! task hand-offs. `DbSignatory` is `Sync` and its signing reads a lock-free snapshot, so it can
//! be called concurrently; the actor isolates nothing (same process, same memory).
//!
//! Proof verification also avoids `cashu::dhke::verify_message`, which builds (and randomises) a
//! fresh secp256k1 context for every proof: the check itself — `hash_to_curve(secret) · k == C`
//! — runs here on the global context, with the keyset's private keys derived from the seed exactly
//! as `DbSignatory` derives them and checked against the public keys it publishes. Anything this
//! path cannot answer (an unknown keyset, a failed check) is handed to `DbSignatory`, so errors
//! stay cdk's own.
//!
//! Signing likewise runs here (`dleq_sign::MintKey`) for outputs whose keyset is cached, known,
//! active and unexpired and has a key for the amount: the same `C'` and NUT-12 proof, byte for
//! byte, without recomputing the mint's public key per output. The checks read the keyset view
//! `DbSignatory` publishes on every reload; any batch with an output that fails them, or whose
//! signing fails, goes to `DbSignatory` whole, so its refusals stay cdk's.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use cdk::cdk_database::{self, MintKeysDatabase};
use cdk::dhke::hash_to_curve;
use cdk::nuts::{BlindSignature, BlindedMessage, CurrencyUnit, Id, MintKeySet, Proof};
use cdk::{Amount, SECP256K1};
use cdk_common::bitcoin::bip32::Xpriv;
use cdk_common::bitcoin::Network;
use cdk_common::Error;
use cdk_signatory::db_signatory::DbSignatory;
use cdk_signatory::signatory::{RotateKeyArguments, Signatory, SignatoryKeySet, SignatoryKeysets};
use tokio::sync::watch;

use crate::dleq_sign::MintKey;

/// Batches at least this large are split over the blocking pool, one chunk per core; smaller
/// ones (a typical swap) run on the calling task, which is cheaper than any hand-off.
const PARALLEL_BATCH: usize = 16;

type KeysDb = Arc<dyn MintKeysDatabase<Err = cdk_database::Error> + Send + Sync>;

/// Private (and public) keys of one keyset, by amount.
type KeysetSecrets = BTreeMap<Amount, MintKey>;

pub struct DirectSignatory {
    inner: Arc<DbSignatory>,
    keys_db: KeysDb,
    xpriv: Xpriv,
    /// Keysets whose private keys were derived and matched the published public keys.
    secrets: RwLock<HashMap<Id, Arc<KeysetSecrets>>>,
    /// `DbSignatory`'s published keysets (activity, expiry, amounts), updated on every reload.
    published: watch::Receiver<SignatoryKeysets>,
    cores: usize,
}

impl DirectSignatory {
    /// Loads (and on first start creates) the keysets for `units` (unit → input fee, amounts),
    /// as `MintBuilder::build_with_seed` would.
    pub async fn new(
        keys_db: KeysDb,
        seed: &[u8],
        units: HashMap<CurrencyUnit, (u64, Vec<u64>)>,
        keyset_refresh: Option<std::time::Duration>,
    ) -> Result<Self, Error> {
        let inner = Arc::new(DbSignatory::new(keys_db.clone(), seed, units, HashMap::new()).await?);
        // As `build_with_seed` does: replicas on one database reload the keysets another
        // process rotated (off unless configured).
        inner.spawn_keyset_refresh(keyset_refresh);
        let xpriv = Xpriv::new_master(Network::Bitcoin, seed)
            .map_err(|e| Error::Custom(format!("cannot derive the mint's master key: {e}")))?;
        let published = inner.subscribe_keysets().await?;
        Ok(Self {
            inner,
            keys_db,
            xpriv,
            published,
            secrets: RwLock::new(HashMap::new()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    fn cached(&self, id: &Id) -> Option<Arc<KeysetSecrets>> {
        self.secrets.read().ok()?.get(id).cloned()
    }

    /// The private keys of keyset `id`, derived once and cached; `None` when the keyset is
    /// unknown or what we derive does not match what `DbSignatory` publishes.
    async fn secrets_for(&self, id: &Id) -> Option<Arc<KeysetSecrets>> {
        if let Some(s) = self.cached(id) {
            return Some(s);
        }
        let published = self.inner.keysets().await.ok()?;
        let public = published.keysets.into_iter().find(|k| k.id == *id)?;
        let info = {
            let mut tx = self.keys_db.begin_transaction().await.ok()?;
            let infos = tx.get_keyset_infos().await.ok();
            // Read-only: nothing to keep, and a failed rollback changes nothing either.
            let _ = tx.rollback().await;
            infos?.into_iter().find(|i| i.id == *id)?
        };
        let derived = MintKeySet::generate_from_xpriv(
            &SECP256K1,
            self.xpriv,
            &info.amounts,
            info.unit.clone(),
            info.derivation_path.clone(),
            info.input_fee_ppk,
            info.final_expiry,
            info.id.get_version(),
        );
        let matches = derived.keys.len() == public.keys.len()
            && derived
                .keys
                .iter()
                .all(|(amount, pair)| public.keys.get(amount) == Some(&pair.public_key));
        if !matches {
            tracing::warn!(keyset = %id, "derived keys differ from the signatory's; verifying through it");
            return None;
        }
        let secrets: KeysetSecrets = derived
            .keys
            .iter()
            .map(|(amount, pair)| {
                let key = MintKey::new(pair.secret_key.clone(), pair.public_key);
                (*amount, key)
            })
            .collect();
        let secrets = Arc::new(secrets);
        if let Ok(mut map) = self.secrets.write() {
            map.insert(*id, secrets.clone());
        }
        Some(secrets)
    }

    /// The cached keys of every keyset `messages` sign under, or `None` when any output is
    /// something `DbSignatory` would refuse (unknown, inactive or expired keyset, an amount the
    /// keyset has no key for) or whose keys are not cached: those batches go to it whole.
    async fn signing_keys(
        &self,
        messages: &[BlindedMessage],
    ) -> Option<HashMap<Id, Arc<KeysetSecrets>>> {
        let mut keys = HashMap::new();
        for m in messages {
            if let Entry::Vacant(slot) = keys.entry(m.keyset_id) {
                slot.insert(self.secrets_for(&m.keyset_id).await?);
            }
        }
        let published = self.published.borrow();
        for (id, secrets) in &keys {
            let keyset = published.keysets.iter().find(|k| k.id == *id)?;
            if !keyset.active || keyset.is_expired() {
                return None;
            }
            // A keyset's id is the hash of its keys, so these match what was checked when
            // `secrets` were derived; checked again because it costs nothing.
            for m in messages.iter().filter(|m| m.keyset_id == *id) {
                let ours = secrets.get(&m.amount)?;
                if keyset.keys.amount_key(m.amount).as_ref() != Some(ours.public()) {
                    return None;
                }
            }
        }
        Some(keys)
    }

    /// `DbSignatory`'s signing, split over the blocking pool for large batches.
    async fn blind_sign_through_cdk(
        &self,
        blinded_messages: Vec<BlindedMessage>,
    ) -> Result<Vec<BlindSignature>, Error> {
        if blinded_messages.len() < PARALLEL_BATCH || self.cores < 2 {
            return self.inner.blind_sign(blinded_messages).await;
        }
        let inner = self.inner.clone();
        self.in_parallel(blinded_messages, move |part| {
            // DbSignatory's signing never awaits anything: it completes on the first poll.
            futures::executor::block_on(inner.blind_sign(part))
        })
        .await
    }

    /// Splits `items` into one chunk per core and runs `work` on each in the blocking pool,
    /// keeping the order of the results.
    async fn in_parallel<T, R, F>(&self, items: Vec<T>, work: F) -> Result<Vec<R>, Error>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(Vec<T>) -> Result<Vec<R>, Error> + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let chunk = items.len().div_ceil(self.cores.max(1));
        let mut items = items.into_iter();
        let mut handles = Vec::new();
        loop {
            let part: Vec<T> = items.by_ref().take(chunk.max(1)).collect();
            if part.is_empty() {
                break;
            }
            let work = work.clone();
            handles.push(tokio::task::spawn_blocking(move || work(part)));
        }
        let mut out = Vec::new();
        for h in handles {
            let part = h
                .await
                .map_err(|e| Error::Custom(format!("signing task failed: {e}")))??;
            out.extend(part);
        }
        Ok(out)
    }
}

/// Signs every message with the checked keys of `signing_keys`; `None` if any signing fails
/// (then cdk signs the batch and names the error).
fn sign_all(
    keys: &HashMap<Id, Arc<KeysetSecrets>>,
    messages: &[BlindedMessage],
) -> Option<Vec<BlindSignature>> {
    messages
        .iter()
        .map(|m| {
            let key = keys.get(&m.keyset_id)?.get(&m.amount)?;
            key.blind_sign(m.amount, m.keyset_id, &m.blinded_secret)
                .ok()
        })
        .collect()
}

/// `hash_to_curve(secret) · k == C` on the global context.
fn proof_is_valid(secrets: &HashMap<Id, Arc<KeysetSecrets>>, proof: &Proof) -> bool {
    let Some(k) = secrets
        .get(&proof.keyset_id)
        .and_then(|s| s.get(&proof.amount))
    else {
        return false;
    };
    let Ok(y) = hash_to_curve(proof.secret.as_bytes()) else {
        return false;
    };
    match y.mul_tweak(&SECP256K1, &k.secret().as_scalar()) {
        Ok(expected) => expected == *proof.c,
        Err(_) => false,
    }
}

#[async_trait::async_trait]
impl Signatory for DirectSignatory {
    fn name(&self) -> String {
        self.inner.name()
    }

    async fn blind_sign(
        &self,
        blinded_messages: Vec<BlindedMessage>,
    ) -> Result<Vec<BlindSignature>, Error> {
        let Some(keys) = self.signing_keys(&blinded_messages).await else {
            return self.blind_sign_through_cdk(blinded_messages).await;
        };
        let signed = if blinded_messages.len() < PARALLEL_BATCH || self.cores < 2 {
            sign_all(&keys, &blinded_messages)
        } else {
            let keys = Arc::new(keys);
            let parts = self
                .in_parallel(blinded_messages.clone(), move |part| {
                    Ok(vec![sign_all(&keys, &part)])
                })
                .await?;
            parts.into_iter().try_fold(Vec::new(), |mut all, part| {
                all.extend(part?);
                Some(all)
            })
        };
        match signed {
            Some(signatures) => Ok(signatures),
            None => self.blind_sign_through_cdk(blinded_messages).await,
        }
    }

    async fn verify_proofs(&self, proofs: Vec<Proof>) -> Result<(), Error> {
        let mut secrets = HashMap::new();
        for proof in &proofs {
            if secrets.contains_key(&proof.keyset_id) {
                continue;
            }
            match self.secrets_for(&proof.keyset_id).await {
                Some(s) => {
                    secrets.insert(proof.keyset_id, s);
                }
                None => return self.inner.verify_proofs(proofs).await,
            }
        }
        let valid = if proofs.len() < PARALLEL_BATCH || self.cores < 2 {
            proofs.iter().all(|p| proof_is_valid(&secrets, p))
        } else {
            let secrets = Arc::new(secrets);
            let checked = self
                .in_parallel(proofs.clone(), move |part| {
                    Ok(vec![part.iter().all(|p| proof_is_valid(&secrets, p))])
                })
                .await?;
            checked.into_iter().all(|ok| ok)
        };
        if valid {
            Ok(())
        } else {
            // Let cdk name the failure (unknown amount, bad signature, bad secret).
            self.inner.verify_proofs(proofs).await
        }
    }

    async fn keysets(&self) -> Result<SignatoryKeysets, Error> {
        self.inner.keysets().await
    }

    async fn subscribe_keysets(&self) -> Result<watch::Receiver<SignatoryKeysets>, Error> {
        self.inner.subscribe_keysets().await
    }

    async fn rotate_keyset(&self, args: RotateKeyArguments) -> Result<SignatoryKeySet, Error> {
        self.inner.rotate_keyset(args).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use cdk::dhke::{blind_message, unblind_message};
    use cdk::nuts::nut02::KeySetVersion;
    use cdk::nuts::{PublicKey, SecretKey};
    use cdk::secret::Secret;

    use super::*;

    const AMOUNTS: [u64; 4] = [1, 2, 4, 8];

    /// A signatory on an in-memory database with one active sat keyset, and that keyset.
    async fn signatory() -> (DirectSignatory, SignatoryKeySet) {
        let db = Arc::new(cdk_sqlite::mint::memory::empty().await.unwrap());
        let units = HashMap::from([(CurrencyUnit::Sat, (0, AMOUNTS.to_vec()))]);
        let s = DirectSignatory::new(db, &[7u8; 32], units, None)
            .await
            .unwrap();
        let keyset = s
            .rotate_keyset(RotateKeyArguments {
                unit: CurrencyUnit::Sat,
                amounts: AMOUNTS.to_vec(),
                input_fee_ppk: 0,
                keyset_id_type: KeySetVersion::Version01,
                final_expiry: None,
            })
            .await
            .unwrap();
        (s, keyset)
    }

    /// `n` outputs of 1..8 sat, their secrets and blinding factors.
    fn outputs(id: Id, n: usize) -> Vec<(BlindedMessage, Secret, SecretKey)> {
        (0..n)
            .map(|i| {
                let secret = Secret::generate();
                let (b, r) = blind_message(secret.as_bytes(), None).unwrap();
                let amount = Amount::from(AMOUNTS[i % AMOUNTS.len()]);
                (BlindedMessage::new(amount, id, b), secret, r)
            })
            .collect()
    }

    fn proofs(
        outs: &[(BlindedMessage, Secret, SecretKey)],
        sigs: &[BlindSignature],
        keys: &cdk::nuts::Keys,
    ) -> Vec<Proof> {
        outs.iter()
            .zip(sigs)
            .map(|((b, secret, r), sig)| {
                let k: PublicKey = keys.amount_key(b.amount).unwrap();
                let c = unblind_message(&sig.c, r, &k).unwrap();
                Proof::new(b.amount, b.keyset_id, secret.clone(), c)
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signs_like_db_signatory_and_verifies_what_it_signed() {
        let (s, keyset) = signatory().await;
        // Below and above the batch size that goes to the blocking pool.
        for n in [3, 2 * PARALLEL_BATCH + 1] {
            let outs = outputs(keyset.id, n);
            let msgs: Vec<BlindedMessage> = outs.iter().map(|o| o.0.clone()).collect();
            let ours = s.blind_sign(msgs.clone()).await.unwrap();
            // DLEQ nonces are deterministic: the same inputs give the same signatures.
            assert_eq!(ours, s.inner.blind_sign(msgs).await.unwrap());
            let proofs = proofs(&outs, &ours, &keyset.keys);
            s.verify_proofs(proofs.clone()).await.unwrap();
            s.inner.verify_proofs(proofs).await.unwrap();
        }
    }

    /// Outputs of every amount the keyset has, several of each, in a shuffled order.
    fn outputs_of_every_amount(id: Id, per_amount: usize) -> Vec<BlindedMessage> {
        let mut msgs: Vec<BlindedMessage> = (0..per_amount * AMOUNTS.len())
            .map(|i| {
                let (b, _) = blind_message(Secret::generate().as_bytes(), None).unwrap();
                BlindedMessage::new(Amount::from(AMOUNTS[i % AMOUNTS.len()]), id, b)
            })
            .collect();
        msgs.reverse();
        msgs.rotate_left(3);
        msgs
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn own_signing_is_byte_identical_to_db_signatory() {
        let (s, keyset) = signatory().await;
        let msgs = outputs_of_every_amount(keyset.id, 64);
        // Our path must take this batch, not hand it to cdk.
        let keys = s.signing_keys(&msgs).await.expect("our path signs it");
        let ours = sign_all(&keys, &msgs).unwrap();
        let theirs = s.inner.blind_sign(msgs.clone()).await.unwrap();
        assert_eq!(ours.len(), msgs.len());
        assert_eq!(ours, theirs);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        // And through the trait, both below and above the parallel batch size.
        for n in [
            1,
            PARALLEL_BATCH - 1,
            PARALLEL_BATCH,
            3 * PARALLEL_BATCH + 5,
        ] {
            let part = msgs[..n].to_vec();
            assert_eq!(s.blind_sign(part.clone()).await.unwrap(), theirs[..n]);
        }
        // Each proof verifies as a wallet checks it.
        for (m, sig) in msgs.iter().zip(&ours) {
            let a = keyset.keys.amount_key(m.amount).unwrap();
            sig.verify_dleq(a, m.blinded_secret).unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signing_refusals_are_db_signatory_s() {
        let (s, old) = signatory().await;
        let good = outputs_of_every_amount(old.id, 1);
        s.blind_sign(good.clone()).await.unwrap();

        // An amount the keyset has no key for, at the end of an otherwise good batch.
        let mut odd = good.clone();
        odd.push(BlindedMessage::new(
            Amount::from(3),
            old.id,
            good[0].blinded_secret,
        ));
        // A keyset the mint never had.
        let mut unknown = good.clone();
        unknown[1].keyset_id = Id::from_bytes(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        for (batch, expected) in [(odd, Error::UnknownKeySet), (unknown, Error::UnknownKeySet)] {
            assert!(s.signing_keys(&batch).await.is_none());
            let ours = s.blind_sign(batch.clone()).await.unwrap_err();
            let theirs = s.inner.blind_sign(batch).await.unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string());
            assert_eq!(ours.to_string(), expected.to_string());
        }

        // After a rotation the old keyset is inactive: refused, the new one signs.
        let new = s
            .rotate_keyset(RotateKeyArguments {
                unit: CurrencyUnit::Sat,
                amounts: AMOUNTS.to_vec(),
                input_fee_ppk: 0,
                keyset_id_type: KeySetVersion::Version01,
                final_expiry: None,
            })
            .await
            .unwrap();
        assert!(s.signing_keys(&good).await.is_none());
        let ours = s.blind_sign(good.clone()).await.unwrap_err();
        let theirs = s.inner.blind_sign(good).await.unwrap_err();
        assert!(matches!(ours, Error::InactiveKeyset), "{ours}");
        assert_eq!(ours.to_string(), theirs.to_string());
        let fresh = outputs_of_every_amount(new.id, 2);
        assert!(s.signing_keys(&fresh).await.is_some());
        assert_eq!(
            s.blind_sign(fresh.clone()).await.unwrap(),
            s.inner.blind_sign(fresh).await.unwrap()
        );

        // An expired keyset.
        let expired = s
            .rotate_keyset(RotateKeyArguments {
                unit: CurrencyUnit::Sat,
                amounts: AMOUNTS.to_vec(),
                input_fee_ppk: 0,
                keyset_id_type: KeySetVersion::Version01,
                final_expiry: Some(cdk_common::util::unix_time() - 1),
            })
            .await
            .unwrap();
        let late = outputs_of_every_amount(expired.id, 1);
        assert!(s.signing_keys(&late).await.is_none());
        let ours = s.blind_sign(late.clone()).await.unwrap_err();
        let theirs = s.inner.blind_sign(late).await.unwrap_err();
        assert!(matches!(ours, Error::ExpiredKeyset), "{ours}");
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_what_db_signatory_refuses_with_its_error() {
        let (s, keyset) = signatory().await;
        for n in [2, 2 * PARALLEL_BATCH] {
            let outs = outputs(keyset.id, n);
            let msgs: Vec<BlindedMessage> = outs.iter().map(|o| o.0.clone()).collect();
            let sigs = s.blind_sign(msgs).await.unwrap();
            let good = proofs(&outs, &sigs, &keyset.keys);

            // One proof carries another proof's signature.
            let mut forged = good.clone();
            forged[n - 1].c = good[0].c;
            let ours = s.verify_proofs(forged.clone()).await.unwrap_err();
            let theirs = s.inner.verify_proofs(forged).await.unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string());

            // An amount the keyset has no key for.
            let mut odd = good.clone();
            odd[0].amount = Amount::from(3);
            let ours = s.verify_proofs(odd.clone()).await.unwrap_err();
            let theirs = s.inner.verify_proofs(odd).await.unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string());

            // A keyset the mint never had.
            let mut unknown = good;
            unknown[0].keyset_id = Id::from_bytes(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
            let ours = s.verify_proofs(unknown.clone()).await.unwrap_err();
            let theirs = s.inner.verify_proofs(unknown).await.unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string());
        }
    }
}
