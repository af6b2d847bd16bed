//! What the tools say about themselves: what each costs and the policy's limits, with the
//! numbers in force when the server started, so a model can plan before it spends.

use crate::policy::Policy;

fn cap(limit: Option<u64>, what: &str) -> String {
    match limit {
        Some(n) => format!("at most {n} sat {what}"),
        None => format!("no cap {what}"),
    }
}

/// The policy's limits in one sentence.
pub fn limits(policy: &Policy) -> String {
    let hosts = if policy.allowed_hosts.iter().any(|h| h == "*") {
        "any host".to_string()
    } else if policy.allowed_hosts.is_empty() {
        "no host (every payment is refused)".to_string()
    } else {
        policy.allowed_hosts.join(", ")
    };
    let mints = if policy.allowed_mints.iter().any(|m| m == "*") {
        "any mint the wallet holds ecash at".to_string()
    } else {
        policy.allowed_mints.join(", ")
    };
    format!(
        "Limits in force (sat, price plus fees): {}; {}; {}. Hosts that may be paid: {hosts}. \
         Ecash spent from: {mints}.",
        cap(policy.max_per_request, "per request"),
        cap(policy.max_per_host_per_day, "per host in any 24 hours"),
        cap(policy.max_total, "in all"),
    )
}

/// The policy's scheme preference, e.g. `cashu, l402, x402-cashu`.
fn schemes(policy: &Policy) -> String {
    let names: Vec<&str> = policy.schemes.iter().map(|s| s.as_str()).collect();
    if names.is_empty() {
        "(none: every 402 is refused)".into()
    } else {
        names.join(", ")
    }
}

/// The description of tool `name`, or `None` for a tool this file does not know.
pub fn tool(name: &str, policy: &Policy) -> Option<String> {
    let text = match name {
        "fetch" => format!(
            "Send an HTTP request and return the final answer: status, headers, body, and what \
             it cost (cost, in sat, and the payment's ledger row). If the server answers \
             402 Payment Required, the wallet pays one of its offers from its ecash and \
             retries, only if the spending policy allows: a Cashu X-Cashu challenge (NUT-24), \
             an L402 invoice (paid by melting ecash at the mint; the Lightning fee reserve \
             counts against the limits, and the credential is reused for later requests to \
             the same site and directory) or an x402 `cashu` offer, preferred in the order \
             {}. Cost: the server's price plus small mint fees (plus the Lightning fee for \
             L402); an answer other than 402 costs nothing. {} Set max_cost to cap this one call lower. A payment the policy \
             refuses spends nothing and comes back as an error result with the reason; an \
             answer >= 400 is an error result too (if the server did not take the token, the \
             wallet takes it back). Call budget first to see what is left.",
            schemes(policy),
            limits(policy)
        ),
        "balance" => "The ecash the wallet holds, in sat, in all and per mint. Free: no \
                      network, nothing spent."
            .to_string(),
        "budget" => format!(
            "What the spending policy still allows, in sat: the caps, what is spent and left \
             (per host in the rolling 24 hours when you pass host, and in all), the balance, \
             next_request_max (the most the next paid request may cost now, counting one \
             draw from the allowance), and allowance_draw_room (\"not connected\": no \
             allowance is linked, the wallet spends only the ecash it holds; otherwise the \
             allowance's state, balance, drawn_24h, max_per_draw, max_per_day, draw_now - \
             what a payment may draw into the wallet by itself - and draw_room_24h, as its \
             mint reports them). Free: nothing is spent. {}",
            limits(policy)
        ),
        "ledger" => "Recent payments, newest first (limit, default 20; host to filter): \
                     time, host, path, method, amount, fee, cost, mint, outcome (paid, \
                     refused-by-server, failed, unknown, pending) and HTTP status. Failed and \
                     refused payments cost no more than their fees. Free."
            .to_string(),
        "receive" => "Import a Cashu token (cashuB... or cashuA..., in sat) into the wallet, \
                      such as a top-up a human gives you. Costs nothing but the mint's input \
                      fee, taken from the token; the same token again is a no-op. Adds to the \
                      balance, not to the policy's caps."
            .to_string(),
        _ => return None,
    };
    Some(text)
}

/// The server's instructions, sent at initialize.
pub fn instructions(policy: &Policy) -> String {
    format!(
        "A Cashu ecash wallet that pays HTTP 402 endpoints for you within a spending policy a \
         human set. Use fetch to call URLs (it pays when asked, within the limits), budget to \
         see what you may still spend, balance for the ecash held, ledger for past payments, \
         receive to import a token. {}",
        limits(policy)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_carry_the_numbers_in_force() {
        let policy = Policy {
            max_per_request: Some(7),
            max_per_host_per_day: Some(70),
            max_total: None,
            allowed_hosts: vec!["api.example.com".into()],
            allowed_mints: vec!["*".into()],
            schemes: vec![cashu_402::SchemeKind::L402],
        };
        let fetch = tool("fetch", &policy).unwrap();
        assert!(fetch.contains("at most 7 sat per request"), "{fetch}");
        assert!(fetch.contains("at most 70 sat per host"), "{fetch}");
        assert!(fetch.contains("no cap in all"), "{fetch}");
        assert!(fetch.contains("api.example.com"), "{fetch}");
        assert!(fetch.contains("preferred in the order l402."), "{fetch}");
        for name in ["balance", "budget", "ledger", "receive"] {
            assert!(tool(name, &policy).is_some(), "{name}");
        }
        assert!(tool("nope", &policy).is_none());
    }
}
