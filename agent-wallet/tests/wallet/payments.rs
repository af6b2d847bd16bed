//! Paying 402 challenges: exact amounts, locks with DLEQ, fees, and refusals by the server.

use std::str::FromStr;

use agent_wallet::{Outcome, PayRequest};
use cdk::nuts::{SpendingConditions, Token};
use cdk::wallet::ReceiveOptions;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_ten_requests_and_records_each_once() {
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 5, false).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = funded_agent(&mint, dir.path(), 100).await;

    for i in 0..10 {
        let answer = agent
            .fetch(PayRequest::get(merchant.url(&format!("/data/{i}"))))
            .await
            .unwrap();
        assert_eq!(answer.response.status, 200);
        assert_eq!(answer.response.text(), "the paid content");
        let payment = answer.payment.clone().unwrap();
        assert_eq!(payment.outcome, Outcome::Paid);
        assert_eq!((payment.amount, payment.fee, answer.cost()), (5, 0, 5));
    }

    assert_eq!(agent.balances().await.unwrap().total, 100 - 10 * 5);
    assert_eq!(merchant.redeemed(), 50);
    let ledger = agent.ledger().unwrap();
    assert_eq!(ledger.len(), 10);
    for (i, row) in ledger.iter().enumerate() {
        assert_eq!(row.outcome, Outcome::Paid);
        assert_eq!(row.host, "127.0.0.1");
        assert_eq!(row.path, format!("/data/{i}"));
        assert_eq!(row.method, "GET");
        assert_eq!(row.scheme, "cashu");
        assert_eq!(row.mint, mint.mint_url.to_string());
        assert_eq!(row.status, Some(200));
        assert!(row.counted);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_challenge_gets_proofs_locked_to_the_merchant_with_dleq() {
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 8, true).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = funded_agent(&mint, dir.path(), 64).await;

    let answer = agent
        .fetch(PayRequest::get(merchant.url("/locked")))
        .await
        .unwrap();
    assert_eq!(answer.response.status, 200);
    assert_eq!(answer.payment.unwrap().outcome, Outcome::Paid);

    let tokens = merchant.tokens();
    assert_eq!(tokens.len(), 1);
    let token = Token::from_str(&tokens[0]).unwrap();
    assert!(tokens[0].starts_with("cashuB"));
    let conditions = token.spending_conditions().unwrap();
    assert_eq!(
        conditions.into_iter().collect::<Vec<_>>(),
        vec![SpendingConditions::new_p2pk(merchant.pubkey(), None)]
    );
    // Every proof carries the mint's DLEQ proof (verify_token_dleq fails on any missing one).
    merchant.wallet.verify_token_dleq(&token).await.unwrap();
    merchant
        .wallet
        .verify_token_p2pk(
            &token,
            SpendingConditions::new_p2pk(merchant.pubkey(), None),
        )
        .await
        .unwrap();
    assert_eq!(merchant.redeemed(), 8);
    assert_eq!(agent.balances().await.unwrap().total, 64 - 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_fees_are_added_so_the_merchant_nets_the_price() {
    let mint = start_mint_with_fee(100).await; // 1 sat per 1-10 inputs
    let merchant = start_merchant(&mint, 5, false).await;
    let dir = tempfile::tempdir().unwrap();
    let token = funding_token(&mint, 100).await;
    let agent = agent_wallet::AgentWallet::open(dir.path()).await.unwrap();
    agent.receive(&token).await.unwrap();
    let before = agent.balances().await.unwrap().total;

    let answer = agent
        .fetch(PayRequest::get(merchant.url("/fee")))
        .await
        .unwrap();
    assert_eq!(answer.response.status, 200, "{:?}", answer);
    let payment = answer.payment.clone().unwrap();
    assert!(
        payment.fee > 0,
        "the receiver's input fee is paid by the agent"
    );
    assert_eq!(
        merchant.redeemed(),
        5,
        "the merchant nets exactly the price"
    );
    assert_eq!(
        agent.balances().await.unwrap().total,
        before - payment.cost()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refusal_takes_the_unredeemed_token_back_at_once() {
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 5, false).await;
    merchant.set_mode(Mode::Unavailable);
    let dir = tempfile::tempdir().unwrap();
    let agent = funded_agent(&mint, dir.path(), 50).await;

    let answer = agent
        .fetch(PayRequest::get(merchant.url("/busy")))
        .await
        .unwrap();
    assert_eq!(answer.response.status, 503);
    assert_eq!(answer.response.error_body().unwrap().code, 50300);
    let payment = answer.payment.clone().unwrap();
    assert_eq!(payment.outcome, Outcome::RefusedByServer);
    assert!(!payment.counted);
    assert_eq!(answer.cost(), 0);
    assert_eq!(agent.balances().await.unwrap().total, 50);

    // The token the merchant saw is spent (the wallet swapped it back): it is worthless now.
    let sent = merchant.tokens().pop().unwrap();
    assert!(merchant
        .wallet
        .receive(&sent, ReceiveOptions::default())
        .await
        .is_err());
    // And the merchant can be paid again.
    merchant.set_mode(Mode::Serve);
    let answer = agent
        .fetch(PayRequest::get(merchant.url("/busy")))
        .await
        .unwrap();
    assert_eq!(answer.response.status, 200);
    assert_eq!(agent.balances().await.unwrap().total, 45);
    assert_eq!(agent.ledger().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_other_than_402_pass_through_unpaid() {
    let mint = start_mint().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = funded_agent(&mint, dir.path(), 10).await;
    let url = url::Url::parse(&format!("{}/v1/info", mint.url)).unwrap();
    let answer = agent.fetch(PayRequest::get(url)).await.unwrap();
    assert_eq!(answer.response.status, 200);
    assert!(answer.payment.is_none());
    assert!(agent.ledger().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_same_token_twice_is_a_no_op() {
    let mint = start_mint().await;
    let dir = tempfile::tempdir().unwrap();
    let token = funding_token(&mint, 30).await;
    let agent = agent_wallet::AgentWallet::open(dir.path()).await.unwrap();
    assert_eq!(
        agent.receive(&token).await.unwrap(),
        agent_wallet::ReceiveOutcome::Received { amount: 30 }
    );
    assert_eq!(
        agent.receive(&token).await.unwrap(),
        agent_wallet::ReceiveOutcome::AlreadyImported
    );
    assert_eq!(agent.balances().await.unwrap().total, 30);

    // A token someone else spent is an error, not a silent success.
    let other = funding_token(&mint, 5).await;
    let thief = cdk_wallet(&mint).await;
    thief
        .receive(&other, ReceiveOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        agent.receive(&other).await,
        Err(agent_wallet::WalletError::TokenSpent)
    ));
}
