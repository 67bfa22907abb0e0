//! What is shipped: the binary built without the `desktop` feature (the
//! operator's server build; its command line is this crate's, run here as
//! `softphone-headless`) and the Debian package: its manifest in the root
//! Cargo.toml (`[package.metadata.deb]`, read by `cargo deb`), the
//! hardened systemd unit and the maintainer scripts. None of these needs
//! cargo-deb or systemd: the files are read and the scripts and the unit's
//! command line are run for real.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_softphone-headless");
const UNIT: &str = "softphone-server";

/// `softphone` with no subcommand in a build without the desktop app says
/// so and exits 2 (a usage error), rather than failing to link or opening
/// nothing. `.ci/run` runs this.
#[test]
fn without_the_desktop_feature_no_subcommand_says_there_is_no_app_and_exits_2() {
    let out = std::process::Command::new(BIN).stdin(Stdio::null()).output().expect("run softphone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("this build has no desktop app"), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

/// The workspace root: the `softphone` package that `cargo deb` packages.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The root Cargo.toml.
fn root_manifest() -> toml::Table {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("read Cargo.toml");
    manifest.parse().expect("Cargo.toml is TOML")
}

/// `[package.metadata.deb]` of the root Cargo.toml.
fn deb_metadata() -> toml::Table {
    root_manifest()["package"]["metadata"]["deb"].as_table().expect("[package.metadata.deb]").clone()
}

/// The binary the root package builds: named after the package (no
/// `[[bin]]` renames it), from src/main.rs.
fn root_binary() -> String {
    let manifest = root_manifest();
    assert!(!manifest.contains_key("bin"), "the root package names no other binary");
    assert!(root().join("src/main.rs").is_file(), "the root package's binary is src/main.rs");
    manifest["package"]["name"].as_str().expect("package.name").to_owned()
}

/// The files a source pattern of an asset names: itself, or for a `*` in
/// its last component the files of that directory that match.
fn matching_files(pattern: &str) -> Vec<PathBuf> {
    let path = root().join(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).expect("a file name");
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path].into_iter().filter(|p| p.is_file()).collect();
    };
    let dir = path.parent().expect("a directory");
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect()
}

/// Checks one package's asset list; returns the destinations.
fn checked_destinations(package: &str, assets: &toml::Value) -> Vec<String> {
    let mut destinations = Vec::new();
    for asset in assets.as_array().unwrap_or_else(|| panic!("{package}: assets is a list")) {
        let fields: Vec<&str> =
            asset.as_array().expect("[source, dest, mode]").iter().filter_map(|v| v.as_str()).collect();
        let [source, dest, mode] = fields[..] else {
            panic!("{package}: {asset} is not [source, dest, mode]")
        };
        assert!(!dest.starts_with('/'), "{package}: cargo-deb destinations are relative: {dest}");
        assert!(
            u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o777),
            "{package}: mode {mode:?} of {source}"
        );
        if let Some(binary) = source.strip_prefix("target/release/") {
            // cargo-deb builds it; the name must be the binary the root package has.
            assert_eq!(binary, root_binary(), "{source}");
            assert_eq!(mode, "755", "{package}: the binary is executable");
        } else {
            assert!(!matching_files(source).is_empty(), "{package}: asset {source} names no file");
        }
        destinations.push(dest.to_owned());
    }
    destinations
}

#[test]
fn every_asset_of_both_debs_exists_and_goes_to_a_relative_destination_with_a_mode() {
    let deb = deb_metadata();
    let desktop = checked_destinations("softphone", &deb["assets"]);
    for wanted in
        ["usr/bin/", "usr/share/applications/", "usr/share/doc/softphone/", "usr/share/doc/softphone/docs/"]
    {
        assert!(desktop.iter().any(|d| d == wanted), "softphone: something goes to {wanted}: {desktop:?}");
    }
    assert!(desktop.iter().any(|d| d.starts_with("usr/share/icons/hicolor/")), "an icon: {desktop:?}");

    let server = deb["variants"]["server"].as_table().expect("[package.metadata.deb.variants.server]");
    // The operator's package is the build without the desktop app.
    assert_eq!(server["default-features"].as_bool(), Some(false));
    let server_destinations = checked_destinations("softphone-server", &server["assets"]);
    assert!(server_destinations.iter().any(|d| d == "usr/bin/"), "{server_destinations:?}");
    assert!(
        !server_destinations.iter().any(|d| d.contains("applications") || d.contains("icons")),
        "no menu entry without the app: {server_destinations:?}"
    );
}

#[test]
fn the_deb_installs_the_server_unit_disabled_with_scripts_that_keep_the_debhelper_token() {
    let deb = deb_metadata();
    let scripts = root().join(deb["maintainer-scripts"].as_str().expect("maintainer-scripts"));
    let units = deb["systemd-units"].as_table().expect("systemd-units is one table");
    assert_eq!(units["unit-name"].as_str(), Some(UNIT));
    // A desktop install must not start a server listening on every address.
    assert_eq!(units["enable"].as_bool(), Some(false));
    assert_eq!(units["start"].as_bool(), Some(false));
    assert!(scripts.join(format!("{UNIT}.service")).is_file(), "the unit is in {}", scripts.display());
    for name in ["postinst", "postrm"] {
        let path = scripts.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.starts_with("#!/bin/sh\n"), "{name} is a sh script");
        assert!(text.lines().any(|l| l == "#DEBHELPER#"), "{name} keeps cargo-deb's #DEBHELPER# line");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{name} is executable");
    }
}

