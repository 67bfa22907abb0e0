//! Which web pages may open a WebSocket to this server, by the `Origin`
//! header of the handshake (on `/` and `/media`): a browser sends the
//! origin of the page that opens the socket, so a page of another site
//! cannot use a visitor's browser (on the visitor's network, with the
//! visitor's address) to reach the server. A handshake without `Origin`
//! (native clients: the SDK, the app, the headless peer) passes; so does
//! the server's own origin (a page it serves: the scheme of the listener,
//! `http` or `https`, with the `Host` the browser asked for) and every
//! `--allow-origin`; any other is refused with HTTP 403.

use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::header::{HOST, ORIGIN};
use tokio_tungstenite::tungstenite::http::uri::{Authority, Uri};

/// A web origin: scheme, host and port (RFC 6454), compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`, lower case.
    scheme: String,
    /// The host as written in the origin, lower case (`[::1]` with brackets).
    host: String,
    /// The port, the scheme's default (80, 443) when none is written.
    port: u16,
}

/// Why a value cannot be an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a web origin (scheme://host[:port], http or https, no path): {why}")]
pub struct OriginError {
    /// The value given.
    value: String,
    /// What is wrong with it.
    why: &'static str,
}

impl Origin {
    /// Parses `http://host[:port]` or `https://host[:port]`, as browsers
    /// send it and as `--allow-origin` takes it (a trailing `/` is allowed).
    pub fn parse(value: &str) -> Result<Origin, OriginError> {
        let bad = |why| OriginError { value: value.to_owned(), why };
        let uri: Uri = value.parse().map_err(|_| bad("cannot be read"))?;
        let scheme = uri.scheme_str().ok_or_else(|| bad("no scheme"))?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("an origin has no path or query"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("an origin has no user name"));
        }
        Origin::from_authority(&scheme, authority).ok_or_else(|| bad("no host"))
    }

    fn from_authority(scheme: &str, authority: &Authority) -> Option<Origin> {
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        Some(Origin { scheme: scheme.to_owned(), host, port: authority.port_u16().unwrap_or(default_port) })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The rule one listener applies at its handshakes.
#[derive(Debug, Clone)]
pub(super) struct OriginPolicy {
    /// The scheme of this server's own pages: `https` behind TLS, else `http`.
    own_scheme: &'static str,
    /// The `--allow-origin` values.
    allowed: Vec<Origin>,
}

impl OriginPolicy {
    pub(super) fn new(tls: bool, allowed: Vec<Origin>) -> OriginPolicy {
        OriginPolicy { own_scheme: if tls { "https" } else { "http" }, allowed }
    }

    /// Whether the handshake `request` may go on; `Err` names the origin refused.
    pub(super) fn check(&self, request: &Request) -> Result<(), String> {
        let Some(sent) = request.headers().get(ORIGIN) else { return Ok(()) };
        let text = sent.to_str().unwrap_or("");
        // `null` (a sandboxed page, a file) or anything unreadable is no origin we know.
        let Ok(origin) = Origin::parse(text) else { return Err(text.to_owned()) };
        if self.is_own(request, &origin) || self.allowed.contains(&origin) {
            Ok(())
        } else {
            Err(text.to_owned())
        }
    }

    /// Whether `origin` is this server's own, for the `Host` the browser asked.
    fn is_own(&self, request: &Request, origin: &Origin) -> bool {
        let Some(host) = request.headers().get(HOST).and_then(|h| h.to_str().ok()) else { return false };
        let Ok(authority) = host.parse::<Authority>() else { return false };
        Origin::from_authority(self.own_scheme, &authority).is_some_and(|own| own == *origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, origin: Option<&str>) -> Request {
        let mut builder = Request::builder().uri("/");
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        if let Some(origin) = origin {
            builder = builder.header(ORIGIN, origin);
        }
        builder.body(()).expect("a request")
    }

    #[test]
    fn origins_are_compared_by_scheme_host_and_port() {
        let plain = OriginPolicy::new(false, vec![Origin::parse("https://app.example.org").unwrap()]);
        let pass = [
            (Some("127.0.0.1:7878"), None),
            (Some("127.0.0.1:7878"), Some("http://127.0.0.1:7878")),
            (Some("LocalHost:80"), Some("http://localhost")),
            (Some("[::1]:7878"), Some("http://[::1]:7878")),
            (Some("127.0.0.1:7878"), Some("https://app.example.org")),
            (Some("127.0.0.1:7878"), Some("https://APP.example.org:443")),
            (None, Some("https://app.example.org")),
        ];
        for (host, origin) in pass {
            assert_eq!(plain.check(&request(host, origin)), Ok(()), "{host:?} {origin:?}");
        }
        let refuse = [
            (Some("127.0.0.1:7878"), "http://127.0.0.1:7879"),
            (Some("127.0.0.1:7878"), "https://127.0.0.1:7878"),
            (Some("127.0.0.1:7878"), "http://evil.example"),
            (Some("127.0.0.1:7878"), "null"),
            (Some("127.0.0.1:7878"), "http://app.example.org"),
            (None, "http://127.0.0.1:7878"),
        ];
        for (host, origin) in refuse {
            assert!(plain.check(&request(host, Some(origin))).is_err(), "{host:?} {origin:?}");
        }
        let tls = OriginPolicy::new(true, Vec::new());
        assert_eq!(tls.check(&request(Some("example.org"), Some("https://example.org"))), Ok(()));
        assert!(tls.check(&request(Some("example.org"), Some("http://example.org"))).is_err());
    }

    #[test]
    fn allow_origin_values_must_be_origins() {
        assert!(Origin::parse("https://example.org/").is_ok());
        for bad in
            ["example.org", "ftp://example.org", "https://example.org/app", "https://u@example.org", ""]
        {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
