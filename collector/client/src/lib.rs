//! The one place a client of the collector is built: TLS from PEM material (a CA, an optional
//! client certificate and key, the name the collector's certificate must carry), a channel with
//! the connect timeout veuctl has always used, and [`ClientError`], whose text carries the whole
//! cause chain. veuctl, the load generator and the test harness connect through it. [`Admin`]
//! and [`Audit`] make the calls veuctl makes, answering in plain types with the collector's
//! zeros made `None`, so that a caller need not read generated types: veuctl reads none.
//!
//! Invariant: no policy of its own: ALPN, keepalives and everything else not set here are
//! tonic's defaults, the same for every caller; what callers differ in (a client certificate or
//! none, a connect timeout or none) is a parameter. It never depends on the collector's server.

mod admin;
mod audit;
mod books;
mod connection;
mod error;

pub use admin::{Admin, EnrolledKey};
pub use audit::{
    Audit, ConsistencyProof, EvidenceItem, EvidenceStream, ExportSummary, HostEntry,
    InclusionProof, LogHead, SignedReport, StoredAttestation,
};
pub use books::{
    BooksView, CollectorStatus, CountryFigures, DistributionAt, Rejection, RuleBreach, StatusEvent,
};
pub use connection::{CONNECT_TIMEOUT, ClientTls, Connection, Credential, read_pem};
pub use error::{ClientError, code_words};
pub use tonic::transport::Channel;
