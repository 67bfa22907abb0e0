//! A minimal StatusNotifierWatcher on the session bus: what a desktop's
//! panel provides, without drawing anything. It takes the app's tray item
//! (printing its bus name), so the app keeps running behind the "tray"
//! when its window is closed. For `scripts/tray-check.sh` under Xvfb;
//! runs until killed.

use std::sync::{Arc, Mutex};

/// The items registered so far.
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        println!("registered {service}");
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let _connection = zbus::connection::Builder::session()?
        .name("org.kde.StatusNotifierWatcher")?
        .serve_at("/StatusNotifierWatcher", Watcher { items: Arc::default() })?
        .build()
        .await?;
    println!("watcher up");
    std::future::pending::<()>().await;
    Ok(())
}
