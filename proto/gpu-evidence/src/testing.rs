//! A test device CA: certificate chains shaped like NVIDIA's and SPDM reports signed like a
//! GPU's, so that tests and the fake NVML library exercise the real verifier without a GPU.
//!
//! ```text
//! Test Device Identity CA               root (TestDeviceCa::root_pem)
//! Test GH100 Identity                   per-architecture CA
//! Test GH100 Provisioner ICA 1          provisioning CA
//! GH100 A01 GSP BROM                    device identity (per chip; serialNumber in the subject)
//! GH100 A01 GSP FMC LF                  leaf: NVIDIA otherName NVIDIA:GH100:<chip id>, TCG DICE
//!                                       extension with the firmware's FWID; signs reports
//! ```
//!
//! Hopper devices carry the DICE extension in NVIDIA's Hopper form (2.23.133.5.4.1), Blackwell
//! devices in the TcbInfo form (2.23.133.5.4.1.1). A device serialises to its leaf key (PKCS#8)
//! and chain (PEM) with [`TestDevice::to_pkcs8_and_chain`] and comes back with
//! [`TestDevice::from_pkcs8_and_chain`], so a separate process can sign reports for any nonce.

use std::fmt;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, OtherNameValue,
    PKCS_ECDSA_P384_SHA384, PublicKeyData, SanType, SerialNumber, SigningKey,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use sha2::{Digest, Sha384};

use crate::chain::{
    self, OID_DICE_TCB_INFO, OID_DICE_TCB_INFO_BLACKWELL, OID_NVIDIA_DEVICE_NAME, hex_upper,
};
use crate::der;
pub use crate::ocsp::CertStatus;
use crate::spdm::{
    self, GET_MEASUREMENTS, MEASUREMENTS, OPAQUE_DRIVER_VERSION, OPAQUE_FWID, OPAQUE_VBIOS_VERSION,
    SPDM_VERSION_1_1,
};
use crate::{Measurement, Trust, TrustError};

/// Why the test CA could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("test device CA: {0}")]
pub struct TestingError(pub String);

fn error(what: impl fmt::Display) -> TestingError {
    TestingError(what.to_string())
}

/// The GPU architecture a test device imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// GH100: DICE extension 2.23.133.5.4.1.
    Hopper,
    /// GB100: DICE TcbInfo 2.23.133.5.4.1.1.
    Blackwell,
}

impl Arch {
    /// The chip name NVIDIA writes in certificates: `GH100` or `GB100`.
    pub fn chip(self) -> &'static str {
        match self {
            Arch::Hopper => "GH100",
            Arch::Blackwell => "GB100",
        }
    }
}

/// The number of measurement blocks in a test report, as in NVIDIA's.
pub const MEASUREMENT_BLOCKS: u8 = 64;

/// The default firmware of issued devices; [`TestDevice::with_firmware`] changes it.
pub const DEFAULT_FIRMWARE: &str = "test firmware 1";

struct ArchCa {
    identity: Vec<u8>,
    identity_issuer: Issuer<'static, KeyPair>,
    provisioner: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A CA that issues test devices. Each `generate` makes fresh keys.
pub struct TestDeviceCa {
    root: Vec<u8>,
    root_issuer: Issuer<'static, KeyPair>,
    hopper: ArchCa,
    blackwell: ArchCa,
}

impl fmt::Debug for TestDeviceCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDeviceCa")
            .field("root_der_len", &self.root.len())
            .finish_non_exhaustive()
    }
}

fn key() -> Result<KeyPair, TestingError> {
    KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(error)
}

fn ca_params(common_name: &str, organization: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, organization);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2021, 11, 5);
    params.not_after = rcgen::date_time_ymd(9999, 12, 31);
    params.use_authority_key_identifier_extension = true;
    params
}

