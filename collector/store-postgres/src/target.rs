//! Where the store connects: the URL's connection settings for tokio-postgres, and the TLS
//! settings (`sslmode`, `sslrootcert`) that tokio-postgres does not read itself.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Config;
use tokio_postgres::config::SslMode;

use crate::PostgresOptions;
use crate::tls::TlsMode;

/// Why a URL or option cannot be used; reported by `connect` as a backend error.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the database URL must start with postgres:// or postgresql://")]
    NotAUrl,
    #[error("the database URL is invalid: {0}")]
    Url(#[source] tokio_postgres::Error),
    #[error(
        "sslmode={0} is not supported (use disable, prefer, require or verify-full); \
         verify-ca is refused because it does not check the server's name"
    )]
    SslMode(String),
    #[error("sslmode=verify-full needs the CA certificates as sslrootcert=FILE in the URL")]
    NoRootCert,
    #[error("cannot read the CA certificates in {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
    #[error("schema {0:?} is not a plain identifier (letters, digits, _; at most 63 bytes)")]
    Schema(String),
    #[error("the URL's {0} is not valid percent-encoding")]
    Encoding(&'static str),
}

/// A parsed URL with the options applied.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) tls: TlsMode,
    /// The schema to create and use, if one was given.
    pub(crate) schema: Option<String>,
}

impl Target {
    pub(crate) fn parse(url: &str, options: &PostgresOptions) -> Result<Self, TargetError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(TargetError::NotAUrl);
        }
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => sslmode = Some(decode(value, "sslmode")?),
                "sslrootcert" => sslrootcert = Some(decode(value, "sslrootcert")?),
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config = Config::from_str(&url).map_err(TargetError::Url)?;

        let tls = match sslmode.as_deref().unwrap_or("prefer") {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Unverified,
            "require" => TlsMode::Unverified,
            "verify-full" => {
                let path = PathBuf::from(sslrootcert.ok_or(TargetError::NoRootCert)?);
                TlsMode::VerifyFull(crate::tls::read_roots(&path)?)
            }
            other => return Err(TargetError::SslMode(other.to_owned())),
        };
        config.ssl_mode(match sslmode.as_deref().unwrap_or("prefer") {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            _ => SslMode::Require,
        });

        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("veu-collector");
        }
        // Keepalives find a dead server or a dropped NAT mapping on an idle pooled connection.
        config.keepalives_idle(Duration::from_secs(60));
        if let Some(schema) = &options.schema {
            if !plain_identifier(schema) {
                return Err(TargetError::Schema(schema.clone()));
            }
            // Sent with the startup packet: the connection never runs a statement before it.
            let mut startup = config.get_options().unwrap_or_default().to_owned();
            if !startup.is_empty() {
                startup.push(' ');
            }
            startup.push_str("-c search_path=");
            startup.push_str(schema);
            config.options(&startup);
        }
        Ok(Self {
            config,
            tls,
            schema: options.schema.clone(),
        })
    }
}

/// Letters, digits and `_`, not starting with a digit, at most 63 bytes (PostgreSQL's
/// identifier length): such a name needs no quoting anywhere.
fn plain_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 63
}

/// Percent-decoding of a URL query value (a CA file's path may hold `%2F` or spaces).
fn decode(value: &str, what: &'static str) -> Result<String, TargetError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(TargetError::Encoding(what))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| TargetError::Encoding(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Target, TargetError> {
        Target::parse(url, &PostgresOptions::default())
    }

    #[test]
    fn tls_settings_are_taken_out_of_the_url() {
        let target =
            parse("postgres://veu@db.example:6543/attest?sslmode=disable&user=other").unwrap();
        assert!(matches!(target.tls, TlsMode::Disable));
        assert_eq!(target.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(target.config.get_user(), Some("other"));
        assert_eq!(target.config.get_dbname(), Some("attest"));
        assert_eq!(target.config.get_ports(), &[6543]);

        let target = parse("postgresql://veu@db.example/attest").unwrap();
        assert!(matches!(target.tls, TlsMode::Unverified));
        assert_eq!(target.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(target.config.get_application_name(), Some("veu-collector"));
        assert_eq!(
            target.config.get_connect_timeout(),
            Some(&Duration::from_secs(10))
        );

        let target = parse("postgres://h/db?sslmode=require&connect_timeout=3").unwrap();
        assert!(matches!(target.tls, TlsMode::Unverified));
        assert_eq!(target.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            target.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(matches!(
            parse("host=localhost dbname=x"),
            Err(TargetError::NotAUrl)
        ));
        assert!(matches!(
            parse("postgres://h/db?sslmode=verify-ca"),
            Err(TargetError::SslMode(mode)) if mode == "verify-ca"
        ));
        assert!(matches!(
            parse("postgres://h/db?sslmode=verify-full"),
            Err(TargetError::NoRootCert)
        ));
        let missing = parse("postgres://h/db?sslmode=verify-full&sslrootcert=%2Fno%20such.pem");
        match missing {
            Err(TargetError::RootCert { path, .. }) => {
                assert_eq!(path, PathBuf::from("/no such.pem"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("postgres://h/db?sslrootcert=%zz"),
            Err(TargetError::Encoding("sslrootcert"))
        ));
        assert!(matches!(
            parse("postgres://h/db?nonsense=1"),
            Err(TargetError::Url(_))
        ));
    }

    #[test]
    fn the_schema_becomes_the_search_path() {
        let options = PostgresOptions {
            schema: Some("veu_test_1a".to_owned()),
            ..PostgresOptions::default()
        };
        let target =
            Target::parse("postgres://h/db?options=-c%20work_mem%3D8MB", &options).unwrap();
        assert_eq!(
            target.config.get_options(),
            Some("-c work_mem=8MB -c search_path=veu_test_1a")
        );
        for bad in ["", "1abc", "a-b", "a;drop", "\"x\"", &"a".repeat(64)] {
            let options = PostgresOptions {
                schema: Some(bad.to_owned()),
                ..PostgresOptions::default()
            };
            assert!(
                matches!(
                    Target::parse("postgres://h/db", &options),
                    Err(TargetError::Schema(_))
                ),
                "{bad:?}"
            );
        }
    }
}
