//! libpq's TLS rules over sqlx: the `sslmode`, `sslrootcert`, `sslcert` and `sslkey` of a
//! PostgreSQL URL (or the `PGSSL*` variables) checked and mapped as libpq reads them, the
//! start-up probe that fails on a TLS cause, and the one-line causes of a failed TLS
//! connect, naming the variable (never the URL: it holds a password).

use std::{str::FromStr, time::Duration};

use rustls::pki_types::{CertificateDer, pem::PemObject};
use sqlx::{
    Connection,
    postgres::{PgConnectOptions, PgConnection, PgSslMode},
};

/// How long the start-up probe may take (TCP, TLS and the login).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

const MODE: (&[&str], &str) = (&["sslmode", "ssl-mode"], "PGSSLMODE");
const ROOT: (&[&str], &str) = (&["sslrootcert", "ssl-root-cert", "ssl-ca"], "PGSSLROOTCERT");
const CERT: (&[&str], &str) = (&["sslcert", "ssl-cert"], "PGSSLCERT");
const KEY: (&[&str], &str) = (&["sslkey", "ssl-key"], "PGSSLKEY");

/// A TLS parameter in effect: its name where it was given (the URL's parameter or the
/// `PG*` variable sqlx falls back to) and its value.
#[derive(Debug)]
struct Param {
    name: &'static str,
    value: String,
}

/// The last value of one of `keys` in the URL's query, else the variable's.
fn param(
    url: &str,
    (keys, var): (&[&'static str], &'static str),
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Param> {
    let query = url
        .split_once('?')
        .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| keys.contains(&k.as_ref()))
        .last()
        .map(|(_, v)| Param {
            name: keys[0],
            value: v.into_owned(),
        })
        .or_else(|| env(var).map(|value| Param { name: var, value }))
}

/// The connect options of a PostgreSQL URL with libpq's TLS rules (the crypto provider
/// installed first); the error names the parameter, never the URL.
pub fn options(url: &str) -> Result<PgConnectOptions, String> {
    crate::tls::install_crypto_provider();
    options_with(url, &|k| std::env::var(k).ok())
}

/// `options` with the `PG*` variables read through `env` (sqlx itself reads the process's).
fn options_with(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PgConnectOptions, String> {
    let mut mode = param(url, MODE, env).map(|p| mode_of(&p)).transpose()?;
    let root = param(url, ROOT, env);
    let system = root.as_ref().is_some_and(|r| r.value == "system");
    let url = if system {
        // libpq 16's "the system's roots": sqlx would read a file called "system", and
        // it trusts the system's roots anyway.
        if root.as_ref().is_some_and(|r| r.name == ROOT.1) {
            return Err(format!(
                "{}=system is not supported: unset it (the system's roots are always trusted)",
                ROOT.1
            ));
        }
        match mode {
            None | Some(PgSslMode::VerifyFull) => mode = Some(PgSslMode::VerifyFull),
            Some(_) => {
                return Err(
                    "sslrootcert=system needs sslmode=verify-full (libpq's rule)".to_string(),
                );
            }
        }
        without(url, ROOT.0)
    } else {
        url.to_string()
    };
    if let Some(r) = root.as_ref().filter(|_| !system) {
        certs(r)?;
    }
    match (param(&url, CERT, env), param(&url, KEY, env)) {
        (Some(cert), Some(key)) => {
            certs(&cert)?;
            non_empty(&key)?;
            crate::tls::read_key(&key.value).map_err(|e| format!("{}: {e}", key.name))?;
        }
        (Some(cert), None) => {
            return Err(format!(
                "{} is given without sslkey: a client certificate needs both",
                cert.name
            ));
        }
        (None, Some(key)) => {
            return Err(format!(
                "{} is given without sslcert: a client certificate needs both",
                key.name
            ));
        }
        (None, None) => {}
    }
    let mut opts =
        PgConnectOptions::from_str(&url).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
    if let Some(m) = mode {
        opts = opts.ssl_mode(m);
    }
    // libpq: with a root certificate, require verifies the chain as verify-ca does (sqlx
    // would verify nothing).
    if root.is_some() && !system && matches!(opts.get_ssl_mode(), PgSslMode::Require) {
        opts = opts.ssl_mode(PgSslMode::VerifyCa);
    }
    Ok(opts)
}

fn mode_of(p: &Param) -> Result<PgSslMode, String> {
    match p.value.to_ascii_lowercase().as_str() {
        "allow" => Err(format!(
            "{}=allow is not supported (sqlx would never use TLS); use disable, prefer or require",
            p.name
        )),
        v => PgSslMode::from_str(v).map_err(|_| {
            format!(
                "{}: unknown mode {:?} (disable, prefer, require, verify-ca, verify-full)",
                p.name, p.value
            )
        }),
    }
}

fn non_empty(p: &Param) -> Result<(), String> {
    if p.value.is_empty() {
        return Err(format!("{} is empty", p.name));
    }
    Ok(())
}

/// A certificate parameter's file (or, from a variable, sqlx's inline PEM), checked.
fn certs(p: &Param) -> Result<(), String> {
    non_empty(p)?;
    if p.value.starts_with("-----BEGIN CERTIFICATE-----") {
        // sqlx takes a variable's value starting so as the PEM itself.
        let parsed: Result<Vec<_>, _> =
            CertificateDer::pem_slice_iter(p.value.as_bytes()).collect();
        return match parsed {
            Ok(certs) if !certs.is_empty() => Ok(()),
            _ => Err(format!("{}: the inline PEM is no certificate", p.name)),
        };
    }
    crate::tls::read_certs(&p.value)
        .map(drop)
        .map_err(|e| format!("{}: {e}", p.name))
}

/// `url` without the query parameters named `keys`.
fn without(url: &str, keys: &[&str]) -> String {
    let Some((base, rest)) = url.split_once('?') else {
        return url.to_string();
    };
    let (query, fragment) = rest
        .split_once('#')
        .map_or((rest, None), |(q, f)| (q, Some(f)));
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if !keys.contains(&k.as_ref()) {
            kept.append_pair(&k, &v);
        }
    }
    let query = kept.finish();
    let mut out = base.to_string();
    if !query.is_empty() {
        out = format!("{out}?{query}");
    }
    if let Some(f) = fragment {
        out = format!("{out}#{f}");
    }
    out
}

/// Whether these options make TLS mandatory (require, verify-ca, verify-full).
pub fn tls_required(opts: &PgConnectOptions) -> bool {
    matches!(
        opts.get_ssl_mode(),
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
    )
}

/// The start-up check of a URL that asks for TLS: one connection, failing with one line
/// naming `var` for a TLS or certificate cause. A server that is down, refuses or does
/// not answer in time is left to the lazy pools (and their retries), as without TLS.
pub async fn probe(opts: &PgConnectOptions, var: &str) -> anyhow::Result<()> {
    if !tls_required(opts) {
        return Ok(());
    }
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(opts)).await {
        Err(_) => {
            tracing::warn!(
                "{var}: no answer from PostgreSQL within {}s; the pool keeps trying",
                PROBE_TIMEOUT.as_secs()
            );
            Ok(())
        }
        Ok(Ok(conn)) => {
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "closing the start-up check connection");
            }
            Ok(())
        }
        Ok(Err(e)) => match cause(&e, var) {
            Some(line) => Err(anyhow::anyhow!(line)),
            None => {
                tracing::warn!(error = %e, "{var}: PostgreSQL not reachable yet; the pool keeps trying");
                Ok(())
            }
        },
    }
}

