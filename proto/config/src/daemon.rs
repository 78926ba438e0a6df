//! What both daemons' `main` and `run` share about starting: the exit status of a failure,
//! and binding a configured address so that an impossible one is a configuration error.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use tokio::net::TcpSocket;

use crate::ConfigErrors;

/// EX_CONFIG (sysexits.h): the configuration, or a file it names, must be fixed by an
/// operator; systemd's `RestartPreventExitStatus=78` stops restarting.
pub const EXIT_CONFIG: u8 = 78;

/// The exit status of a daemon's failure, decided here only: [`EXIT_CONFIG`] for a problem in
/// the configuration or a file it names (a [`ConfigErrors`] anywhere in the chain); 1 for the
/// rest, which a restart may cure.
pub fn exit_status(error: &anyhow::Error) -> u8 {
    if error.chain().any(|cause| cause.is::<ConfigErrors>()) {
        EXIT_CONFIG
    } else {
        1
    }
}

/// Binds `address` (the value of `key` in the configuration at `path`) without listening yet.
/// An address this host does not have, or a port it may not open, is a configuration problem
/// no restart cures ([`ConfigErrors`]); a port in use may be freed (another error).
pub fn bind(path: &Path, key: &str, address: SocketAddr) -> anyhow::Result<TcpSocket> {
    let bound = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .and_then(|socket| {
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        Ok(socket)
    });
    match bound {
        Ok(socket) => Ok(socket),
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied
            ) =>
        {
            Err(ConfigErrors::one(path, key, format!("cannot listen on {address}: {error}")).into())
        }
        Err(error) => Err(error).with_context(|| format!("cannot listen on {address} ({key})")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_error_anywhere_in_the_chain_is_exit_78() {
        let config = anyhow::Error::from(ConfigErrors {
            path: "/etc/x.toml".into(),
            errors: vec![("listen".into(), "bad".into())],
        })
        .context("starting");
        assert_eq!(exit_status(&config), EXIT_CONFIG);
        assert_eq!(exit_status(&anyhow::anyhow!("store down")), 1);
    }

    #[test]
    fn an_address_this_host_lacks_is_a_configuration_error_a_port_in_use_is_not() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let path = Path::new("/etc/x.toml");
        let absent: SocketAddr = "192.0.2.1:7443".parse().unwrap();
        let error = bind(path, "listen", absent).unwrap_err();
        assert_eq!(exit_status(&error), EXIT_CONFIG, "{error:#}");
        assert!(format!("{error:#}").contains("listen"), "{error:#}");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let error = bind(path, "metrics.listen", taken.local_addr().unwrap())
            .and_then(|socket| Ok(socket.listen(1)?))
            .map(|_| ());
        // Binding a port held by a listener fails now or at listen; either way not 78.
        if let Err(error) = error {
            assert_eq!(exit_status(&error), 1, "{error:#}");
        }
    }
}
