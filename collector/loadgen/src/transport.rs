//! Channels to the collector over TLS with its name pinned: the admin's (admin client
//! certificate), the enrollment one (no client certificate yet) and one per simulated agent
//! (its enrolled certificate), each its own connection as on a real fleet. The TLS and the
//! channel are `collector-client`'s.

use std::path::Path;

pub use collector_client::Credential;
use collector_client::{Channel, ClientError, ClientTls, Connection};

/// Where the collector is and how to recognise it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://127.0.0.1:7443`.
    pub endpoint: String,
    /// The name (DNS or IP) the collector's certificate carries.
    pub server_name: String,
    /// PEM of the CA that signs the collector's certificate.
    pub ca_pem: Vec<u8>,
}

impl Target {
    /// The target whose CA is `pki_dir/ca.pem`, as `veu-collector pki init` writes it.
    pub fn from_pki_dir(
        endpoint: &str,
        server_name: &str,
        pki_dir: &Path,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            endpoint: endpoint.to_owned(),
            server_name: server_name.to_owned(),
            ca_pem: collector_client::read_pem(&pki_dir.join("ca.pem"))?,
        })
    }

    /// Connects, presenting `identity` when given, within the client's connect timeout.
    pub async fn connect(&self, identity: Option<&Credential>) -> Result<Channel, ClientError> {
        let tls = ClientTls {
            ca_pem: self.ca_pem.clone(),
            server_name: self.server_name.clone(),
            identity: identity.cloned(),
        };
        Connection::new(self.endpoint.clone(), tls).connect().await
    }
}

pub use proto_config::url_host as host_of;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_server_name_is_the_urls_host() {
        for (url, host) in [
            ("https://127.0.0.1:7443", Some("127.0.0.1")),
            (
                "https://collector.example.com:7443/",
                Some("collector.example.com"),
            ),
            (
                "https://collector.example.com",
                Some("collector.example.com"),
            ),
            ("https://[::1]:7443", Some("::1")),
            ("https://:7443", None),
        ] {
            assert_eq!(host_of(url).as_deref(), host, "{url}");
        }
    }
}
