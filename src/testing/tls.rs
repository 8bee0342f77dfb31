//! Certificates for test servers on loopback: a CA made for the run and a
//! server certificate for `127.0.0.1` and `localhost` signed by it (rcgen).
//!
//! Dev-mode OpenBao makes its own with `-dev-tls`; persistent (raft) servers
//! and containers read these files from their listener configuration.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use super::{TestSupportError, err};

/// The files of one server's TLS setup.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// Makes a CA and a server certificate for `127.0.0.1` and `localhost`, and
/// writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
pub fn loopback_server(dir: &Path) -> Result<TlsFiles, TestSupportError> {
    server(dir, &["127.0.0.1", "localhost"])
}

/// [`loopback_server`] for other names too (IP addresses or DNS names, such
/// as the containers of a cluster on a Docker network).
pub fn server(dir: &Path, names: &[&str]) -> Result<TlsFiles, TestSupportError> {
    fn e(what: &'static str) -> impl Fn(rcgen::Error) -> TestSupportError {
        move |x| err(format!("test certificate ({what}): {x}"))
    }
    let ca_key = KeyPair::generate().map_err(e("CA key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e("CA"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "vaultref test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(e("CA"))?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(e("server key"))?;
    let cert = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .map_err(e("server"))?
        .signed_by(&key, &issuer)
        .map_err(e("server"))?;
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let write = |p: &Path, text: &str| {
        std::fs::write(p, text).map_err(|x| err(format!("{}: {x}", p.display())))
    };
    write(&files.ca, &ca_cert.pem())?;
    write(&files.cert, &cert.pem())?;
    write(&files.key, &key.serialize_pem())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600))
        .map_err(|x| err(format!("key mode: {x}")))?;
    Ok(files)
}

/// A rustls server configuration serving `tls`'s certificate and key.
pub(crate) fn server_config(
    tls: &TlsFiles,
) -> Result<std::sync::Arc<rustls::ServerConfig>, TestSupportError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let e = |x: &dyn std::fmt::Display| err(format!("test server TLS: {x}"));
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|x| e(&x))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|x| e(&x))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|x| e(&x))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|x| e(&x))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|x| e(&x))?;
    Ok(std::sync::Arc::new(config))
}

/// A rustls client configuration trusting only the CA certificates in the
/// PEM file `ca`, or the platform's roots without one (someone's own Vault
/// with a public certificate).
pub(crate) fn client_config(
    ca: Option<&Path>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, TestSupportError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use rustls_platform_verifier::BuilderVerifierExt;
    let shown = ca.map_or("platform roots".into(), |p| p.display().to_string());
    let e = |x: &dyn std::fmt::Display| err(format!("test client TLS ({shown}): {x}"));
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|x| e(&x))?;
    let config = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|x| e(&x))? {
                roots.add(cert.map_err(|x| e(&x))?).map_err(|x| e(&x))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .map_err(|x| e(&x))?
            .with_no_client_auth(),
    };
    Ok(std::sync::Arc::new(config))
}
