//! The real tray icon on a real D-Bus: a private session bus
//! (`dbus-daemon --session`, started here), a minimal
//! StatusNotifierWatcher on it (what a desktop's panel provides), and the
//! app's [`KsniTray`] registering its item; its properties and menu are
//! then read back and clicked over D-Bus, as a panel would. Without a
//! watcher, the tray says there is no host (closing the window quits).
//!
//! A test binary of its own with one test: it points
//! `DBUS_SESSION_BUS_ADDRESS` at the private bus, which no other test may
//! see. Skipped, saying so, where `dbus-daemon` is not installed.

use softphone_app::tray::{KsniTray, TrayAction, TrayHost, TrayIcon, TrayStatus, TrayView};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::unbounded_channel;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Structure, Value};

/// A session bus of our own, stopped when dropped.
struct PrivateBus {
    daemon: Child,
    address: String,
}

impl PrivateBus {
    fn start() -> Option<PrivateBus> {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut address = String::new();
        BufReader::new(daemon.stdout.take()?).read_line(&mut address).ok()?;
        Some(PrivateBus { daemon, address: address.trim().to_owned() })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The watcher a panel runs: takes items, says a host shows them.
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        self.items.lock().unwrap().push(service.to_owned());
    }
    fn register_status_notifier_host(&self, _service: &str) {}
    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }
}

/// Waits (generously: a loaded machine) until `done` holds; the test fails if it never does.
async fn eventually<T>(what: &str, mut done: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = done().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A proxy that reads every property afresh, as a panel does on the
/// item's `New*` signals (a cache would follow `PropertiesChanged` only).
async fn uncached<'a>(
    conn: &zbus::Connection,
    service: &str,
    path: &str,
    interface: &str,
) -> zbus::Proxy<'a> {
    zbus::proxy::Builder::<zbus::Proxy>::new(conn)
        .destination(service.to_owned())
        .unwrap()
        .path(path.to_owned())
        .unwrap()
        .interface(interface.to_owned())
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// An icon as StatusNotifierItem sends it: width, height, ARGB32 bytes.
type Pixmap = (i32, i32, Vec<u8>);
/// The `ToolTip` property: icon name, icons, title, description.
type ToolTip = (String, Vec<Pixmap>, String, String);

/// A dbusmenu layout node: id, properties, children.
type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// The labels of the menu's top level, with their ids.
async fn menu_labels(menu: &zbus::Proxy<'_>) -> Vec<(i32, String)> {
    let (_revision, (_id, _props, children)): (u32, Node) =
        menu.call("GetLayout", &(0i32, 1i32, Vec::<String>::new())).await.expect("GetLayout");
    children
        .into_iter()
        .filter_map(|child| {
            let structure: Structure = Value::from(child).try_into().ok()?;
            let fields = structure.into_fields();
            let id: i32 = fields.first()?.try_into().ok()?;
            let props: HashMap<String, OwnedValue> = fields.get(1)?.try_clone().ok()?.try_into().ok()?;
            let label = props.get("label").and_then(|l| String::try_from(l.try_clone().ok()?).ok());
            label.map(|label| (id, label))
        })
        .collect()
}

#[test]
fn the_tray_item_registers_with_a_watcher_shows_the_state_and_its_menu_works() {
    let Some(bus) = PrivateBus::start() else {
        eprintln!("skipped: no dbus-daemon on this machine");
        return;
    };
    // SAFETY: the only test of this binary, set before any thread reads the environment.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus.address) };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // No watcher on the bus: no host, closing the window would quit.
        let mut lonely = KsniTray::default();
        lonely.start(unbounded_channel().0);
        eventually("the tray looked for a host", async || (lonely.host() != TrayHost::Unknown).then_some(()))
            .await;
        assert_eq!(lonely.host(), TrayHost::Absent);

        let items = Arc::new(Mutex::new(Vec::new()));
        let watcher = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .name("org.kde.StatusNotifierWatcher")
            .unwrap()
            .serve_at("/StatusNotifierWatcher", Watcher { items: items.clone() })
            .unwrap()
            .build()
            .await
            .expect("the watcher on the private bus");

        let (actions, mut chosen) = unbounded_channel();
        let mut tray = KsniTray::default();
        tray.start(actions);
        eventually("a host shows the item", async || (tray.host() == TrayHost::Present).then_some(())).await;
        let service = items.lock().unwrap().first().cloned().expect("the item registered");
        tray.show(&TrayView { status: TrayStatus::InCall("bob".into()), missed: 2 });

        let item = uncached(&watcher, &service, "/StatusNotifierItem", "org.kde.StatusNotifierItem").await;
        let tooltip = eventually("the tooltip shows the call", async || {
            let (_icon, _pixmaps, title, description): ToolTip = item.get_property("ToolTip").await.ok()?;
            (description.starts_with("In a call")).then_some((title, description))
        })
        .await;
        assert_eq!(tooltip, ("Softphone".to_owned(), "In a call with bob\n2 missed calls".to_owned()));
        assert_eq!(item.get_property::<String>("Title").await.unwrap(), "Softphone: In a call with bob");
        assert_eq!(item.get_property::<String>("Status").await.unwrap(), "NeedsAttention", "missed calls");
        let pixmaps: Vec<Pixmap> = item.get_property("IconPixmap").await.unwrap();
        assert!(
            pixmaps.first().is_some_and(|(w, h, data)| data.len() == (w * h * 4) as usize),
            "the app's icon"
        );

        // A click on the icon opens the window.
        let () = item.call("Activate", &(0i32, 0i32)).await.expect("Activate");
        assert_eq!(chosen.recv().await, Some(TrayAction::Open));

        // The menu: the state, the missed calls, Open and Quit; Quit quits.
        let menu_path: OwnedObjectPath = item.get_property("Menu").await.unwrap();
        let menu = uncached(&watcher, &service, menu_path.as_str(), "com.canonical.dbusmenu").await;
        let labels = menu_labels(&menu).await;
        let names: Vec<&str> = labels.iter().map(|(_, label)| label.as_str()).collect();
        assert_eq!(names, ["In a call with bob", "2 missed calls", "Open", "Quit"], "{labels:?}");
        let quit = labels.iter().find(|(_, label)| label == "Quit").unwrap().0;
        let () = menu.call("Event", &(quit, "clicked", Value::from(0i32), 0u32)).await.expect("Event");
        assert_eq!(chosen.recv().await, Some(TrayAction::Quit));

        // Signed in with nothing missed: a calm icon.
        tray.show(&TrayView { status: TrayStatus::SignedIn("alice".into()), missed: 0 });
        eventually("the status follows the view", async || {
            let status: String = item.get_property("Status").await.ok()?;
            (status == "Active").then_some(())
        })
        .await;
    });
}
