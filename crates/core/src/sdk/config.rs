//! How a [`Client`](super::Client) connects: the server's address, who logs
//! in, and the timers of the connection and its reconnect backoff.

use super::Error;
use crate::protocol::{MAX_ID_BYTES, is_valid_id};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::Connector;

mod pinned;

/// Everything a client is told at start. `ClientConfig::new` fills in defaults
/// suited to a desktop softphone; tests shorten the timers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://HOST:PORT[/]` or `wss://HOST[:PORT][/]`: the server tried first.
    pub url: String,
    /// Further servers of the same deployment (nodes of a cluster), in
    /// the same form. When a connection drops or an attempt fails, the
    /// next attempt goes to the next server in turn (`url` first, then
    /// these, then `url` again), so a client whose node went away logs in
    /// on another.
    pub other_urls: Vec<String>,
    /// Who logs in.
    pub peer_id: String,
    /// The login token; anything works against a server in open mode.
    pub token: String,
    /// A label for this device, shown to callers whose call it accepts.
    pub device: String,
    /// When to retry after a dropped connection or a failed attempt.
    pub backoff: Backoff,
    /// How long a request may wait for its reply before failing with
    /// [`Error::Timeout`].
    pub request_timeout: Duration,
    /// How long one attempt (TCP, TLS, WebSocket handshake and login) may take.
    pub connect_timeout: Duration,
    /// How often the client pings the server, so a dead link is noticed
    /// even when the server's pings are rarer than our idle timeout.
    pub ping_interval: Duration,
    /// A connection on which nothing was heard for this long is dropped
    /// (and retried). The server pings every 15 s by default.
    pub idle_timeout: Duration,
    /// A PEM file of certificate authorities trusted for `wss://` besides
    /// the public roots: a private deployment's own CA, or its self-signed
    /// certificate.
    pub ca_file: Option<PathBuf>,
}

impl ClientConfig {
    /// A configuration with the default timers and an empty token and device.
    pub fn new(url: impl Into<String>, peer_id: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            other_urls: Vec::new(),
            peer_id: peer_id.into(),
            token: String::new(),
            device: String::new(),
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            ca_file: None,
        }
    }

    /// A configuration for a list of servers, `ws://a:7878/,ws://b:7878/`
    /// as the command line writes it: the first is `url`, the rest `other_urls`.
    pub fn with_servers(servers: &str, peer_id: impl Into<String>) -> Self {
        let mut urls = servers.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned);
        let mut config = ClientConfig::new(urls.next().unwrap_or_default(), peer_id);
        config.other_urls = urls.collect();
        config
    }

    /// Checks what can be checked before connecting, and returns the URLs to
    /// connect to, `url` first (each with the path `/` the server serves
    /// on, when missing), and how `wss://` is verified
    /// ([`tls_connector`](Self::tls_connector), read once here).
    pub(crate) fn validate(&self) -> Result<(Vec<String>, Option<Connector>), Error> {
        if !is_valid_id(&self.peer_id) {
            return Err(Error::InvalidArgument(format!(
                "peer_id must be 1 to {MAX_ID_BYTES} bytes of printable ASCII (0x21-0x7E)"
            )));
        }
        if self.device.len() > MAX_ID_BYTES {
            return Err(Error::InvalidArgument(format!("device is over {MAX_ID_BYTES} bytes")));
        }
        let tls = self.tls_connector()?;
        let urls: Result<Vec<String>, Error> =
            std::iter::once(&self.url).chain(&self.other_urls).map(|url| normalize_url(url)).collect();
        Ok((urls?, tls))
    }

    /// How `wss://` is verified: with a `ca_file`, the public roots and its
    /// certificates as roots, and each of its certificates also accepted
    /// exactly as the server's own (pinned, whatever its basicConstraints);
    /// without, `None` (tokio-tungstenite's public roots).
    pub(crate) fn tls_connector(&self) -> Result<Option<Connector>, Error> {
        let Some(path) = &self.ca_file else { return Ok(None) };
        let bad = |why: String| Error::InvalidArgument(format!("CA file {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // A certificate that cannot be a root (not a CA) is still pinned below.
        roots.add_parsable_certificates(certs.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| bad(e.to_string()))?;
        let verifier = pinned::PinnedOrWebPki::new(certs, webpki, provider.signature_verification_algorithms);
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Some(Connector::Rustls(Arc::new(tls))))
    }
}

/// `ws://host:port` and `ws://host:port/` both name the server's path `/`.
pub(crate) fn normalize_url(url: &str) -> Result<String, Error> {
    let url = url.trim();
    let rest = url.strip_prefix("ws://").or_else(|| url.strip_prefix("wss://")).ok_or_else(|| {
        Error::InvalidArgument(format!("server URL {url:?} must start with ws:// or wss://"))
    })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(Error::InvalidArgument(format!("server URL {url:?} names no host")));
    }
    Ok(if rest.contains('/') { url.to_owned() } else { format!("{url}/") })
}

/// Exponential backoff with jitter: attempt `n` (from 1) waits
/// `min(max, initial * multiplier^(n-1))`, shortened by a random fraction up
/// to `jitter`, so many clients of a restarted server do not all come back
/// in the same instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How much each wait grows over the one before.
    pub multiplier: f64,
    /// The fraction (0 to 1) of each wait that is random.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 250 ms, then doubling up to 5 s, each wait 0 to 50 % shorter. The
    /// cap is low because a phone that is back seconds after its server
    /// matters more than the few requests a waiting client costs; the
    /// jitter spreads the clients of a restarted server over time.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (1 is the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let full = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let full = full.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter * rand::random::<f64>();
        Duration::from_secs_f64((full * factor).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_gain_the_root_path_and_bad_ones_are_refused() {
        assert_eq!(normalize_url("ws://127.0.0.1:80").unwrap(), "ws://127.0.0.1:80/");
        assert_eq!(normalize_url("ws://127.0.0.1:80/").unwrap(), "ws://127.0.0.1:80/");
        assert_eq!(normalize_url("wss://example.org").unwrap(), "wss://example.org/");
        for bad in ["http://x", "ws://", "127.0.0.1:80", "ws:///x"] {
            assert!(matches!(normalize_url(bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }

    #[test]
    fn a_list_of_servers_is_split_and_each_checked() {
        let config = ClientConfig::with_servers("ws://a:1, ws://b:2/ ,", "alice");
        assert_eq!(
            (config.url.as_str(), config.other_urls.clone()),
            ("ws://a:1", vec!["ws://b:2/".to_owned()])
        );
        assert_eq!(config.validate().unwrap().0, ["ws://a:1/", "ws://b:2/"]);
        let bad = ClientConfig::with_servers("ws://a:1,http://b", "alice");
        assert!(matches!(bad.validate(), Err(Error::InvalidArgument(_))));
        assert!(matches!(ClientConfig::with_servers("", "alice").validate(), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn backoff_grows_to_its_cap_within_its_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.5,
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            let d = b.delay(attempt).as_millis() as u64;
            assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d} ms");
        }
        let exact = Backoff { jitter: 0.0, ..b };
        assert_eq!(exact.delay(2), Duration::from_millis(200));
    }
}
