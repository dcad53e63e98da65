//! The socketioxide and engine.io patches (patches/README.md) are the code that gets
//! built, every change of them. Each check fails on its own when its part is lost:
//! - Cargo.lock resolves socketioxide, engineioxide and engineioxide-core from
//!   `patches/` (no registry copy, no unused patch), at the versions socketioxide's pin
//!   names and it needs;
//! - each change's code and its "Courier's patch" marker are in the patched source;
//! - what can be measured from outside is measured: the packet and slot sizes
//!   (changes 1 and 2), the WebSocket task's future (changes 3 and 5), the CONNECT
//!   answer with and without a pid set by a middleware (change 6).

use std::{fs, path::Path, sync::Arc};

use engineioxide::{
    DisconnectReason, ProtocolVersion, Socket, Str, handler::EngineIoHandler,
    service::EngineIoService,
};
use engineioxide_core::{Packet, PacketBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `[[package]]` entries of Cargo.lock named `name`: (version, source).
fn locked(lock: &str, name: &str) -> Vec<(String, Option<String>)> {
    lock.split("[[package]]")
        .skip(1)
        .filter_map(|entry| {
            let field = |key: &str| {
                entry.lines().find_map(|l| {
                    l.strip_prefix(key)
                        .and_then(|r| r.trim().strip_prefix('='))
                        .map(|v| v.trim().trim_matches('"').to_string())
                })
            };
            (field("name ").as_deref() == Some(name)).then(|| {
                let version = field("version ").unwrap_or_default();
                (version, field("source "))
            })
        })
        .collect()
}

/// `version = "…"` of a crate's own Cargo.toml (its `[package]` comes first).
fn package_version(manifest: &str) -> String {
    read(manifest)
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

#[test]
fn the_lock_builds_the_patched_crates_for_the_pinned_socketioxide() {
    let lock = read("Cargo.lock");
    let manifest = read("Cargo.toml");
    assert!(
        !lock.contains("[[patch.unused]]"),
        "Cargo.lock lists an unused patch: cargo builds crates.io's engine.io instead"
    );
    let sio = locked(&lock, "socketioxide");
    assert_eq!(sio.len(), 1, "one socketioxide: {sio:?}");
    let pin = format!("socketioxide = {{ version = \"={}\"", sio[0].0);
    assert!(
        manifest.contains(&pin),
        "Cargo.toml must pin the locked socketioxide exactly ({pin} … }}): the patches are \
         made for that version (patches/README.md)"
    );
    for (name, dir) in [
        ("socketioxide", "patches/socketioxide"),
        ("engineioxide", "patches/engineioxide"),
        ("engineioxide-core", "patches/engineioxide-core"),
    ] {
        let entries = locked(&lock, name);
        assert_eq!(
            entries.len(),
            1,
            "{name}: more than one copy is built (the patch no longer satisfies socketioxide?): {entries:?}"
        );
        let (version, source) = &entries[0];
        assert_eq!(
            source, &None,
            "{name} comes from {source:?}, not from {dir} (a path has no source)"
        );
        assert_eq!(
            version,
            &package_version(&format!("{dir}/Cargo.toml")),
            "{name}: the locked version is not {dir}'s"
        );
        assert!(
            manifest.contains(&format!("{name} = {{ path = \"{dir}\" }}")),
            "Cargo.toml's [patch.crates-io] no longer points {name} at {dir}"
        );
    }
}

/// One change of patches/README.md: where it is, what its code must and must not say.
struct Change {
    n: u8,
    file: &'static str,
    present: &'static [&'static str],
    absent: &'static [&'static str],
}

const CORE_PACKET: &str = "patches/engineioxide-core/src/packet.rs";
const WS: &str = "patches/engineioxide/src/transport/ws.rs";
const POLLING: &str = "patches/engineioxide/src/transport/polling.rs";
const SOCKET: &str = "patches/engineioxide/src/socket.rs";
const SIO_NS: &str = "patches/socketioxide/src/ns.rs";
const SIO_SOCKET: &str = "patches/socketioxide/src/socket.rs";

const CHANGES: &[Change] = &[
    Change {
        n: 1,
        file: CORE_PACKET,
        present: &["pub type PacketBuf = SmallVec<[Packet; 1]>;"],
        absent: &["SmallVec<[Packet; 2]>"],
    },
    Change {
        n: 2,
        file: CORE_PACKET,
        present: &["Open(Box<OpenPacket>),"],
        absent: &["Open(OpenPacket),"],
    },
    Change {
        n: 2,
        file: POLLING,
        present: &["Packet::Open(Box::new(packet))"],
        absent: &["Packet::Open(packet)"],
    },
    Change {
        n: 2,
        file: WS,
        present: &["Packet::Open(Box::new(make_open_packet("],
        absent: &["Packet::Open(make_open_packet("],
    },
    Change {
        n: 3,
        file: WS,
        present: &[
            "let upgrade = hyper::upgrade::on(Request::from_parts(parts.clone(), body));",
            "let parts = Box::new(parts);",
            "async fn open<H: EngineIoHandler, S>(",
            "req_data: Box<Parts>,",
        ],
        absent: &["hyper::upgrade::on(req)"],
    },
    Change {
        n: 4,
        file: SOCKET,
        present: &[".with_cancellation_token_owned(cancellation_token)"],
        absent: &["run_until_cancelled_owned("],
    },
    Change {
        n: 5,
        file: WS,
        present: &[
            "let opening = Box::pin(open(&engine, conn, protocol, sid, req_data));",
            "spawn_writer::<H, S>(socket.clone(), tx);",
            "fn spawn_writer<H: EngineIoHandler, S>(",
        ],
        absent: &["tokio::spawn(forward_to_socket::<H, S>(socket.clone(), tx));"],
    },
    // socketioxide 1: the CONNECT answer carries the pid a middleware set.
    Change {
        n: 6,
        file: SIO_NS,
        present: &[
            "let pid = socket.extensions.remove::<crate::socket::ConnectPid>().map(|p| p.0);",
            "let payload = ConnectAnswer { sid: socket.id, pid };",
            "#[serde(skip_serializing_if = \"Option::is_none\")]",
        ],
        absent: &["let payload = ConnectPacket { sid: socket.id };"],
    },
    Change {
        n: 6,
        file: SIO_SOCKET,
        present: &["pub struct ConnectPid(pub String);"],
        absent: &[],
    },
];

