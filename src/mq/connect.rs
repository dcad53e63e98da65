//! The one way Courier opens a RabbitMQ connection (the link's first connection and
//! every reconnect, and `courier dlq`): plain `amqp://` or `amqps://` with the CA and
//! client certificate of the configuration (EXTERNAL auth with a client certificate),
//! bounded by a timeout; TLS failures are named by cause and variable. With several
//! nodes (`RABBITMQ_URIS`) a connection goes to one of them: [`open_node`] to a given
//! one (the link walks them round-robin), [`open`] to the first that answers.

use std::{error::Error as StdError, time::Duration};

use lapin::{
    Connection, ConnectionProperties,
    tcp::{OwnedIdentity, OwnedTLSConfig},
    uri::{AMQPUri, SASLMechanism},
};
use secrecy::ExposeSecret;

use crate::config::RabbitConfig;

/// How long a connection attempt (TCP, TLS and the AMQP handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The heartbeat asked for when several nodes are given and the URI names none: a node
/// cut off by the network (no reset reaches us) is noticed after two missed heartbeats,
/// ~10 s, instead of the broker's default 60 s.
pub const CLUSTER_HEARTBEAT_SECS: u16 = 5;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A TLS (or URI) failure that no retry will cure; the text names the variable and
    /// the cause.
    #[error("{0}")]
    Permanent(String),
    #[error("RABBITMQ_URI: no answer within {}s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    #[error("RABBITMQ_URI: {0}")]
    Other(#[source] lapin::Error),
}

