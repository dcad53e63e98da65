//! The one TLS stack (rustls with ring, no OpenSSL): the process-wide crypto provider
//! the PEM checks the configuration runs on certificate and key files, and the rustls
//! error a failed connect carries.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Installs ring as the process's default rustls provider (once; later calls and a
/// provider installed first by someone else are fine). Every entry point calls it
/// before it opens a connection, so no library has to pick a provider itself.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An Err means another thread installed one first, which serves as well.
        let _already = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The rustls error in `e`'s chain, also where an `io::Error` carries it (its
/// `source()` skips what it wraps): what a failed TLS connect of any engine is about.
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        let found = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if found.is_some() {
            return found;
        }
        next = err.source();
    }
    None
}

/// What a failed TLS handshake was about, as each engine's one-line cause names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The certificate does not chain to a trusted CA.
    Untrusted,
    Expired,
    /// The host name is not in the certificate.
    WrongName,
    /// Any other refusal of the certificate.
    CertificateRefused,
    /// The peer did not answer in TLS (a plaintext port).
    NotTls,
    /// The peer sent an alert (typically: client certificate missing or untrusted).
    HandshakeRefused,
    Other,
}

/// The cause a rustls error names.
pub fn cause_of(e: &rustls::Error) -> Cause {
    use rustls::{CertificateError as C, Error as E, InvalidMessage};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => Cause::Untrusted,
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => Cause::Expired,
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            Cause::WrongName
        }
        E::InvalidCertificate(_) => Cause::CertificateRefused,
        E::InvalidMessage(InvalidMessage::InvalidContentType) => Cause::NotTls,
        E::AlertReceived(_) => Cause::HandshakeRefused,
        _ => Cause::Other,
    }
}

/// The contents of a PEM file of one or more certificates, checked.
pub fn read_certs(path: &str) -> Result<Vec<u8>, String> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no PEM certificate"));
    }
    Ok(pem)
}

/// The contents of a PEM private key file, checked (its text is never printed).
pub fn read_key(path: &str) -> Result<Vec<u8>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| format!("{path} holds no PEM private key"))?;
    Ok(pem)
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_pem_files_are_named() {
        let e = read_certs("/nonexistent/ca.pem").unwrap_err();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("cannot read"),
            "{e}"
        );
        let path = std::env::temp_dir().join(format!("courier-notpem-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, b"hello, not a certificate\n").unwrap();
        let p = path.display().to_string();
        assert!(read_certs(&p).unwrap_err().contains("no PEM certificate"));
        assert!(read_key(&p).unwrap_err().contains("no PEM private key"));
        std::fs::remove_file(&path).unwrap();
    }
}
