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
    /// The identity in the GPU's NVIDIA device certificate, from verified hardware evidence.
    Hardware,
}

impl IdKind {
    /// Stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Serial => "serial",
            Self::Hardware => "hardware identity",
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

/// Whether the raw `value` normalises to `normalised` (empty for none), without allocating.
pub fn same(value: &str, normalised: &str) -> bool {
    let trimmed = value.trim();
    if normalised.is_empty() {
        return is_placeholder(trimmed);
    }
    trimmed.eq_ignore_ascii_case(normalised) && !is_placeholder(trimmed)
}

/// Empty, or a placeholder some boards report instead of a serial.
fn is_placeholder(trimmed: &str) -> bool {
    trimmed.is_empty()
        || ["0", "N/A", "[N/A]", "UNKNOWN", "0000000000000", "NONE"]
            .iter()
            .any(|p| trimmed.eq_ignore_ascii_case(p))
}

/// Trimmed and upper-cased; `None` for an empty value or a placeholder some boards report
/// instead of a serial.
pub fn normalise(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!is_placeholder(trimmed)).then(|| trimmed.to_ascii_uppercase())
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
    fn same_agrees_with_normalise() {
        for raw in [
            "GPU-ab", " gpu-AB ", "N/A", "", " 0 ", "none", "SN-1", "sn-1\t",
        ] {
            for normalised in ["GPU-AB", "", "SN-1", "N/A"] {
                assert_eq!(
                    same(raw, normalised),
                    normalise(raw).unwrap_or_default() == normalised,
                    "{raw:?} {normalised:?}"
                );
            }
        }
    }

    #[test]
    fn placeholders_are_not_identities() {
        for value in ["", "  ", "N/A", "[n/a]", "0", "Unknown", "0000000000000"] {
            assert_eq!(normalise(value), None, "{value:?}");
        }
        assert_eq!(gpu_ids("", "N/A").count(), 0);
    }
}