fn serial_number_dn(serial: &[u8], common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CustomDnType(vec![2, 5, 4, 5]), hex_upper(serial));
    name.push(DnType::CountryName, "US");
    name.push(DnType::OrganizationName, "NVIDIA Corporation");
    name.push(DnType::CommonName, common_name);
    name
}

impl TestDeviceCa {
    /// A new CA: a root and, for each architecture, an identity CA and a provisioning CA.
    pub fn generate() -> Result<TestDeviceCa, TestingError> {
        let root_key = key()?;
        let root_params = ca_params("Test Device Identity CA", "NVIDIA");
        let root = root_params.self_signed(&root_key).map_err(error)?;
        let root_issuer = Issuer::new(root_params, root_key);
        let arch_ca = |arch: Arch| -> Result<ArchCa, TestingError> {
            let identity_key = key()?;
            let identity_params = ca_params(
                &format!("Test {} Identity", arch.chip()),
                "NVIDIA Corporation",
            );
            let identity = identity_params
                .signed_by(&identity_key, &root_issuer)
                .map_err(error)?;
            let identity_issuer = Issuer::new(identity_params, identity_key);
            let provisioner_key = key()?;
            let provisioner_params = ca_params(
                &format!("Test {} Provisioner ICA 1", arch.chip()),
                "NVIDIA Corporation",
            );
            let provisioner = provisioner_params
                .signed_by(&provisioner_key, &identity_issuer)
                .map_err(error)?;
            Ok(ArchCa {
                identity: identity.der().to_vec(),
                identity_issuer,
                provisioner: provisioner.der().to_vec(),
                issuer: Issuer::new(provisioner_params, provisioner_key),
            })
        };
        Ok(TestDeviceCa {
            hopper: arch_ca(Arch::Hopper)?,
            blackwell: arch_ca(Arch::Blackwell)?,
            root: root.der().to_vec(),
            root_issuer,
        })
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> String {
        String::from_utf8_lossy(&der::pem_encode(std::slice::from_ref(&self.root))).into_owned()
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> Vec<u8> {
        self.root.clone()
    }

    /// A [`Trust`] pinning this CA's root.
    pub fn trust(&self) -> Result<Trust, TrustError> {
        Trust::from_der_roots(vec![self.root.clone()])
    }

    /// A DER OCSP response on certificate `position` (0: the leaf) of `device`'s chain, saying
    /// `status`, current from `this_update` to `next_update` (unix seconds). Signed by the
    /// certificate's issuer, or with `delegated` by a responder certificate the issuer made for
    /// OCSP signing (included in the response). The leaf's answer needs the device identity key,
    /// so only devices issued in this process have one.
    pub fn ocsp_response(
        &self,
        device: &TestDevice,
        position: usize,
        status: CertStatus,
        this_update: i64,
        next_update: i64,
        delegated: bool,
    ) -> Result<Vec<u8>, TestingError> {
        if device.chain.last() != Some(&self.root) {
            return Err(error("the device was not issued by this CA"));
        }
        let ca = match device.arch {
            Arch::Hopper => &self.hopper,
            Arch::Blackwell => &self.blackwell,
        };
        let issuer = match position {
            0 => {
                &device
                    .device_ca
                    .as_ref()
                    .ok_or_else(|| error("a device loaded from PKCS#8 has no device identity key"))?
                    .issuer
            }
            1 => &ca.issuer,
            2 => &ca.identity_issuer,
            3 => &self.root_issuer,
            _ => {
                return Err(error(format!(
                    "certificate {position} has no issuer in the chain"
                )));
            }
        };
        let (Some(subject_der), Some(issuer_der)) =
            (device.chain.get(position), device.chain.get(position + 1))
        else {
            return Err(error(format!("the chain has no certificate {position}")));
        };
        let subject = chain::parse_certificate(subject_der, position).map_err(error)?;
        let issuer_certificate =
            chain::parse_certificate(issuer_der, position + 1).map_err(error)?;
        let issuer_name = issuer_certificate.subject().as_raw();
        let issuer_key = chain::p384_key(&issuer_certificate, position + 1).map_err(error)?;
        ocsp_response(
            issuer,
            issuer_name,
            issuer_key,
            subject.raw_serial(),
            status,
            this_update,
            next_update,
            delegated,
        )
    }

    /// Issues a device: `chip_id` becomes the otherName `NVIDIA:<chip>:<chip_id as 16 hex>` and
    /// the device identity certificate's serial number; the device identity key is fresh.
    /// Certificates are valid from 2021 to 9999, as NVIDIA's.
    pub fn issue(&self, chip_id: u64, arch: Arch) -> Result<TestDevice, TestingError> {
        self.issue_valid_until(chip_id, arch, 9999)
    }

    /// As [`TestDeviceCa::issue`], with the device identity and leaf certificates valid from
    /// 2021-01-01 until January 1st of `year` (an expired chain when `year` is past).
    pub fn issue_valid_until(
        &self,
        chip_id: u64,
        arch: Arch,
        year: i32,
    ) -> Result<TestDevice, TestingError> {
        if !(2022..=9999).contains(&year) {
            return Err(error(format!(
                "validity end year {year} is not in 2022..=9999"
            )));
        }
        let ca = match arch {
            Arch::Hopper => &self.hopper,
            Arch::Blackwell => &self.blackwell,
        };
        let device_key = key()?;
        let mut serial = vec![0x41];
        serial.extend_from_slice(&chip_id.to_be_bytes());
        let mut params = CertificateParams::default();
        params.distinguished_name =
            serial_number_dn(&serial, &format!("{} A01 GSP BROM", arch.chip()));
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        params.not_before = rcgen::date_time_ymd(2021, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        params.use_authority_key_identifier_extension = true;
        let device = params.signed_by(&device_key, &ca.issuer).map_err(error)?;
        let device_ca = Arc::new(DeviceCa {
            issuer: Issuer::new(params, device_key),
            chain_tail: vec![
                device.der().to_vec(),
                ca.provisioner.clone(),
                ca.identity.clone(),
                self.root.clone(),
            ],
            year,
        });
        TestDevice::issue_leaf(device_ca, arch, chip_id, DEFAULT_FIRMWARE)
    }
}

/// A device identity: the key that certifies firmware leaves, kept in memory only.
struct DeviceCa {
    issuer: Issuer<'static, KeyPair>,
    /// Device identity certificate, provisioning CA, identity CA, root.
    chain_tail: Vec<Vec<u8>>,
    year: i32,
}

/// A test GPU: its leaf key and certificate chain.
pub struct TestDevice {
    arch: Arch,
    chip_id: String,
    leaf_pkcs8: Vec<u8>,
    signer: EcdsaKeyPair,
    /// Leaf first, root last.
    chain: Vec<Vec<u8>>,
    fwid: [u8; 48],
    device_ca: Option<Arc<DeviceCa>>,
}

impl fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDevice")
            .field("arch", &self.arch)
            .field("chip_id", &self.chip_id)
            .field("fwid", &hex_upper(&self.fwid))
            .finish_non_exhaustive()
    }
}

fn dice_extension(arch: Arch, leaf_spki: &[u8], fwid: &[u8; 48]) -> CustomExtension {
    let sha384 = der::encode(
        der::OID,
        &der::oid_contents(&[2, 16, 840, 1, 101, 3, 4, 2, 2]),
    );
    let fwid_element = der::encode(
        der::SEQUENCE,
        &[sha384.as_slice(), &der::encode(der::OCTET_STRING, fwid)].concat(),
    );
    match arch {
        Arch::Hopper => {
            // SEQUENCE { version INTEGER 1, the leaf's SubjectPublicKeyInfo, FWID }, as GH100.
            let contents = [&[0x02, 0x01, 0x01][..], leaf_spki, &fwid_element].concat();
            CustomExtension::from_oid_content(
                OID_DICE_TCB_INFO,
                der::encode(der::SEQUENCE, &contents),
            )
        }
        Arch::Blackwell => {
            // TcbInfo { vendor [0], model [1], version [2], svn [3], layer [4], index [5],
            // fwids [6] }, as GB100.
            let zero_fwid = der::encode(
                der::SEQUENCE,
                &[sha384.as_slice(), &der::encode(der::OCTET_STRING, &[0; 48])].concat(),
            );
            let contents = [
                der::encode(0x80, b"NVIDIA"),
                der::encode(0x81, b"GB100 A01 GSP"),
                der::encode(0x82, b"01"),
                der::encode(0x83, &[1]),
                der::encode(0x84, &[0]),
                der::encode(0x85, &[0]),
                der::encode(0xA6, &[fwid_element, zero_fwid].concat()),
            ]
            .concat();
            CustomExtension::from_oid_content(
                OID_DICE_TCB_INFO_BLACKWELL,
                der::encode(der::SEQUENCE, &contents),
            )
        }
    }
}

impl TestDevice {
    fn issue_leaf(
        device_ca: Arc<DeviceCa>,
        arch: Arch,
        chip_id: u64,
        firmware: &str,
    ) -> Result<TestDevice, TestingError> {
        let fwid: [u8; 48] = Sha384::digest(firmware.as_bytes()).into();
        let leaf_key = key()?;
        let leaf_spki = leaf_key.subject_public_key_info();
        let serial: [u8; 20] = {
            let digest = Sha384::digest(&leaf_spki);
            let mut serial = [0u8; 20];
            serial.copy_from_slice(&digest[..20]);
            serial[0] &= 0x7F;
            serial[0] |= 0x40;
            serial
        };
        let chip_id_text = format!("{chip_id:016X}");
        let mut params = CertificateParams::default();
        params.distinguished_name =
            serial_number_dn(&serial, &format!("{} A01 GSP FMC LF", arch.chip()));
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2021, 1, 1);
        params.not_after = rcgen::date_time_ymd(device_ca.year, 1, 1);
        params.use_authority_key_identifier_extension = true;
        params.subject_alt_names = vec![SanType::OtherName((
            OID_NVIDIA_DEVICE_NAME.to_vec(),
            OtherNameValue::Utf8String(format!("NVIDIA:{}:{chip_id_text}", arch.chip())),
        ))];
        params.custom_extensions = vec![dice_extension(arch, &leaf_spki, &fwid)];
        let leaf = params
            .signed_by(&leaf_key, &device_ca.issuer)
            .map_err(error)?;
        let mut chain = vec![leaf.der().to_vec()];
        chain.extend(device_ca.chain_tail.iter().cloned());
        let leaf_pkcs8 = leaf_key.serialize_der();
        let signer = signer(&leaf_pkcs8)?;
        Ok(TestDevice {
            arch,
            chip_id: chip_id_text,
            leaf_pkcs8,
            signer,
            chain,
            fwid,
            device_ca: Some(device_ca),
        })
    }

