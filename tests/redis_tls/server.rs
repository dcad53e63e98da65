//! A throwaway PKI (openssl CLI) and a real `redis-server` with only a TLS port, both
//! removed when dropped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A CA, a server certificate for `IP:127.0.0.1`, an expired one, a client certificate
/// and a second, unrelated CA, in a temp dir of their own.
pub struct Pki {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

impl Pki {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("courier-pki-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = |args: &[&str]| openssl(&dir, args);
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=courier-test-{ca}"),
            );
            o(&[
                &["req", "-x509"][..],
                &EC,
                &[
                    "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj,
                ],
            ]
            .concat());
        }
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, subj) in [
            ("server", "/CN=courier-test-server"),
            ("client", "/CN=courier"),
        ] {
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            o(&[
                &["req"][..],
                &EC,
                &["-nodes", "-keyout", &key, "-out", &csr, "-subj", subj],
            ]
            .concat());
            o(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ]);
        }
        // Expired: valid in January 2020 only (`openssl ca` sets both dates).
        let cnf = format!(
            "[ca]\ndefault_ca=d\n[d]\ndatabase={0}/index.txt\nnew_certs_dir={0}\nserial={0}/serial\n\
             default_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n\
             [ext]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            dir.display()
        );
        std::fs::write(dir.join("ca.cnf"), cnf).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        o(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "server.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-extensions",
            "ext",
            "-notext",
        ]);
        Self { dir }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free TCP port on 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-server` with only a TLS port (mutual TLS: `--tls-auth-clients yes`), an ACL
/// user `courier`/`ACL_PASSWORD`, no persistence; killed when dropped.
pub struct RedisTls {
    pub port: u16,
    cert: String,
    key: String,
    ca: String,
    child: Option<Child>,
}

pub const ACL_PASSWORD: &str = "tls-test-pw";

impl RedisTls {
    pub fn start(pki: &Pki, cert: &str) -> Self {
        let mut server = Self {
            port: free_port(),
            cert: pki.path(cert),
            key: pki.path("server.key"),
            ca: pki.path("ca.pem"),
            child: None,
        };
        server.up();
        server
    }

    /// Starts the server (again, on the same port) and waits until it listens.
    pub fn up(&mut self) {
        let password = format!(">{ACL_PASSWORD}");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-cert-file", &self.cert, "--tls-key-file", &self.key])
            .args(["--tls-ca-cert-file", &self.ca, "--tls-auth-clients", "yes"])
            .args(["--user", "courier", "on", &password, "~*", "&*", "+@all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server never listened on {}", self.port);
    }

    /// Kills the server and waits until it is gone.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisTls {
    fn drop(&mut self) {
        self.down();
    }
}
