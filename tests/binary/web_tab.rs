//! The desktop app calls a browser tab, for real: runs
//! `web/tests/desktop-app.test.ts` (node), which starts Xvfb on a free
//! display, a `softphone server`, this build's desktop app on that display
//! (driven with xdotool key presses) and a headless Chromium tab; the app
//! dials the tab, the tab accepts, both show the same safety code, the tab
//! hangs up and the app's QA timeline shows it. No sound card is needed.
//!
//! Needs `node` with `web/node_modules` (`npm ci`), `/usr/bin/chromium`,
//! `/usr/bin/Xvfb` and `/usr/bin/xdotool`: `.ci/setup` installs them all;
//! without them it fails and says so.

use std::path::Path;
use std::process::Command;

#[test]
fn the_desktop_app_calls_a_browser_tab_under_xvfb_with_the_same_safety_code() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `bash .ci/setup`"
    );
    for tool in ["/usr/bin/Xvfb", "/usr/bin/xdotool"] {
        assert!(Path::new(tool).exists(), "{tool} is missing: run `bash .ci/setup`");
    }
    let output = Command::new("node")
        .args(["tests/run.mjs", "desktop-app"])
        .current_dir(&web)
        .env("SOFTPHONE_BIN", env!("CARGO_BIN_EXE_softphone"))
        .output()
        .expect("run node (is it installed? `bash .ci/setup`)");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    for line in text
        .lines()
        .filter(|l| l.starts_with("# safety code") || l.starts_with("# pass") || l.starts_with("# fail"))
    {
        eprintln!("{line}");
    }
    assert!(output.status.success(), "the desktop app and tab test failed:\n{text}");
}
