//! The real tray icon: a StatusNotifierItem on the session bus (`ksni`,
//! pure Rust over zbus), run on a thread of its own with its own small
//! tokio runtime, so that a slow or missing bus never holds up the window.
//! The app hands it views through a channel; the menu's choices go back
//! through another.

use super::{TrayAction, TrayHost, TrayIcon, TrayView};
use ksni::menu::StandardItem;
use ksni::{Icon, MenuItem, ToolTip, TrayMethods};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// [`TrayHost`] in an atomic, shared by the app and the tray's thread.
#[derive(Debug, Default)]
struct SharedHost(AtomicU8);

impl SharedHost {
    fn get(&self) -> TrayHost {
        match self.0.load(Ordering::Relaxed) {
            1 => TrayHost::Present,
            2 => TrayHost::Absent,
            _ => TrayHost::Unknown,
        }
    }
    fn set(&self, host: TrayHost) {
        let value = match host {
            TrayHost::Unknown => 0,
            TrayHost::Present => 1,
            TrayHost::Absent => 2,
        };
        self.0.store(value, Ordering::Relaxed);
    }
}

/// The tray icon over D-Bus. See the module documentation.
#[derive(Debug, Default)]
pub struct KsniTray {
    /// Whether a host took the item; written by the tray's thread.
    host: Arc<SharedHost>,
    /// To the tray's thread; `None` until started. Dropping it (with the
    /// app) ends the thread and takes the icon away.
    views: Option<UnboundedSender<TrayView>>,
}

impl TrayIcon for KsniTray {
    fn start(&mut self, actions: UnboundedSender<TrayAction>) {
        let (views, receiver) = unbounded_channel();
        let host = self.host.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let spawned = runtime.map_err(|e| e.to_string()).and_then(|runtime| {
            std::thread::Builder::new()
                .name("tray".into())
                .spawn(move || runtime.block_on(run(receiver, actions, host)))
                .map_err(|e| e.to_string())
        });
        match spawned {
            Ok(_) => self.views = Some(views),
            Err(e) => {
                tracing::warn!("cannot start the tray icon ({e}); closing the window quits the app");
                self.host.set(TrayHost::Absent);
            }
        }
    }

    fn host(&self) -> TrayHost {
        self.host.get()
    }

    fn show(&mut self, view: &TrayView) {
        if let Some(views) = &self.views {
            let _ = views.send(view.clone());
        }
    }
}

/// The tray's thread: registers the item, then shows every view sent.
async fn run(
    mut views: UnboundedReceiver<TrayView>,
    actions: UnboundedSender<TrayAction>,
    host: Arc<SharedHost>,
) {
    let item = Item { view: TrayView::default(), actions, host: host.clone(), icon: app_icon() };
    let handle = match item.spawn().await {
        Ok(handle) => handle,
        Err(e) => {
            host.set(TrayHost::Absent);
            tracing::info!("no tray host ({e}): closing the window quits the app");
            return;
        }
    };
    host.set(TrayHost::Present);
    tracing::info!("tray icon shown: closing the window keeps the phone signed in");
    while let Some(mut view) = views.recv().await {
        // Only the newest view matters.
        while let Ok(newer) = views.try_recv() {
            view = newer;
        }
        handle.update(|item| item.view = view).await;
    }
    handle.shutdown().await;
}

/// The item ksni serves.
struct Item {
    view: TrayView,
    actions: UnboundedSender<TrayAction>,
    host: Arc<SharedHost>,
    /// The app's icon, so the tray shows it with no icon theme installed.
    icon: Vec<Icon>,
}

impl ksni::Tray for Item {
    fn id(&self) -> String {
        "softphone".into()
    }

    fn title(&self) -> String {
        format!("Softphone: {}", self.view.status_line())
    }

    fn status(&self) -> ksni::Status {
        if self.view.needs_attention() { ksni::Status::NeedsAttention } else { ksni::Status::Active }
    }

    fn icon_name(&self) -> String {
        "softphone".into()
    }

    fn icon_pixmap(&self) -> Vec<Icon> {
        self.icon.clone()
    }

    fn tool_tip(&self) -> ToolTip {
        let mut description = self.view.status_line();
        if let Some(missed) = self.view.missed_line() {
            description = format!("{description}\n{missed}");
        }
        ToolTip { title: "Softphone".into(), description, ..ToolTip::default() }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        let _ = self.actions.send(TrayAction::Open);
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        let line = |label: String| StandardItem { label, enabled: false, ..StandardItem::default() }.into();
        let mut menu = vec![line(self.view.status_line())];
        if let Some(missed) = self.view.missed_line() {
            menu.push(line(missed));
        }
        menu.push(MenuItem::Separator);
        for (label, action) in [("Open", TrayAction::Open), ("Quit", TrayAction::Quit)] {
            let item = StandardItem {
                label: label.into(),
                activate: Box::new(move |item: &mut Item| {
                    let _ = item.actions.send(action);
                }),
                ..StandardItem::default()
            };
            menu.push(item.into());
        }
        menu
    }

    fn watcher_online(&self) {
        self.host.set(TrayHost::Present);
    }

    /// The host went (its panel restarted): closing the window quits
    /// until it is back; the item waits for it.
    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::info!("the tray host went away ({reason:?}): closing the window quits the app");
        self.host.set(TrayHost::Absent);
        true
    }
}

/// The app's icon as ksni wants it: ARGB32, network byte order.
fn app_icon() -> Vec<Icon> {
    let Some((mut data, width, height)) = crate::theme::icon_rgba() else { return Vec::new() };
    for pixel in data.chunks_exact_mut(4) {
        pixel.rotate_right(1);
    }
    vec![Icon { width: width as i32, height: height as i32, data }]
}
