use super::*;

fn entry(outcome: Outcome, counted: bool) -> LedgerEntry {
    LedgerEntry {
        id: "p1".into(),
        time: 1_700_000_000,
        host: "api.example.com".into(),
        path: "/v1/search".into(),
        method: "GET".into(),
        amount: 21,
        fee: 1,
        unit: "sat".into(),
        scheme: SCHEME_CASHU.into(),
        mint: "https://mint.example.com".into(),
        outcome,
        counted,
        status: Some(200),
        detail: String::new(),
    }
}

#[test]
fn csv_field_quotes_commas_quotes_and_newlines() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
    assert_eq!(csv_field(" padded "), "\" padded \"");
    assert_eq!(csv_field(""), "");
}

#[test]
fn csv_field_defuses_spreadsheet_formulas() {
    assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_field("+1"), "'+1");
    assert_eq!(csv_field("-1"), "'-1");
    assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
}

#[test]
fn csv_export_has_header_and_one_line_per_entry() {
    let mut tricky = entry(Outcome::RefusedByServer, false);
    tricky.path = "/a,b".into();
    tricky.detail = "server said \"no\"".into();
    tricky.status = None;
    let csv = to_csv(&[entry(Outcome::Paid, true), tricky]);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv:?}"); // header, 2 rows, trailing empty
    assert_eq!(lines[0], CSV_COLUMNS.join(","));
    assert_eq!(
        lines[1],
        "p1,1700000000,2023-11-14T22:13:20Z,api.example.com,/v1/search,GET,21,1,22,sat,cashu,https://mint.example.com,paid,200,"
    );
    assert_eq!(
        lines[2],
        "p1,1700000000,2023-11-14T22:13:20Z,api.example.com,\"/a,b\",GET,21,1,1,sat,cashu,https://mint.example.com,refused-by-server,,\"server said \"\"no\"\"\""
    );
}

#[test]
fn json_export_carries_cost_outcome_and_utc_time() {
    let json = to_json(&[entry(Outcome::Unknown, true)]);
    let row = &json[0];
    assert_eq!(row["outcome"], "unknown");
    assert_eq!(row["cost"], 22);
    assert_eq!(row["time_utc"], "2023-11-14T22:13:20Z");
    assert_eq!(row["scheme"], "cashu");
    assert!(row.get("detail").is_none());
}

#[test]
fn cost_counts_amount_only_when_it_left_the_wallet() {
    assert_eq!(entry(Outcome::Paid, true).cost(), 22);
    assert_eq!(entry(Outcome::Failed, false).cost(), 1);
}

#[test]
fn outcome_names_round_trip() {
    for o in [
        Outcome::Pending,
        Outcome::Paid,
        Outcome::RefusedByServer,
        Outcome::Failed,
        Outcome::Unknown,
    ] {
        assert_eq!(o.as_str().parse::<Outcome>().unwrap(), o);
    }
    assert!("lost".parse::<Outcome>().is_err());
}

#[test]
fn rfc3339_formats_known_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}
