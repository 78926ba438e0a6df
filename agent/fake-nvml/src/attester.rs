//! A fake GPU's attestation key: a test device certificate chain from
//! `proto_gpu_evidence::testing` and its leaf's private key, named by the fixture, with which
//! the library signs a real-layout SPDM report over whatever nonce the caller asks for.

use std::path::Path;

use base64::Engine as _;
use nvml_wrapper_sys::bindings::{
    NVML_CC_GPU_ATTESTATION_REPORT_SIZE, NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE, nvmlReturn_t,
};
use proto_gpu_evidence::testing::TestDevice;
use serde::Deserialize;

use crate::code::{INSUFFICIENT_SIZE, UNKNOWN};

/// Driver version stated in reports when the fixture gives none.
const DEFAULT_DRIVER: &str = "550.90.07";
/// VBIOS version stated in reports when the device gives none.
const DEFAULT_VBIOS: &str = "96.00.74.00.0D";

/// `"gpu_evidence"` of a device, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAttester {
    /// The leaf key, PKCS#8 DER: a file (relative to the fixture) or base64.
    device_key_pkcs8: String,
    /// The chain, leaf first: inline PEM, or a file (relative to the fixture) of PEM or DER.
    chain_pem: String,
}

/// A device that signs reports: the key and chain, checked to belong together.
#[derive(Debug, Clone)]
pub(crate) struct Attester {
    key_pkcs8: Vec<u8>,
    chain: Vec<u8>,
}

impl RawAttester {
    /// Reads the key and chain, checks that the key is the chain leaf's and that the chain fits
    /// NVML's attestation chain buffer; the error says which.
    pub(crate) fn check(self, base: &Path) -> Result<Attester, String> {
        let key_file = base.join(&self.device_key_pkcs8);
        let key_pkcs8 = match std::fs::read(&key_file) {
            Ok(bytes) => bytes,
            Err(read) => base64::engine::general_purpose::STANDARD
                .decode(self.device_key_pkcs8.trim())
                .map_err(|decode| {
                    format!(
                        "device_key_pkcs8: neither a readable file ({}: {read}) nor base64 ({decode})",
                        key_file.display()
                    )
                })?,
        };
        let chain = if self.chain_pem.contains("-----BEGIN") {
            self.chain_pem.into_bytes()
        } else {
            let file = base.join(&self.chain_pem);
            std::fs::read(&file)
                .map_err(|error| format!("chain_pem: {}: {error}", file.display()))?
        };
        if chain.len() > NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE as usize {
            return Err(format!(
                "chain_pem: {} bytes do not fit NVML's {NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE}-byte attestation chain buffer",
                chain.len()
            ));
        }
        TestDevice::from_pkcs8_and_chain(&key_pkcs8, &chain).map_err(|error| error.to_string())?;
        Ok(Attester { key_pkcs8, chain })
    }
}

impl Attester {
    /// The chain NVML returns as the attestation certificate chain.
    pub(crate) fn chain(&self) -> &[u8] {
        &self.chain
    }

    /// A report over `nonce` stating the versions the fixture gives. A failure to sign (a
    /// version the report layout cannot state) is `NVML_ERROR_UNKNOWN`, said on stderr.
    pub(crate) fn report(
        &self,
        nonce: &[u8; 32],
        driver: Option<&str>,
        vbios: Option<&str>,
    ) -> Result<Vec<u8>, nvmlReturn_t> {
        let signed =
            TestDevice::from_pkcs8_and_chain(&self.key_pkcs8, &self.chain).and_then(|device| {
                device.report(
                    nonce,
                    driver.unwrap_or(DEFAULT_DRIVER),
                    vbios.unwrap_or(DEFAULT_VBIOS),
                )
            });
        let report = signed.map_err(|error| {
            crate::state::report(format_args!("cannot sign an attestation report: {error}"));
            UNKNOWN
        })?;
        if report.len() > NVML_CC_GPU_ATTESTATION_REPORT_SIZE as usize {
            return Err(INSUFFICIENT_SIZE);
        }
        Ok(report)
    }
}
