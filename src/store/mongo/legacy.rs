//! Reading the old service's data: one MongoDB collection (by default
//! `default.c3pro_idm`) whose documents carry a `type` of `user`, `subject`,
//! `link` or `audit` (SPEC section 9). Old data is parsed leniently; a
//! document that cannot be understood is reported and skipped, never
//! guessed at.

use anyhow::Context as _;
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use mongodb::Client;
use mongodb::bson::{Bson, Document, RawDocument, RawDocumentBuf, doc};
use mongodb::options::ClientOptions;

use super::connect::CONNECT_TIMEOUT;
use crate::config::DatabaseTimeouts;
use crate::domain::Username;
use crate::store::{LinkRecord, SubjectRecord};

/// A staff account of the old service.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyUser {
    /// The old `_id`, kept as the new user id so a re-import recognises it.
    pub id: String,
    pub username: String,
    /// bcrypt text (`$2b$...`); upgraded to argon2id at the next login.
    pub password_hash: String,
    pub admin: bool,
}

/// An audit entry of the old service, still pointing at old document ids.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyAudit {
    /// `_id` of the subject or link the entry is about.
    pub document: String,
    /// `_id` of the acting user, if any.
    pub actor_id: Option<String>,
    pub datetime: DateTime<Utc>,
    pub action: String,
}

/// A subject with the old `_id` that audits refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacySubject {
    pub old_id: String,
    pub record: SubjectRecord,
}

#[derive(Debug, Default)]
pub struct LegacyData {
    pub users: Vec<LegacyUser>,
    pub subjects: Vec<LegacySubject>,
    /// Link ids are the old `_id`s (the JWT `jti` of issued QR codes).
    pub links: Vec<LinkRecord>,
    pub audits: Vec<LegacyAudit>,
    /// One line per document that was skipped, saying why (no personal
    /// data beyond ids).
    pub skipped: Vec<String>,
}

/// Reads the old collection as a stream: each document is decoded and
/// parsed as it arrives (a batch at a time), so only the parsed records are
/// kept, never the old documents. A document the driver cannot decode
/// (e.g. text that is not UTF-8) is reported in `skipped` and the rest is
/// read on. `now` stands in for timestamps old documents lack.
pub async fn read(
    url: &str,
    database: &str,
    collection: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<LegacyData> {
    let mut options = ClientOptions::parse(url)
        .await
        .context("invalid MongoDB URL in --from")?;
    options
        .server_selection_timeout
        .get_or_insert(DatabaseTimeouts::default().server_selection);
    options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
    let client = Client::with_options(options).context("cannot create the MongoDB client")?;
    let mut cursor = client
        .database(database)
        .collection::<RawDocumentBuf>(collection)
        .find(doc! {})
        // Oldest first (ObjectIds start with their creation time), so "the
        // first one wins" for duplicates means the original.
        .sort(doc! { "_id": 1 })
        .await
        .with_context(|| format!("cannot read {database}.{collection}"))?;
    let mut data = LegacyData::default();
    let mut position = 0_u64;
    while cursor
        .advance()
        .await
        .with_context(|| format!("cannot read {database}.{collection}"))?
    {
        position += 1;
        data.add_raw(cursor.current(), position, now);
    }
    Ok(data)
}

/// Sorts the old documents by `type` and parses each.
pub fn parse_documents(documents: &[Document], now: DateTime<Utc>) -> LegacyData {
    let mut data = LegacyData::default();
    for d in documents {
        data.add(d, now);
    }
    data
}

impl LegacyData {
    /// Decodes and adds the `position`th document of the old collection,
    /// or notes why it was skipped.
    pub fn add_raw(&mut self, raw: &RawDocument, position: u64, now: DateTime<Utc>) {
        match Document::try_from(raw) {
            Ok(d) => self.add(&d, now),
            Err(e) => {
                // The id, when at least that can be read, to find it by.
                let id = raw
                    .get("_id")
                    .ok()
                    .flatten()
                    .and_then(|v| Bson::try_from(v).ok())
                    .map_or_else(|| "?".to_owned(), |v| id_text(&v));
                self.skipped.push(format!(
                    "document #{position} ({id}): cannot be decoded: {e}"
                ));
            }
        }
    }

    /// Parses one old document by its `type`, or notes why it was skipped.
    pub fn add(&mut self, d: &Document, now: DateTime<Utc>) {
        let id = d.get("_id").map_or_else(|| "?".to_owned(), id_text);
        let kind = d.get_str("type").unwrap_or("");
        let result = match kind {
            "user" => parse_user(d, &id).map(|u| self.users.push(u)),
            "subject" => parse_subject(d, &id, now).map(|s| self.subjects.push(s)),
            "link" => parse_link(d, &id, now).map(|l| self.links.push(l)),
            "audit" => parse_audit(d).map(|a| self.audits.push(a)),
            other => Err(format!("unknown type {other:?}")),
        };
        if let Err(why) = result {
            self.skipped.push(format!("{kind} {id}: {why}"));
        }
    }
}

/// An old `_id` as text: ObjectIds as 24 hex digits.
pub fn id_text(value: &Bson) -> String {
    match value {
        Bson::ObjectId(oid) => oid.to_hex(),
        Bson::String(s) => s.clone(),
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn text(d: &Document, key: &str) -> Option<String> {
    match d.get(key) {
        Some(Bson::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).ok(),
        _ => None,
    }
}

fn required(d: &Document, key: &str) -> Result<String, String> {
    text(d, key).ok_or_else(|| format!("{key} is missing or not text"))
}

/// The old service stored whatever it was sent as `admin`; only an
/// unambiguous true makes an admin here (least privilege).
fn truthy(value: Option<&Bson>) -> bool {
    match value {
        Some(Bson::Boolean(b)) => *b,
        Some(Bson::Int32(n)) => *n == 1,
        Some(Bson::Int64(n)) => *n == 1,
        Some(Bson::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
        _ => false,
    }
}

/// Old timestamps: BSON dates, ISO strings (with or without zone, or a bare
/// date) or epoch seconds. Cut to milliseconds, the precision every store
/// keeps, so a re-import compares equal.
fn timestamp(value: &Bson) -> Option<DateTime<Utc>> {
    let t = match value {
        Bson::DateTime(t) => Utc.timestamp_millis_opt(t.timestamp_millis()).single()?,
        Bson::String(s) => {
            let s = s.trim();
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                        .ok()
                        .map(|n| n.and_utc())
                })
                .or_else(|| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|n| n.and_utc())
                })?
        }
        Bson::Int32(n) => epoch(i64::from(*n))?,
        Bson::Int64(n) => epoch(*n)?,
        Bson::Double(f) if f.is_finite() => epoch(*f as i64)?,
        _ => return None,
    };
    Utc.timestamp_millis_opt(t.timestamp_millis()).single()
}

