//! GPU identities: the same UUID or serial reported by two hosts means double counting or
//! diversion. Identities are compared normalised (trimmed, upper-cased, placeholders dropped),
//! so a changed case or a trailing space never makes one GPU two. Who holds which identity is
//! the ledger's business (`crate::ledger`); this module only says what an identity is.

/// Which identifier two hosts share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKind {
    /// The GPU UUID.
    Uuid,
    /// The board serial number.
    Serial,
}

impl IdKind {
    /// Stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Serial => "serial",
        }
    }
}

/// One normalised GPU identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GpuId {
    /// Which identifier.
    pub kind: IdKind,
    /// Its normalised value.
    pub value: String,
}

/// One GPU claimed by a second host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Which identifier.
    pub kind: IdKind,
    /// Its normalised value.
    pub value: String,
    /// The host that holds it (it counts there).
    pub owner: String,
    /// The host that also reported it.
    pub claimant: String,
}

/// The normalised identities of a GPU reporting `uuid` and `serial`: none, one or two.
pub fn gpu_ids<'a>(uuid: &'a str, serial: &'a str) -> impl Iterator<Item = GpuId> + 'a {
    [(IdKind::Uuid, uuid), (IdKind::Serial, serial)]
        .into_iter()
        .filter_map(|(kind, value)| normalise(value).map(|value| GpuId { kind, value }))
}

/// Trimmed and upper-cased; `None` for an empty value or a placeholder some boards report
/// instead of a serial.
pub fn normalise(value: &str) -> Option<String> {
    let value = value.trim().to_ascii_uppercase();
    let placeholder = value.is_empty()
        || matches!(
            value.as_str(),
            "0" | "N/A" | "[N/A]" | "UNKNOWN" | "0000000000000" | "NONE"
        );
    (!placeholder).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_spaces_never_make_two_gpus() {
        let a: Vec<GpuId> = gpu_ids("GPU-ab12", "1650 ").collect();
        let b: Vec<GpuId> = gpu_ids(" gpu-AB12\t", "1650").collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn placeholders_are_not_identities() {
        for value in ["", "  ", "N/A", "[n/a]", "0", "Unknown", "0000000000000"] {
            assert_eq!(normalise(value), None, "{value:?}");
        }
        assert_eq!(gpu_ids("", "N/A").count(), 0);
    }
}
