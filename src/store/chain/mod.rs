//! The tamper-evident form of the audit trail, shared by both stores.
//!
//! Every entry (subject, link and account entries alike) has a place in one
//! global chain: `seq` counts 1, 2, 3, ... and `hash` is SHA-256 over a
//! canonical encoding of the entry's fields, its `seq` and the hash of the
//! entry before it. Editing, deleting, reordering or inserting an entry
//! directly in the database therefore breaks the chain at that entry, which
//! [`ChainVerifier`] finds reading the entries in `seq` order.
//!
//! Personal values (a subject's name, email, birth date) must be erasable
//! without breaking the chain. Inside an action text they are marked with
//! [`personal`]; the store keeps the text as a template with a placeholder
//! per value, and each value beside it with a random salt and the
//! commitment SHA-256(salt || value). The hash covers the template and the
//! commitments only, so erasing a value and its salt leaves the commitment,
//! and the chain, verifiable; without the salt the commitment does not
//! reveal even a guessable value such as a birth date.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{AuditRecord, ChainLink};

mod verify;

pub use verify::{BrokenEntry, ChainReport, ChainVerifier};

/// Entries verified per store call: about 0.3 s on SQLite (350,000
/// entries/s on the benchmark machine), far inside the store's bound.
pub const VERIFY_PART: u64 = 100_000;

/// Verifies the whole chain of `store`, `part` entries per store call.
pub async fn verify_in_parts<S: super::AuditStore + ?Sized>(
    store: &S,
    part: u64,
) -> super::StoreResult<ChainReport> {
    let mut verifier = ChainVerifier::default();
    while !verifier.is_done() {
        verifier = store.verify_audit_chain_part(verifier, part.max(1)).await?;
    }
    Ok(verifier.finish())
}

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an erased personal value reads as.
pub const ERASED: &str = "[erased]";

/// Stands for one personal value in a stored template.
const PLACEHOLDER: char = '\u{E000}';
/// Open and close a personal value in an action text handed to the store.
const VALUE_START: char = '\u{E001}';
const VALUE_END: char = '\u{E002}';

/// Replaces the private-use characters this module gives a meaning, so no
/// text can forge or break a mark.
fn defused(text: &str) -> String {
    text.replace([PLACEHOLDER, VALUE_START, VALUE_END], "\u{FFFD}")
}

/// Marks `value` as personal data inside an audit text: it is stored apart
/// from the text and can be erased (`name: "Ada"` reads `name: [erased]`
/// after the subject's erasure).
pub fn personal(value: &str) -> String {
    format!("{VALUE_START}{}{VALUE_END}", defused(value))
}

/// An action text with its personal values left out, for logs.
pub fn without_personal(action: &str) -> String {
    let (template, _) = split_with(action, |_| ());
    template.replace(PLACEHOLDER, "[personal]")
}

/// One personal value of a stored entry: its commitment, and the salt and
/// value until they are erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalValue {
    /// Hex SHA-256 of the salt's bytes followed by the value's UTF-8.
    #[serde(rename = "c")]
    pub commitment: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl PersonalValue {
    fn new(value: String) -> Self {
        let salt = hex::encode(rand::random::<[u8; 16]>());
        Self {
            commitment: commitment(&salt, &value),
            salt: Some(salt),
            value: Some(value),
        }
    }

    /// The same value with only its commitment left.
    pub fn erased(&self) -> Self {
        Self {
            commitment: self.commitment.clone(),
            salt: None,
            value: None,
        }
    }

    pub fn is_erased(&self) -> bool {
        self.value.is_none()
    }

    /// Whether salt and value (if still there) give the commitment.
    pub(super) fn holds(&self) -> bool {
        match (&self.salt, &self.value) {
            (Some(salt), Some(value)) => commitment(salt, value) == self.commitment,
            (None, None) => true,
            _ => false,
        }
    }
}

fn commitment(salt_hex: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(hex::decode(salt_hex).unwrap_or_else(|_| salt_hex.as_bytes().to_vec()));
    h.update(value.as_bytes());
    hex::encode(h.finalize())
}

/// Splits an action text into the stored template and its personal values.
fn split(action: &str) -> (String, Vec<PersonalValue>) {
    split_with(action, PersonalValue::new)
}

