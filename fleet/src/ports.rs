//! Free TCP ports on 127.0.0.1 for daemons to bind.

use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// Ports handed out by this process: the system may give a just-released port out again, and
/// two daemons of one fleet must not be told the same one.
static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// How many ports the system may offer before the search gives up.
const ATTEMPTS: usize = 10_000;

/// No free port could be found.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Binding 127.0.0.1:0 failed.
    #[error("cannot bind a free port on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// Every port the system offered was taken or given out before.
    #[error("no port the system offered was new after {ATTEMPTS} tries")]
    Exhausted,
}

/// `N` distinct free ports on 127.0.0.1, none in `except` and none this process was given
/// before. They are bound together while they are chosen, so that the system cannot offer
/// one twice, then released for the daemons to bind.
pub fn free_ports<const N: usize>(except: &[u16]) -> Result<[u16; N], PortError> {
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let mut held = Vec::new();
    let mut ports = [0; N];
    let mut chosen = 0;
    for _ in 0..ATTEMPTS {
        if chosen == N {
            break;
        }
        let listener = TcpListener::bind("127.0.0.1:0").map_err(PortError::Bind)?;
        let port = listener.local_addr().map_err(PortError::Bind)?.port();
        if !except.contains(&port) && !given.contains(&port) {
            ports[chosen] = port;
            chosen += 1;
            given.push(port);
        }
        held.push(listener);
    }
    if chosen < N {
        return Err(PortError::Exhausted);
    }
    Ok(ports)
}

/// One free port on 127.0.0.1 this process was not given before.
pub fn free_port() -> Result<u16, PortError> {
    let [port] = free_ports(&[])?;
    Ok(port)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn ports_are_distinct_free_and_never_given_twice() {
        let first: [u16; 3] = free_ports(&[]).unwrap();
        let mut seen = first.to_vec();
        for _ in 0..50 {
            seen.push(free_port().unwrap());
        }
        let count = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), count, "a port was given twice: {seen:?}");
        for port in first {
            assert_ne!(port, 0);
            TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }

    #[test]
    fn an_excepted_port_is_never_chosen() {
        // The port the system offers next is usually the one just released: except it.
        let offered = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for _ in 0..20 {
            let ports: [u16; 2] = free_ports(&[offered]).unwrap();
            assert!(!ports.contains(&offered), "{ports:?}");
        }
    }
}
