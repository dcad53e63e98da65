//! Unit tests of `db::connect`: the sslmode mapping, the file checks and the causes.

use std::{collections::HashMap, io};

use rustls::{CertificateError, InvalidMessage};

use super::*;

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-ca.pem");
const KEY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rs256-test.key");
const BASE: &str = "postgres://u:hunter2@db.example:5432/courier";

fn opts(query: &str, vars: &[(&str, &str)]) -> Result<PgConnectOptions, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = options_with(&format!("{BASE}?{query}"), &|k| vars.get(k).cloned());
    if let Err(e) = &r {
        assert!(!e.contains("hunter2"), "the URL is printed: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
    r
}

fn mode(query: &str, vars: &[(&str, &str)]) -> PgSslMode {
    opts(query, vars).unwrap().get_ssl_mode()
}

fn not_pem() -> String {
    let p = std::env::temp_dir().join(format!("courier-pg-notpem-{}", uuid::Uuid::new_v4()));
    std::fs::write(&p, "not a certificate\n").unwrap();
    p.display().to_string()
}

#[test]
fn sslmodes_map_as_libpq_reads_them() {
    assert!(matches!(mode("sslmode=disable", &[]), PgSslMode::Disable));
    assert!(matches!(mode("sslmode=require", &[]), PgSslMode::Require));
    assert!(matches!(
        mode("sslmode=verify-full", &[]),
        PgSslMode::VerifyFull
    ));
    // require with a root certificate verifies the chain (libpq), sqlx alone would not.
    let q = format!("sslmode=require&sslrootcert={CA}");
    assert!(matches!(mode(&q, &[]), PgSslMode::VerifyCa));
    assert!(matches!(
        mode("", &[("PGSSLMODE", "require"), ("PGSSLROOTCERT", CA)]),
        PgSslMode::VerifyCa
    ));
    let q = format!("sslmode=verify-full&sslrootcert={CA}");
    assert!(matches!(mode(&q, &[]), PgSslMode::VerifyFull));
    // The URL wins over the variable.
    assert!(matches!(
        mode("sslmode=disable", &[("PGSSLMODE", "verify-full")]),
        PgSslMode::Disable
    ));
    assert!(tls_required(&opts("sslmode=verify-ca", &[]).unwrap()));
    assert!(!tls_required(&opts("sslmode=prefer", &[]).unwrap()));
}

#[test]
fn allow_and_unknown_modes_are_refused() {
    let e = opts("sslmode=allow", &[]).unwrap_err();
    assert!(e.starts_with("sslmode=allow is not supported"), "{e}");
    let e = opts("", &[("PGSSLMODE", "allow")]).unwrap_err();
    assert!(e.starts_with("PGSSLMODE=allow"), "{e}");
    let e = opts("sslmode=sometimes", &[]).unwrap_err();
    assert!(e.starts_with("sslmode: unknown mode"), "{e}");
}

#[test]
fn sslrootcert_system_means_the_system_roots_under_verify_full() {
    assert!(matches!(
        mode("sslrootcert=system", &[]),
        PgSslMode::VerifyFull
    ));
    assert!(matches!(
        mode(
            "sslrootcert=system&sslmode=verify-full&application_name=x",
            &[]
        ),
        PgSslMode::VerifyFull
    ));
    let e = opts("sslrootcert=system&sslmode=require", &[]).unwrap_err();
    assert!(e.contains("verify-full"), "{e}");
    assert_eq!(
        without("postgres://h/d?a=1&sslrootcert=system&b=x%20y#f", ROOT.0),
        "postgres://h/d?a=1&b=x+y#f"
    );
    assert_eq!(
        without("postgres://h/d?ssl-ca=system", ROOT.0),
        "postgres://h/d"
    );
}

#[test]
fn certificate_files_are_checked_and_named() {
    let missing = "/nonexistent/root.crt";
    let e = opts(&format!("sslmode=verify-full&sslrootcert={missing}"), &[]).unwrap_err();
    assert!(
        e.starts_with("sslrootcert: cannot read /nonexistent/root.crt"),
        "{e}"
    );
    let e = opts("", &[("PGSSLROOTCERT", missing)]).unwrap_err();
    assert!(e.starts_with("PGSSLROOTCERT: cannot read"), "{e}");
    let garbage = not_pem();
    let e = opts(&format!("sslrootcert={garbage}"), &[]).unwrap_err();
    assert!(
        e.starts_with("sslrootcert: ") && e.contains("no PEM certificate"),
        "{e}"
    );
    // A client certificate needs its key, and the other way round.
    let e = opts(&format!("sslcert={CA}"), &[]).unwrap_err();
    assert!(e.starts_with("sslcert is given without sslkey"), "{e}");
    let e = opts(&format!("sslkey={KEY_FILE}"), &[]).unwrap_err();
    assert!(e.starts_with("sslkey is given without sslcert"), "{e}");
    let e = opts("", &[("PGSSLKEY", KEY_FILE)]).unwrap_err();
    assert!(e.starts_with("PGSSLKEY is given without sslcert"), "{e}");
    let e = opts(&format!("sslcert={CA}&sslkey={garbage}"), &[]).unwrap_err();
    assert!(
        e.starts_with("sslkey: ") && e.contains("no PEM private key"),
        "{e}"
    );
    let e = opts(&format!("sslcert={garbage}&sslkey={KEY_FILE}"), &[]).unwrap_err();
    assert!(
        e.starts_with("sslcert: ") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = opts("sslrootcert=", &[]).unwrap_err();
    assert_eq!(e, "sslrootcert is empty");
    opts(
        &format!("sslmode=verify-full&sslrootcert={CA}&sslcert={CA}&sslkey={KEY_FILE}"),
        &[],
    )
    .unwrap();
    // sqlx's inline PEM in a variable.
    let pem = std::fs::read_to_string(CA).unwrap();
    assert!(matches!(
        mode("sslmode=require", &[("PGSSLROOTCERT", &pem)]),
        PgSslMode::VerifyCa
    ));
    std::fs::remove_file(&garbage).unwrap();
}

fn wrapped(e: rustls::Error) -> sqlx::Error {
    sqlx::Error::Io(io::Error::new(io::ErrorKind::InvalidData, e))
}

#[test]
fn tls_causes_are_named() {
    let cases = [
        (
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "not trusted",
        ),
        (
            rustls::Error::InvalidCertificate(CertificateError::Expired),
            "expired",
        ),
        (
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            "host name",
        ),
        (
            rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
            "did not answer in TLS",
        ),
        (
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
            "client certificate",
        ),
    ];
    for (e, want) in cases {
        let line = cause(&wrapped(e), "DATABASE_URL").unwrap();
        assert!(line.starts_with("DATABASE_URL: TLS: "), "{line}");
        assert!(line.contains(want), "{line}");
        assert!(!line.contains('\n'));
    }
    // Inside sqlx's own TLS error too, and sqlx's answer to a plaintext server.
    let inner = sqlx::Error::Tls(Box::new(rustls::Error::InvalidCertificate(
        CertificateError::UnknownIssuer,
    )));
    assert!(cause(&inner, "X").unwrap().contains("not trusted"));
    let plain = sqlx::Error::Tls("server does not support TLS".into());
    let line = cause(&plain, "DATABASE_URL").unwrap();
    assert!(
        line.starts_with("DATABASE_URL: TLS: the server does not support TLS"),
        "{line}"
    );
    assert_eq!(named(plain, "DATABASE_URL").to_string(), line);
    // An outage is no TLS cause: the pools keep trying.
    let refused = sqlx::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
    assert!(cause(&refused, "DATABASE_URL").is_none());
    assert!(cause(&sqlx::Error::PoolTimedOut, "DATABASE_URL").is_none());
}

#[test]
fn the_configuration_names_database_url_never_the_url() {
    let cfg = |url: String| {
        crate::config::Config::from_lookup(|k| match k {
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
    };
    for (query, reason) in [
        ("sslmode=allow".to_string(), "sslmode=allow"),
        (
            "sslrootcert=/nonexistent/ca.pem".to_string(),
            "sslrootcert: cannot read",
        ),
        (format!("sslcert={CA}"), "sslcert is given without sslkey"),
    ] {
        let e = cfg(format!("{BASE}?{query}")).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        assert!(e.reason.starts_with(reason), "{}", e.reason);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    let ok = cfg(format!("{BASE}?sslmode=require&sslrootcert={CA}")).unwrap();
    let opts = crate::db::options(&ok, false).unwrap(); // what the pools use
    assert!(matches!(opts.get_ssl_mode(), PgSslMode::VerifyCa));
}
