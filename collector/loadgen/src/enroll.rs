//! Enrollment of a simulated fleet: for each agent an admin creates a one-time token for its
//! site (round-robin over the sites), and the agent makes its Ed25519 signing key and a TLS key
//! with a CSR, and trades the token for its client certificate, as `veu-agent enroll` would.

use std::collections::VecDeque;

use collector_client::{Channel, ClientError};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use proto_wire::v1::enrollment_client::EnrollmentClient;
use tokio::task::JoinSet;

use crate::attestor::Attestor;
use crate::inventory::{Board, BoardTemplate, InventoryError};
use crate::transport::{Credential, Target};

/// How long an enrollment token the load generator creates stays valid.
const TOKEN_SECONDS: u32 = 3_600;

/// The fleet to enroll.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    /// How many agents.
    pub agents: usize,
    /// Sites (in the collector's registry) agents are spread over, round-robin.
    pub sites: Vec<String>,
    /// Host names are `<prefix>-<index>`; unique per run so hosts never collide.
    pub host_prefix: String,
    /// GPU identities derive from it; a fleet with another run's seed duplicates its GPUs.
    pub gpu_seed: u64,
    /// Enrollments in progress at once.
    pub parallel: usize,
}

/// An agent with its key, certificate and chain, ready to stream.
#[derive(Debug)]
pub struct EnrolledAgent {
    /// Its number in the fleet, from 0.
    pub index: usize,
    /// The host id the collector assigned.
    pub host_id: String,
    /// Its site.
    pub site_id: String,
    /// The site's country, as the collector reported it.
    pub country: String,
    /// Its TLS client certificate (not the signing key).
    pub tls: Credential,
    /// Its chain, signing with its Ed25519 key.
    pub attestor: Attestor,
}

/// Enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// No channel to the collector.
    #[error(transparent)]
    Transport(#[from] ClientError),
    /// The simulated board could not be priced.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The plan cannot work.
    #[error("invalid fleet: {0}")]
    Plan(&'static str),
    /// An enrollment task died.
    #[error("an enrollment task failed: {0}")]
    Task(String),
    /// One agent failed.
    #[error("cannot enroll agent {agent}: {cause}")]
    Agent {
        /// Its index.
        agent: usize,
        /// What went wrong, in words.
        cause: String,
    },
}

/// Enrolls every agent of `plan`, `plan.parallel` at a time; the first failure stops the rest.
pub async fn enroll_fleet(
    target: &Target,
    admin: &Credential,
    plan: &FleetPlan,
) -> Result<Vec<EnrolledAgent>, EnrollError> {
    if plan.sites.is_empty() {
        return Err(EnrollError::Plan("no sites to enroll agents at"));
    }
    let template = BoardTemplate::h100()?;
    let admin = target.connect(Some(admin)).await?;
    let anonymous = target.connect(None).await?;
    let mut pending: VecDeque<usize> = (0..plan.agents).collect();
    let mut running = JoinSet::new();
    let mut enrolled = Vec::with_capacity(plan.agents);
    loop {
        while running.len() < plan.parallel.max(1)
            && let Some(index) = pending.pop_front()
        {
            let site = plan.sites[index % plan.sites.len()].clone();
            let host = format!("{}-{index:05}", plan.host_prefix);
            let board = template.board(plan.gpu_seed, index);
            let (admin, anonymous) = (admin.clone(), anonymous.clone());
            running.spawn(async move {
                enroll_one(index, admin, anonymous, &site, &host, board)
                    .await
                    .map_err(|cause| EnrollError::Agent {
                        agent: index,
                        cause,
                    })
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let agent = joined.map_err(|error| EnrollError::Task(error.to_string()))??;
        enrolled.push(agent);
    }
    enrolled.sort_by_key(|agent| agent.index);
    Ok(enrolled)
}

async fn enroll_one(
    index: usize,
    admin: Channel,
    anonymous: Channel,
    site: &str,
    host: &str,
    board: Board,
) -> Result<EnrolledAgent, String> {
    let token = AdminClient::new(admin)
        .create_enroll_token(v1::CreateEnrollTokenRequest {
            site_id: site.to_owned(),
            valid_for_seconds: TOKEN_SECONDS,
            rebind_host: String::new(),
        })
        .await
        .map_err(|status| {
            format!(
                "the collector refused a token for site {site}: {:?}: {}",
                status.code(),
                status.message()
            )
        })?
        .into_inner()
        .token;
    let pkcs8 = Ed25519Signer::generate_pkcs8().map_err(|e| e.to_string())?;
    let signer = Ed25519Signer::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    let (csr_der, tls_key_pem) =
        collector_pki::make_csr(host).map_err(|e| format!("cannot make a CSR: {e}"))?;
    let response = EnrollmentClient::new(anonymous)
        .enroll(v1::EnrollRequest {
            token,
            signing_public_key: signer.public_key().as_bytes().to_vec(),
            csr_der,
            host: Some(v1::HostFacts {
                hostname: host.to_owned(),
                os: "Linux (simulated by veu-loadgen)".into(),
                cpu_count: 224,
                memory_bytes: 2_164_000_000_000,
                ..v1::HostFacts::default()
            }),
        })
        .await
        .map_err(|status| {
            format!(
                "the collector refused the enrollment: {:?}: {}",
                status.code(),
                status.message()
            )
        })?
        .into_inner();
    let certificate = response
        .certificate_chain_pem
        .first()
        .ok_or("the enrollment response has no certificate")?;
    let tls = Credential {
        cert_pem: certificate.clone().into_bytes(),
        key_pem: tls_key_pem.into_bytes(),
    };
    Ok(EnrolledAgent {
        index,
        attestor: Attestor::new(signer, &response.host_id, &response.site_id, board),
        host_id: response.host_id,
        site_id: response.site_id,
        country: response.country,
        tls,
    })
}