    /// The same chip after a firmware update: a new leaf key and FWID, certified by the same
    /// device identity key. Only for devices issued in this process (the device identity key
    /// is not serialised).
    pub fn with_firmware(&self, firmware: &str) -> Result<TestDevice, TestingError> {
        let device_ca = self.device_ca.clone().ok_or_else(|| {
            error("a device loaded from PKCS#8 and chain has no device identity key")
        })?;
        let chip_id = u64::from_str_radix(&self.chip_id, 16).map_err(error)?;
        TestDevice::issue_leaf(device_ca, self.arch, chip_id, firmware)
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The chip id of the NVIDIA otherName (16 upper-case hex digits).
    pub fn chip_id(&self) -> &str {
        &self.chip_id
    }

    /// The firmware identity its leaf certifies and its reports state.
    pub fn fwid(&self) -> [u8; 48] {
        self.fwid
    }

    /// The chain as PEM, leaf first, root last (as NVML returns it).
    pub fn chain_pem(&self) -> Vec<u8> {
        der::pem_encode(&self.chain)
    }

    /// The chain as concatenated DER, leaf first, root last.
    pub fn chain_der(&self) -> Vec<u8> {
        self.chain.concat()
    }

    /// The measurements its reports carry: 64 SHA-384 values derived from the FWID, so that
    /// another firmware measures differently.
    pub fn measurements(&self) -> Vec<Measurement> {
        (1..=MEASUREMENT_BLOCKS)
            .map(|index| {
                let mut hasher = Sha384::new();
                hasher.update(self.fwid);
                hasher.update([index]);
                Measurement {
                    index,
                    value_type: 0x01,
                    value: hasher.finalize().to_vec(),
                }
            })
            .collect()
    }

    /// A driver RIM (SWID XML, unsigned) for `driver_version` accepting this device's
    /// measurement blocks 13 to 64, as [`crate::RimSet`] reads NVIDIA's.
    pub fn driver_rim(&self, driver_version: &str) -> Vec<u8> {
        self.rim(driver_version, 13..=MEASUREMENT_BLOCKS)
    }

    /// A VBIOS RIM (SWID XML, unsigned) for `vbios_version` (e.g. `96.00.A5.00.01`) accepting
    /// this device's measurement blocks 1 to 12.
    pub fn vbios_rim(&self, vbios_version: &str) -> Vec<u8> {
        self.rim(vbios_version, 1..=12)
    }

    fn rim(&self, version: &str, active: std::ops::RangeInclusive<u8>) -> Vec<u8> {
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" xmlns:ns0=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" xmlns:ns2=\"http://www.w3.org/2001/04/xmlenc#sha384\" name=\"{chip}\" version=\"1.0\">\n  <ns0:Meta colloquialVersion=\"{version}\" edition=\"GPU\" product=\"{chip}\" revision=\"r1\"/>\n  <ns0:Payload>\n",
            chip = self.arch.chip()
        );
        for measurement in self.measurements() {
            let index = measurement.index - 1;
            let is_active = if active.contains(&measurement.index) {
                "True"
            } else {
                "False"
            };
            xml.push_str(&format!(
                "    <ns0:Resource type=\"Measurement\" index=\"{index}\" active=\"{is_active}\" alternatives=\"1\" ns2:Hash0=\"{}\" name=\"Measurement_{index}\" size=\"48\"/>\n",
                chain::hex_lower(&measurement.value)
            ));
        }
        xml.push_str("  </ns0:Payload>\n</SoftwareIdentity>\n");
        xml.into_bytes()
    }

