//! Property tests for the input parsers: whatever arrives, they never panic,
//! and what they accept satisfies the rules.

use chrono::{TimeZone, Utc};
use idm::api::client_ip::resolve;
use idm::api::extract::{authorization_token, parse_json_object};
use idm::domain::{PasswordPolicy, Username};
use idm::service::tokens::StaffTokens;
use proptest::prelude::*;

fn parts_with_authorization(value: &str) -> Option<axum::http::request::Parts> {
    let request = axum::http::Request::builder()
        .header("authorization", value)
        .body(())
        .ok()?;
    Some(request.into_parts().0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

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
            prop_assert!(client == peer || hops.iter().any(|h| std::net::IpAddr::V4(*h) == client));
        }
    }
}
