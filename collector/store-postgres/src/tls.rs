//! TLS for tokio-postgres over tokio-rustls with the ring provider: a `MakeTlsConnect` of our
//! own (about what `tokio-postgres-rustls` does) so that the provider, the roots and the
//! verification mode are chosen here and nothing pulls in aws-lc or OpenSSL.

use std::fs;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::target::TargetError;

/// How the server is authenticated.
#[derive(Debug, Clone)]
pub(crate) enum TlsMode {
    /// No TLS at all.
    Disable,
    /// Encrypted, but any certificate is accepted (libpq's `prefer` and `require`): protects
    /// against passive listeners only.
    Unverified,
    /// The chain must lead to one of these roots and name the host (libpq's `verify-full`).
    VerifyFull(Arc<RootCertStore>),
}

/// Reads the PEM certificates of `sslrootcert`; an empty or unreadable file is refused.
pub(crate) fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TargetError> {
    let refuse = |reason: String| TargetError::RootCert {
        path: path.to_path_buf(),
        reason,
    };
    let pem = fs::read(path).map_err(|error| refuse(error.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|error| refuse(error.to_string()))?;
        roots.add(cert).map_err(|error| refuse(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(refuse("no certificate in the file".to_owned()));
    }
    Ok(Arc::new(roots))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration of a mode; `None` for `Disable`.
pub(crate) fn client_config(mode: &TlsMode) -> Result<Option<Arc<ClientConfig>>, rustls::Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let config = match mode {
        TlsMode::Disable => return Ok(None),
        TlsMode::VerifyFull(roots) => builder
            .with_root_certificates(Arc::clone(roots))
            .with_no_client_auth(),
        TlsMode::Unverified => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// Makes one `RustlsConnect` per connection attempt, for the host being connected to.
#[derive(Debug, Clone)]
pub(crate) struct MakeRustls(pub(crate) Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

/// Connects one stream to one server name.
#[derive(Debug)]
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// An established TLS stream.
#[derive(Debug)]
pub(crate) struct RustlsStream<S>(TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        // tls-server-end-point needs the hash of the certificate's own signature algorithm;
        // without it SCRAM simply runs unbound (the server accepts that).
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `sslmode=prefer|require`: any certificate is accepted, but the handshake signatures are
/// still checked, so the session keys belong to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::ServerConfig;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;

    use super::*;

    /// A CA (as a root store) and a server certificate it issued for `name`.
    fn ca_and_server(name: &str) -> (Arc<RootCertStore>, Arc<ServerConfig>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        (Arc::new(roots), Arc::new(server))
    }

    /// Connects with `mode` to a TLS server with `server`'s certificate, as host `name`, and
    /// sends one byte back and forth.
    fn handshake(mode: &TlsMode, server: Arc<ServerConfig>, name: &str) -> io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let accept = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await?;
                let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
                let byte = tls.read_u8().await?;
                tls.write_u8(byte + 1).await?;
                tls.flush().await
            });
            let config = client_config(mode).unwrap().unwrap();
            let connect =
                MakeTlsConnect::<TcpStream>::make_tls_connect(&mut MakeRustls(config), name)
                    .map_err(io::Error::other)?;
            let tcp = TcpStream::connect(address).await?;
            let mut tls = TlsConnect::connect(connect, tcp).await?;
            tls.write_u8(41).await?;
            tls.flush().await?;
            assert_eq!(tls.read_u8().await?, 42);
            accept.await.map_err(io::Error::other)?
        })
    }

    #[test]
    fn verify_full_accepts_only_the_named_server_of_the_given_ca() {
        let (roots, server) = ca_and_server("db.test");
        let (other_roots, _) = ca_and_server("db.test");
        let verify = TlsMode::VerifyFull(roots);
        handshake(&verify, Arc::clone(&server), "db.test").unwrap();
        let wrong_name = handshake(&verify, Arc::clone(&server), "other.test").unwrap_err();
        assert!(
            wrong_name.to_string().contains("certificate"),
            "{wrong_name}"
        );
        let wrong_ca = handshake(&TlsMode::VerifyFull(other_roots), server, "db.test").unwrap_err();
        assert!(wrong_ca.to_string().contains("certificate"), "{wrong_ca}");
    }

    #[test]
    fn unverified_modes_encrypt_with_any_certificate() {
        let (_, server) = ca_and_server("anything.test");
        handshake(&TlsMode::Unverified, server, "db.example").unwrap();
        assert!(client_config(&TlsMode::Disable).unwrap().is_none());
    }

    #[test]
    fn root_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("veu-pg-roots-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        fs::write(&empty, "no pem here\n").unwrap();
        assert!(matches!(
            read_roots(&empty),
            Err(TargetError::RootCert { .. })
        ));
        assert!(matches!(
            read_roots(&dir.join("missing.pem")),
            Err(TargetError::RootCert { .. })
        ));
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&ca_key).unwrap().pem();
        let good = dir.join("ca.pem");
        fs::write(&good, pem).unwrap();
        assert_eq!(read_roots(&good).unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
