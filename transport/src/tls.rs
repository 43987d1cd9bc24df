//! TLS from MMM's `<socket> type ssl` keys: `cert_file` and `key_file` are this program's
//! certificate chain and key, `ca_file` the certificate authority of the cluster.
//!
//! Both ends authenticate: a listener requires a client certificate signed by the CA (MMM's
//! `SSL_verify_mode 0x03`), and a client accepts only a server certificate signed by the same
//! CA, never one from the system's roots. As in MMM, one certificate may serve every host, so
//! the name in the server's certificate is not compared with the address dialled: the CA is
//! the cluster's identity. Crypto comes from `ring`; TLS 1.2 and 1.3.

use std::path::Path;
use std::sync::Arc;

use mmm_config::Socket;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::secret::check_private;
use crate::Error;

/// The two sides of TLS for one program.
#[derive(Clone, Debug)]
pub struct Tls {
    /// For listeners: requires a client certificate from the CA.
    pub server: Arc<ServerConfig>,
    /// For clients: presents this program's certificate, trusts only the CA.
    pub client: ClientConfig,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(key: &'static str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tls {
        key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(key, path, e))?;
    if certs.is_empty() {
        return Err(tls_error(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    check_private("key_file", path)?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_error("key_file", path, e))
}

fn required<'a>(
    key: &'static str,
    value: &'a Option<std::path::PathBuf>,
) -> Result<&'a Path, Error> {
    value.as_deref().ok_or(Error::MissingTlsKey { key })
}

impl Tls {
    /// Loads the files named in `<socket>`; every problem names the key and the file.
    pub fn load(socket: &Socket) -> Result<Tls, Error> {
        let cert_path = required("cert_file", &socket.cert_file)?;
        let key_path = required("key_file", &socket.key_file)?;
        let ca_path = required("ca_file", &socket.ca_file)?;
        let chain = certs("cert_file", cert_path)?;
        let key = private_key(key_path)?;
        let mut roots = RootCertStore::empty();
        for ca in certs("ca_file", ca_path)? {
            roots
                .add(ca)
                .map_err(|e| tls_error("ca_file", ca_path, e))?;
        }
        let roots = Arc::new(roots);
        let provider = provider();

        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_error("ca_file", ca_path, e))?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("cert_file", cert_path, e))?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| tls_error("key_file", key_path, e))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];

        let servers = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| tls_error("ca_file", ca_path, e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("cert_file", cert_path, e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ClusterCa { inner: servers }))
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_error("key_file", key_path, e))?;
        Ok(Tls {
            server: Arc::new(server),
            client,
        })
    }
}

/// Accepts a server certificate that chains to the cluster's CA, whatever name it carries
/// (see the module documentation); everything else is webpki's verdict.
#[derive(Debug)]
struct ClusterCa {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ClusterCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain, validity and usage before the name, so a name error means
        // everything else passed.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
