//! Desktop notifications: an incoming call or a missed one while the
//! window is not in front (hidden, minimised, another window focused).
//!
//! [`DesktopNotifier`] talks to `org.freedesktop.Notifications` over D-Bus
//! (the `notify-rust` crate), on a thread of its own so that a slow or
//! missing bus never holds up the app. Where the desktop has no
//! notification service (CI, Xvfb, a bare window manager) the first
//! attempt fails: that is logged once, and no further attempt is made; the
//! app works the same without them. Tests use a notifier that records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shows notifications.
pub trait Notifier {
    /// Shows `summary` and `body`; never fails (a notification is a nicety).
    fn notify(&mut self, summary: &str, body: &str);
}

/// Shows nothing.
#[derive(Debug, Default)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&mut self, _summary: &str, _body: &str) {}
}

/// The desktop's notification service.
#[derive(Debug, Default)]
pub struct DesktopNotifier {
    /// Set after the first failure: the desktop has no service, so no
    /// more attempts (and no more log lines).
    unavailable: Arc<AtomicBool>,
}

impl Notifier for DesktopNotifier {
    fn notify(&mut self, summary: &str, body: &str) {
        if self.unavailable.load(Ordering::Relaxed) {
            return;
        }
        let unavailable = self.unavailable.clone();
        let (summary, body) = (summary.to_owned(), body.to_owned());
        let spawned = std::thread::Builder::new().name("notify".into()).spawn(move || {
            let shown = notify_rust::Notification::new()
                .appname("softphone")
                .icon("softphone")
                .summary(&summary)
                .body(&body)
                .show();
            if let Err(e) = shown
                && !unavailable.swap(true, Ordering::Relaxed)
            {
                tracing::info!("no desktop notifications ({e}); calls are still shown in the window");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a thread for a notification: {e}");
        }
    }
}
