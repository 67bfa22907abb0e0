//! The media-session hook: what happens once a call is accepted.
//!
//! Signaling ends at accept; the audio or video itself is someone else's
//! job. The app hands the call's facts ([`CallFacts`]) to a [`MediaHook`],
//! which starts a [`MediaSession`]; the session is polled for its status
//! while the call is up (the call screen shows it) and stopped at hang-up.
//! Four hooks are built in, chosen by [`crate::config::MediaConfig`]: the
//! app's built-in voice (`app::voice`, the default), [`NoMedia`],
//! [`CommandMedia`] (runs a program) and [`UrlMedia`] (opens a meeting
//! link). A voice session also hands the call screen its [`VoiceView`].

use crate::config::MediaConfig;
use softphone_core::protocol::Role;
use softphone_core::voice::VoiceControl;
use std::process::{Child, Command, Stdio};

/// What a media session needs to know about its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    pub call_id: String,
    /// The channel both sides agreed on: the media session's meeting point.
    pub channel: String,
    /// The other party.
    pub peer: String,
    /// Our side of the call.
    pub role: Role,
    /// The invitation's content.
    pub content: String,
    /// The callee's response when it accepted.
    pub response: String,
}

impl CallFacts {
    /// `template` with `{channel}`, `{peer}`, `{role}` and `{call_id}`
    /// replaced, each value passed through `escape` first.
    pub fn substitute(&self, template: &str, escape: impl Fn(&str) -> String) -> String {
        let role = match self.role {
            Role::Caller => "caller",
            Role::Callee => "callee",
        };
        template
            .replace("{channel}", &escape(&self.channel))
            .replace("{peer}", &escape(&self.peer))
            .replace("{role}", &escape(role))
            .replace("{call_id}", &escape(&self.call_id))
    }

    /// The values `template` would take in, each checked against
    /// [`is_safe_argument`]; the first that is not is the error. The other
    /// side chooses the channel (and the caller the call id), so none may
    /// become an option of the program or a path.
    fn check_arguments(&self, template: &str) -> Result<(), MediaError> {
        let values = [("channel", &self.channel), ("peer", &self.peer), ("call_id", &self.call_id)];
        for (name, value) in values {
            if template.contains(&format!("{{{name}}}")) && !is_safe_argument(value) {
                return Err(MediaError(format!(
                    "Not started: the {name} {value:?} is not safe to hand to a program (it may hold \
                     only letters, digits and . _ : @ + =, with - anywhere but first)"
                )));
            }
        }
        Ok(())
    }
}

/// Whether a caller-chosen value may go into a media command's arguments:
/// ASCII letters, digits and `. _ : @ + = -`, not beginning with `-` (so it
/// can never be read as an option), and no `/` (never a path elsewhere).
/// The empty value passes: it cannot be an option either.
pub fn is_safe_argument(value: &str) -> bool {
    !value.starts_with('-') && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@+=-".contains(&b))
}

/// A media session's state, as the call screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaStatus {
    /// Working; the text says what it is doing.
    Running(String),
    /// It stopped by itself (a program exited); the call itself goes on.
    Ended(String),
}

/// Why a media session could not start; travels in messages, so `Clone`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MediaError(pub String);

/// Starts media sessions for accepted calls.
pub trait MediaHook {
    /// Starts the session of `call`.
    fn start(&self, call: &CallFacts) -> Result<Box<dyn MediaSession>, MediaError>;
}

/// One call's running media.
pub trait MediaSession {
    /// Its current status; called about once a second while the call is up.
    fn poll(&mut self) -> MediaStatus;
    /// Stops it at hang-up; called once.
    fn stop(&mut self);
    /// What the call screen shows of built-in voice; `None` for the others.
    fn voice(&self) -> Option<&VoiceView> {
        None
    }
}

/// A voice call's handle for the call screen: mute, volume, levels and
/// quality live in the control (the voice pipeline's own state, never a
/// widget's), and the safety code both sides compare.
#[derive(Debug, Clone)]
pub struct VoiceView {
    /// `None` while the call driver is still reaching the relay.
    pub control: Option<VoiceControl>,
    /// The six digits derived from both sides' keys; empty until they are agreed.
    pub safety_code: String,
    /// Said under the code when comparing it does not protect the call (a
    /// v1.1 peer); `None` when it does.
    pub safety_note: Option<String>,
    /// Why there is no microphone (the other side hears silence), if so.
    pub no_microphone: Option<String>,
    /// Why there is no speaker (we hear nothing), if so.
    pub no_speaker: Option<String>,
}

