//! Property tests for the input parsers: whatever arrives, they never panic,
//! and what they accept satisfies the rules.

use chrono::{TimeZone, Utc};
use idm::api::extract::{authorization_token, parse_json_object};
use idm::domain::{PasswordPolicy, Username};
use idm::http::client_ip::resolve;
use idm::service::tokens::StaffTokens;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// `cases` per property; failures found are kept in
/// `properties.proptest-regressions` next to this file and replayed first.
/// (Proptest's default would put them in a `proptest-regressions/` folder
/// beside `tests/integration/`, the folder of the binary's `main.rs`.)
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}

fn parts_with_authorization(value: &str) -> Option<axum::http::request::Parts> {
    let request = axum::http::Request::builder()
        .header("authorization", value)
        .body(())
        .ok()?;
    Some(request.into_parts().0)
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn usernames_are_normalised_and_idempotent(raw in "\\PC{0,80}|[ A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9.-]{1,20}") {
        if let Ok(user) = Username::parse(&raw) {
            let text = user.as_str();
            prop_assert_eq!(text, text.trim());
            prop_assert_eq!(text.to_lowercase(), text);
            prop_assert_eq!(text.matches('@').count(), 1);
            prop_assert!(text.len() <= Username::MAX_LEN);
            prop_assert!(!text.chars().any(char::is_whitespace));
            prop_assert_eq!(Username::parse(text).unwrap(), user.clone());
        }
    }

    #[test]
    fn accepted_passwords_satisfy_the_policy(raw in "\\PC{0,40}") {
        let policy = PasswordPolicy { min_chars: 8 };
        let user = Username::parse("someone@example.org").unwrap();
        if let Ok(password) = policy.check(raw.clone(), &user) {
            prop_assert!(raw.chars().count() >= 8);
            prop_assert!(raw.len() <= 1024);
            prop_assert_eq!(password.expose(), raw.as_str());
            prop_assert_eq!(format!("{:?}", password), "Password(***)");
        }
    }

    #[test]
    fn json_bodies_are_objects_or_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let parsed = parse_json_object::<serde_json::Map<String, serde_json::Value>>(&bytes);
        let is_object = serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.is_object());
        prop_assert_eq!(parsed.is_ok(), is_object);
    }

    #[test]
    fn json_text_bodies_are_objects_or_rejected(text in "[{}\\[\\]\":,a-z0-9 ]{0,60}") {
        let parsed = parse_json_object::<serde_json::Map<String, serde_json::Value>>(text.as_bytes());
        let is_object = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.is_object());
        prop_assert_eq!(parsed.is_ok(), is_object);
    }

    #[test]
    fn authorization_headers_yield_a_token_only_for_known_schemes(value in "\\PC{0,60}|(?i:(jwt|bearer|basic)) [A-Za-z0-9._-]{0,30}") {
        if let Some(parts) = parts_with_authorization(&value)
            && let Ok(token) = authorization_token(&parts)
        {
            let scheme = value.trim().split(' ').next().unwrap().to_ascii_lowercase();
            prop_assert!(scheme == "jwt" || scheme == "bearer", "{value:?}");
            prop_assert!(!token.is_empty());
            prop_assert!(!token.starts_with(' ') && !token.ends_with(' '));
        }
    }

    #[test]
    fn staff_tokens_reject_garbage_and_any_tampering(garbage in "\\PC{0,120}", flip in 0usize..400) {
        let tokens = StaffTokens::new(&"k".repeat(64).into(), chrono::Duration::hours(12)).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        prop_assert!(tokens.verify(&garbage, now).is_err());
        let good = tokens.issue_claims("user-1", 3, now).unwrap();
        prop_assert!(tokens.verify(&good, now).is_ok());
        let mut bytes = good.into_bytes();
        let i = flip % bytes.len();
        let replacement = if bytes[i] == b'A' { b'B' } else { b'A' };
        bytes[i] = replacement;
        let tampered = String::from_utf8(bytes).unwrap();
        // Base64url has spare bits in a final character: a flip there may
        // decode to the same bytes, which is not tampering.
        if let Ok(claims) = tokens.verify(&tampered, now) {
            prop_assert_eq!(claims.identity, "user-1");
            prop_assert_eq!(claims.ver, 3);
        }
    }

    #[test]
    fn the_client_address_is_the_peer_or_a_forwarded_one(
        peer in any::<std::net::Ipv4Addr>(),
        hops in proptest::collection::vec(any::<std::net::Ipv4Addr>(), 0..5),
        junk in "\\PC{0,10}",
        trust_peer in any::<bool>(),
    ) {
        let peer = std::net::IpAddr::V4(peer);
        let header = hops.iter().map(ToString::to_string).chain([junk]).collect::<Vec<_>>().join(", ");
        let proxies: Vec<ipnet::IpNet> = if trust_peer { vec![ipnet::IpNet::from(peer)] } else { vec![] };
        let client = resolve(peer, Some(&header), &proxies);
        if !trust_peer {
            prop_assert_eq!(client, peer);
        } else {
            // Whatever is returned stood in the header (junk may be an address too).
            let in_header = header.split(',').any(|h| h.trim().parse::<std::net::IpAddr>() == Ok(client));
            prop_assert!(client == peer || in_header);
        }
    }
}

