//! One GPU's hardware evidence through NVML: the confidential-computing state first (a GPU
//! with it off signs nothing, and saying so is clearer than NVML's "Not Supported"), then the
//! attestation report over the nonce and the attestation certificate chain.

use std::panic::{AssertUnwindSafe, catch_unwind};

use nvml_wrapper::Device as NvmlDevice;
use nvml_wrapper::error::NvmlError;
use proto_evidence::{GpuEvidence, GpuEvidenceFault};

/// What the agent says when the GPU is not in a mode that signs reports.
pub const CONFIDENTIAL_COMPUTE_OFF: &str = "confidential computing is off on this GPU; Hopper signs reports only in CC or protected-PCIe mode";

const REPORT_QUERY: &str = "nvmlDeviceGetConfComputeGpuAttestationReport";
const CERTIFICATE_QUERY: &str = "nvmlDeviceGetConfComputeGpuCertificate";

/// The report `device` signs over `nonce` with its attestation chain, or the fault.
pub(crate) fn collect(device: &NvmlDevice<'_>, nonce: [u8; 32]) -> GpuEvidence {
    // nvml-wrapper slices NVML's buffers by the sizes NVML wrote and panics when a size
    // exceeds its buffer; that is a broken driver's answer, reported as such.
    catch_unwind(AssertUnwindSafe(|| collect_unguarded(device, nonce))).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        GpuEvidence::unavailable(
            GpuEvidenceFault::NvmlError,
            format!("NVML returned an attestation answer its own buffers cannot hold: {detail}"),
        )
    })
}

fn collect_unguarded(device: &NvmlDevice<'_>, nonce: [u8; 32]) -> GpuEvidence {
    if signs_nothing(device) {
        return GpuEvidence::unavailable(
            GpuEvidenceFault::ConfidentialComputeOff,
            CONFIDENTIAL_COMPUTE_OFF,
        );
    }
    let report = match device.confidential_compute_gpu_attestation_report(nonce) {
        Ok(report) => report,
        Err(error) => return fault(REPORT_QUERY, &error),
    };
    let certificate = match device.confidential_compute_gpu_certificate() {
        Ok(certificate) => certificate,
        Err(error) => return fault(CERTIFICATE_QUERY, &error),
    };
    // The attestation chain certifies the key that signed the report; the other chain
    // (`cert_chain`) is the device identity chain without the attestation leaf.
    GpuEvidence::from_source(
        report.attestation_report,
        certificate.attestation_cert_chain,
    )
}

/// True only when NVML says confidential computing and protected PCIe are both off. When
/// NVML cannot tell (an older driver, a query the platform lacks), the report is asked for
/// and its own error decides.
fn signs_nothing(device: &NvmlDevice<'_>) -> bool {
    matches!(device.is_cc_enabled(), Ok(false))
        && matches!(device.is_multi_gpu_protected_pcie_enabled(), Ok(false))
}

fn fault(query: &str, error: &NvmlError) -> GpuEvidence {
    match error {
        NvmlError::NotSupported => GpuEvidence::unavailable(
            GpuEvidenceFault::NotSupported,
            format!("{query}: {error} (this GPU or driver produces no attestation reports)"),
        ),
        NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound => GpuEvidence::unavailable(
            GpuEvidenceFault::NotSupported,
            format!("this NVML has no {query} (attestation reports need driver R535 or newer)"),
        ),
        other => GpuEvidence::unavailable(GpuEvidenceFault::NvmlError, format!("{query}: {other}")),
    }
}
