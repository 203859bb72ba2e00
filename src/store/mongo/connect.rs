//! The driver options every store instance connects with: bounded waits,
//! reads from the primary, writes acknowledged by a majority.

use std::time::Duration;

use anyhow::{Context as _, bail};
use mongodb::options::{
    Acknowledgment, ClientOptions, ReadPreference, SelectionCriteria, WriteConcern,
};

use crate::config::{DatabaseTimeouts, check_read_preference};

/// How long to wait for a TCP connection to one server.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The URL's options with the service's defaults for what it leaves out.
pub(crate) async fn client_options(
    url: &str,
    timeouts: &DatabaseTimeouts,
) -> anyhow::Result<ClientOptions> {
    let mut options = ClientOptions::parse(url)
        .await
        .context("invalid MongoDB URL")?;
    apply_defaults(&mut options, timeouts)?;
    Ok(options)
}

fn apply_defaults(options: &mut ClientOptions, timeouts: &DatabaseTimeouts) -> anyhow::Result<()> {
    // Longer than an election (up to about 12 s), so that an operation
    // issued during a failover, and the driver's one retry of a write the
    // old primary did not finish, wait for the new primary instead of
    // failing.
    options
        .server_selection_timeout
        .get_or_insert(timeouts.server_selection);
    options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
    options.app_name.get_or_insert_with(|| "c3pro-idm".into());
    // Reads see the writes just acknowledged: a session created through one
    // instance, the version a conditional update is about to check.
    match &options.selection_criteria {
        None => {
            options.selection_criteria =
                Some(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        }
        Some(SelectionCriteria::ReadPreference(preference)) => {
            check_read_preference(Some(preference))?;
        }
        Some(_) => bail!("the MongoDB reads must go to the primary"),
    }
    // An acknowledged write survives a crash and a failover (no data is
    // lost). `w`/`journal` in the URL win; a majority that cannot confirm
    // in time answers WriteConcernFailed (the request gets 503) instead of
    // holding the request forever.
    let concern = options.write_concern.get_or_insert_with(|| {
        WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .journal(true)
            .build()
    });
    concern.w_timeout.get_or_insert(timeouts.write_concern);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn options(url: &str) -> anyhow::Result<ClientOptions> {
        client_options(url, &DatabaseTimeouts::default()).await
    }

    #[tokio::test]
    async fn defaults_bound_every_wait_and_read_from_the_primary() {
        let o = options("mongodb://db1,db2/?replicaSet=rs0").await.unwrap();
        assert_eq!(o.server_selection_timeout, Some(Duration::from_secs(15)));
        let concern = o.write_concern.unwrap();
        assert_eq!(concern.w, Some(Acknowledgment::Majority));
        assert_eq!(concern.journal, Some(true));
        assert_eq!(concern.w_timeout, Some(Duration::from_secs(10)));
        assert!(matches!(
            o.selection_criteria,
            Some(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        ));
    }

    #[tokio::test]
    async fn the_url_wins_but_cannot_read_from_secondaries() {
        let o = options("mongodb://h/?serverSelectionTimeoutMS=500&w=2&wtimeoutMS=700")
            .await
            .unwrap();
        assert_eq!(o.server_selection_timeout, Some(Duration::from_millis(500)));
        let concern = o.write_concern.unwrap();
        assert_eq!(concern.w, Some(Acknowledgment::Nodes(2)));
        assert_eq!(concern.w_timeout, Some(Duration::from_millis(700)));
        // `w` alone in the URL still gets a bounded wait.
        let o = options("mongodb://h/?w=majority").await.unwrap();
        assert_eq!(
            o.write_concern.unwrap().w_timeout,
            Some(Duration::from_secs(10))
        );
        let err = options("mongodb://h/?readPreference=secondaryPreferred")
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("readPreference=secondaryPreferred"),
            "{err:#}"
        );
    }
}