/// A failed connect as the one line naming `var` and the TLS cause, or as it is.
pub fn named(e: sqlx::Error, var: &str) -> anyhow::Error {
    match cause(&e, var) {
        Some(line) => anyhow::anyhow!(line),
        None => e.into(),
    }
}

/// The one-line reason of a TLS or certificate failure, naming `var`; `None` when `e`
/// is no such failure (refused, reset, a bad password: not this module's to name).
pub fn cause(e: &sqlx::Error, var: &str) -> Option<String> {
    match e {
        sqlx::Error::Tls(inner) if inner.to_string().contains("does not support TLS") => {
            return Some(format!(
                "{var}: TLS: the server does not support TLS (a plaintext server; the sslmode asks for TLS)"
            ));
        }
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("28000") && db.message().contains("certificate") =>
        {
            return Some(format!(
                "{var}: TLS: the server refused the client certificate (sslcert, sslkey): {}",
                db.message()
            ));
        }
        _ => {}
    }
    if let Some(r) = crate::tls::rustls_error(e) {
        return Some(describe(r, var));
    }
    match e {
        sqlx::Error::Tls(inner) => Some(format!("{var}: TLS: {inner}")),
        _ => None,
    }
}

fn describe(e: &rustls::Error, var: &str) -> String {
    use crate::tls::Cause;
    let what = match crate::tls::cause_of(e) {
        Cause::Untrusted => {
            "the server's certificate is not trusted (unknown issuer; check sslrootcert): "
        }
        Cause::Expired => "the server's certificate has expired: ",
        Cause::WrongName => {
            "the host name is not in the server's certificate (sslmode=verify-full): "
        }
        Cause::CertificateRefused => "the server's certificate was refused: ",
        Cause::NotTls => "the server did not answer in TLS: ",
        Cause::HandshakeRefused => {
            "the server refused the handshake (client certificate, sslcert and sslkey, missing or not trusted?): "
        }
        Cause::Other => "",
    };
    format!("{var}: TLS: {what}{e}")
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