// The study parsers (SPEC section 4): subject ids, birth dates, timestamps,
// subject emails; then the subject API itself over real HTTP.

use chrono::{Datelike, NaiveDate, SecondsFormat};
use idm::domain::{BirthDate, Sssid, Timestamp, format_timestamp, parse_subject_email};
use idm::service::link_tokens::{LinkClaims, LinkTokens};
use serde_json::{Value, json};

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn accepted_sssids_are_kept_exactly_within_the_rules(raw in "\\PC{0,70}|[ \\t]?[A-Za-z0-9-]{0,66}[ \\n]?|\\p{Cc}{0,3}") {
        match Sssid::parse(&raw) {
            Ok(sssid) => {
                prop_assert_eq!(sssid.as_str(), raw.as_str());
                let chars = raw.chars().count();
                prop_assert!((1..=Sssid::MAX_CHARS).contains(&chars));
                prop_assert!(!raw.chars().any(char::is_control));
                prop_assert_eq!(raw.trim(), raw.as_str());
            }
            Err(err) => prop_assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST),
        }
    }

    #[test]
    fn birth_dates_in_range_are_accepted_and_others_refused(year in 1800i32..2200, month in 1u32..=12, day in 1u32..=31) {
        let text = format!("{year:04}-{month:02}-{day:02}");
        let real = NaiveDate::from_ymd_opt(year, month, day);
        match (real, BirthDate::parse(&text)) {
            (Some(date), Ok(parsed)) => {
                prop_assert_eq!(parsed.date(), date);
                prop_assert!((1900..=2100).contains(&date.year()));
            }
            (Some(date), Err(_)) => prop_assert!(!(1900..=2100).contains(&date.year()), "{} refused", text),
            (None, parsed) => prop_assert!(parsed.is_err(), "{} is no date", text),
        }
    }

    #[test]
    fn birth_dates_never_panic_and_stay_in_range(raw in "\\PC{0,30}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(T[0-9:]{8}(Z|[+-][0-9]{2}:[0-9]{2}))?") {
        if let Ok(date) = BirthDate::parse(&raw) {
            prop_assert!((1900..=2100).contains(&date.date().year()));
            // The date as written: its text stands at the start of the input.
            let text = date.date().format("%Y-%m-%d").to_string();
            prop_assert!(raw.trim().starts_with(&text), "{} from {:?}", text, raw);
        }
    }

    #[test]
    fn timestamps_keep_the_instant_in_utc_at_microseconds(
        secs in 0i64..4_102_444_800,
        nanos in 0u32..1_000_000_000,
        offset_minutes in -(23 * 60 + 59)..(23 * 60 + 59),
    ) {
        let instant = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
        let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
        let written = instant.with_timezone(&offset).to_rfc3339_opts(SecondsFormat::Nanos, false);
        let parsed = Timestamp::parse("date_consented", &written).unwrap().instant();
        prop_assert_eq!(parsed.timestamp(), instant.timestamp());
        prop_assert_eq!(parsed.timestamp_subsec_nanos(), nanos / 1000 * 1000);
        // What we print parses back to the same instant.
        let printed = format_timestamp(parsed);
        prop_assert!(printed.ends_with('Z'), "{}", printed);
        prop_assert_eq!(Timestamp::parse("x", &printed).unwrap().instant(), parsed);
    }

    #[test]
    fn bare_dates_are_midnight_utc(days in 0i64..80_000) {
        let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
        let text = date.format("%Y-%m-%d").to_string();
        let parsed = Timestamp::parse("date_invited", &text).unwrap().instant();
        prop_assert_eq!(parsed, date.and_hms_opt(0, 0, 0).unwrap().and_utc());
    }

    #[test]
    fn timestamps_never_panic_and_name_the_field(raw in "\\PC{0,40}") {
        if let Err(err) = Timestamp::parse("date_withdrawn", &raw) {
            prop_assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
            prop_assert!(err.to_string().contains("date_withdrawn"));
        }
    }

    #[test]
    fn subject_emails_are_trimmed_addresses_or_none(raw in "\\PC{0,40}|[ ]?[a-z0-9.+-]{1,12}@[a-z0-9-]{1,10}(\\.[a-z]{2,5}){0,2}[ ]?") {
        match parse_subject_email(&raw) {
            Ok(None) => prop_assert!(raw.trim().is_empty()),
            Ok(Some(email)) => {
                prop_assert_eq!(email.as_str(), raw.trim());
                prop_assert_eq!(email.matches('@').count(), 1);
                prop_assert!(!email.chars().any(char::is_whitespace));
                prop_assert_eq!(parse_subject_email(&email).unwrap(), Some(email.clone()));
            }
            Err(err) => prop_assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST),
        }
    }

    #[test]
    fn link_tokens_verify_only_untouched_tokens_signed_with_the_link_secret(
        garbage in "\\PC{0,120}",
        flip in 0usize..400,
        name in "\\PC{1,30}",
    ) {
        let tokens = LinkTokens::new(&"l".repeat(64).into()).unwrap();
        let other = LinkTokens::new(&"m".repeat(64).into()).unwrap();
        prop_assert!(tokens.verify(&garbage).is_none());
        let claims = LinkClaims {
            jti: "0123456789abcdef0123456789abcdef".into(),
            iss: "https://idm.example.org".into(),
            aud: "https://idm.example.org".into(),
            iat: 1_700_000_000,
            exp: 1_700_086_400,
            sub: name,
            birthdate: "1980-12-10".into(),
        };
        let good = tokens.sign(&claims).unwrap();
        prop_assert_eq!(tokens.verify(&good), Some(claims.clone()));
        prop_assert!(other.verify(&good).is_none(), "another secret's token");
        let mut bytes = good.into_bytes();
        let i = flip % bytes.len();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        // A flip in a base64url character's spare bits decodes to the same
        // bytes; anything that verifies must still be the signed claims.
        if let Some(verified) = tokens.verify(&tampered) {
            prop_assert_eq!(verified, claims);
        }
    }
}

