//! The embedded default: with no server configured the app uses
//! [`DEFAULT_SERVER_URL`](crate::config::DEFAULT_SERVER_URL), and when
//! nothing listens there it hosts the signaling server itself, in-process
//! on loopback, with the demo peers. A second instance on the same machine
//! finds the address taken and connects to the first: two phones that can
//! call each other.
//!
//! Binding first, rather than probing with a connect, settles a race of two
//! instances starting at once: exactly one of them gets the address.
//!
//! The server is not open: it checks tokens against a random secret kept
//! in the user's data dir ([`local_secret`], made on first start, readable
//! by the user only), and every instance of the same user mints its tokens
//! from it ([`mint`]). Another user's process, or a web page, cannot log
//! in as you (web pages are refused by `Origin` besides).

use crate::paths::Paths;
use softphone_core::demo::{self, DemoPeers};
use softphone_core::server::{self, ServerHandle};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How long a token the app mints for its own server lasts; it is renewed
/// (minted again) when the server says it is expiring.
pub const MINTED_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// The address the default URL names.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// A signaling server this process hosts.
pub struct Embedded {
    /// Keeps the server's stop handle for as long as the app runs.
    server: ServerHandle,
    /// The demo peers; dropping them stops them. `None` if they could not start.
    _demo: Option<DemoPeers>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("url", &self.url()).finish()
    }
}

impl Embedded {
    /// The URL clients use.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// What the status bar says about it.
    pub fn note(&self) -> String {
        format!("Hosting the signaling server on {} (demo peers: echo, busy, noanswer)", self.url())
    }
}

/// Hosts a server on `listen` if the address is free: `Ok(None)` when
/// something already listens there (another instance, most likely).
/// Must run within a tokio runtime.
pub fn host_if_free(listen: &str, secret: Vec<u8>) -> std::io::Result<Option<Embedded>> {
    let addr: SocketAddr =
        listen.parse().map_err(|e| std::io::Error::other(format!("bad listen address {listen}: {e}")))?;
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // Lets a restarted app take the port back while old connections linger
    // in TIME_WAIT; it does not let two listeners share it.
    socket.set_reuseaddr(true)?;
    if let Err(e) = socket.bind(addr) {
        return if e.kind() == std::io::ErrorKind::AddrInUse { Ok(None) } else { Err(e) };
    }
    let listener = socket.listen(1024)?;
    let config = server::ServerConfig { secret: Some(secret.clone()), ..server::ServerConfig::default() };
    let server = server::spawn_on(listener, config);
    tracing::info!("no server was listening on {listen}: hosting one in-process on {}", server.url());
    let demo = match demo::spawn(&server.url(), Some(secret), demo::Timing::default()) {
        Ok(demo) => Some(demo),
        Err(e) => {
            tracing::warn!("cannot start the demo peers: {e}");
            None
        }
    };
    Ok(Some(Embedded { server, _demo: demo }))
}

/// A token for `peer_id` on the local server, minted from its `secret`.
pub fn mint(secret: &[u8], peer_id: &str) -> String {
    softphone_core::token::mint(
        secret,
        peer_id,
        softphone_core::clock::unix_secs() + MINTED_TOKEN_TTL.as_secs(),
    )
}

/// The local server's secret: read from [`Paths::server_secret_file`], or
/// made there on first start (32 random bytes, base64url) and written
/// atomically with mode 0600. Two instances starting at once agree: the
/// file is linked into place only if none is there yet, and the loser
/// reads the winner's.
pub fn local_secret(paths: &Paths) -> io::Result<Vec<u8>> {
    let path = paths.server_secret_file();
    if !path.exists() {
        create_secret(&path)?;
    }
    restrict_to_owner(&path)?;
    softphone_core::token::read_secret_file(&path).map_err(io::Error::other)
}

/// Writes a new secret beside `path` (mode 0600), then links it to `path`
/// unless a secret is already there.
fn create_secret(path: &Path) -> io::Result<()> {
    use base64::Engine;
    use io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let temp = dir.join(format!(".server-secret.{}.tmp", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
        match std::fs::hard_link(&temp, path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    let _ = std::fs::remove_file(&temp);
    written
}

/// Makes `path` readable by its owner only, warning when it was not.
fn restrict_to_owner(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!("{} was readable by others (mode {:o}): made 0600", path.display(), mode & 0o777);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_second_host_finds_the_address_taken() {
        let secret = b"sixteen-bytes-or-more".to_vec();
        let first = host_if_free("127.0.0.1:0", secret.clone()).unwrap().expect("port 0 is always free");
        let taken = first.url().trim_start_matches("ws://").trim_end_matches('/').to_owned();
        assert!(host_if_free(&taken, secret).unwrap().is_none());
    }

    #[test]
    fn the_secret_is_made_once_private_and_then_shared() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path().to_owned());
        let first = local_secret(&paths).unwrap();
        assert!(first.len() >= softphone_core::token::MIN_SECRET_BYTES);
        let mode = std::fs::metadata(paths.server_secret_file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by the user only");
        assert_eq!(local_secret(&paths).unwrap(), first, "a second instance reads the same secret");
        // Made readable by others meanwhile: put back to 0600, same secret.
        std::fs::set_permissions(paths.server_secret_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(local_secret(&paths).unwrap(), first);
        let mode = std::fs::metadata(paths.server_secret_file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(&paths.data_dir).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        let token = mint(&first, "alice");
        assert_eq!(
            softphone_core::token::verify(&first, "alice", &token, softphone_core::clock::unix_secs()),
            Ok(())
        );
    }
}
