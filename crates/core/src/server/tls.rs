//! TLS for `softphone server --tls-cert CERT.pem --tls-key KEY.pem`: reads
//! the PEM files into a rustls configuration (ring as the crypto provider),
//! so that every problem with them is found, and named, at start rather
//! than at the first client's handshake.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the certificate or the key cannot be served; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read (missing, no permission).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file named on the command line.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate {
        /// The file named on the command line.
        path: PathBuf,
    },
    /// The file holds no PEM private key, or one that cannot be read.
    #[error("{} holds no usable PEM private key: {why}", path.display())]
    BadKey {
        /// The file named on the command line.
        path: PathBuf,
        /// What the PEM reader said.
        why: String,
    },
    /// rustls refused the pair (e.g. the key is not the certificate's).
    #[error("the certificate {} and the key {} cannot be served together: {why}", cert.display(), key.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        why: String,
    },
}

/// Reads every certificate in a PEM file, in order (leaf first, then its chain).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

/// Whether `cert` is a CA certificate (basicConstraints CA:TRUE, as
/// openssl's one-line self-signed certificate is): browsers and most TLS
/// clients refuse it as a server's own; softphone's clients accept it only
/// pinned with `--ca-file`.
pub fn is_ca_certificate(cert: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(cert).is_ok_and(|(_, parsed)| parsed.is_ca())
}

/// Loads a certificate chain and its private key into a server
/// configuration; warns when the certificate is a CA certificate.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = read_certificates(cert)?;
    if is_ca_certificate(&chain[0]) {
        tracing::warn!(
            "the certificate {} is a CA certificate (basicConstraints CA:TRUE): browsers and other \
             TLS clients refuse it as a server's own (CaUsedAsEndEntity); softphone's clients accept \
             it only pinned with --ca-file. Make one with CA:FALSE (README, \"TLS\")",
            cert.display()
        );
    }
    let key_bytes = std::fs::read(key).map_err(|source| TlsError::Read { path: key.into(), source })?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| TlsError::BadKey { path: key.into(), why: e.to_string() })?;
    let mismatch =
        |e: rustls::Error| TlsError::Mismatch { cert: cert.into(), key: key.into(), why: e.to_string() };
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(mismatch)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(mismatch)?;
    Ok(Arc::new(config))
}