/// A JSON value of any kind, with strings that often look like the dates
/// and ids the subject fields expect.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        "(18|19|20|21)[0-9]{2}-[01][0-9]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][01][0-9]:[0-5][0-9]))?"
            .prop_map(Value::from),
        "S-[0-9]{1,3}|[a-z]{1,8}@example\\.org".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const SUBJECT_FIELDS: &[&str] = &[
    "sssid",
    "name",
    "bday",
    "email",
    "date_invited",
    "date_consented",
    "date_enrolled",
    "date_withdrawn",
    "created",
    "changed",
];

/// A JSON object with mostly subject fields and now and then another key.
fn subject_body() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        9 => proptest::sample::select(SUBJECT_FIELDS).prop_map(str::to_owned),
        1 => "\\PC{1,10}",
    ];
    proptest::collection::btree_map(key, json_value(), 0..9)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A real server with an admin token and the subject `S-1`, on a runtime
/// the synchronous proptest cases block on.
fn study_server() -> (tokio::runtime::Runtime, crate::common::TestApp, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, token) = runtime.block_on(async {
        let app = crate::common::spawn_app().await;
        let token = app.admin_token().await;
        let r = app
            .post_json(
                "/subject",
                Some(&token),
                &json!({"sssid": "S-1", "name": "Ada", "bday": "1980-12-10"}),
            )
            .await;
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        (app, token)
    });
    (runtime, app, token)
}

/// Errors are the envelope with the response's status; nothing is a 5xx.
async fn assert_no_server_error(
    response: reqwest::Response,
    what: &str,
) -> Result<u16, TestCaseError> {
    let status = response.status();
    prop_assert!(!status.is_server_error(), "{what}: {status}");
    if status.is_client_error() {
        let body: Value = response.json().await.unwrap();
        prop_assert_eq!(
            &body["error"]["status"],
            &json!(status.as_u16()),
            "{}: {}",
            what,
            body
        );
        prop_assert!(body["error"]["message"].is_string());
    }
    Ok(status.as_u16())
}

