use std::str::FromStr;

use cdk::dhke::{blind_message, sign_message, unblind_message};
use cdk::nuts::{BlindSignature, Conditions, ProofDleq, SecretKey};

use super::*;
use crate::merchant::Merchant;
use crate::paywall::Price;
use crate::redeemer::{round, RETRY_MAX_SECS};
use crate::store::now;
use crate::store::HeldStatus;
use crate::verify;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, Token};

const NOW: u64 = 1_800_000_000;
const HOUR: u64 = 3600;

fn keyset() -> Id {
    Id::from_str("009a1f293253e41e").unwrap()
}

/// A proof of `amount` under `conditions`, signed by `mint_key` with a DLEQ proof.
fn proof(mint_key: &SecretKey, conditions: SpendingConditions, amount: u64) -> Proof {
    let secret = cdk::secret::Secret::try_from(conditions).unwrap();
    let (b, r) = blind_message(secret.as_bytes(), None).unwrap();
    let c_blind = sign_message(mint_key, &b).unwrap();
    let signature =
        BlindSignature::new(Amount::from(amount), c_blind, keyset(), &b, mint_key).unwrap();
    let c = unblind_message(&c_blind, &r, &mint_key.public_key()).unwrap();
    let mut p = Proof::new(Amount::from(amount), keyset(), secret, c);
    let dleq = signature.dleq.unwrap();
    p.dleq = Some(ProofDleq::new(dleq.e, dleq.s, r));
    p
}

fn locked(to: PublicKey, conditions: Option<Conditions>) -> SpendingConditions {
    SpendingConditions::new_p2pk(to, conditions)
}

fn conditions(
    locktime: Option<u64>,
    pubkeys: Option<Vec<PublicKey>>,
    refund: Option<Vec<PublicKey>>,
    num_sigs: Option<u64>,
) -> Conditions {
    Conditions {
        locktime,
        pubkeys,
        refund_keys: refund,
        num_sigs,
        ..Default::default()
    }
}

fn check(merchant: PublicKey, lock: SpendingConditions) -> Result<(), NotOffline> {
    let mint = SecretKey::generate();
    merchant_only(&[proof(&mint, lock, 4)], &merchant, NOW, HOUR)
}

#[test]
fn only_locks_the_merchant_alone_can_open_are_taken_offline() {
    let me = SecretKey::generate().public_key();
    let other = SecretKey::generate().public_key();

    assert_eq!(check(me, locked(me, None)), Ok(()));
    let far = conditions(Some(NOW + 2 * HOUR), None, Some(vec![other]), None);
    assert_eq!(check(me, locked(me, Some(far))), Ok(()), "refund far ahead");
    let one_sig = conditions(None, None, None, Some(1));
    assert_eq!(check(me, locked(me, Some(one_sig))), Ok(()));

    let refused = [
        ("a foreign key", locked(other, None)),
        (
            "another key that may sign alone",
            locked(me, Some(conditions(None, Some(vec![other]), None, None))),
        ),
        (
            "two signatures needed",
            locked(me, Some(conditions(None, Some(vec![other]), None, Some(2)))),
        ),
        (
            "refund keys with a locktime within the margin",
            locked(
                me,
                Some(conditions(Some(NOW + 600), None, Some(vec![other]), None)),
            ),
        ),
        (
            "a locktime within the margin and no refund keys (anyone may spend after it)",
            locked(me, Some(conditions(Some(NOW + 600), None, None, None))),
        ),
        (
            "a locktime already past",
            locked(me, Some(conditions(Some(NOW - 1), None, None, None))),
        ),
        (
            "refund keys and no locktime",
            locked(me, Some(conditions(None, None, Some(vec![other]), None))),
        ),
        (
            "SIG_ALL",
            locked(
                me,
                Some(Conditions {
                    sig_flag: SigFlag::SigAll,
                    ..Default::default()
                }),
            ),
        ),
        (
            "an HTLC",
            SpendingConditions::new_htlc_hash(&"00".repeat(32), None).unwrap(),
        ),
    ];
    for (what, lock) in refused {
        assert!(check(me, lock).is_err(), "{what} was taken offline");
    }

    // One bad proof among good ones spoils the token.
    let mint = SecretKey::generate();
    let proofs = vec![
        proof(&mint, locked(me, None), 4),
        proof(&mint, locked(other, None), 1),
    ];
    assert!(merchant_only(&proofs, &me, NOW, HOUR).is_err());
    // A plain (unlocked) proof.
    let mut plain = proof(&mint, locked(me, None), 1);
    plain.secret = cdk::secret::Secret::generate();
    assert!(merchant_only(&[plain], &me, NOW, HOUR).is_err());
}

