//! The behaviour every `AttestationStore` must show, as checks that any implementation's tests
//! run against fresh stores: `run_all(&|| Box::new(open_a_fresh_store()))`.
//!
//! The checks report failures as values rather than panicking, so this module can ship in the
//! library; a test turns a failure into a panic. Each check needs an empty store. The checks
//! of what survives a reopening (`REOPEN_CHECKS`) get an opener of one fresh database instead:
//! `run_reopening(&|| Box::new(move || Box::new(open_the_same_store())))`.

mod admin;
mod commit;
pub mod fixture;
mod hardware;
mod log;
mod measurement;
mod query;

use std::fmt;

use crate::{AttestationStore, StoreError, TokenError};

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::conformance::Failure::new(format!(
                "line {}: {}",
                line!(),
                format!($($message)+)
            )));
        }
    };
}

/// Fails the check, showing both sides, unless they are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err($crate::conformance::Failure::new(format!(
                "line {}: {} != {}\n  left: {:?}\n right: {:?}",
                line!(),
                stringify!($left),
                stringify!($right),
                left,
                right
            )));
        }
    }};
}

pub(crate) use {ensure, ensure_eq};

/// One check: given an empty store, `Ok` when the store behaved.
pub type Check = fn(&dyn AttestationStore) -> Result<(), Failure>;

/// Opens a store on one database, the same each call (the previous handle dropped first).
pub type Opener = dyn Fn() -> Box<dyn AttestationStore>;

/// One check of what survives a reopening: given an opener of an empty database.
pub type ReopenCheck = fn(&Opener) -> Result<(), Failure>;

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "commit_reads_back_exact_envelopes",
        commit::reads_back_exact_envelopes,
    ),
    ("commit_updates_host_state", commit::updates_host_state),
    (
        "host_updates_persist_as_given",
        commit::host_updates_persist_as_given,
    ),
    (
        "rebind_revokes_and_resets",
        commit::rebind_revokes_and_resets,
    ),
    ("idempotent_resubmission", commit::idempotent_resubmission),
    (
        "conflicting_digest_stores_nothing",
        commit::conflicting_digest_stores_nothing,
    ),
    (
        "unknown_key_stores_nothing",
        commit::unknown_key_stores_nothing,
    ),
    (
        "conflict_spares_concurrent_batches",
        commit::conflict_spares_concurrent_batches,
    ),
    (
        "futures_resolve_in_any_order",
        commit::futures_resolve_in_any_order,
    ),
    (
        "empty_and_partial_batches",
        commit::empty_and_partial_batches,
    ),
    (
        "chain_heads_track_highest",
        commit::chain_heads_track_highest,
    ),
    (
        "host_gpus_follow_latest_inventory",
        commit::host_gpus_follow_latest_inventory,
    ),
    (
        "agents_put_replace_revoke_list",
        admin::agents_put_replace_revoke_list,
    ),
    (
        "tokens_unknown_expired_used",
        admin::tokens_unknown_expired_used,
    ),
    (
        "tokens_spent_once_under_contention",
        admin::tokens_spent_once_under_contention,
    ),
    (
        "decommission_marks_and_releases",
        admin::decommission_marks_and_releases,
    ),
    ("attestation_cursor_pages", query::attestation_cursor_pages),
    ("host_history_filters", query::host_history_filters),
    (
        "rejections_newest_first_and_counted",
        query::rejections_newest_first_and_counted,
    ),
    ("events_since_in_order", query::events_since_in_order),
    ("size_grows_with_content", query::size_grows_with_content),
    (
        "log_every_write_in_order",
        log::every_write_is_logged_in_order,
    ),
    (
        "log_failed_batches_leave_no_hole",
        log::failed_batches_leave_no_hole,
    ),
    (
        "log_concurrent_commits_one_sequence",
        log::concurrent_commits_keep_one_sequence,
    ),
    (
        "tree_heads_by_size_and_time",
        log::tree_heads_by_size_and_time,
    ),
    (
        "cosignatures_by_size_and_witness",
        log::cosignatures_by_size_and_witness,
    ),
    (
        "history_keeps_changes_only",
        log::history_keeps_changes_only,
    ),
    (
        "key_records_before_an_index",
        log::key_records_before_an_index,
    ),
    (
        "hardware_identities_round_trip",
        hardware::hardware_identities_round_trip,
    ),
    (
        "measurements_are_logged_leaves",
        measurement::measurements_are_logged_leaves,
    ),
];

/// Every check of what survives a reopening, by name.
pub const REOPEN_CHECKS: &[(&str, ReopenCheck)] = &[
    (
        "hardware_survives_reopening",
        hardware::hardware_survives_reopening,
    ),
    (
        "measurements_survive_reopening",
        measurement::measurements_survive_reopening,
    ),
];

/// Runs every check, each on a fresh store from `make`, and reports every failure.
pub fn run_all(make: &dyn Fn() -> Box<dyn AttestationStore>) -> Result<(), Failures> {
    let failures: Vec<(&'static str, Failure)> = CHECKS
        .iter()
        .filter_map(|&(name, check)| {
            let store = make();
            check(store.as_ref()).err().map(|failure| (name, failure))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failures(failures))
    }
}

/// Runs every reopening check, each with an opener of a fresh database from `make`, and
/// reports every failure.
pub fn run_reopening(make: &dyn Fn() -> Box<Opener>) -> Result<(), Failures> {
    let failures: Vec<(&'static str, Failure)> = REOPEN_CHECKS
        .iter()
        .filter_map(|&(name, check)| {
            let open = make();
            check(open.as_ref()).err().map(|failure| (name, failure))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failures(failures))
    }
}

/// Why one check failed.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self(format!("unexpected store error: {error} ({error:?})"))
    }
}

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Self {
        Self(format!("unexpected token error: {error} ({error:?})"))
    }
}

/// Every failed check of a run.
#[derive(Debug)]
pub struct Failures(pub Vec<(&'static str, Failure)>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} conformance check(s) failed:", self.0.len())?;
        for (name, failure) in &self.0 {
            writeln!(f, "- {name}: {failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failures {}
