use super::*;
use crate::ledger::SCHEME_CASHU;
use crate::policy::Policy;

fn entry(id: &str, host: &str, amount: u64, fee: u64) -> LedgerEntry {
    LedgerEntry {
        id: id.into(),
        time: now_unix(),
        host: host.into(),
        path: "/p".into(),
        method: "GET".into(),
        amount,
        fee,
        unit: "sat".into(),
        scheme: SCHEME_CASHU.into(),
        mint: "http://mint".into(),
        outcome: Outcome::Pending,
        counted: true,
        status: None,
        detail: String::new(),
    }
}

fn row(id: &str, value: u64) -> OutboxRow {
    OutboxRow {
        id: id.into(),
        state: OutboxState::Prepared,
        mint: "http://mint".into(),
        operation_id: "op".into(),
        token: None,
        token_value: value,
        swap_fee: 1,
        locked: false,
    }
}

fn allow_all(_: Spent) -> Result<(), PolicyViolation> {
    Ok(())
}

#[test]
fn reserve_then_in_flight_then_finish_resolves_once() {
    let store = Store::open_in_memory().unwrap();
    store
        .reserve(&entry("a", "h", 10, 1), &row("a", 10), allow_all)
        .unwrap()
        .unwrap();
    let rows = store.outbox().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, OutboxState::Prepared);

    assert!(store.mark_in_flight("a", "cashuBxyz").unwrap());
    assert!(
        !store.mark_in_flight("a", "cashuBother").unwrap(),
        "only from prepared"
    );
    let rows = store.outbox().unwrap();
    assert_eq!(rows[0].state, OutboxState::InFlight);
    assert_eq!(rows[0].token.as_deref(), Some("cashuBxyz"));

    let done = store.finish("a", &Resolution::paid(200)).unwrap().unwrap();
    assert_eq!(done.outcome, Outcome::Paid);
    assert_eq!(done.status, Some(200));
    assert!(store.outbox_is_empty().unwrap());

    // A second resolution (say, a recovery racing the live flow) changes nothing.
    let lost = Resolution {
        outcome: Outcome::Failed,
        counted: false,
        fee: Some(0),
        status: None,
        detail: String::new(),
    };
    assert!(store.finish("a", &lost).unwrap().is_none());
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].outcome, Outcome::Paid);
    assert_eq!(store.spent("h", now_unix()).unwrap().total, 11);
}

#[test]
fn pending_payments_count_against_the_caps() {
    let store = Store::open_in_memory().unwrap();
    let policy = Policy {
        max_per_host_per_day: Some(15),
        ..Policy::default()
    };
    let policy = &policy;
    let check = |cost: u64| move |spent: Spent| policy.check_cost("h", cost, None, spent);
    store
        .reserve(&entry("a", "h", 10, 0), &row("a", 10), check(10))
        .unwrap()
        .unwrap();
    let refused = store
        .reserve(&entry("b", "h", 10, 0), &row("b", 10), check(10))
        .unwrap();
    assert!(matches!(
        refused,
        Err(PolicyViolation::PerHostPerDay { spent: 10, .. })
    ));
    // Nothing was written for the refused one.
    assert_eq!(store.ledger().unwrap().len(), 1);
    assert_eq!(store.outbox().unwrap().len(), 1);
    // Another host is not affected.
    store
        .reserve(&entry("c", "other", 10, 0), &row("c", 10), check(10))
        .unwrap()
        .unwrap();
}

#[test]
fn reclaimed_payment_stops_counting_its_amount() {
    let store = Store::open_in_memory().unwrap();
    store
        .reserve(&entry("a", "h", 10, 1), &row("a", 10), allow_all)
        .unwrap()
        .unwrap();
    store.mark_in_flight("a", "cashuB").unwrap();
    let r = store.outbox_row("a").unwrap().unwrap();
    let res = resolve(
        Trigger::NoAnswer,
        &Settlement::Reclaimed { returned: 10 },
        &r,
    )
    .unwrap();
    let done = store.finish("a", &res).unwrap().unwrap();
    assert_eq!(done.outcome, Outcome::Failed);
    assert!(!done.counted);
    assert_eq!(done.fee, 1, "only the swap fee was lost");
    assert_eq!(store.spent("h", now_unix()).unwrap().total, 1);
}

#[test]
fn resolve_maps_triggers_and_settlements_to_outcomes() {
    let r = OutboxRow {
        swap_fee: 0,
        ..row("a", 11)
    };
    let undetermined = Settlement::Undetermined("mint down".into());
    for t in [
        Trigger::Answered(503),
        Trigger::NoAnswer,
        Trigger::NeverSent,
    ] {
        assert_eq!(
            resolve(t, &undetermined, &r),
            None,
            "{t:?} stays in the outbox"
        );
    }

    let refused = resolve(
        Trigger::Answered(503),
        &Settlement::Reclaimed { returned: 10 },
        &r,
    )
    .unwrap();
    assert_eq!(refused.outcome, Outcome::RefusedByServer);
    assert!(!refused.counted);
    assert_eq!(refused.fee, Some(1), "the fee of taking it back");
    assert_eq!(refused.status, Some(503));

    let taken = resolve(Trigger::Answered(500), &Settlement::Spent, &r).unwrap();
    assert_eq!(
        (taken.outcome, taken.counted),
        (Outcome::RefusedByServer, true)
    );

    let unknown = resolve(Trigger::NoAnswer, &Settlement::Spent, &r).unwrap();
    assert_eq!((unknown.outcome, unknown.counted), (Outcome::Unknown, true));

    let locked = resolve(Trigger::NoAnswer, &Settlement::Unreclaimable, &r).unwrap();
    assert_eq!((locked.outcome, locked.counted), (Outcome::Unknown, true));

    let never = resolve(
        Trigger::NeverSent,
        &Settlement::Reclaimed { returned: 11 },
        &r,
    )
    .unwrap();
    assert_eq!((never.outcome, never.counted), (Outcome::Failed, false));
    assert_eq!(never.fee, Some(0));
}

/// Before the fix, a token that never left the wallet and that the mint reported spent was
/// counted as "redeemed by the payee": it was the wallet's own take-back swap, interrupted by
/// a kill after the mint ran it, and the agent crash loop ended a round 5 sat over (balance +
/// spent > funded).
#[test]
fn a_token_that_never_left_and_is_spent_was_taken_back_by_the_wallet() {
    let r = OutboxRow {
        swap_fee: 0,
        ..row("a", 11)
    };
    let never = resolve(Trigger::NeverSent, &Settlement::Spent, &r).unwrap();
    assert_eq!((never.outcome, never.counted), (Outcome::Failed, false));
    assert_eq!(never.detail, "token taken back");
    // Once it may have reached the payee, spent means the payee has it.
    let lost = resolve(Trigger::NoAnswer, &Settlement::Spent, &r).unwrap();
    assert!(lost.counted);
}

#[test]
fn state_names_round_trip() {
    for s in [OutboxState::Prepared, OutboxState::InFlight] {
        assert_eq!(OutboxState::parse(s.as_str()), Some(s));
    }
}
