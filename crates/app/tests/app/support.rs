//! Stand-ins for the app's collaborators, and a harness that drives the
//! app through its messages: a ringer and a media hook that record what
//! they were told, a phone that records requests instead of sending them.

use futures_util::FutureExt;
use rand::SeedableRng;
use softphone_app::audio::AudioDevices;
use softphone_app::audio::device::{DeviceChoice, DeviceList};
use softphone_app::config::AppConfig;
use softphone_app::media_hook::{CallFacts, MediaError, MediaHook, MediaSession, MediaStatus};
use softphone_app::notify::Notifier;
use softphone_app::paths::Paths;
use softphone_app::phone::Phone;
use softphone_app::ringtone::{Ringer, Sound, Tone};
use softphone_app::tray::{TrayAction, TrayHost, TrayIcon, TrayView};
use softphone_app::voice::{VoiceLine, VoiceStarter};
use softphone_app::{App, Message, Options, Parts, sign_in};
use softphone_core::protocol::Role;
use softphone_core::sdk::{self, Event, Presence, Reply};
use softphone_core::voice::audio::{AudioError, AudioSink, AudioSource};
use softphone_core::voice::crypto::LocalKey;
use softphone_core::voice::{AudioEnds, VoiceConfig, VoiceControl, VoiceSession};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A shared, appendable record.
#[derive(Debug)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    pub fn push(&self, item: T) {
        self.0.lock().unwrap().push(item);
    }

    pub fn items(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    pub fn last(&self) -> Option<T> {
        self.0.lock().unwrap().last().cloned()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Records every tone it is told to play.
pub struct RecordingRinger(pub Log<Option<Tone>>);

impl Ringer for RecordingRinger {
    fn set(&mut self, tone: Option<Tone>) {
        self.0.push(tone);
    }
}

/// Records every tone, and every sound it is configured with; every
/// tone also goes into the shared `order` of what touched the sound card.
pub struct ConfiguredRinger {
    pub tones: Log<Option<Tone>>,
    pub sounds: Log<Sound>,
    pub order: Log<String>,
}

impl Ringer for ConfiguredRinger {
    fn set(&mut self, tone: Option<Tone>) {
        self.tones.push(tone);
        self.order.push(format!("tone {tone:?}"));
    }

    fn configure(&mut self, sound: &Sound) {
        self.sounds.push(sound.clone());
    }
}

/// Records the notifications it is asked to show: (summary, body).
pub struct RecordingNotifier(pub Log<(String, String)>);

impl Notifier for RecordingNotifier {
    fn notify(&mut self, summary: &str, body: &str) {
        self.0.push((summary.into(), body.into()));
    }
}

/// What happened to media sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRecord {
    Started(CallFacts),
    Stopped(String),
}

/// Starts sessions that record their start and stop; fails when `fail` is set.
pub struct RecordingMedia {
    pub log: Log<MediaRecord>,
    pub fail: Option<String>,
    /// The shared order of what touched the sound card.
    pub order: Log<String>,
}

impl MediaHook for RecordingMedia {
    fn start(&self, call: &CallFacts) -> Result<Box<dyn MediaSession>, MediaError> {
        self.order.push(format!("media start {}", call.call_id));
        if let Some(reason) = &self.fail {
            return Err(MediaError(reason.clone()));
        }
        self.log.push(MediaRecord::Started(call.clone()));
        Ok(Box::new(RecordedSession { call_id: call.call_id.clone(), log: self.log.clone() }))
    }
}

struct RecordedSession {
    call_id: String,
    log: Log<MediaRecord>,
}

impl MediaSession for RecordedSession {
    fn poll(&mut self) -> MediaStatus {
        MediaStatus::Running(format!("media for {}", self.call_id))
    }

    fn stop(&mut self) {
        self.log.push(MediaRecord::Stopped(self.call_id.clone()));
    }
}

/// A request the app made of the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Invite { call_id: String, peer: String, channel: String, content: String },
    Cancel(String),
    Accept(String),
    Refuse(String, String),
    HangUp(String),
    Logout,
    RenewToken(String),
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// Records requests; every reply is `Ok` (tests feed failures by hand).
pub struct RecordingPhone(pub Log<Sent>);

fn ok() -> Reply<()> {
    futures_util::future::ready(Ok(())).boxed()
}

impl Phone for RecordingPhone {
    fn invite(&self, peer: &str, channel: &str, content: &str) -> Result<(String, Reply<()>), sdk::Error> {
        let call_id = format!("out-{}", self.0.items().len() + 1);
        self.0.push(Sent::Invite {
            call_id: call_id.clone(),
            peer: peer.into(),
            channel: channel.into(),
            content: content.into(),
        });
        Ok((call_id, ok()))
    }

    fn cancel(&self, call_id: &str) -> Reply<()> {
        self.0.push(Sent::Cancel(call_id.into()));
        ok()
    }

    fn accept(&self, call_id: &str) -> Reply<()> {
        self.0.push(Sent::Accept(call_id.into()));
        ok()
    }

    fn refuse(&self, call_id: &str, response: &str) -> Reply<()> {
        self.0.push(Sent::Refuse(call_id.into(), response.into()));
        ok()
    }

    fn hang_up(&self, call_id: &str) -> Reply<()> {
        self.0.push(Sent::HangUp(call_id.into()));
        ok()
    }

    fn logout(&self) -> Reply<()> {
        self.0.push(Sent::Logout);
        ok()
    }

    fn renew_token(&self, token: &str) -> Reply<()> {
        self.0.push(Sent::RenewToken(token.into()));
        ok()
    }

    /// Says every peer is online, except those named `offline...`.
    fn subscribe_presence(&self, peers: &[String]) -> Reply<Presence> {
        self.0.push(Sent::Subscribe(peers.to_vec()));
        let presence: Presence = peers.iter().map(|p| (p.clone(), !p.starts_with("offline"))).collect();
        futures_util::future::ready(Ok(presence)).boxed()
    }

    fn unsubscribe_presence(&self, peers: &[String]) -> Reply<()> {
        self.0.push(Sent::Unsubscribe(peers.to_vec()));
        ok()
    }
}

/// A tray icon that records what it was told to show; whether a host
/// shows it is the test's to set (none, at first: as on CI).
pub struct RecordingTray {
    pub host: Arc<Mutex<TrayHost>>,
    pub views: Log<TrayView>,
}

impl TrayIcon for RecordingTray {
    fn start(&mut self, _actions: tokio::sync::mpsc::UnboundedSender<TrayAction>) {}
    fn host(&self) -> TrayHost {
        *self.host.lock().unwrap()
    }
    fn show(&mut self, view: &TrayView) {
        self.views.push(view.clone());
    }
}

/// The server URL the harness signs in to; nothing is ever sent there.
pub const TEST_URL: &str = "ws://test.invalid/";

/// An app with recording collaborators, driven by hand.
pub struct Harness {
    pub app: App,
    pub tones: Log<Option<Tone>>,
    pub media: Log<MediaRecord>,
    pub sent: Log<Sent>,
    pub sounds: Log<Sound>,
    pub notes: Log<(String, String)>,
    /// What touched the sound card, in order: tones, devices opened, voice started.
    pub order: Log<String>,
    /// While set, the fake call driver has not reached the relay yet.
    pub voice_connecting: Arc<AtomicBool>,
    pub home: tempfile::TempDir,
    /// Whether a tray host shows the icon (absent until a test says otherwise).
    pub tray_host: Arc<Mutex<TrayHost>>,
    /// What the tray icon was told to show, in order.
    pub tray_views: Log<TrayView>,
}

impl Harness {
    /// A fresh app on the sign-in screen, its config in a temp folder.
    pub fn new() -> Harness {
        Harness::with_media_failure(None)
    }

    pub fn with_media_failure(fail: Option<String>) -> Harness {
        Harness::build(None, fail)
    }

    /// A fresh app whose config file says `config` before it starts.
    pub fn with_config(config: AppConfig) -> Harness {
        Harness::build(Some(config), None)
    }

    fn build(config: Option<AppConfig>, fail: Option<String>) -> Harness {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path().to_owned());
        if let Some(config) = config {
            config.save(&paths).unwrap();
        }
        Harness::start(home, Options::default(), fail)
    }

    /// Starts an app on the files already in `home`.
    pub fn start(home: tempfile::TempDir, options: Options, fail: Option<String>) -> Harness {
        Harness::start_with(home, options, Media::Recording { fail }, FakeDevices::full())
    }

    /// A fresh app with built-in voice (the default config) on `devices`,
    /// its driver a fake that runs a real voice session without a network.
    pub fn with_voice(devices: FakeDevices) -> Harness {
        Harness::start_with(tempfile::tempdir().unwrap(), Options::default(), Media::Voice, devices)
    }

    /// The same with `config` in its config file before it starts.
    pub fn with_voice_config(config: AppConfig, devices: FakeDevices) -> Harness {
        let home = tempfile::tempdir().unwrap();
        config.save(&Paths::under(home.path().to_owned())).unwrap();
        Harness::start_with(home, Options::default(), Media::Voice, devices)
    }

    /// Signed in as alice with built-in voice, in a call with bob.
    pub fn in_voice_call(devices: FakeDevices) -> Harness {
        let mut h = Harness::with_voice(devices);
        h.sign_in("alice");
        h.accept_call_from_bob();
        h
    }

    /// Bob calls (call `c1`) and we answer, the server confirming.
    pub fn accept_call_from_bob(&mut self) {
        if self.app.session_number().is_none() {
            self.sign_in("alice");
        }
        self.invited("c1", "bob");
        self.send(Message::Incoming(softphone_app::incoming::Message::Accept));
        self.send(Message::Replied {
            call_id: "c1".into(),
            request: softphone_app::CallRequest::Accept,
            result: Ok(()),
        });
    }

    fn start_with(
        home: tempfile::TempDir,
        options: Options,
        media_kind: Media,
        devices: FakeDevices,
    ) -> Harness {
        let tones = Log::default();
        let media = Log::default();
        let sent = Log::default();
        let sounds = Log::default();
        let notes = Log::default();
        let order = Log::default();
        let voice_connecting = Arc::new(AtomicBool::new(false));
        let phone_log = sent.clone();
        let media_hook: Option<Box<dyn MediaHook>> = match media_kind {
            Media::Recording { fail } => {
                Some(Box::new(RecordingMedia { log: media.clone(), fail, order: order.clone() }))
            }
            Media::Voice => None,
        };
        let devices = FakeDevices { order: order.clone(), ..devices };
        let tray_host = Arc::new(Mutex::new(TrayHost::Absent));
        let tray_views = Log::default();
        let parts = Parts {
            paths: Paths::under(home.path().to_owned()),
            ringer: Box::new(ConfiguredRinger {
                tones: tones.clone(),
                sounds: sounds.clone(),
                order: order.clone(),
            }),
            media_hook,
            connector: Box::new(move |_config| Ok((Arc::new(RecordingPhone(phone_log.clone())) as _, None))),
            notifier: Box::new(RecordingNotifier(notes.clone())),
            audio: Arc::new(devices),
            voice: Arc::new(FakeDriver { order: order.clone(), connecting: voice_connecting.clone() }),
            tray: Box::new(RecordingTray { host: tray_host.clone(), views: tray_views.clone() }),
        };
        let (app, _task) = App::new(options, parts);
        Harness {
            app,
            tones,
            media,
            sent,
            sounds,
            notes,
            order,
            voice_connecting,
            home,
            tray_host,
            tray_views,
        }
    }

    /// The same app's files, opened by a new app (a restart).
    pub fn restart(self) -> Harness {
        let Harness { home, .. } = self;
        Harness::start(home, Options::default(), None)
    }

    pub fn paths(&self) -> Paths {
        Paths::under(self.home.path().to_owned())
    }

    /// An app signed in as `me` and connected.
    pub fn signed_in(me: &str) -> Harness {
        let mut h = Harness::new();
        h.sign_in(me);
        h
    }

    /// Signs in as `me` from the sign-in screen, and connects.
    pub fn sign_in(&mut self, me: &str) {
        self.send(Message::SignIn(sign_in::Message::PeerId(me.into())));
        self.send(Message::SignIn(sign_in::Message::ServerUrl(TEST_URL.into())));
        self.send(Message::SignIn(sign_in::Message::Submit));
        self.connected();
        // A fixed channel keeps snapshots stable.
        self.send(Message::Dial(softphone_app::dial::Message::Channel("room-1".into())));
    }

    pub fn send(&mut self, message: Message) {
        let _task = self.app.update(message);
    }

    /// Feeds an SDK event of the current session.
    pub fn sdk(&mut self, event: Event) {
        let session = self.app.session_number().expect("signed in");
        self.send(Message::Sdk(session, event));
    }

    pub fn connected(&mut self) {
        self.sdk(Event::Connection {
            state: sdk::ConnectionState::Connected { session: "s1".into() },
            reason: sdk::ConnectionReason::LoginSuccess,
        });
    }

    /// `caller` calls us on call `call_id`.
    pub fn invited(&mut self, call_id: &str, caller: &str) {
        self.sdk(Event::RemoteInvitationReceived {
            call_id: call_id.into(),
            caller_id: caller.into(),
            content: "hello".into(),
            channel_id: format!("{caller}-room"),
            expires_in: Duration::from_secs(30),
        });
    }

    /// The last tone the ringer was told to play.
    pub fn tone(&self) -> Option<Tone> {
        self.tones.last().flatten()
    }
}