#[test]
fn arbitrary_subject_bodies_never_cause_a_server_error() {
    let (runtime, app, token) = study_server();
    let config = config(150);
    proptest!(config, |(body in subject_body())| {
        runtime.block_on(async {
            let what = format!("POST /subject {body}");
            let r = app.post_json("/subject", Some(&token), &body).await;
            let status = assert_no_server_error(r, &what).await?;
            prop_assert!(status == 201 || (400..500).contains(&status), "{}: {}", what, status);

            let what = format!("PUT /subject/S-1 {body}");
            let r = app.put_json("/subject/S-1", Some(&token), &body).await;
            let status = assert_no_server_error(r, &what).await?;
            prop_assert!(status == 204 || (400..500).contains(&status), "{}: {}", what, status);
            Ok(())
        })?;
    });
}

/// One list parameter: absent, a valid value with blanks around it, or junk.
fn list_param(valid: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (proptest::sample::select(valid), "[ ]{0,1}", "[ ]{0,1}")
            .prop_map(|(v, a, b)| Some(format!("{a}{v}{b}"))),
        "\\PC{0,12}".prop_map(Some),
    ]
}

fn number_param() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (0u64..1000).prop_map(|n| Some(n.to_string())),
        any::<u64>().prop_map(|n| Some(n.to_string())),
        "-?[0-9]{0,3}(\\.[0-9])?|[a-z ]{0,3}".prop_map(Some),
    ]
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The rules of SPEC section 4 for `GET /subject` parameters.
fn valid_list_query(
    offset: &Option<String>,
    perpage: &Option<String>,
    ordercol: &Option<String>,
    orderdir: &Option<String>,
    status: &Option<String>,
) -> bool {
    let number = |v: &Option<String>| {
        given(v).is_none_or(|v| v.parse::<u64>().is_ok_and(|n| i64::try_from(n).is_ok()))
    };
    let one_of = |v: &Option<String>, allowed: &[&str], fold: bool| {
        given(v).is_none_or(|v| {
            let v = if fold {
                v.to_ascii_lowercase()
            } else {
                v.to_owned()
            };
            allowed.contains(&v.as_str())
        })
    };
    number(offset)
        && number(perpage)
        && given(perpage).is_none_or(|v| v.parse::<u64>() != Ok(0))
        && one_of(ordercol, ORDER_COLUMNS, false)
        && one_of(orderdir, &["asc", "desc"], true)
        && one_of(status, STATUSES, true)
}

const ORDER_COLUMNS: &[&str] = &[
    "sssid",
    "name",
    "bday",
    "created",
    "changed",
    "date_invited",
    "date_consented",
    "date_enrolled",
    "date_withdrawn",
];
const STATUSES: &[&str] = &["invited", "consented", "enrolled", "withdrawn"];

#[test]
fn subject_list_parameters_are_applied_or_refused_with_400() {
    let (runtime, app, token) = study_server();
    let config = config(150);
    proptest!(config, |(
        offset in number_param(),
        perpage in number_param(),
        ordercol in list_param(ORDER_COLUMNS),
        orderdir in list_param(&["asc", "DESC", "Asc", "desc"]),
        status in list_param(&["invited", "CONSENTED", "enrolled", "Withdrawn"]),
        search in proptest::option::of("\\PC{0,12}"),
    )| {
        runtime.block_on(async {
            let mut query = Vec::new();
            for (name, value) in [("offset", &offset), ("perpage", &perpage), ("ordercol", &ordercol),
                                  ("orderdir", &orderdir), ("status", &status), ("search", &search)] {
                if let Some(v) = value {
                    query.push((name, v.clone()));
                }
            }
            let r = app
                .client
                .get(app.url("/subject"))
                .query(&query)
                .header("Authorization", format!("JWT {token}"))
                .send()
                .await
                .unwrap();
            let what = format!("GET /subject {query:?}");
            let total = r.headers().get("x-total-count").cloned();
            let code = assert_no_server_error(r, &what).await?;
            let valid = valid_list_query(&offset, &perpage, &ordercol, &orderdir, &status);
            prop_assert_eq!(code, if valid { 200 } else { 400 }, "{}", what);
            if valid {
                prop_assert!(total.is_some(), "{} has X-Total-Count", what);
            }
            Ok(())
        })?;
    });
}

#[test]
fn reset_keys_that_were_never_issued_are_gone() {
    let (runtime, app, _) = study_server();
    let config = config(300);
    proptest!(config, |(key in "\\PC{0,80}|[ ]?[0-9a-fA-F]{62,66}[ ]?")| {
        let checked = runtime.block_on(app.state.services.recovery.check_key(&key));
        match checked {
            Ok(_) => prop_assert!(false, "{:?} was accepted", key),
            Err(err) => prop_assert_eq!(err.status(), axum::http::StatusCode::GONE),
        }
    });
}
