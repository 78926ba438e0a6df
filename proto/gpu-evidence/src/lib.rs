//! Offline verification of NVIDIA GPU attestation reports.
//!
//! A report is what NVML's `nvmlDeviceGetConfComputeGpuAttestationReport` returns: an SPDM 1.1
//! GET_MEASUREMENTS request carrying the verifier's 32-byte nonce, followed by the GPU's
//! MEASUREMENTS response (measurement blocks, opaque data with the driver and VBIOS versions
//! and the firmware identity) and a P-384 signature over both made with the key of the GPU's
//! leaf certificate. The chain (`nvmlDeviceGetConfComputeGpuCertificate`) leads from that leaf
//! through the GPU's device identity certificate and NVIDIA's provisioning CAs to the pinned
//! "NVIDIA Device Identity CA". See [`spdm`] for the byte layout and [`chain`] for the chain.
//!
//! [`verify`] checks, in order: sizes, report structure, the chain to a pinned root, every
//! certificate's validity at the evidence's time, the report signature with the leaf key, the
//! nonce, the report's FWID against the leaf's TCG DICE extension, and the driver and VBIOS
//! versions when the caller expects particular ones. Each refusal is a [`Failure`] with a
//! [`Reason`] whose [`Reason::code`] is stable.
//!
//! The hardware identity ([`HardwareIdentity::key`]) is the SHA-256 of the device identity
//! certificate's public key, the chain's second certificate: stable per chip, across boots and
//! firmware updates (see [`HardwareIdentity`]).
//!
//! Optionally, [`Trust::with_rims`] compares the measurements with NVIDIA's reference
//! integrity manifests ([`rim`]; their signatures are not checked) and [`Trust::with_ocsp`]
//! checks revocation from OCSP answers the caller fetched ([`ocsp`]). The `testing` feature
//! adds a test device CA (module `testing`) whose reports go through this same verifier.
//!
//! The crate is pure: no I/O, no clock (time is an argument), no transport. Every input is
//! bounded ([`MAX_REPORT_BYTES`], [`MAX_CHAIN_BYTES`], and the RIM and OCSP limits) and no
//! input makes it panic.
//!
//! Throughput (`cargo bench -p proto-gpu-evidence`; figures in the crate's README and in
//! `docs/gpu-evidence.md`): a report whose chain is cached costs about one P-384 signature
//! verification, an uncached one about five.
//!
//! Sources of the formats: DMTF DSP0274 (SPDM) 1.1.0; TCG DICE Attestation Architecture
//! (TcbInfo, FWID); NVIDIA's nvtrust local GPU verifier and attestation SDK, whose published
//! sample reports and chains are this crate's test vectors.

mod assess;
pub mod chain;
mod der;
mod error;
pub mod ocsp;
pub mod rim;
pub mod spdm;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ring::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use sha2::{Digest, Sha256};

pub use assess::assess;
pub use chain::HardwareIdentity;
pub use error::{Failure, Reason, TrustError};
pub use ocsp::{OcspCache, OcspError};
pub use rim::{RimError, RimSet};
pub use spdm::Measurement;

use chain::ChainFacts;

/// The largest report accepted (NVIDIA's are about 4.3 KiB).
pub const MAX_REPORT_BYTES: usize = proto_evidence::MAX_GPU_REPORT_BYTES;
/// The largest certificate chain accepted (NVIDIA's PEM chains are about 5 KiB).
pub const MAX_CHAIN_BYTES: usize = proto_evidence::MAX_GPU_CHAIN_BYTES;

/// NVIDIA Device Identity CA, the root of every GPU's device certificate chain (DER). The PEM
/// beside it in `roots/` is NVIDIA's published file (nvtrust, `verifier_device_root.pem`).
pub const NVIDIA_DEVICE_IDENTITY_ROOT_DER: &[u8] =
    include_bytes!("../roots/nvidia-device-identity-root.der");

