//! What a node says, in TLS, to drainpipe's client certificate (or to its lack of one).
//!
//! Under TLS 1.3 a server judges the client's certificate after the client's side of the
//! handshake is done, so its refusal (an alert) races the first request: hyper may then report
//! only "connection was not ready", and the reason is lost. [`tls_answer`] connects once more,
//! sends nothing, and reads the server's first word.

use std::sync::Arc;
use std::time::Duration;

use elasticsearch::http::Url;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

/// How long the server has to say something once the handshake is done.
const LISTEN_FOR: Duration = Duration::from_secs(2);

/// The server's TLS refusal of `identity_pem` (a client certificate chain and key, PEM), or of
/// no certificate, e.g. "received fatal alert: CertificateRequired"; `None` if it said nothing
/// against it within [`LISTEN_FOR`].
pub(crate) async fn tls_answer(url: &Url, identity_pem: Option<&[u8]>) -> Option<String> {
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default()?;
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let config = match identity_pem {
        Some(pem) => {
            let chain = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().ok()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(pem).ok()?).ok()?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.clone()).ok()?;
    let listen = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await.ok()?;
        let mut tls = match TlsConnector::from(Arc::new(config)).connect(name, tcp).await {
            Ok(tls) => tls,
            Err(e) => return Some(e.to_string()),
        };
        let mut byte = [0u8; 1];
        tls.read(&mut byte).await.err().map(|e| e.to_string())
    };
    tokio::time::timeout(LISTEN_FOR, listen).await.ok().flatten()
}

/// Takes any server certificate: the request that failed has already checked it (a bad one
/// fails there, before this runs), and this connection sends nothing but the handshake.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