#[test]
fn dleq_proofs_must_verify_against_the_mints_key() {
    let me = SecretKey::generate().public_key();
    let mint = SecretKey::generate();
    let good = proof(&mint, locked(me, None), 4);
    let key = |_: &Proof| Some(mint.public_key());
    assert_eq!(dleqs_valid(std::slice::from_ref(&good), key), Ok(()));

    let mut missing = good.clone();
    missing.dleq = None;
    assert!(dleqs_valid(&[missing], key).is_err(), "missing DLEQ");

    let mut bad = good.clone();
    if let Some(d) = bad.dleq.as_mut() {
        d.s = SecretKey::generate();
    }
    assert!(dleqs_valid(&[bad], key).is_err(), "tampered DLEQ");

    let stranger = SecretKey::generate().public_key();
    assert!(
        dleqs_valid(std::slice::from_ref(&good), |_| Some(stranger)).is_err(),
        "signed by another key"
    );
    assert!(
        dleqs_valid(std::slice::from_ref(&good), |_| None).is_err(),
        "unknown keyset"
    );
}

/// A checked credential of `proofs` for a merchant whose mint is nowhere (offline acceptance
/// must not need it).
async fn checked(merchant: &Merchant, proofs: Vec<Proof>) -> Checked {
    let mint_url = MintUrl::from_str("http://127.0.0.1:1").unwrap();
    let wallet = merchant
        .wallet(&mint_url, &CurrencyUnit::Sat)
        .await
        .unwrap();
    let ys: Vec<PublicKey> = proofs.iter().map(|p| p.y().unwrap()).collect();
    let value = Amount::try_sum(proofs.iter().map(|p| p.amount)).unwrap();
    let token = Token::new(mint_url.clone(), proofs.clone(), None, CurrencyUnit::Sat);
    Checked {
        encoded: token.to_string(),
        wallet,
        mint_url,
        unit: CurrencyUnit::Sat,
        key: verify::token_key(&ys),
        ys,
        value,
        proofs,
        fee: Amount::from(1),
        // As `verify::check` leaves it for a locked offer (there is no mint to fetch keys from).
        dleq_verified: true,
    }
}

fn offer(merchant: &Merchant) -> Offer {
    Offer {
        price: Price::sat(4),
        mints: vec![MintUrl::from_str("http://127.0.0.1:1").unwrap()],
        lock: Some(merchant.pubkey()),
        require_dleq: true,
    }
}

#[tokio::test]
async fn a_qualifying_token_is_held_once_and_its_copies_are_replays() {
    let dir = tempfile::tempdir().unwrap();
    let merchant = Merchant::open(dir.path()).await.unwrap();
    let mint = SecretKey::generate();
    let me = merchant.pubkey();
    let c = checked(
        &merchant,
        vec![
            proof(&mint, locked(me, None), 4),
            proof(&mint, locked(me, None), 1),
        ],
    )
    .await;
    let offer = offer(&merchant);

    let paid = accept(&merchant, &offer, &c, DEFAULT_LOCK_MARGIN)
        .await
        .unwrap()
        .expect("taken offline");
    assert_eq!((u64::from(paid.value), u64::from(paid.received)), (5, 4));
    let again = accept(&merchant, &offer, &c, DEFAULT_LOCK_MARGIN).await;
    assert!(matches!(again, Err(PaywallError::Replay)), "{again:?}");
    let online = crate::redeem::redeem(
        &merchant,
        checked(&merchant, c.proofs.clone()).await,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        matches!(online, Err(PaywallError::Replay)),
        "online copy: {online:?}"
    );

    let held = merchant
        .store()
        .held_tokens(HeldStatus::Held)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].token, c.encoded);
    let balances = merchant.balances().await.unwrap();
    assert_eq!((balances[0].spendable, balances[0].held), (0, 5));
}