/// The hook `config` names.
pub fn hook_for(config: &MediaConfig) -> Box<dyn MediaHook> {
    match config {
        // The app builds its voice hook itself (it needs the sound card and
        // the call driver); anywhere else there is none.
        MediaConfig::Voice => Box::new(NoMedia),
        MediaConfig::None => Box::new(NoMedia),
        MediaConfig::Command { program, args } => {
            Box::new(CommandMedia { program: program.clone(), args: args.clone() })
        }
        MediaConfig::Url { template } => Box::new(UrlMedia { template: template.clone(), opener: open_url }),
    }
}

/// No media: the call screen shows the channel, nothing more.
#[derive(Debug, Default)]
pub struct NoMedia;

impl MediaHook for NoMedia {
    fn start(&self, _call: &CallFacts) -> Result<Box<dyn MediaSession>, MediaError> {
        // The call screen shows the channel already.
        Ok(Box::new(FixedStatus("No media session configured".into())))
    }
}

/// A session with nothing to run: its status never changes.
struct FixedStatus(String);

impl MediaSession for FixedStatus {
    fn poll(&mut self) -> MediaStatus {
        MediaStatus::Running(self.0.clone())
    }

    fn stop(&mut self) {}
}

/// Runs a program for the length of the call.
#[derive(Debug, Clone)]
pub struct CommandMedia {
    pub program: String,
    /// Arguments, with the [`CallFacts`] placeholders.
    pub args: Vec<String>,
}

impl MediaHook for CommandMedia {
    fn start(&self, call: &CallFacts) -> Result<Box<dyn MediaSession>, MediaError> {
        self.args.iter().try_for_each(|a| call.check_arguments(a))?;
        let args: Vec<String> = self.args.iter().map(|a| call.substitute(a, str::to_owned)).collect();
        let child = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| MediaError(format!("Could not start {}: {e}", self.program)))?;
        tracing::info!(call_id = %call.call_id, pid = child.id(), "media command started: {} {}", self.program, args.join(" "));
        Ok(Box::new(RunningCommand { program: self.program.clone(), child, ended: None }))
    }
}

/// A started program.
struct RunningCommand {
    program: String,
    child: Child,
    /// How it ended, once it has (kept: a reaped child cannot be asked twice).
    ended: Option<String>,
}

impl MediaSession for RunningCommand {
    fn poll(&mut self) -> MediaStatus {
        if let Some(ended) = &self.ended {
            return MediaStatus::Ended(ended.clone());
        }
        match self.child.try_wait() {
            Ok(None) => {
                MediaStatus::Running(format!("{} is running (pid {})", self.program, self.child.id()))
            }
            Ok(Some(status)) => {
                let text = match status.code() {
                    Some(0) => format!("{} exited", self.program),
                    Some(code) => format!("{} failed (exit status {code})", self.program),
                    None => format!("{} was stopped by a signal", self.program),
                };
                self.ended = Some(text.clone());
                MediaStatus::Ended(text)
            }
            Err(e) => {
                let text = format!("Lost track of {}: {e}", self.program);
                self.ended = Some(text.clone());
                MediaStatus::Ended(text)
            }
        }
    }

    fn stop(&mut self) {
        if self.ended.is_none() {
            let _ = self.child.kill();
            // Reaps it, so no zombie stays behind for the app's lifetime.
            let _ = self.child.wait();
            self.ended = Some(format!("{} stopped", self.program));
        }
    }
}