/// The nonce a GPU must answer for device `device_index` of an attestation:
/// `SHA-256(collector_nonce ‖ key_id ‖ device_index as u32 big-endian)`. It binds the report to
/// the collector's challenge and to the agent's key, so a report cannot be replayed by another
/// agent nor moved to another device slot.
/// The one definition is `proto_evidence::report_nonce`, which the agent uses too.
pub fn report_nonce(collector_nonce: &[u8], key_id: &[u8; 32], device_index: u32) -> [u8; 32] {
    let key_id = proto_evidence::KeyId(proto_evidence::Sha256::from_bytes(*key_id));
    proto_evidence::report_nonce(collector_nonce, &key_id, device_index)
}

/// The roots a chain must end at.
#[derive(Debug, Clone)]
pub struct Trust {
    roots: Vec<Vec<u8>>,
    id: [u8; 32],
    rims: Option<Arc<RimSet>>,
    ocsp: Option<Arc<OcspCache>>,
}

impl Trust {
    /// NVIDIA's Device Identity CA, compiled in.
    pub fn nvidia() -> Trust {
        Trust::from_checked_roots(vec![NVIDIA_DEVICE_IDENTITY_ROOT_DER.to_vec()])
    }

    /// Roots from PEM (one or more `CERTIFICATE` blocks), e.g. a test CA's.
    pub fn from_pem_roots(pem: &[u8]) -> Result<Trust, TrustError> {
        let roots = der::pem_certificates(pem).map_err(TrustError)?;
        Trust::from_der_roots(roots)
    }

    /// Roots from DER certificates.
    pub fn from_der_roots(roots: Vec<Vec<u8>>) -> Result<Trust, TrustError> {
        if roots.is_empty() {
            return Err(TrustError("no root certificate given".to_owned()));
        }
        for (position, root) in roots.iter().enumerate() {
            let certificate = chain::parse_certificate(root, position)
                .map_err(|failure| TrustError(failure.detail))?;
            chain::p384_key(&certificate, position)
                .map_err(|failure| TrustError(failure.detail))?;
        }
        Ok(Trust::from_checked_roots(roots))
    }

    fn from_checked_roots(mut roots: Vec<Vec<u8>>) -> Trust {
        roots.sort();
        roots.dedup();
        let mut hasher = Sha256::new();
        for root in &roots {
            hasher.update(Sha256::digest(root));
        }
        Trust {
            roots,
            id: hasher.finalize().into(),
            rims: None,
            ocsp: None,
        }
    }

    /// Compares every report's measurements with these RIMs (see [`rim`]: their signatures
    /// are not checked).
    pub fn with_rims(mut self, rims: RimSet) -> Self {
        self.rims = Some(Arc::new(rims));
        self
    }

    /// Checks every certificate of a chain but the root against these OCSP answers (see
    /// [`ocsp`]).
    pub fn with_ocsp(mut self, cache: OcspCache) -> Self {
        self.ocsp = Some(Arc::new(cache));
        self
    }

    /// The pinned roots (DER), sorted.
    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }
}

/// What the verifier expects of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The nonce the report must answer ([`report_nonce`]).
    pub nonce: [u8; 32],
    /// The evidence's time: every certificate must be valid then.
    pub at_unix_ms: i64,
    /// The driver version the report must state, e.g. `590.12`; `None` accepts any.
    pub driver_version: Option<&'a str>,
    /// The VBIOS version the report must state, e.g. `96.00.A5.00.01`; `None` accepts any.
    pub vbios_version: Option<&'a str>,
}

/// Whether the measurements were compared with reference integrity manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RimStatus {
    /// No RIMs were configured: the measurements are reported, not judged.
    NotChecked,
    /// The driver's and the VBIOS's RIMs were both found and every active measurement matched.
    Matched {
        /// The driver RIM's name.
        driver: String,
        /// The VBIOS RIM's name.
        vbios: String,
    },
    /// A RIM is missing for the report's driver or VBIOS version; the one found, if any,
    /// matched.
    Incomplete {
        /// The driver RIM's name, if one was found.
        driver: Option<String>,
        /// The VBIOS RIM's name, if one was found.
        vbios: Option<String>,
    },
}