#[tokio::test]
async fn a_required_dleq_that_fails_beside_the_commit_refuses_and_takes_the_token_back() {
    let dir = tempfile::tempdir().unwrap();
    let merchant = Merchant::open(dir.path()).await.unwrap();
    let mint = SecretKey::generate();
    let me = merchant.pubkey();
    // Left for `accept`, which verifies while it commits; the wallet has no keys for the
    // keyset, so the verification fails.
    let mut c = checked(&merchant, vec![proof(&mint, locked(me, None), 4)]).await;
    c.dleq_verified = false;
    let r = accept(&merchant, &offer(&merchant), &c, DEFAULT_LOCK_MARGIN).await;
    assert!(matches!(r, Err(PaywallError::DleqInvalid(_))), "{r:?}");
    assert!(merchant.store().redemption(&c.key).await.unwrap().is_none());
    assert!(merchant.store().held_totals().await.unwrap().is_empty());
}

#[tokio::test]
async fn tokens_that_do_not_qualify_go_online() {
    let dir = tempfile::tempdir().unwrap();
    let merchant = Merchant::open(dir.path()).await.unwrap();
    let mint = SecretKey::generate();
    let me = merchant.pubkey();
    let offer = offer(&merchant);
    let soon = conditions(Some(cdk::util::unix_time() + 600), None, None, None);
    for (what, proofs, offer) in [
        (
            "a lock opening within the margin",
            vec![proof(&mint, locked(me, Some(soon)), 4)],
            offer.clone(),
        ),
        (
            "an offer locked to someone else's key",
            vec![proof(&mint, locked(me, None), 4)],
            Offer {
                lock: Some(SecretKey::generate().public_key()),
                ..offer.clone()
            },
        ),
        (
            // DLEQ not required by the offer: checked here, with keys the wallet cannot fetch.
            "DLEQ proofs whose keys are not at hand",
            vec![proof(&mint, locked(me, None), 4)],
            Offer {
                require_dleq: false,
                ..offer.clone()
            },
        ),
    ] {
        let mut c = checked(&merchant, proofs).await;
        // As `verify::check` leaves it: verified only when the offer requires it.
        c.dleq_verified = offer.require_dleq;
        let r = accept(&merchant, &offer, &c, DEFAULT_LOCK_MARGIN).await;
        assert!(matches!(r, Ok(None)), "{what}: {r:?}");
        assert!(
            merchant.store().redemption(&c.key).await.unwrap().is_none(),
            "{what}"
        );
    }
    assert!(merchant.store().held_totals().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_mint_puts_held_tokens_off_with_growing_delays() {
    let dir = tempfile::tempdir().unwrap();
    let merchant = Merchant::open(dir.path()).await.unwrap();
    let mint = SecretKey::generate();
    let me = merchant.pubkey();
    let c = checked(&merchant, vec![proof(&mint, locked(me, None), 4)]).await;
    // Held directly, without `accept`, so that no background redeemer races this test's rounds.
    let record = NewRecord {
        key: c.key.clone(),
        mint_url: c.mint_url.to_string(),
        unit: c.unit.to_string(),
        value: c.value.into(),
        ys: c.ys.iter().map(|y| y.to_string()).collect(),
    };
    let begin = merchant
        .store()
        .hold_token(record, c.encoded.clone())
        .await
        .unwrap();
    assert_eq!(begin, Begin::Started);

    let mut last_due = 0;
    for attempt in 1..=3u32 {
        // Make it due now, then run one round by hand (the mint at 127.0.0.1:1 refuses
        // connections).
        merchant
            .store()
            .held_retry_at(&c.key, 0, "test".into())
            .await
            .unwrap();
        let before = merchant
            .store()
            .held_tokens(HeldStatus::Held)
            .await
            .unwrap()[0]
            .attempts;
        let wait = round(&merchant).await.unwrap();
        let held = merchant
            .store()
            .held_tokens(HeldStatus::Held)
            .await
            .unwrap();
        assert_eq!(
            held.len(),
            1,
            "still held, never dropped (attempt {attempt})"
        );
        assert_eq!(held[0].attempts, before + 1);
        let delay = held[0].next_attempt_at - now();
        assert!(
            (1..=RETRY_MAX_SECS).contains(&delay) && delay >= last_due,
            "delay {delay} after {} attempts",
            held[0].attempts
        );
        assert!(wait <= Duration::from_secs(RETRY_MAX_SECS.unsigned_abs()));
        last_due = delay;
        assert_eq!(
            merchant
                .store()
                .redemption(&c.key)
                .await
                .unwrap()
                .unwrap()
                .state,
            RedemptionState::Held,
            "the replay record stays"
        );
    }
}
