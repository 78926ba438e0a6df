//! `veu-agent enroll`: trade a one-time token for this host's client certificate, written
//! where the configuration's `[collector]` section expects it; and `veu-agent key`, the
//! signing key to register instead under an operator's own PKI.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Configuration file whose [collector] section names the endpoint, the collector's CA
    /// (which must already be on the host) and where to write the certificate and key.
    #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
    config: PathBuf,
    /// The one-time token from `veuctl enroll-token --site SITE`.
    #[arg(long, value_name = "TOKEN", env = "VEU_ENROLL_TOKEN")]
    token: String,
}

pub async fn run(args: &EnrollArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = Config::parse(&text, &args.config)?;
    let collector = config
        .collector
        .as_ref()
        .context("the configuration has no [collector] section to enroll with")?;
    let ca_pem = std::fs::read(&collector.ca)
        .with_context(|| format!("cannot read the collector CA {}", collector.ca.display()))?;
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("cannot create {}", config.state_dir.display()))?;
    let (signer, _) =
        agent_sign::load_or_create(&config.state_dir.join(crate::startup::SIGNING_KEY))?;
    let enrolled = agent_uplink::enroll(&agent_uplink::Enrollment {
        endpoint: collector.endpoint.clone(),
        server_name: collector.server_name.clone(),
        ca_pem,
        token: args.token.clone(),
        signing_public_key: *signer.public_key().as_bytes(),
        host_id: config.host_id.clone(),
    })
    .await
    .map_err(|error| {
        let cause = format!("{:#}", anyhow::Error::from(error));
        if cause.contains("not valid for name") || cause.contains("NotValidForName") {
            anyhow::anyhow!(
                "{cause}\nthe collector's certificate does not carry the name {:?}: set \
                 [collector] server_name to a name it carries (the endpoint's host is used \
                 when it is not set)",
                collector.server_name
            )
        } else {
            anyhow::anyhow!(cause)
        }
    })?;
    write(
        &collector.certificate,
        enrolled.certificate_pem.as_bytes(),
        0o644,
    )?;
    write(&collector.key, enrolled.key_pem.as_bytes(), 0o600)?;
    println!(
        "enrolled: host {} at site {} ({}), signing key {}",
        enrolled.host_id,
        enrolled.site_id,
        enrolled.country,
        signer.key_id()
    );
    println!(
        "certificate {}, key {}",
        collector.certificate.display(),
        collector.key.display()
    );
    if enrolled.site_id != config.site_id || enrolled.host_id != config.host_id {
        anyhow::bail!(
            "the configuration says host {} at site {}, but the collector enrolled host {} at site {}: set host_id and site_id to match before `veu-agent run`",
            config.host_id,
            config.site_id,
            enrolled.host_id,
            enrolled.site_id
        );
    }
    Ok(())
}

/// `veu-agent key`: this host's signing key (made on first use), for `veuctl agents add`
/// under an operator's own PKI, the alternative to a token.
pub fn key(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let config = Config::parse(&text, path)?;
    std::fs::create_dir_all(&config.state_dir)?;
    let (signer, _) =
        agent_sign::load_or_create(&config.state_dir.join(crate::startup::SIGNING_KEY))?;
    let public = veu_daemon_kit::hex(signer.public_key().as_bytes());
    println!("key id      {}", signer.key_id());
    println!("public key  {public}");
    println!(
        "register:   veuctl agents add --public-key {public} --host {} --site {}",
        config.host_id, config.site_id
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// Configuration file whose [collector] section names the endpoint, the collector's CA,
    /// and the certificate (replaced) and key (kept) to renew.
    #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
    config: PathBuf,
}

/// `veu-agent renew`: a fresh certificate for the same TLS key, host and site, authenticated
/// by the current (still valid) one; written over it. The running agent uses it from its next
/// start.
pub async fn renew(args: &RenewArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = Config::parse(&text, &args.config)?;
    let collector = config
        .collector
        .as_ref()
        .context("the configuration has no [collector] section to renew with")?;
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let key_path = config.state_dir.join(crate::startup::SIGNING_KEY);
    if !key_path.exists() {
        anyhow::bail!(
            "no signing key at {}: this host is not enrolled yet (veu-agent enroll)",
            key_path.display()
        );
    }
    let (signer, _) = agent_sign::load_or_create(&key_path)?;
    let certificate = agent_uplink::renew(&agent_uplink::Renewal {
        endpoint: collector.endpoint.clone(),
        server_name: collector.server_name.clone(),
        ca_pem: read(&collector.ca)?,
        certificate_pem: read(&collector.certificate)?,
        key_pem: read(&collector.key)?,
        signing_public_key: *signer.public_key().as_bytes(),
    })
    .await?;
    write(&collector.certificate, certificate.as_bytes(), 0o644)?;
    let until = veu_daemon_kit::exposition::certificate::not_after(certificate.as_bytes())
        .map_or_else(|| "?".to_owned(), |s| format!("{s} (Unix seconds)"));
    println!(
        "renewed: {} valid until {until}; restart the agent to use it",
        collector.certificate.display()
    );
    Ok(())
}

/// Writes a file atomically with `mode`, creating its directory.
fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}