/// Which media hook a harness's app gets.
enum Media {
    /// [`RecordingMedia`], failing with this reason if set.
    Recording { fail: Option<String> },
    /// The config's: built-in voice, with [`FakeDriver`].
    Voice,
}

/// The sound card of a test: device lists, and a microphone that hears
/// a steady tone at -20 dBFS (so meters have something to show).
#[derive(Clone)]
pub struct FakeDevices {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The microphone's tone. Two apps talking in one test need different
    /// ones: each app's echo canceller takes what its speaker plays (the
    /// other app's tone) for its reference, and a microphone hearing the
    /// same steady tone sounds to it like that tone's echo, which it
    /// removes (`end_to_end::each_apps_tone_passes_the_other_apps_echo_canceller`).
    pub microphone_hz: f64,
    /// How many times the speaker says it ran dry (its sink's underruns).
    pub speaker_underruns: u64,
    /// Filled in by the harness: the shared order of what touched the sound card.
    pub order: Log<String>,
}

/// The fake speaker: takes every frame and reports a fixed number of underruns.
struct FakeSpeaker {
    underruns: u64,
}

impl AudioSink for FakeSpeaker {
    fn write_frame(&mut self, _frame: &softphone_core::voice::codec::Frame) -> Result<(), AudioError> {
        Ok(())
    }

