//! How a `ca_file` is trusted: its certificates are roots for chains they
//! sign (a private CA), and each is also accepted as the server's own
//! certificate, exactly (a self-signed server certificate, pinned). The
//! pin holds whatever the certificate's basicConstraints say: openssl's
//! one-line self-signed certificate is a CA certificate, which webpki
//! refuses as a server's own (`CaUsedAsEndEntity`). The handshake's
//! signature is checked either way, so only the holder of the pinned
//! certificate's key gets through.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

/// Accepts a server certificate that is byte for byte one of `pinned`,
/// else asks webpki (the public roots and the `ca_file`'s).
#[derive(Debug)]
pub(crate) struct PinnedOrWebPki {
    /// The `ca_file`'s certificates, as DER.
    pinned: Vec<CertificateDer<'static>>,
    /// The usual chain and name checks, for every other certificate.
    webpki: Arc<WebPkiServerVerifier>,
    /// The signature algorithms of the crypto provider (ring).
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedOrWebPki {
    pub(crate) fn new(
        pinned: Vec<CertificateDer<'static>>,
        webpki: Arc<WebPkiServerVerifier>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        PinnedOrWebPki { pinned, webpki, algorithms }
    }
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.pinned.iter().any(|pin| pin.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
