//! Reading the chain back: [`ChainVerifier`] checks stored entries one at
//! a time in `seq` order and names the first that breaks the chain.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GENESIS, PersonalValue, SealedAudit};

/// Where the chain broke: the entry as stored (or what could be read of
/// it) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BrokenEntry {
    /// The entry's sequence number as stored (absent if unreadable).
    pub seq: Option<i64>,
    pub problem: String,
    pub datetime: Option<DateTime<Utc>>,
    pub action: Option<String>,
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub hash: Option<String>,
}

impl BrokenEntry {
    fn of(entry: &SealedAudit, problem: String) -> Self {
        Self {
            seq: i64::try_from(entry.seq).ok(),
            problem,
            datetime: Some(entry.datetime),
            action: Some(entry.action()),
            actor: entry.actor.clone(),
            subject: entry.subject.clone(),
            link: entry.link.clone(),
            user: entry.user.clone(),
            hash: Some(entry.hash.clone()),
        }
    }

    /// A stored entry that cannot even be read as an entry.
    pub fn unreadable(seq: Option<i64>, problem: impl Into<String>) -> Self {
        Self {
            seq,
            problem: problem.into(),
            datetime: None,
            action: None,
            actor: None,
            subject: None,
            link: None,
            user: None,
            hash: None,
        }
    }
}

/// The answer of a verification: `ok` with the number of entries, or the
/// first broken entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    pub ok: bool,
    /// How many entries were found intact (all of them when `ok`).
    pub entries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<BrokenEntry>,
}

/// Checks entries one at a time in `seq` order, keeping only the previous
/// hash, so verifying needs the same memory for any length of trail. A
/// store reads the trail to it a part at a time
/// ([`super::super::AuditStore::verify_audit_chain_part`]), each part one
/// bounded store call, so a trail of any length can be verified.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    previous: String,
    entries: u64,
    broken: Option<BrokenEntry>,
    /// The store reported the end of the trail.
    ended: bool,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            previous: GENESIS.to_owned(),
            entries: 0,
            broken: None,
            ended: false,
        }
    }
}

impl ChainVerifier {
    /// Checks the next stored entry; `false` once the chain is broken (the
    /// caller stops reading).
    pub fn check(&mut self, entry: Result<&SealedAudit, &BrokenEntry>) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(unreadable) => {
                self.broken = Some(unreadable.clone());
                return false;
            }
        };
        let problem = if entry.seq != self.next_seq {
            Some(format!(
                "expected entry {} here, found entry {}: entries were deleted, inserted or reordered",
                self.next_seq, entry.seq
            ))
        } else if !entry.personal.iter().all(PersonalValue::holds) {
            Some("a personal value does not match its commitment: it was changed".to_owned())
        } else if entry.computed_hash(&self.previous) != entry.hash {
            Some(
                "the hash does not match the entry and the one before it: the entry was changed, \
                 or one before it was removed or replaced"
                    .to_owned(),
            )
        } else {
            None
        };
        match problem {
            Some(problem) => {
                self.broken = Some(BrokenEntry::of(entry, problem));
                false
            }
            None => {
                self.previous.clone_from(&entry.hash);
                self.next_seq += 1;
                self.entries += 1;
                true
            }
        }
    }

    /// The sequence number of the last entry found intact (0 before the
    /// first): the next part is read from after it.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether the verdict is reached: a broken entry, or the trail's end.
    pub fn is_done(&self) -> bool {
        self.broken.is_some() || self.ended
    }

    /// The store read the last entry after [`ChainVerifier::last_seq`];
    /// `stored` is how many entries the trail holds in all. More than the
    /// chain covers means entries outside its order: a sequence number
    /// below 1, or (MongoDB) one that is not a whole number, which a read
    /// after the last number never meets.
    pub fn end_of_trail(&mut self, stored: u64) {
        self.ended = true;
        if self.broken.is_none() && stored > self.entries {
            self.broken = Some(BrokenEntry::unreadable(
                None,
                format!(
                    "the trail holds {stored} entries but the chain only {}: {} have a sequence                      number outside the chain (inserted)",
                    self.entries,
                    stored - self.entries
                ),
            ));
        }
    }

    pub fn finish(self) -> ChainReport {
        ChainReport {
            ok: self.broken.is_none(),
            entries: self.entries,
            first_broken: self.broken,
        }
    }
}
