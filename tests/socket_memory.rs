//! The engine.io patches (patches/README.md) are the crates that get built: each
//! socket's channel slot holds one packet inline, not two, and the open packet is boxed.

use engineioxide_core::{Packet, PacketBuf};

#[test]
fn a_channel_slot_holds_one_packet_inline() {
    let slot = std::mem::size_of::<PacketBuf>();
    let packet = std::mem::size_of::<Packet>();
    // SmallVec<[Packet; N]> is N packets plus a length word; the upstream N = 2 gives
    // 2 × packet + 8. tokio's first channel block is 32 of these per socket.
    assert!(
        packet <= 48,
        "Packet is {packet} bytes: the open packet is not boxed (patches/README.md)"
    );
    assert!(
        slot < 2 * packet,
        "PacketBuf is {slot} bytes for a {packet}-byte packet: the [patch] of engineioxide-core is not applied"
    );
    let mut buf = PacketBuf::new();
    buf.push(Packet::Message("40/chat,".into()));
    assert!(!buf.spilled(), "one packet must stay inline");
    buf.push(Packet::Binary(vec![1, 2, 3].into()));
    assert!(buf.spilled(), "a second packet moves to the heap");
    assert_eq!(buf.len(), 2);
}
