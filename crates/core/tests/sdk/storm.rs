//! `softphone bench storm` end to end, small: SDK clients of a killed and
//! restarted child server all come back, and none gives up.

use crate::support::WAIT;
use serde_json::Value;

#[tokio::test]
async fn a_small_reconnect_storm_brings_every_client_back() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["bench", "storm", "--clients", "40", "--down-for", "300ms", "--patience", "15s", "--json"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, run).await.expect("the storm ends").expect("run the bench");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stats: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(stats["clients"], 40);
    assert_eq!(stats["back"], 40, "{stats}");
    assert_eq!(stats["gave_up"], 0, "{stats}");
    assert!(stats["all_back_ms"].is_u64(), "{stats}");
    // While it was down, the clients kept trying: at least one attempt each.
    assert!(stats["attempts"].as_u64().unwrap() >= 40, "{stats}");
}