/// Whether the chain's revocation status was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// No OCSP answers were configured: revocation is unknown.
    NotChecked,
    /// Every certificate but the root has a current, authentic, good answer.
    Good,
    /// These certificates (subjects) have no current answer, or the responder does not know
    /// them; the others are good.
    Incomplete {
        /// The subjects without a good answer.
        unanswered: Vec<String>,
    },
}

/// A verified report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Which GPU.
    pub identity: HardwareIdentity,
    /// The driver version the report states.
    pub driver_version: String,
    /// The VBIOS version the report states, as NVIDIA prints it.
    pub vbios_version: String,
    /// The firmware identity (SHA-384) certified by the leaf's DICE extension.
    pub fwid: Vec<u8>,
    /// The measurement blocks.
    pub measurements: Vec<Measurement>,
    /// Whether measurements were compared with RIMs.
    pub rim: RimStatus,
    /// Whether revocation was checked.
    pub revocation: RevocationStatus,
    /// SHA-256 of the report's bytes. Not a unique name of the evidence: anyone can turn a
    /// valid ECDSA signature (r, s) into the valid (r, n − s), so the same answer exists as two
    /// byte strings. Deduplicate by identity and nonce.
    pub report_digest: [u8; 32],
}

/// Validated chains, so that a GPU's chain is checked once and not at every report. Keyed by
/// the SHA-256 of the trust's roots and of the chain's bytes; holds at most `capacity` chains
/// and forgets the oldest first. The time check is repeated at every use.
#[derive(Debug)]
pub struct ChainCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    facts: HashMap<[u8; 32], Arc<ChainFacts>>,
    order: VecDeque<[u8; 32]>,
}

impl ChainCache {
    /// The default capacity: one chain per GPU of 512 eight-GPU hosts. A collector should
    /// hold one entry per GPU it serves (about 2.5 KB each), or every chain misses.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A cache of at most `capacity` chains (at least one).
    pub fn new(capacity: usize) -> ChainCache {
        ChainCache {
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// How many chains are cached.
    pub fn len(&self) -> usize {
        self.lock().facts.len()
    }

    /// Whether no chain is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock cannot leave the map inconsistent with itself in a
        // way that matters: entries are immutable once inserted.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn facts(&self, chain: &[u8], trust: &Trust) -> Result<Arc<ChainFacts>, Failure> {
        let mut hasher = Sha256::new();
        hasher.update(trust.id);
        hasher.update(Sha256::digest(chain));
        let key: [u8; 32] = hasher.finalize().into();
        if let Some(facts) = self.lock().facts.get(&key) {
            return Ok(Arc::clone(facts));
        }
        let facts = Arc::new(validate_chain(chain, trust)?);
        let mut inner = self.lock();
        if inner.facts.insert(key, Arc::clone(&facts)).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.facts.remove(&oldest);
            }
        }
        Ok(facts)
    }
}

impl Default for ChainCache {
    fn default() -> Self {
        ChainCache::new(ChainCache::DEFAULT_CAPACITY)
    }
}

fn validate_chain(chain: &[u8], trust: &Trust) -> Result<ChainFacts, Failure> {
    let certificates = chain::split_chain(chain)?;
    chain::validate(&certificates, &trust.roots)
}