    fn underruns(&self) -> u64 {
        self.underruns
    }
}

/// The fake microphone's tone, unless a test sets another.
pub const MICROPHONE_HZ: f64 = 440.0;
/// The tone of the second app's microphone when two apps talk: not a
/// harmonic of [`MICROPHONE_HZ`], and far enough from it in frequency that
/// the echo canceller does not take one for the other.
pub const SECOND_MICROPHONE_HZ: f64 = 1000.0;

impl FakeDevices {
    /// A headset and the laptop's own microphone and speaker.
    pub fn full() -> FakeDevices {
        FakeDevices {
            inputs: vec!["Headset mic".into(), "Built-in mic".into()],
            outputs: vec!["Headset".into(), "Built-in speaker".into()],
            microphone_hz: MICROPHONE_HZ,
            speaker_underruns: 0,
            order: Log::default(),
        }
    }

    /// A speaker and no microphone.
    pub fn without_microphone() -> FakeDevices {
        FakeDevices { inputs: Vec::new(), ..FakeDevices::full() }
    }
}

impl AudioDevices for FakeDevices {
    fn list(&self) -> DeviceList {
        DeviceList { inputs: self.inputs.clone(), outputs: self.outputs.clone() }
    }

    fn open_input(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSource>, AudioError> {
        self.order.push(format!("open input {choice:?}"));
        let found = match choice {
            DeviceChoice::SystemDefault => !self.inputs.is_empty(),
            DeviceChoice::Named(name) => self.inputs.contains(name),
        };
        if !found {
            return Err(AudioError::NoDevice { direction: "input", name: format!("{choice:?}") });
        }
        Ok(Box::new(softphone_core::voice::audio::Tone::new(self.microphone_hz, -20.0)))
    }

    fn open_output(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSink>, AudioError> {
        self.order.push(format!("open output {choice:?}"));
        if self.outputs.is_empty() {
            return Err(AudioError::NoDevice { direction: "output", name: format!("{choice:?}") });
        }
        Ok(Box::new(FakeSpeaker { underruns: self.speaker_underruns }))
    }

    fn paces(&self) -> bool {
        false
    }
}

/// A call driver without a network: a real voice session on keys agreed
/// with a made-up other side, fed a few frames of the microphone so its
/// level reads as captured, and playing a few into the speaker, whose
/// underruns it notes as the real driver's playback thread does.
pub struct FakeDriver {
    pub order: Log<String>,
    /// While set, new calls' voice is still reaching the relay.
    pub connecting: Arc<AtomicBool>,
}

impl VoiceStarter for FakeDriver {
    fn start(&self, call: &CallFacts, ends: AudioEnds) -> Result<Box<dyn VoiceLine>, MediaError> {
        self.order.push(format!("voice start {}", call.call_id));
        let p = ends.processing;
        let on = |stage: bool, name: &str| if stage { format!(" {name}") } else { String::new() };
        self.order.push(format!(
            "voice processing{}{}{}",
            on(p.echo_cancellation, "aec"),
            on(p.noise_suppression, "ns"),
            on(p.gain_control, "agc")
        ));
        let AudioEnds { mut source, mut sink, .. } = ends;
        let other = LocalKey::from_rng(&mut rand::rngs::StdRng::seed_from_u64(7));
        let ours = LocalKey::from_rng(&mut rand::rngs::StdRng::seed_from_u64(8));
        let keys = ours
            .agree(
                &other.public(),
                Role::Caller,
                &call.call_id,
                softphone_core::voice::safety::Exchange::Uncommitted,
            )
            .map_err(|e| MediaError(e.to_string()))?;
        let now = std::time::Instant::now();
        let mut session =
            VoiceSession::new(keys, VoiceConfig::default(), now).map_err(|e| MediaError(e.to_string()))?;
        let mut frame = [0i16; softphone_core::voice::codec::FRAME_SAMPLES];
        for _ in 0..5 {
            source.read_frame(&mut frame).map_err(|e| MediaError(e.to_string()))?;
            session.on_captured_frame(&frame, now).map_err(|e| MediaError(e.to_string()))?;
            sink.write_frame(&session.next_playback_frame(now)).map_err(|e| MediaError(e.to_string()))?;
            session.note_speaker_underruns(sink.underruns());
        }
        Ok(Box::new(FakeLine { session, connecting: self.connecting.clone(), order: self.order.clone() }))
    }
}

struct FakeLine {
    session: VoiceSession,
    /// While set, the relay has not answered yet: no control.
    connecting: Arc<AtomicBool>,
    order: Log<String>,
}

impl VoiceLine for FakeLine {
    fn control(&self) -> Option<VoiceControl> {
        (!self.connecting.load(Ordering::Relaxed)).then(|| self.session.control())
    }

    fn safety_code(&self) -> String {
        self.session.safety_code().to_owned()
    }

    fn status(&mut self) -> MediaStatus {
        MediaStatus::Running("Voice through the relay (UDP)".into())
    }

    fn stop(&mut self) {
        self.order.push("voice stop".into());
    }
}
