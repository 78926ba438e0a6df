//! Why a report could not be built: each error names the input item (by its index in its list),
//! the host and the instant.

use proto_accounting::CountryCode;

use crate::month::MonthError;

/// Input a report cannot be built from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The month's fields are out of range.
    #[error("invalid report month: {0}")]
    Month(#[from] MonthError),
    /// The as-of instant is not in `(month start, month end]`: a report speaks of at least
    /// one millisecond of its month and of nothing after it.
    #[error(
        "as_of_ms {as_of_ms} is not in the month ({start_ms}, {end_ms}] ms: a report covers \
         time that has passed in its month, and nothing after it"
    )]
    AsOfOutsideMonth {
        /// The as-of instant given.
        as_of_ms: i64,
        /// The month's start.
        start_ms: i64,
        /// The month's end.
        end_ms: i64,
    },
    /// `changes` is not sorted oldest first.
    #[error(
        "changes[{index}] (host {host_id:?}) at {at_ms} ms is older than the change before it \
         at {previous_ms} ms: changes must be sorted oldest first"
    )]
    ChangeOutOfOrder {
        /// Position in `changes`.
        index: usize,
        /// The host.
        host_id: String,
        /// Its instant.
        at_ms: i64,
        /// The instant of the change before it.
        previous_ms: i64,
    },
    /// A change at or after the end of the period (the month's end, or the as-of instant).
    #[error(
        "changes[{index}] (host {host_id:?}) at {at_ms} ms is not before the end of the \
         report's period ({end_ms} ms)"
    )]
    ChangeAfterMonth {
        /// Position in `changes`.
        index: usize,
        /// The host.
        host_id: String,
        /// Its instant.
        at_ms: i64,
        /// The end of the period: the month's end, or the as-of instant.
        end_ms: i64,
    },
    /// A location change out of order or not before the end of the period.
    #[error("location.changes[{index}] (host {host_id:?}) at {at_ms} ms {problem}")]
    LocationChangeMisplaced {
        /// Position in `location.changes`.
        index: usize,
        /// The host.
        host_id: String,
        /// Its instant.
        at_ms: i64,
        /// What is wrong with its place.
        problem: String,
    },
    /// Counted TPP beyond 64 bits.
    #[error(
        "changes[{index}] (host {host_id:?}) at {at_ms} ms takes the TPP of {country} or of \
         the whole fleet beyond 64 bits"
    )]
    TppOverflow {
        /// Position in `changes`.
        index: usize,
        /// The host.
        host_id: String,
        /// Its instant.
        at_ms: i64,
        /// The country it attested in.
        country: CountryCode,
    },
    /// A silence that ends before it starts.
    #[error(
        "stale[{index}] (host {host_id:?}) ends at {to_ms} ms, before it starts at {from_ms} ms"
    )]
    StaleSpanReversed {
        /// Position in `stale`.
        index: usize,
        /// The host.
        host_id: String,
        /// Its start.
        from_ms: i64,
        /// Its end.
        to_ms: i64,
    },
    /// A gap or conflict outside the period.
    #[error(
        "{list}[{index}] (host {host_id:?}) at {at_ms} ms is outside the report's period \
         [{start_ms}, {end_ms}) ms"
    )]
    EventOutsideMonth {
        /// `gaps` or `conflicts`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// The host.
        host_id: String,
        /// Its instant.
        at_ms: i64,
        /// The month's start.
        start_ms: i64,
        /// The end of the period: the month's end, or the as-of instant.
        end_ms: i64,
    },
    /// A host given two location verdicts.
    #[error(
        "location.hosts[{index}] (host {host_id:?}) repeats a host listed before it: each host \
         has one location verdict"
    )]
    LocatedHostRepeated {
        /// Position in `location.hosts`.
        index: usize,
        /// The host.
        host_id: String,
    },
    /// Rejection counts for one reason that add up beyond 64 bits.
    #[error("rejections for reason {reason:?} add up beyond 64 bits")]
    RejectionCountOverflow {
        /// The reason code.
        reason: String,
    },
}