/// The `[Service]` section of the unit: each key with its values in order
/// (a key may be given more than once, as `SystemCallFilter=` is).
fn service_section() -> HashMap<String, Vec<String>> {
    let path = root().join(format!("resources/debian/{UNIT}.service"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut section = "";
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]" {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
            keys.entry(key.to_owned()).or_default().push(value.to_owned());
        }
    }
    keys
}

#[test]
fn the_server_unit_has_the_hardening_keys() {
    let keys = service_section();
    let only = |key: &str| match keys.get(key).map(Vec::as_slice) {
        Some([value]) => value.clone(),
        other => panic!("{key}= once in [Service], found {other:?}"),
    };
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("CapabilityBoundingSet", ""),
        ("LoadCredential", "secret:/etc/softphone/secret"),
    ] {
        assert_eq!(only(key), value, "{key}=");
    }
    let families = only("RestrictAddressFamilies");
    let families: Vec<&str> = families.split_whitespace().collect();
    assert!(families.contains(&"AF_INET") && families.contains(&"AF_INET6"), "{families:?}");
    assert!(!families.contains(&"AF_PACKET") && !families.contains(&"AF_NETLINK"), "{families:?}");
    assert!(keys["SystemCallFilter"].contains(&"@system-service".to_owned()), "{keys:?}");
    let exec = only("ExecStart");
    assert!(exec.starts_with("/usr/bin/softphone server "), "{exec}");
    assert!(exec.contains("--secret-file %d/secret"), "the credential, not /etc: {exec}");
}

/// Runs a maintainer script as dpkg would, with `$DPKG_ROOT` at `root`.
fn run_script(name: &str, arg: &str, dpkg_root: &Path) {
    let status = std::process::Command::new("sh")
        .arg(root().join("resources/debian").join(name))
        .arg(arg)
        .env("DPKG_ROOT", dpkg_root)
        .status()
        .expect("run sh");
    assert!(status.success(), "{name} {arg}: {status}");
}

#[test]
fn postinst_makes_a_private_secret_once_and_purge_removes_it() {
    let dpkg_root = tempfile::tempdir().expect("temp dir");
    let dir = dpkg_root.path().join("etc/softphone");
    let secret = dir.join("secret");
    run_script("postinst", "configure", dpkg_root.path());
    let first = std::fs::read_to_string(&secret).expect("postinst wrote the secret");
    // 32 random bytes in base64: well over the 16 the server asks for.
    assert_eq!(first.trim().len(), 44, "{first:?}");
    assert_eq!(std::fs::metadata(&secret).expect("stat").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).expect("stat").permissions().mode() & 0o777, 0o700);
    // An upgrade (configure again) keeps the operator's secret.
    std::fs::write(&secret, "the operator's own secret, 34 bytes\n").expect("replace the secret");
    run_script("postinst", "configure", dpkg_root.path());
    assert_eq!(std::fs::read_to_string(&secret).expect("read"), "the operator's own secret, 34 bytes\n");
    run_script("postrm", "remove", dpkg_root.path());
    assert!(secret.exists(), "a plain remove keeps the secret");
    run_script("postrm", "purge", dpkg_root.path());
    assert!(!dir.exists(), "purge removes the secret and its directory");
}

/// The unit's `ExecStart=` is a command line the binary accepts: with the
/// credential systemd would hand over (the secret postinst makes) at `%d`,
/// and loopback port 0 for its `--listen`, it serves.
#[tokio::test]
async fn the_units_command_line_with_the_postinst_secret_starts_a_server() {
    let dpkg_root = tempfile::tempdir().expect("temp dir");
    run_script("postinst", "configure", dpkg_root.path());
    let credentials = tempfile::tempdir().expect("temp dir");
    let keys = service_section();
    let (name, source) = keys["LoadCredential"][0].split_once(':').expect("NAME:PATH");
    let source = dpkg_root.path().join(source.trim_start_matches('/'));
    std::fs::copy(&source, credentials.path().join(name)).expect("copy the credential");
    let exec = keys["ExecStart"][0].replace("%d", credentials.path().to_str().expect("UTF-8 path"));
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/softphone"));
    let args: Vec<&str> = words
        .map(|w| if w.starts_with("0.0.0.0:") || w.starts_with("[::]:") { "127.0.0.1:0" } else { w })
        .collect();
    assert!(args.contains(&"127.0.0.1:0"), "the unit listens on all addresses: {exec}");
    let mut child = tokio::process::Command::new(BIN)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn softphone server");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("the ready line within 30 s")
        .expect("read stdout");
    assert!(line.as_deref().is_some_and(|l| l.starts_with("listening on ws://127.0.0.1:")), "{line:?}");
    child.start_kill().expect("stop the server");
}
