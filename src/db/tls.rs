//! TLS for database connections with libpq's `sslmode` semantics: `prefer` and
//! `require` encrypt without checking the certificate, `verify-ca` checks the chain,
//! `verify-full` checks the chain and the host name.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::settings::{SslMode, Target};
use crate::Error;

/// The TLS connector for a target; unused by tokio-postgres when sslmode is `disable`.
pub fn connector(target: &Target) -> Result<MakeRustlsConnect, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Settings(format!("TLS setup failed: {e}")))?;
    let config = match target.ssl_mode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PartialVerifier {
                provider,
                chain: None,
            }))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(root_store(target.ssl_root_cert.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| Error::Settings(format!("TLS setup failed: {e}")))?;
            if target.ssl_mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(PartialVerifier {
                        provider,
                        chain: Some(webpki),
                    }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The CA certificates to trust: `sslrootcert`/`PGSSLROOTCERT`, else libpq's
/// `~/.postgresql/root.crt`, else the system's store.
fn root_store(explicit: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    let default_file = dirs::home_dir().map(|home| home.join(".postgresql/root.crt"));
    let file = explicit
        .map(Path::to_path_buf)
        .or_else(|| default_file.filter(|path| path.exists()));
    match file {
        Some(path) if path.as_os_str() != "system" => {
            let certificates = CertificateDer::pem_file_iter(&path).map_err(|e| {
                Error::Settings(format!(
                    "cannot read root certificate {}: {e}",
                    path.display()
                ))
            })?;
            for certificate in certificates {
                let certificate = certificate.map_err(|e| {
                    Error::Settings(format!("bad certificate in {}: {e}", path.display()))
                })?;
                store.add(certificate).map_err(|e| {
                    Error::Settings(format!("bad certificate in {}: {e}", path.display()))
                })?;
            }
        }
        _ => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(certificate);
            }
        }
    }
    if store.is_empty() {
        return Err(Error::Settings(
            "sslmode verify-ca/verify-full needs a root certificate: set sslrootcert or PGSSLROOTCERT"
                .into(),
        ));
    }
    Ok(store)
}

/// libpq's weaker modes: `require` (no `chain`: encrypted, peer not authenticated) and
/// `verify-ca` (the chain must lead to a trusted root, any host name will do).
#[derive(Debug)]
struct PartialVerifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for PartialVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