#[test]
fn every_change_is_in_the_patched_source() {
    for c in CHANGES {
        let text = read(c.file);
        for code in c.present {
            assert!(
                text.contains(code),
                "change {}: {} lacks `{code}`",
                c.n,
                c.file
            );
        }
        for code in c.absent {
            assert!(
                !text.contains(code),
                "change {}: {} has upstream's `{code}`",
                c.n,
                c.file
            );
        }
    }
    // Every marked site is one the list above knows; a lost or new one shows here.
    for (file, markers) in [
        (CORE_PACKET, 2),
        (WS, 4),
        (SOCKET, 1),
        (SIO_NS, 3),
        (SIO_SOCKET, 1),
    ] {
        assert_eq!(
            read(file).matches("Courier's patch").count(),
            markers,
            "{file}: \"Courier's patch\" markers (update patches/README.md and this test)"
        );
    }
}

#[test]
fn a_channel_slot_holds_one_packet_inline() {
    let slot = std::mem::size_of::<PacketBuf>();
    let packet = std::mem::size_of::<Packet>();
    // Change 2: the open packet (80 bytes) is boxed, so a packet is its byte-carrying
    // variants' size.
    assert!(
        packet <= 48,
        "Packet is {packet} bytes: the open packet is not boxed (change 2)"
    );
    // Change 1: SmallVec<[Packet; N]> is N packets plus a length word; upstream's N = 2
    // gives 2 × packet + 8. tokio's first channel block is 32 of these per socket.
    assert!(
        slot < 2 * packet,
        "PacketBuf is {slot} bytes for a {packet}-byte packet: change 1 is not built"
    );
    let mut buf = PacketBuf::new();
    buf.push(Packet::Message("40/chat,".into()));
    assert!(!buf.spilled(), "one packet must stay inline");
    buf.push(Packet::Binary(vec![1, 2, 3].into()));
    assert!(buf.spilled(), "a second packet moves to the heap");
    assert_eq!(buf.len(), 2);
}

#[derive(Debug)]
struct Quiet;

impl EngineIoHandler for Quiet {
    type Data = ();
    fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
    fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
    fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
    fn on_binary(self: &Arc<Self>, _: axum::body::Bytes, _: Arc<Socket<()>>) {}
}

#[tokio::test]
async fn the_websocket_task_is_not_sized_for_its_handshake_or_its_writer() {
    // The future of a WebSocket connection's task (what `on_init` returns), never
    // polled: it lives as long as the socket. Patched, it holds the request head and
    // `serve`, which change 3 keeps free of the setup's locals (they live in `open`)
    // and change 5 of the handshake's state (`open` is awaited boxed). The writer's
    // spawn (change 5's other half) is checked in the source only: measured, it did
    // not change this size.
    let svc = EngineIoService::new(Arc::new(Quiet));
    let (conn, _peer) = tokio::io::duplex(64);
    let (head, ()) = axum::http::Request::new(()).into_parts();
    let head_size = std::mem::size_of_val(&head);
    let task = svc.ws_init(conn, ProtocolVersion::V4, None, head);
    let size = std::mem::size_of_val(&task);
    let serve = size.saturating_sub(head_size);
    assert!(
        serve <= BUDGET,
        "the WebSocket task's future is {size} bytes ({serve} besides the {head_size}-byte \
         request head; at most {BUDGET}): changes 3 and 5 are not built"
    );
}

/// What the task may hold besides the request head: 256 bytes patched, 1,280 without
/// change 5's boxed `open` (measured over a `DuplexStream`).
const BUDGET: usize = 640;

async fn set_pid(s: socketioxide::extract::SocketRef) -> Result<(), std::convert::Infallible> {
    s.extensions
        .insert(socketioxide::socket::ConnectPid("pid-1".into()));
    Ok(())
}

async fn connected() {}

#[tokio::test]
async fn a_connect_middleware_sets_the_pid_of_the_connect_answer() {
    use socketioxide::{SocketIo, handler::ConnectHandler};
    let (_svc, io) = SocketIo::new_svc();
    io.ns("/with", connected.with(set_pid));
    io.ns("/without", connected);
    for (ns, pid) in [("/with", Some("pid-1")), ("/without", None)] {
        let (_tx, mut rx) = io.new_dummy_sock(ns, ()).await;
        let packet = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("a CONNECT answer")
            .expect("an open socket");
        let Packet::Message(msg) = packet else {
            panic!("{ns}: not a message: {packet:?}");
        };
        // `0/with,{"sid":"…","pid":"pid-1"}` (Socket.IO v5 CONNECT).
        let data = msg.split_once(',').map(|(_, d)| d).unwrap_or_default();
        let answer: serde_json::Value = serde_json::from_str(data).expect("JSON data");
        assert!(answer["sid"].is_string(), "{ns}: {msg}");
        assert_eq!(
            answer.get("pid").and_then(|p| p.as_str()),
            pid,
            "{ns}: {msg}"
        );
    }
}
