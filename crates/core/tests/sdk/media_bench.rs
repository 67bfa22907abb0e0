//! `softphone bench media` end to end, small: relayed calls through a child
//! server, with a `RelayLink` per leg and with legs sharing the generator's
//! sockets; every leg on UDP and the figures consistent. No speed asserted.

use crate::support::WAIT;
use serde_json::Value;

async fn bench(extra: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["bench", "media", "--calls", "4", "--duration", "1s", "--json"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(WAIT, run).await.expect("the bench ends").expect("run the bench")
}

async fn relayed(extra: &[&str]) -> Value {
    let output = bench(extra).await;
    assert!(output.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&output.stderr));
    let stats: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(stats["calls"], 4, "{stats}");
    assert_eq!(stats["udp_legs"], 8, "every leg on UDP: {stats}");
    let (sent, received) = (stats["sent"].as_u64().unwrap(), stats["received"].as_u64().unwrap());
    // Loopback at 400 packets a second loses nothing; a leg whose route the
    // relay did not bind would lose all of its packets.
    assert!(sent > 0 && received == sent, "{stats}");
    stats
}

#[tokio::test]
async fn the_media_bench_relays_with_a_link_per_leg_and_with_shared_sockets() {
    relayed(&[]).await;
    // 8 legs over 3 sockets (3, 3 and 2 legs): each leg's packets still reach its peer.
    relayed(&["--legs-per-socket", "3"]).await;
}

#[tokio::test]
async fn zero_legs_per_socket_is_refused() {
    let output = bench(&["--legs-per-socket", "0"]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--legs-per-socket at least 1"), "{output:?}");
}