/// Splits an action text into a template and what `keep` makes of each
/// personal value.
fn split_with<T>(action: &str, mut keep: impl FnMut(String) -> T) -> (String, Vec<T>) {
    let mut template = String::with_capacity(action.len());
    let mut values = Vec::new();
    let mut current: Option<String> = None;
    for c in action.chars() {
        match (&mut current, c) {
            (None, VALUE_START) => current = Some(String::new()),
            (None, PLACEHOLDER | VALUE_END) => template.push('\u{FFFD}'),
            (None, c) => template.push(c),
            (Some(value), VALUE_END) => {
                values.push(keep(std::mem::take(value)));
                template.push(PLACEHOLDER);
                current = None;
            }
            (Some(value), PLACEHOLDER | VALUE_START) => value.push('\u{FFFD}'),
            (Some(value), c) => value.push(c),
        }
    }
    if let Some(value) = current {
        values.push(keep(value));
        template.push(PLACEHOLDER);
    }
    (template, values)
}

/// Texts written before the chain existed carry personal values in plain
/// text, as `name: "..."`, `bday: "..."` and `email: "..."` (JSON-quoted)
/// at the start of the text or after `; `. Marks them so the migration
/// stores them erasably, like new entries.
pub fn mark_personal_in_old_text(text: &str) -> String {
    const FIELDS: [&str; 3] = ["name: ", "bday: ", "email: "];
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    let mut at_segment_start = true;
    while !rest.is_empty() {
        if at_segment_start && let Some(field) = FIELDS.iter().find(|f| rest.starts_with(**f)) {
            let after = &rest[field.len()..];
            let mut quoted = serde_json::Deserializer::from_str(after).into_iter::<String>();
            if let Some(Ok(_)) = quoted.next() {
                let end = quoted.byte_offset();
                out.push_str(field);
                out.push_str(&personal(&after[..end]));
                rest = &after[end..];
                at_segment_start = false;
                continue;
            }
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or_default();
        out.push(c);
        rest = chars.as_str();
        at_segment_start = out.ends_with("; ");
    }
    out
}

/// An entry as the stores keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedAudit {
    pub seq: u64,
    /// Hex SHA-256; see [`SealedAudit::computed_hash`].
    pub hash: String,
    pub datetime: DateTime<Utc>,
    /// The action text with a placeholder per personal value.
    pub template: String,
    pub personal: Vec<PersonalValue>,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub subject: Option<String>,
    pub link: Option<String>,
    pub user: Option<String>,
}

/// An entry ready to be chained: its personal values split off and salted,
/// once, however often the append retries for its place.
#[derive(Debug, Clone)]
pub struct Unsealed(SealedAudit);

impl Unsealed {
    /// `entry.datetime` must already have the precision the store keeps, so
    /// the hash covers exactly what is stored.
    pub fn new(entry: &AuditRecord) -> Self {
        let (template, personal) = split(&entry.action);
        Self(SealedAudit {
            seq: 0,
            hash: String::new(),
            datetime: entry.datetime,
            template,
            personal,
            actor: entry.actor.clone(),
            request_id: entry.request_id.clone(),
            client_ip: entry.client_ip.clone(),
            subject: entry.subject.clone(),
            link: entry.link.clone(),
            user: entry.user.clone(),
        })
    }

    /// The entry as number `seq`, after the entry whose hash is `previous`.
    pub fn seal(&self, seq: u64, previous: &str) -> SealedAudit {
        let mut sealed = self.0.clone();
        sealed.seq = seq;
        sealed.hash = sealed.computed_hash(previous);
        sealed
    }
}

impl SealedAudit {
    /// SHA-256 over a canonical encoding: a version tag, then every field
    /// length-prefixed (absent optional fields by a tag of their own), so
    /// no two different entries encode alike.
    pub fn computed_hash(&self, previous: &str) -> String {
        fn text(h: &mut Sha256, value: &str) {
            h.update((value.len() as u64).to_be_bytes());
            h.update(value.as_bytes());
        }
        fn optional(h: &mut Sha256, value: Option<&str>) {
            match value {
                None => h.update([0u8]),
                Some(v) => {
                    h.update([1u8]);
                    text(h, v);
                }
            }
        }
        let mut h = Sha256::new();
        text(&mut h, "idm-audit-v1");
        h.update(self.seq.to_be_bytes());
        text(&mut h, previous);
        h.update(self.datetime.timestamp_micros().to_be_bytes());
        text(&mut h, &self.template);
        h.update((self.personal.len() as u64).to_be_bytes());
        for value in &self.personal {
            text(&mut h, &value.commitment);
        }
        for field in [
            &self.actor,
            &self.request_id,
            &self.client_ip,
            &self.subject,
            &self.link,
            &self.user,
        ] {
            optional(&mut h, field.as_deref());
        }
        hex::encode(h.finalize())
    }

