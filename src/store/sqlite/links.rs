use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{self, OptionalExtension, Row, params_from_iter};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_opt_ts, parse_ts, ts};
use crate::store::{LinkRecord, LinkStore, StoreResult};

const LINK_COLUMNS: &str = "id, sssid, iss, aud, algorithm, created, changed, issued_at, exp, \
     linked_on, linked_to, linked_system, withdrawn_on, version";

fn link_from_row(row: &Row<'_>) -> rusqlite::Result<LinkRecord> {
    Ok(LinkRecord {
        id: row.get(0)?,
        sssid: row.get(1)?,
        iss: row.get(2)?,
        aud: row.get(3)?,
        algorithm: row.get(4)?,
        created: parse_ts(&row.get::<_, String>(5)?)?,
        changed: parse_ts(&row.get::<_, String>(6)?)?,
        issued_at: parse_opt_ts(row.get(7)?)?,
        exp: parse_opt_ts(row.get(8)?)?,
        linked_on: parse_opt_ts(row.get(9)?)?,
        linked_to: row.get(10)?,
        linked_system: row.get(11)?,
        withdrawn_on: parse_opt_ts(row.get(12)?)?,
        version: row.get(13)?,
    })
}

/// A link's values in the order of `LINK_COLUMNS`, for `?1`..`?14`.
fn link_values(l: LinkRecord) -> [Value; 14] {
    [
        l.id.into(),
        l.sssid.into(),
        l.iss.into(),
        l.aud.into(),
        l.algorithm.into(),
        ts(l.created).into(),
        ts(l.changed).into(),
        l.issued_at.map(ts).into(),
        l.exp.map(ts).into(),
        l.linked_on.map(ts).into(),
        l.linked_to.into(),
        l.linked_system.into(),
        l.withdrawn_on.map(ts).into(),
        l.version.into(),
    ]
}

#[async_trait]
impl LinkStore for SqliteStore {
    async fn insert_link(&self, link: &LinkRecord) -> StoreResult<()> {
        let l = link.clone();
        self.write(move |c| {
            c.execute_cached(
                &format!(
                    "INSERT INTO links ({LINK_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                ),
                params_from_iter(link_values(l)),
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn link(&self, id: &str) -> StoreResult<Option<LinkRecord>> {
        self.read_by_key(|c| {
            c.query_row_cached(
                &format!("SELECT {LINK_COLUMNS} FROM links WHERE id = ?1"),
                [id],
                link_from_row,
            )
            .optional()
        })
        .await
    }

    async fn links_for_subject(&self, sssid: &str) -> StoreResult<Vec<LinkRecord>> {
        let sssid = sssid.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {LINK_COLUMNS} FROM links WHERE sssid = ?1 ORDER BY created, rowid"
            ))?;
            stmt.query_map([sssid], link_from_row)?.collect()
        })
        .await
    }

    async fn replace_link(&self, link: &LinkRecord, expected_version: i64) -> StoreResult<bool> {
        let l = link.clone();
        self.write(move |c| {
            let changed = c
                .execute_cached(
                    "UPDATE links SET sssid = ?2, iss = ?3, aud = ?4, algorithm = ?5,
                         created = ?6, changed = ?7, issued_at = ?8, exp = ?9, linked_on = ?10,
                         linked_to = ?11, linked_system = ?12, withdrawn_on = ?13, version = ?14
                     WHERE id = ?1 AND version = ?15",
                    params_from_iter(
                        link_values(l)
                            .into_iter()
                            .chain([Value::from(expected_version)]),
                    ),
                )
                .map_err(classify)?;
            Ok(changed == 1)
        })
        .await
    }
}