    /// A signed report answering `nonce`, stating `driver_version` (e.g. `590.12`) and
    /// `vbios_version` (as NVIDIA prints it, e.g. `96.00.A5.00.01`), in NVIDIA's SPDM layout.
    pub fn report(
        &self,
        nonce: &[u8; 32],
        driver_version: &str,
        vbios_version: &str,
    ) -> Result<Vec<u8>, TestingError> {
        self.report_stating_fwid(nonce, driver_version, vbios_version, &self.fwid)
    }

    /// As [`TestDevice::report`], stating `fwid` in the opaque data instead of the certified one
    /// (a device whose running firmware differs from its certificate).
    pub fn report_stating_fwid(
        &self,
        nonce: &[u8; 32],
        driver_version: &str,
        vbios_version: &str,
        fwid: &[u8; 48],
    ) -> Result<Vec<u8>, TestingError> {
        if driver_version.is_empty()
            || driver_version.len() > 64
            || !driver_version.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(error(format!(
                "driver version \"{driver_version}\" is not 1 to 64 printable ASCII characters"
            )));
        }
        let vbios = spdm::encode_vbios_version(vbios_version).ok_or_else(|| {
            error(format!(
                "VBIOS version \"{vbios_version}\" is not five two-digit hex groups like 96.00.A5.00.01"
            ))
        })?;
        let rng = SystemRandom::new();
        let mut report = vec![SPDM_VERSION_1_1, GET_MEASUREMENTS, 0x01, 0xFF];
        report.extend_from_slice(nonce);
        report.push(0x00);

