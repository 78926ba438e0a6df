//! `veu-collector pki init`: a development CA with server, admin and auditor credentials, written
//! so that no private key is ever readable by others, even for an instant.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::ca::Ca;
use crate::error::PkiError;
use crate::identity::Role;

pub(crate) const CA_CERT: &str = "ca.pem";
pub(crate) const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";
const ADMIN_CERT: &str = "admin.pem";
const ADMIN_KEY: &str = "admin.key";
const AUDITOR_CERT: &str = "auditor.pem";
const AUDITOR_KEY: &str = "auditor.key";

/// The name of the admin identity `init` issues (`urn:veu:admin:admin`).
pub const INIT_ADMIN_NAME: &str = "admin";
/// The name of the auditor identity `init` issues (`urn:veu:auditor:auditor`).
pub const INIT_AUDITOR_NAME: &str = "auditor";

const DIR_MODE: u32 = 0o700;
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;

/// Where `init` put its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    /// The PKI directory.
    pub dir: PathBuf,
}

impl PkiPaths {
    /// The CA certificate: the trust anchor for agents, servers and clients.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }
    /// The CA private key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join(CA_KEY)
    }
    /// The collector's server certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }
    /// The collector's server private key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join(SERVER_KEY)
    }
    /// The admin client certificate.
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join(ADMIN_CERT)
    }
    /// The admin client private key.
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join(ADMIN_KEY)
    }
    /// The auditor client certificate.
    pub fn auditor_cert(&self) -> PathBuf {
        self.dir.join(AUDITOR_CERT)
    }
    /// The auditor client private key.
    pub fn auditor_key(&self) -> PathBuf {
        self.dir.join(AUDITOR_KEY)
    }
}

/// Creates `dir` (0700) and writes a development CA, a server certificate for `server_names`
/// and admin and auditor client credentials. Refuses, before writing anything, when `ca.key`
/// already exists.
pub fn init(dir: &Path, server_names: &[String], now: SystemTime) -> Result<PkiPaths, PkiError> {
    let paths = PkiPaths {
        dir: dir.to_owned(),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(PkiError::io(dir))?;
    if fs::symlink_metadata(paths.ca_key()).is_ok() {
        return Err(PkiError::CaKeyExists(paths.ca_key()));
    }
    // An existing directory keeps the mode it had; tighten it, since it is about to hold keys.
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(PkiError::io(dir))?;

    // Everything is made before anything is written, so a refused server name or identity
    // leaves no files behind.
    let (ca, ca_key_pem) = Ca::generate(now)?;
    let (server_cert, server_key) = ca.issue_server(server_names, now)?;
    let admin = ca.issue_client(Role::Admin, INIT_ADMIN_NAME, now)?;
    let auditor = ca.issue_client(Role::Auditor, INIT_AUDITOR_NAME, now)?;

    // ca.key is claimed with create-new, so two concurrent inits cannot both win; the loser
    // gets CaKeyExists and has written nothing.
    write_new(&paths.ca_key(), &ca_key_pem, KEY_MODE).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => PkiError::CaKeyExists(paths.ca_key()),
        _ => PkiError::Io {
            path: paths.ca_key(),
            source: e,
        },
    })?;
    let rest = [
        (paths.ca_cert(), ca.ca_pem(), CERT_MODE),
        (paths.server_cert(), &server_cert, CERT_MODE),
        (paths.server_key(), &server_key, KEY_MODE),
        (paths.admin_cert(), &admin.cert_pem, CERT_MODE),
        (paths.admin_key(), &admin.key_pem, KEY_MODE),
        (paths.auditor_cert(), &auditor.cert_pem, CERT_MODE),
        (paths.auditor_key(), &auditor.key_pem, KEY_MODE),
    ];
    for (path, contents, mode) in rest {
        if let Err(source) = replace(&path, contents, mode) {
            // Give the claim back, so that init can be run again once the cause is fixed;
            // the key is ours and no certificate of it has been handed out yet.
            let _ = fs::remove_file(paths.ca_key());
            return Err(PkiError::Io { path, source });
        }
    }
    sync_dir(dir).map_err(PkiError::io(dir))?;
    Ok(paths)
}

/// Issues a client credential for `urn:veu:<role>:<name>` from the CA in `dir` (landmarks,
/// more admins or auditors) and writes `<role>-<name>.pem` and `.key` into `out` (the key with
/// mode 0600). Refuses to replace existing files. Returns the two paths.
pub fn issue(
    dir: &Path,
    role: Role,
    name: &str,
    out: &Path,
    now: SystemTime,
) -> Result<(PathBuf, PathBuf), PkiError> {
    let ca = Ca::load(dir)?;
    let credential = ca.issue_client(role, name, now)?;
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(out)
        .map_err(PkiError::io(out))?;
    let stem = format!("{role}-{}", name.replace(':', "_"));
    let cert = out.join(format!("{stem}.pem"));
    let key = out.join(format!("{stem}.key"));
    write_new(&key, &credential.key_pem, KEY_MODE).map_err(PkiError::io(&key))?;
    if let Err(source) = write_new(&cert, &credential.cert_pem, CERT_MODE) {
        let _ = fs::remove_file(&key);
        return Err(PkiError::Io { path: cert, source });
    }
    sync_dir(out).map_err(PkiError::io(out))?;
    Ok((cert, key))
}

/// Writes a file that must not exist yet, created with `mode` so that its contents are never
/// readable under a looser one.
fn write_new(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Writes a file, first removing any old one: opening an existing file keeps its mode, which
/// could be world-readable. Only files beside a missing ca.key get here, and those belong to no
/// usable CA.
fn replace(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    write_new(path, contents, mode)
}

/// Makes the new directory entries durable: the CA must not vanish in a crash after agents
/// were told to trust it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