/// Verifies `report` with its certificate `chain` (PEM or concatenated DER, leaf first, as NVML
/// returns it) against `expected`, to one of `trust`'s roots. `cache`, when given, remembers
/// validated chains.
pub fn verify(
    report: &[u8],
    chain: &[u8],
    expected: &Expected<'_>,
    trust: &Trust,
    cache: Option<&ChainCache>,
) -> Result<Verified, Failure> {
    if chain.len() > MAX_CHAIN_BYTES {
        return Err(Failure::new(
            Reason::ChainTooLarge,
            format!(
                "certificate chain has {} bytes, at most {MAX_CHAIN_BYTES} are accepted",
                chain.len()
            ),
        ));
    }
    let parsed = spdm::parse_report(report)?;
    let facts = match cache {
        Some(cache) => cache.facts(chain, trust)?,
        None => Arc::new(validate_chain(chain, trust)?),
    };
    let at_s = expected.at_unix_ms.div_euclid(1000);
    facts.check_time(at_s)?;
    let revocation = match &trust.ocsp {
        None => RevocationStatus::NotChecked,
        Some(cache) => match cache.check(&facts.links, at_s) {
            ocsp::Verdict::Good => RevocationStatus::Good,
            ocsp::Verdict::Incomplete(unanswered) => RevocationStatus::Incomplete { unanswered },
            ocsp::Verdict::Revoked(subject, reason) => {
                let on_hold = reason == Some(ocsp::REASON_CERTIFICATE_HOLD);
                return Err(Failure::new(
                    if on_hold {
                        Reason::CertificateOnHold
                    } else {
                        Reason::CertificateRevoked
                    },
                    format!(
                        "certificate \"{subject}\" is {} (OCSP)",
                        if on_hold { "on hold" } else { "revoked" }
                    ),
                ));
            }
        },
    };
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &facts.leaf_key)
        .verify(parsed.signed, parsed.signature)
        .map_err(|_| {
            Failure::new(
                Reason::ReportSignatureInvalid,
                format!(
                    "report signature does not verify with the key of leaf certificate {}",
                    facts.identity.leaf_serial
                ),
            )
        })?;
    if parsed.nonce != expected.nonce {
        return Err(Failure::new(
            Reason::NonceMismatch,
            format!(
                "report answers nonce {}, expected {}",
                chain::hex_lower(&parsed.nonce),
                chain::hex_lower(&expected.nonce)
            ),
        ));
    }
    if let Some(fwid) = parsed.fwid()
        && fwid != facts.dice_fwid.as_slice()
    {
        return Err(Failure::new(
            Reason::FwidMismatch,
            format!(
                "report states FWID {}, the leaf certificate certifies {}",
                chain::hex_lower(fwid),
                chain::hex_lower(&facts.dice_fwid)
            ),
        ));
    }
    let driver_version = parsed.driver_version()?;
    if let Some(wanted) = expected.driver_version
        && wanted != driver_version
    {
        return Err(Failure::new(
            Reason::DriverVersionMismatch,
            format!("report states driver {driver_version}, expected {wanted}"),
        ));
    }
    let vbios_version = parsed.vbios_version()?;
    if let Some(wanted) = expected.vbios_version
        && !wanted.eq_ignore_ascii_case(&vbios_version)
    {
        return Err(Failure::new(
            Reason::VbiosVersionMismatch,
            format!("report states VBIOS {vbios_version}, expected {wanted}"),
        ));
    }
    let rim = match &trust.rims {
        None => RimStatus::NotChecked,
        Some(rims) => match rim::compare(
            rims,
            &facts.identity.chip,
            &driver_version,
            &vbios_version,
            &parsed.measurements,
            rim::nvdec0_disabled(&parsed),
        ) {
            rim::Comparison::Mismatch(detail) => {
                return Err(Failure::new(Reason::MeasurementMismatch, detail));
            }
            rim::Comparison::Matched {
                driver: Some(driver),
                vbios: Some(vbios),
            } => RimStatus::Matched { driver, vbios },
            rim::Comparison::Matched { driver, vbios } => RimStatus::Incomplete { driver, vbios },
        },
    };
    Ok(Verified {
        identity: facts.identity.clone(),
        driver_version,
        vbios_version,
        fwid: facts.dice_fwid.clone(),
        measurements: parsed.measurements,
        rim,
        revocation,
        report_digest: Sha256::digest(report).into(),
    })
}