        let mut record = Vec::new();
        for measurement in self.measurements() {
            let size = 3 + measurement.value.len();
            record.push(measurement.index);
            record.push(spdm::DMTF_MEASUREMENT_SPECIFICATION);
            record.extend_from_slice(&(size as u16).to_le_bytes());
            record.push(measurement.value_type);
            record.extend_from_slice(&(measurement.value.len() as u16).to_le_bytes());
            record.extend_from_slice(&measurement.value);
        }
        report.extend_from_slice(&[
            SPDM_VERSION_1_1,
            MEASUREMENTS,
            0x00,
            0x00,
            MEASUREMENT_BLOCKS,
        ]);
        report.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
        report.extend_from_slice(&record);
        let mut responder_nonce = [0u8; 32];
        rng.fill(&mut responder_nonce)
            .map_err(|_| error("no randomness"))?;
        report.extend_from_slice(&responder_nonce);

        let mut driver = driver_version.as_bytes().to_vec();
        driver.push(0);
        let mut opaque = Vec::new();
        for (kind, value) in [
            (OPAQUE_VBIOS_VERSION, &vbios[..]),
            (OPAQUE_DRIVER_VERSION, &driver[..]),
            // NVDEC0 disabled, as in NVIDIA's recorded Hopper reports.
            (spdm::OPAQUE_NVDEC0_STATUS, &[spdm::NVDEC0_DISABLED][..]),
            (OPAQUE_FWID, &fwid[..]),
        ] {
            opaque.extend_from_slice(&kind.to_le_bytes());
            opaque.extend_from_slice(&(value.len() as u16).to_le_bytes());
            opaque.extend_from_slice(value);
        }
        report.extend_from_slice(&(opaque.len() as u16).to_le_bytes());
        report.extend_from_slice(&opaque);
        let signature = self
            .signer
            .sign(&rng, &report)
            .map_err(|_| error("signing failed"))?;
        report.extend_from_slice(signature.as_ref());
        Ok(report)
    }

    /// The leaf key (PKCS#8 DER) and the chain (PEM), for a process that signs reports.
    pub fn to_pkcs8_and_chain(&self) -> (Vec<u8>, Vec<u8>) {
        (self.leaf_pkcs8.clone(), self.chain_pem())
    }

    /// A device from its leaf key (PKCS#8 DER, P-384) and chain (PEM or concatenated DER, leaf
    /// first). The key must be the leaf certificate's.
    pub fn from_pkcs8_and_chain(
        pkcs8: &[u8],
        chain_bytes: &[u8],
    ) -> Result<TestDevice, TestingError> {
        let certificates = chain::split_chain(chain_bytes).map_err(error)?;
        let leaf_der = certificates
            .first()
            .ok_or_else(|| error("the chain is empty"))?;
        let leaf = chain::parse_certificate(leaf_der, 0).map_err(error)?;
        let signer = signer(pkcs8)?;
        if chain::p384_key(&leaf, 0).map_err(error)? != signer.public_key().as_ref() {
            return Err(error("the PKCS#8 key is not the leaf certificate's key"));
        }
        let fwid: [u8; 48] = chain::dice_fwid(&leaf)
            .map_err(error)?
            .try_into()
            .map_err(|_| error("the leaf's FWID is not 48 bytes"))?;
        let identity = chain::nvidia_device_name(&leaf).map_err(error)?;
        let arch = match identity.0.as_str() {
            "GH100" => Arch::Hopper,
            "GB100" => Arch::Blackwell,
            other => return Err(error(format!("unknown chip {other}"))),
        };
        Ok(TestDevice {
            arch,
            chip_id: identity.1,
            leaf_pkcs8: pkcs8.to_vec(),
            signer,
            chain: certificates,
            fwid,
            device_ca: None,
        })
    }
}

