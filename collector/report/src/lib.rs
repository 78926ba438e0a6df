//! The monthly compliance report of a universal validated end user: computed from the
//! timeline of host state changes by replaying it against the policy, and rendered as JSON,
//! CSV and one self-contained HTML file.
//!
//! Invariant: pure. No I/O, clock or network (the as-of instant of a partial month is an
//! input); every decision is made by `proto_accounting::evaluate_located` on integers, nothing is
//! claimed after the as-of instant, and the same input gives the same bytes.

mod encoding;
mod error;
mod input;
pub mod month;
pub mod render;
mod replay;
mod report;
pub mod series;
mod share;

pub use error::ReportError;
pub use input::{
    ChangeKind, ConflictEvent, GapEvent, HostChange, LocatedHost, LocationChange, LocationInput,
    LocationVerdict, LogEvidence, ReportInput, SignedHead, StaleSpan,
};
pub use month::{Month, MonthError};
pub use render::HtmlOptions;
pub use replay::build;
pub use report::{
    CountryStanding, Day, DayCountry, EndOfMonth, FORMAT, HomeLimit, InconsistentHost,
    InventoryChange, LimitKind, Limits, LocationCounts, LocationSection, PeakShare, RejectionCount,
    Report, RuleBreach, Series, SeriesPoint, Span, State, Verdict, ViolationInterval,
};
