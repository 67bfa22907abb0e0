//! The Redis client of a node: `redis://` or `rediss://` (TLS, through
//! rustls with ring, like the rest of the server), with the user and
//! password of the URL (`rediss://USER:PASS@HOST:PORT/`, a Redis ACL user)
//! and, when given, the certificate authority the Redis server's
//! certificate is checked against instead of the system's roots.

use redis::{IntoConnectionInfo, RedisResult, TlsCertificates};

/// A client of the Redis `info` names; `ca` is a PEM file's bytes
/// (`--redis-ca-file`), used for `rediss://` only.
pub fn redis_client(info: impl IntoConnectionInfo, ca: Option<&[u8]>) -> RedisResult<redis::Client> {
    // The redis crate builds its TLS configuration with the process's
    // default crypto provider: ring, as everywhere else (the first call installs it).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let info = info.into_connection_info()?;
    match (ca, matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. })) {
        (Some(ca), true) => redis::Client::build_with_tls(
            info,
            TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) },
        ),
        _ => redis::Client::open(info),
    }
}
