//! What is shipped: the binary built without the `desktop` feature (the
//! operator's server build) and the Debian package's manifest.

/// `softphone` with no subcommand in a build without the desktop app says
/// so and exits 2 (a usage error), rather than failing to link or opening
/// nothing. `.ci/run` runs this with `--no-default-features`.
#[cfg(not(feature = "desktop"))]
#[test]
fn without_the_desktop_feature_no_subcommand_says_there_is_no_app_and_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_softphone"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run softphone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("this build has no desktop app"), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}