impl Drop for RunningCommand {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens a meeting URL with the desktop's opener.
#[derive(Debug, Clone)]
pub struct UrlMedia {
    /// e.g. `https://meet.example.org/{channel}`.
    pub template: String,
    /// Opens a URL; the desktop's opener, or a stand-in in tests.
    pub opener: fn(&str) -> std::io::Result<()>,
}

/// Opens `url` with the desktop's default handler, without waiting for it.
pub fn open_url(url: &str) -> std::io::Result<()> {
    open::that_detached(url)
}

impl MediaHook for UrlMedia {
    fn start(&self, call: &CallFacts) -> Result<Box<dyn MediaSession>, MediaError> {
        let url = call.substitute(&self.template, percent_encode);
        (self.opener)(&url).map_err(|e| MediaError(format!("Could not open {url}: {e}")))?;
        Ok(Box::new(FixedStatus(format!("Opened {url}"))))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a
/// channel named `a b/c` stays one path segment.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> CallFacts {
        CallFacts {
            call_id: "c1".into(),
            channel: "room 1".into(),
            peer: "bob".into(),
            role: Role::Caller,
            content: String::new(),
            response: String::new(),
        }
    }

    #[test]
    fn placeholders_are_substituted() {
        let text = facts().substitute("{channel}|{peer}|{role}|{call_id}", str::to_owned);
        assert_eq!(text, "room 1|bob|caller|c1");
    }

    #[test]
    fn url_values_are_percent_encoded() {
        fn ok(_: &str) -> std::io::Result<()> {
            Ok(())
        }
        let hook = UrlMedia { template: "https://m.example/{channel}".into(), opener: ok };
        let mut session = hook.start(&facts()).unwrap();
        assert_eq!(session.poll(), MediaStatus::Running("Opened https://m.example/room%201".into()));
    }

    #[test]
    fn url_opener_failure_is_reported() {
        fn fail(_: &str) -> std::io::Result<()> {
            Err(std::io::Error::other("no opener"))
        }
        let hook = UrlMedia { template: "https://m/{channel}".into(), opener: fail };
        let error = hook.start(&facts()).err().unwrap();
        assert!(error.0.contains("no opener"), "{error}");
    }

    #[test]
    fn command_runs_until_stopped() {
        let hook = CommandMedia { program: "sleep".into(), args: vec!["30".into()] };
        let mut session = hook.start(&facts()).unwrap();
        assert!(matches!(session.poll(), MediaStatus::Running(_)));
        session.stop();
        assert_eq!(session.poll(), MediaStatus::Ended("sleep stopped".into()));
    }

    #[test]
    fn command_exit_is_reported() {
        let hook = CommandMedia { program: "sh".into(), args: vec!["-c".into(), "exit 3".into()] };
        let mut session = hook.start(&facts()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match session.poll() {
                MediaStatus::Ended(text) => break assert_eq!(text, "sh failed (exit status 3)"),
                MediaStatus::Running(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn caller_chosen_values_that_could_be_options_are_refused_before_the_program_runs() {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let script = format!("touch {}", ran.display());
        let hook = CommandMedia {
            program: "sh".into(),
            args: vec!["-c".into(), script, "media".into(), "{channel}".into(), "{call_id}".into()],
        };
        for (channel, call_id) in [
            ("-rf", "c1"),
            ("--output=/etc/x", "c1"),
            ("a b", "c1"),
            ("../x", "c1"),
            ("room", "-x"),
            ("caf\u{e9}", "c1"),
            ("x;rm", "c1"),
        ] {
            let call = CallFacts { channel: channel.into(), call_id: call_id.into(), ..facts() };
            let error = hook.start(&call).err().unwrap_or_else(|| panic!("{channel:?} {call_id:?} started"));
            assert!(error.0.contains("not safe"), "{error}");
        }
        assert!(!ran.exists(), "the program never ran");
        // A placeholder the template does not use is not checked; a safe value runs.
        let unused = CommandMedia { program: "true".into(), args: vec!["{peer}".into()] };
        assert!(unused.start(&CallFacts { channel: "-rf".into(), ..facts() }).is_ok());
        let safe = CallFacts { channel: "room-1.a:5004".into(), call_id: "c-1".into(), ..facts() };
        hook.start(&safe).expect("a safe channel starts").stop();
        for ok in ["", "room-1", "a.b_c:d@e+f=g", "127.0.0.1:5004"] {
            assert!(is_safe_argument(ok), "{ok}");
        }
    }

    #[test]
    fn command_that_cannot_start_is_an_error() {
        let hook = CommandMedia { program: "/nonexistent/softphone-media".into(), args: vec![] };
        assert!(hook.start(&facts()).err().unwrap().0.starts_with("Could not start"));
    }
}