    /// The action text as people read it: personal values in place, or
    /// [`ERASED`].
    pub fn action(&self) -> String {
        let mut values = self.personal.iter();
        let mut out = String::with_capacity(self.template.len() + 16);
        for c in self.template.chars() {
            if c == PLACEHOLDER {
                match values.next().and_then(|v| v.value.as_deref()) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(ERASED),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    pub fn into_record(self) -> AuditRecord {
        AuditRecord {
            datetime: self.datetime,
            action: self.action(),
            chain: Some(ChainLink {
                seq: self.seq,
                hash: self.hash,
            }),
            actor: self.actor,
            request_id: self.request_id,
            client_ip: self.client_ip,
            subject: self.subject,
            link: self.link,
            user: self.user,
        }
    }

    /// The personal values as stored (JSON), `None` when there are none.
    pub fn personal_json(&self) -> Option<String> {
        personal_to_json(&self.personal)
    }
}

pub fn personal_to_json(values: &[PersonalValue]) -> Option<String> {
    (!values.is_empty()).then(|| serde_json::to_string(values).unwrap_or_default())
}

pub fn personal_from_json(text: Option<&str>) -> Result<Vec<PersonalValue>, String> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| format!("personal values: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> AuditRecord {
        AuditRecord {
            datetime: Utc::now(),
            action: action.into(),
            actor: Some("admin@example.org".into()),
            request_id: None,
            client_ip: None,
            subject: Some("S1".into()),
            link: None,
            user: None,
            chain: None,
        }
    }

    #[test]
    fn personal_values_are_stored_apart_and_erasable() {
        let text = format!("name: {} -> {}", personal("\"Ada\""), personal("\"Bea\""));
        let sealed = Unsealed::new(&record(&text)).seal(1, GENESIS);
        assert!(!sealed.template.contains("Ada"));
        assert_eq!(sealed.action(), "name: \"Ada\" -> \"Bea\"");
        let mut erased = sealed.clone();
        erased.personal = erased.personal.iter().map(PersonalValue::erased).collect();
        assert_eq!(erased.action(), "name: [erased] -> [erased]");
        assert_eq!(erased.computed_hash(GENESIS), sealed.hash);
        let mut verifier = ChainVerifier::default();
        assert!(verifier.check(Ok(&erased)));
    }

    #[test]
    fn logs_see_no_personal_values() {
        let text = format!("name: {} -> {}", personal("\"Ada\""), personal("\"Bea\""));
        assert_eq!(without_personal(&text), "name: [personal] -> [personal]");
    }

    #[test]
    fn marks_cannot_be_forged() {
        let text = format!("reason {PLACEHOLDER}{VALUE_END} {}", personal("x\u{E002}y"));
        let sealed = Unsealed::new(&record(&text)).seal(1, GENESIS);
        assert_eq!(sealed.personal.len(), 1);
        assert_eq!(sealed.action(), "reason \u{FFFD}\u{FFFD} x\u{FFFD}y");
    }

    #[test]
    fn old_texts_get_their_personal_values_marked() {
        let old = r#"name: "Ada; \"L\""; bday: "1980-01-02"; consented: 2026-01-01T00:00:00Z"#;
        let marked = mark_personal_in_old_text(old);
        let sealed = Unsealed::new(&record(&marked)).seal(1, GENESIS);
        assert_eq!(sealed.personal.len(), 2);
        assert_eq!(sealed.action(), old);
        assert!(!sealed.template.contains("1980"));
        assert_eq!(mark_personal_in_old_text("create"), "create");
        assert_eq!(
            mark_personal_in_old_text("[Link] link to name: x"),
            "[Link] link to name: x"
        );
    }

    #[test]
    fn a_changed_value_or_order_breaks_the_chain() {
        let a = Unsealed::new(&record("create")).seal(1, GENESIS);
        let b = Unsealed::new(&record(&personal("Ada"))).seal(2, &a.hash);
        let mut v = ChainVerifier::default();
        assert!(v.check(Ok(&a)) && v.check(Ok(&b)));
        assert_eq!(v.finish().entries, 2);

        let mut changed = b.clone();
        changed.personal[0].value = Some("Eve".into());
        let mut v = ChainVerifier::default();
        assert!(v.check(Ok(&a)));
        assert!(!v.check(Ok(&changed)));
        let report = v.finish();
        assert!(!report.ok);
        assert_eq!(report.first_broken.unwrap().seq, Some(2));

        let mut v = ChainVerifier::default();
        assert!(!v.check(Ok(&b)), "entry 1 missing");
    }
}
