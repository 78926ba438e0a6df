//! Why the collector refuses an input: the evidence model's one list of codes.

pub use proto_evidence::RejectReason as Reason;
