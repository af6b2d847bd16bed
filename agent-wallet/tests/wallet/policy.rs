//! Policy refusals: each spends nothing and surfaces the 402 in a typed error.

use agent_wallet::cashu_402::X_CASHU;
use agent_wallet::{AgentWallet, PayRequest, Policy, PolicyViolation, WalletError};

use crate::support::*;

/// Fetches once and returns the policy violation, checking that the 402 came with it.
async fn refused(agent: &AgentWallet, req: PayRequest) -> PolicyViolation {
    match agent.fetch(req).await {
        Err(WalletError::PolicyRefused {
            violation,
            response: Some(response),
        }) => {
            assert_eq!(response.status, 402);
            assert!(response.header(X_CASHU).unwrap().starts_with("creq"));
            assert_eq!(response.error_body().unwrap().code, 40200);
            violation
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

struct Setup {
    _mint: TestMint,
    merchant: Merchant,
    agent: AgentWallet,
    _dir: tempfile::TempDir,
}

async fn setup(policy: Policy) -> Setup {
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 5, false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = funded_agent(&mint, dir.path(), 100).await;
    agent.set_policy(policy);
    Setup {
        _mint: mint,
        merchant,
        agent,
        _dir: dir,
    }
}

async fn assert_nothing_more_spent(s: &Setup, paid_before: usize) {
    assert_eq!(
        s.agent.balances().await.unwrap().total,
        100 - 5 * paid_before as u64
    );
    assert_eq!(s.agent.ledger().unwrap().len(), paid_before);
    assert_eq!(s.merchant.tokens().len(), paid_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_cap_refuses() {
    let s = setup(Policy {
        max_per_request: Some(4),
        ..Policy::default()
    })
    .await;
    let v = refused(&s.agent, PayRequest::get(s.merchant.url("/a"))).await;
    assert_eq!(v, PolicyViolation::PerRequest { cost: 5, max: 4 });
    assert_nothing_more_spent(&s, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_of_the_request_refuses() {
    let s = setup(Policy::default()).await;
    let v = refused(
        &s.agent,
        PayRequest::get(s.merchant.url("/a")).max_cost(Some(3)),
    )
    .await;
    assert_eq!(v, PolicyViolation::MaxCost { cost: 5, max: 3 });
    assert_nothing_more_spent(&s, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_per_day_cap_refuses_once_reached() {
    let s = setup(Policy {
        max_per_host_per_day: Some(12),
        ..Policy::default()
    })
    .await;
    for _ in 0..2 {
        let ok = s.agent.fetch(PayRequest::get(s.merchant.url("/a"))).await;
        assert_eq!(ok.unwrap().response.status, 200);
    }
    let v = refused(&s.agent, PayRequest::get(s.merchant.url("/a"))).await;
    assert_eq!(
        v,
        PolicyViolation::PerHostPerDay {
            host: "127.0.0.1".into(),
            cost: 5,
            spent: 10,
            max: 12
        }
    );
    assert_nothing_more_spent(&s, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_cap_refuses_once_reached() {
    let s = setup(Policy {
        max_total: Some(7),
        ..Policy::default()
    })
    .await;
    let ok = s.agent.fetch(PayRequest::get(s.merchant.url("/a"))).await;
    assert_eq!(ok.unwrap().response.status, 200);
    let v = refused(&s.agent, PayRequest::get(s.merchant.url("/b"))).await;
    assert_eq!(
        v,
        PolicyViolation::Total {
            cost: 5,
            spent: 5,
            max: 7
        }
    );
    assert_nothing_more_spent(&s, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_not_allowed_refuses() {
    let mut policy = Policy::default();
    policy
        .set("allowed_hosts", "api.example.com, *.example.org")
        .unwrap();
    let s = setup(policy).await;
    let v = refused(&s.agent, PayRequest::get(s.merchant.url("/a"))).await;
    assert_eq!(
        v,
        PolicyViolation::HostNotAllowed {
            host: "127.0.0.1".into()
        }
    );
    assert_nothing_more_spent(&s, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_not_allowed_refuses() {
    let mut policy = Policy::default();
    policy
        .set("allowed_mints", "https://mint.example.com")
        .unwrap();
    let s = setup(policy).await;
    let v = refused(&s.agent, PayRequest::get(s.merchant.url("/a"))).await;
    assert!(matches!(v, PolicyViolation::MintNotAllowed { .. }), "{v:?}");
    assert_nothing_more_spent(&s, 0).await;
}