/// Epoch seconds, or milliseconds for values too large to be seconds.
fn epoch(n: i64) -> Option<DateTime<Utc>> {
    if n.abs() >= 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

fn optional_time(d: &Document, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => timestamp(v)
            .map(Some)
            .ok_or_else(|| format!("{key} is not a date")),
    }
}

/// `bday`: an ISO date (possibly with a time), a BSON date, or in bad old
/// data an integer (`YYYYMMDD`, else epoch seconds or milliseconds).
fn birthday(value: Option<&Bson>) -> Result<NaiveDate, String> {
    let date = match value {
        Some(Bson::String(s)) => s
            .get(..10)
            .and_then(|prefix| NaiveDate::parse_from_str(prefix, "%Y-%m-%d").ok()),
        Some(Bson::DateTime(_)) => value.and_then(timestamp).map(|t| t.date_naive()),
        Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => {
            let n = match value {
                Some(Bson::Int32(n)) => i64::from(*n),
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Double(f)) => *f as i64,
                _ => unreachable!("matched above"),
            };
            let compact = (19_000_101..=21_001_231).contains(&n).then(|| {
                NaiveDate::from_ymd_opt(
                    (n / 10_000) as i32,
                    (n / 100 % 100) as u32,
                    (n % 100) as u32,
                )
            });
            match compact.flatten() {
                Some(d) => Some(d),
                None => epoch(n).map(|t| t.date_naive()),
            }
        }
        _ => None,
    };
    let date = date.ok_or("bday is missing or not a date")?;
    if !(1900..=2100).contains(&date.year()) {
        return Err("bday is outside 1900-2100".into());
    }
    Ok(date)
}

fn parse_user(d: &Document, id: &str) -> Result<LegacyUser, String> {
    let username = Username::parse(&required(d, "username")?)
        .map_err(|_| "username is not an email address".to_owned())?;
    let password_hash = required(d, "password")?;
    if !password_hash.starts_with("$2") {
        return Err("password is not a bcrypt hash".into());
    }
    Ok(LegacyUser {
        id: id.to_owned(),
        username: username.to_string(),
        password_hash,
        admin: truthy(d.get("admin")),
    })
}

fn parse_subject(d: &Document, id: &str, now: DateTime<Utc>) -> Result<LegacySubject, String> {
    let sssid = required(d, "sssid")?;
    if sssid.chars().count() > 64 {
        return Err("sssid is longer than 64 characters".into());
    }
    let created = optional_time(d, "created")?.unwrap_or(now);
    Ok(LegacySubject {
        old_id: id.to_owned(),
        record: SubjectRecord {
            name: required(d, "name")?,
            bday: Some(birthday(d.get("bday"))?),
            email: text(d, "email"),
            date_invited: optional_time(d, "date_invited")?,
            date_consented: optional_time(d, "date_consented")?,
            date_enrolled: optional_time(d, "date_enrolled")?,
            date_withdrawn: optional_time(d, "date_withdrawn")?,
            changed: optional_time(d, "changed")?.unwrap_or(created),
            created,
            version: 0,
            sssid,
        },
    })
}

/// The `iat` claim of an issued token, read without verifying it: the old
/// signature does not matter, only when it was issued.
fn issued_at(jwt: &str) -> Option<DateTime<Utc>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iat")?.as_i64().and_then(epoch)
}