impl ConnectError {
    /// Whether retrying cannot help (a certificate or TLS set-up problem).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

/// Opens a connection named `name` to the first node that answers, in the order of
/// the configuration; a permanent (TLS) failure stops at once.
pub async fn open(config: &RabbitConfig, name: &str) -> Result<Connection, ConnectError> {
    let mut last = ConnectError::Timeout;
    for node in 0..config.uris.len() {
        match open_node(config, node, name).await {
            Ok(conn) => return Ok(conn),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Opens a connection named `name` to node `node` (an index into `config.uris`,
/// taken modulo their number).
pub async fn open_node(
    config: &RabbitConfig,
    node: usize,
    name: &str,
) -> Result<Connection, ConnectError> {
    let Some(uri) = config.uris.get(node % config.uris.len().max(1)) else {
        return Err(ConnectError::Permanent(
            "RABBITMQ_URIS: no node given".into(),
        ));
    };
    let uri: AMQPUri = uri
        .expose_secret()
        .parse()
        .map_err(|_| ConnectError::Permanent("RABBITMQ_URI: not a valid AMQP URI".into()))?;
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let attempt = async {
        let runtime = lapin::runtime::default_runtime()?;
        let uri = with_heartbeat(with_auth(uri, config), config.uris.len());
        Connection::connect_uri_with_config(uri, props, tls(config), runtime).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Err(_) => Err(ConnectError::Timeout),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(match cause(&e) {
            Some(line) => ConnectError::Permanent(line),
            None => ConnectError::Other(e),
        }),
    }
}

/// A start-up check: fails only for a permanent (TLS) cause; a broker that is down or
/// refusing is left to the link, which keeps retrying as before.
pub async fn preflight(config: &RabbitConfig, name: &str) -> anyhow::Result<()> {
    if !config
        .uris
        .iter()
        .any(|u| u.expose_secret().starts_with("amqps://"))
    {
        return Ok(());
    }
    match open(config, name).await {
        Ok(conn) => {
            if let Err(e) = conn.close(200, "start-up check".into()).await {
                tracing::debug!(error = %e, "closing the start-up check connection");
            }
            Ok(())
        }
        Err(e) if e.is_permanent() => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "rabbitmq not reachable yet, the link keeps trying");
            Ok(())
        }
    }
}

/// EXTERNAL when a client certificate is given and the URI names no mechanism.
fn with_auth(mut uri: AMQPUri, config: &RabbitConfig) -> AMQPUri {
    if config.tls.client.is_some() && uri.query.auth_mechanism.is_none() {
        uri.query.auth_mechanism = Some(SASLMechanism::External);
    }
    uri
}

/// [`CLUSTER_HEARTBEAT_SECS`] for a cluster (`nodes` > 1) unless the URI sets `heartbeat`.
fn with_heartbeat(mut uri: AMQPUri, nodes: usize) -> AMQPUri {
    if nodes > 1 && uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(CLUSTER_HEARTBEAT_SECS);
    }
    uri
}

fn tls(config: &RabbitConfig) -> OwnedTLSConfig {
    OwnedTLSConfig {
        cert_chain: config.tls.ca.clone(),
        identity: config.tls.client.as_ref().map(|c| OwnedIdentity::PKCS8 {
            pem: c.cert.clone().into_bytes(),
            key: c.key.expose_secret().as_bytes().to_vec(),
        }),
    }
}

/// The one-line reason of a TLS failure in `e`'s chain, naming its variable.
pub fn cause(e: &(dyn StdError + 'static)) -> Option<String> {
    crate::tls::rustls_error(e).map(describe)
}

fn describe(e: &rustls::Error) -> String {
    use crate::tls::Cause;
    let cause = crate::tls::cause_of(e);
    let what = match cause {
        Cause::Untrusted => {
            "the broker's certificate is not trusted (unknown issuer; check RABBITMQ_CA_CERT): "
        }
        Cause::Expired => "the broker's certificate has expired: ",
        Cause::WrongName => "the host name is not in the broker's certificate: ",
        Cause::CertificateRefused => "the broker's certificate was refused: ",
        Cause::NotTls => "the broker did not answer in TLS (a plaintext port under amqps://?): ",
        Cause::HandshakeRefused => {
            "the broker refused the handshake (client certificate missing or not trusted?): "
        }
        Cause::Other => "",
    };
    let var = match cause {
        Cause::HandshakeRefused => "RABBITMQ_CLIENT_CERT",
        _ => "RABBITMQ_URI",
    };
    format!("{var}: TLS: {what}{e}")
}

#[cfg(test)]
mod tests {
    use std::io;

    use rustls::{CertificateError, InvalidMessage};

    use super::*;

    fn wrapped(e: rustls::Error) -> lapin::Error {
        io::Error::new(io::ErrorKind::InvalidData, e).into()
    }

    #[test]
    fn a_client_certificate_means_external() {
        let config = crate::config::Config::from_lookup(|k| {
            (k == "JWT_SECRET").then(|| "0123456789abcdef0123456789abcdef".to_string())
        })
        .unwrap();
        let mut rabbit = config.rabbitmq;
        let uri = |r: &RabbitConfig| with_auth(r.uri.expose_secret().parse().unwrap(), r);
        assert_eq!(uri(&rabbit).query.auth_mechanism, None);
        rabbit.tls.client = Some(crate::config::ClientIdentity {
            cert: "cert".into(),
            key: "key".to_string().into(),
        });
        assert_eq!(
            uri(&rabbit).query.auth_mechanism,
            Some(SASLMechanism::External)
        );
        assert!(tls(&rabbit).identity.is_some());
        // A mechanism the URI names wins.
        rabbit.uri = "amqps://h/v?auth_mechanism=plain".to_string().into();
        assert_eq!(
            uri(&rabbit).query.auth_mechanism,
            Some(SASLMechanism::Plain)
        );
    }

    #[test]
    fn a_cluster_gets_a_short_heartbeat_unless_the_uri_names_one() {
        let uri = |s: &str| s.parse::<AMQPUri>().unwrap();
        assert_eq!(with_heartbeat(uri("amqp://h/v"), 1).query.heartbeat, None);
        let short = with_heartbeat(uri("amqp://h/v"), 3).query.heartbeat;
        assert_eq!(short, Some(CLUSTER_HEARTBEAT_SECS));
        let named = with_heartbeat(uri("amqp://h/v?heartbeat=30"), 3)
            .query
            .heartbeat;
        assert_eq!(named, Some(30));
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
                "plaintext port",
            ),
        ];
        for (e, want) in cases {
            let line = cause(&wrapped(e)).unwrap();
            assert!(line.starts_with("RABBITMQ_URI: TLS: "), "{line}");
            assert!(line.contains(want), "{line}");
            assert!(!line.contains('\n'));
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(cause(&lapin::Error::from(refused)).is_none());
    }
}