fn signer(pkcs8: &[u8]) -> Result<EcdsaKeyPair, TestingError> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P384_SHA384_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|rejected| {
        error(format!(
            "the leaf key is not a P-384 PKCS#8 key: {rejected}"
        ))
    })
}

#[allow(clippy::too_many_arguments)]
fn ocsp_response(
    issuer: &Issuer<'static, KeyPair>,
    issuer_name: &[u8],
    issuer_key: &[u8],
    serial: &[u8],
    status: CertStatus,
    this_update: i64,
    next_update: i64,
    delegated: bool,
) -> Result<Vec<u8>, TestingError> {
    use der::{OCTET_STRING, OID, SEQUENCE, encode, oid_contents};
    let time = |unix: i64| encode(0x18, generalized_time(unix).as_bytes());
    let sha256 = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA256, bytes);
    let cert_id = encode(
        SEQUENCE,
        &[
            encode(
                SEQUENCE,
                &[
                    encode(OID, &oid_contents(&[2, 16, 840, 1, 101, 3, 4, 2, 1])),
                    vec![0x05, 0x00],
                ]
                .concat(),
            ),
            encode(OCTET_STRING, sha256(issuer_name).as_ref()),
            encode(OCTET_STRING, sha256(issuer_key).as_ref()),
            encode(0x02, serial),
        ]
        .concat(),
    );
    let status = match status {
        CertStatus::Good => vec![0x80, 0x00],
        CertStatus::Unknown => vec![0x82, 0x00],
        CertStatus::Revoked { reason } => {
            let mut revoked = time(this_update);
            if let Some(reason) = reason {
                revoked.extend(encode(0xA0, &encode(0x0A, &[reason])));
            }
            encode(0xA1, &revoked)
        }
    };
    let single = encode(
        SEQUENCE,
        &[
            cert_id,
            status,
            time(this_update),
            encode(0xA0, &time(next_update)),
        ]
        .concat(),
    );
    let tbs = encode(
        SEQUENCE,
        &[
            encode(0xA1, issuer_name),
            time(this_update),
            encode(SEQUENCE, &single),
        ]
        .concat(),
    );
    let (signature, certs) = if delegated {
        let responder_key = key()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Test OCSP Responder");
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.not_before = rcgen::date_time_ymd(2021, 1, 1);
        params.not_after = rcgen::date_time_ymd(9999, 12, 31);
        let responder = params.signed_by(&responder_key, issuer).map_err(error)?;
        let signature = responder_key.sign(&tbs).map_err(error)?;
        let certs = encode(0xA0, &encode(SEQUENCE, responder.der()));
        (signature, certs)
    } else {
        (issuer.key().sign(&tbs).map_err(error)?, Vec::new())
    };
    let algorithm = encode(
        SEQUENCE,
        &encode(OID, &oid_contents(&[1, 2, 840, 10045, 4, 3, 3])),
    );
    let bit_string = encode(0x03, &[&[0u8][..], &signature].concat());
    let basic = encode(SEQUENCE, &[tbs, algorithm, bit_string, certs].concat());
    let response_bytes = encode(
        SEQUENCE,
        &[
            encode(OID, &oid_contents(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 1])),
            encode(OCTET_STRING, &basic),
        ]
        .concat(),
    );
    Ok(encode(
        SEQUENCE,
        &[vec![0x0A, 0x01, 0x00], encode(0xA0, &response_bytes)].concat(),
    ))
}

/// Unix seconds as GeneralizedTime `YYYYMMDDHHMMSSZ` (the inverse of H. Hinnant's
/// days-from-civil, as the OCSP reader uses).
fn generalized_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}Z",
        seconds / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    )
}