fn parse_link(d: &Document, id: &str, now: DateTime<Utc>) -> Result<LinkRecord, String> {
    let created = optional_time(d, "created")?.unwrap_or(now);
    let exp = optional_time(d, "exp")?;
    let issued = text(d, "_jwt").as_deref().and_then(issued_at);
    Ok(LinkRecord {
        id: id.to_owned(),
        sssid: required(d, "sub")?,
        iss: text(d, "iss").unwrap_or_default(),
        aud: text(d, "aud").unwrap_or_default(),
        algorithm: text(d, "algorithm").unwrap_or_else(|| "HS256".into()),
        changed: optional_time(d, "changed")?.unwrap_or(created),
        created,
        // A link with an expiry was issued; without the token's `iat` its
        // creation is the best estimate.
        issued_at: exp.map(|_| issued.unwrap_or(created)),
        exp,
        linked_on: optional_time(d, "linked_on")?,
        linked_to: text(d, "linked_to"),
        linked_system: text(d, "linked_system"),
        withdrawn_on: optional_time(d, "withdrawn_on")?,
        version: 0,
    })
}

fn parse_audit(d: &Document) -> Result<LegacyAudit, String> {
    Ok(LegacyAudit {
        document: d
            .get("document")
            .filter(|v| !matches!(v, Bson::Null))
            .map(id_text)
            .ok_or("document is missing")?,
        actor_id: d
            .get("actor_id")
            .filter(|v| !matches!(v, Bson::Null))
            .map(id_text),
        datetime: d
            .get("datetime")
            .and_then(timestamp)
            .ok_or("datetime is missing or not a date")?,
        action: required(d, "action")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::Binary;
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::spec::BinarySubtype;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    /// A document whose `name` is not UTF-8 (the old service stored what
    /// it was sent), between two good ones.
    fn raw_with_bad_text(id: i32) -> RawDocumentBuf {
        let mut good = RawDocumentBuf::new();
        good.append("_id", id);
        good.append("type", "subject");
        good.append("name", "XY");
        let mut bytes = good.into_bytes();
        let at = bytes.windows(2).position(|w| w == b"XY").unwrap();
        bytes[at] = 0xff;
        RawDocumentBuf::from_bytes(bytes).unwrap()
    }

    #[test]
    fn an_undecodable_document_is_reported_and_the_rest_read() {
        let user = doc! { "_id": 1, "type": "user", "username": "a@example.org", "password": "$2b$04$abcdefghijklmnopqrstuu5r5P9Xq7oW2TA3m8a3T1cbCkEoT8yW6" };
        let audit = doc! { "_id": 3, "type": "audit", "document": "s", "datetime": "2020-01-01", "action": "x" };
        let mut data = LegacyData::default();
        data.add_raw(&RawDocumentBuf::from_document(&user).unwrap(), 1, now());
        data.add_raw(&raw_with_bad_text(2), 2, now());
        data.add_raw(&RawDocumentBuf::from_document(&audit).unwrap(), 3, now());
        assert_eq!((data.users.len(), data.audits.len()), (1, 1));
        assert_eq!(data.skipped.len(), 1, "{:?}", data.skipped);
        assert!(
            data.skipped[0].starts_with("document #2 (2): cannot be decoded"),
            "{:?}",
            data.skipped
        );
    }

    #[test]
    fn birthdays_in_every_old_shape() {
        let ok = |v: Bson| birthday(Some(&v)).unwrap().to_string();
        assert_eq!(ok(Bson::String("1980-02-03".into())), "1980-02-03");
        assert_eq!(
            ok(Bson::String("1980-02-03T00:00:00Z".into())),
            "1980-02-03"
        );
        assert_eq!(ok(Bson::Int32(19800203)), "1980-02-03");
        assert_eq!(ok(Bson::Int64(318_384_000)), "1980-02-03");
        assert!(birthday(Some(&Bson::String("1850-01-01".into()))).is_err());
        assert!(birthday(Some(&Bson::String("soon".into()))).is_err());
        assert!(birthday(None).is_err());
    }

    #[test]
    fn users_keep_bcrypt_and_need_an_unambiguous_admin_flag() {
        let oid = ObjectId::new();
        let hash = Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b"$2b$04$abcdefghijklmnopqrstuu5r5P9Xq7oW2TA3m8a3T1cbCkEoT8yW6".to_vec(),
        });
        let docs = [
            doc! { "_id": oid, "type": "user", "username": " Old@Example.org ", "password": hash.clone(), "admin": "false", "temporary": { "hash": "x", "time": 1 } },
            doc! { "_id": ObjectId::new(), "type": "user", "username": "plain", "password": hash },
        ];
        let data = parse_documents(&docs, now());
        assert_eq!(data.users.len(), 1);
        let user = &data.users[0];
        assert_eq!(user.id, oid.to_hex());
        assert_eq!(user.username, "old@example.org");
        assert!(user.password_hash.starts_with("$2b$04$"));
        assert!(!user.admin, "the string \"false\" must not make an admin");
        assert_eq!(data.skipped.len(), 1, "{:?}", data.skipped);
    }
}
