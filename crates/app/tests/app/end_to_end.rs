//! The app's state driven end to end: a real in-process server, the real
//! SDK client inside the app, and SDK clients (or a second app, or the demo
//! peers) on the other side. The test plays the iced runtime: it runs the
//! tasks `update` returns and feeds their messages back.

use super::support::{
    FakeDevices, FakeDriver, Log, MICROPHONE_HZ, MediaRecord, RecordingMedia, RecordingRinger,
    SECOND_MICROPHONE_HZ,
};
use futures_util::stream::{BoxStream, SelectAll};
use futures_util::{FutureExt, StreamExt};
use iced::Task;
use softphone_app::call_history::{Direction, Outcome};
use softphone_app::config::AppConfig;
use softphone_app::link::{Link, Status};
use softphone_app::model::{OutgoingStage, RingStage};
use softphone_app::paths::Paths;
use softphone_app::ringtone::Tone;
use softphone_app::{App, Message, Options, Parts, Screen, dial, in_call, incoming, phone};
use softphone_core::sdk::{self, Client, Event, Events};
use std::sync::Arc;
use std::time::Duration;

pub use crate::servers::WAIT;

/// One app and the tasks it has asked the runtime to run.
pub struct Driver {
    name: &'static str,
    pub app: App,
    pub tones: Log<Option<Tone>>,
    pub media: Log<MediaRecord>,
    tasks: SelectAll<BoxStream<'static, Message>>,
    _home: tempfile::TempDir,
}

impl Driver {
    pub fn start(name: &'static str, options: Options) -> Driver {
        Driver::start_with(name, options, AppConfig::default())
    }

    /// An app whose config file says `config` before it starts.
    pub fn start_with(name: &'static str, options: Options, config: AppConfig) -> Driver {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path().to_owned());
        Driver::start_in(name, options, config, paths, home)
    }

    /// A second instance of the same user as `other`: a config of its own,
    /// `other`'s data dir (where the local server's secret is).
    pub fn start_beside(name: &'static str, options: Options, other: &Driver) -> Driver {
        let home = tempfile::tempdir().unwrap();
        let data_dir = Paths::under(other._home.path().to_owned()).data_dir;
        let paths = Paths { data_dir, ..Paths::under(home.path().to_owned()) };
        Driver::start_in(name, options, AppConfig::default(), paths, home)
    }

    fn start_in(
        name: &'static str,
        options: Options,
        config: AppConfig,
        paths: Paths,
        home: tempfile::TempDir,
    ) -> Driver {
        config.save(&paths).unwrap();
        let tones = Log::default();
        let media = Log::default();
        let parts = Parts {
            paths,
            ringer: Box::new(RecordingRinger(tones.clone())),
            media_hook: Some(Box::new(RecordingMedia {
                log: media.clone(),
                fail: None,
                order: Log::default(),
            })),
            connector: phone::sdk_connector(Default::default()),
            notifier: Box::new(softphone_app::notify::NoNotifier),
            tray: Box::new(softphone_app::tray::NoTray),
            audio: Arc::new(FakeDevices::full()),
            voice: Arc::new(FakeDriver { order: Log::default(), connecting: Default::default() }),
        };
        let (app, task) = App::new(options, parts);
        let mut driver = Driver { name, app, tones, media, tasks: SelectAll::new(), _home: home };
        driver.absorb(task);
        driver
    }

    /// An app with built-in voice through the relay (the production
    /// starter and phone), a tone of `microphone_hz` for a microphone and
    /// no speaker to hear.
    pub fn start_voice(name: &'static str, options: Options, microphone_hz: f64) -> Driver {
        let home = tempfile::tempdir().unwrap();
        let tones = Log::default();
        let voice = Arc::new(softphone_app::relay_voice::RelayVoice::default());
        let parts = Parts {
            paths: Paths::under(home.path().to_owned()),
            ringer: Box::new(RecordingRinger(tones.clone())),
            media_hook: None,
            connector: phone::sdk_connector(voice.clone()),
            notifier: Box::new(softphone_app::notify::NoNotifier),
            tray: Box::new(softphone_app::tray::NoTray),
            audio: Arc::new(FakeDevices { microphone_hz, ..FakeDevices::full() }),
            voice,
        };
        let (app, task) = App::new(options, parts);
        let mut driver =
            Driver { name, app, tones, media: Log::default(), tasks: SelectAll::new(), _home: home };
        driver.absorb(task);
        driver
    }

    /// Ticks the app (as its 100 ms subscription does) until `done` holds.
    pub async fn tick_until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.app) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: timed out waiting for {what}: {:?}",
                self.name,
                self.app.screen()
            );
            while let Some(Some(message)) = self.tasks.next().now_or_never() {
                self.send(message);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.send(Message::Tick(std::time::Instant::now()));
        }
    }

    /// Runs `task` as iced would; only its messages matter here (window
    /// actions such as the attention request have no window to act on).
    pub fn absorb(&mut self, task: Task<Message>) {
        if let Some(stream) = iced_test::runtime::task::into_stream(task) {
            self.tasks.push(
                stream
                    .filter_map(|action| async move {
                        match action {
                            iced_test::runtime::Action::Output(message) => Some(message),
                            _ => None,
                        }
                    })
                    .boxed(),
            );
        }
    }

    pub fn send(&mut self, message: Message) {
        let task = self.app.update(message);
        self.absorb(task);
    }

    /// Runs the app until `done` holds.
    pub async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.app) {
            let next = tokio::time::timeout_at(deadline, async {
                loop {
                    match self.tasks.next().now_or_never() {
                        Some(Some(message)) => return message,
                        // Nothing ready (or no task at all): wait a little.
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            });
            match next.await {
                Ok(message) => self.send(message),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; screen {:?}, dialog {:?}, notice {:?}, connection {:?}",
                    self.name,
                    self.app.screen(),
                    self.app.incoming(),
                    self.app.notice(),
                    self.app.link()
                ),
            }
        }
    }

    pub async fn until_dial(&mut self) {
        self.until("the dial screen", |app| matches!(app.screen(), Screen::Dial(_))).await;
    }

    pub async fn until_notice(&mut self, sentence: &str) {
        self.until(&format!("notice {sentence:?}"), |app| app.notice() == Some(sentence)).await;
    }

    pub async fn until_in_call(&mut self) {
        self.until("the call screen", |app| matches!(app.screen(), Screen::InCall(_))).await;
    }

    pub async fn until_ringing(&mut self) {
        self.until("the incoming dialog", |app| {
            app.incoming().is_some_and(|d| d.stage == RingStage::Ringing)
        })
        .await;
        assert_eq!(self.app.tone(), Some(Tone::Ringtone));
    }

    /// Runs the tasks the app asked for until none is left (after quitting:
    /// the goodbye, and the session's event stream ended with it).
    pub async fn drain(&mut self) {
        tokio::time::timeout(WAIT, async {
            while let Some(message) = self.tasks.next().await {
                self.send(message);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{}: tasks still running after {WAIT:?}", self.name));
    }

    /// The app's history file, as a restart would read it.
    pub fn history_file(&self) -> std::path::PathBuf {
        Paths::under(self._home.path().to_owned()).history_file()
    }

    pub fn call(&mut self, peer: &str) {
        self.send(Message::Dial(dial::Message::Peer(peer.into())));
        self.send(Message::Dial(dial::Message::Call));
        assert!(matches!(self.app.screen(), Screen::Outgoing(_)), "{:?}", self.app.screen());
    }
}

pub fn signed_in_to(url: &str, peer: &str) -> Options {
    Options { server_url: Some(url.into()), peer_id: Some(peer.into()), ..Options::default() }
}

/// The next event of `events` that `pick` accepts, skipping the others.
pub async fn next_event<T>(events: &mut Events, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.next().await.expect("the stream goes on");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("the expected SDK event")
}

pub async fn sdk_peer(url: &str, peer: &str) -> (Client, Events) {
    Client::connect(sdk::ClientConfig::new(url, peer)).await.expect("the peer signs in")
}

#[tokio::test]
async fn the_app_answers_and_places_calls_through_a_real_server() {
    let server = crate::servers::start_server(softphone_core::server::ServerConfig::default()).await;
    let url = server.url();
    let mut alice = Driver::start("alice", signed_in_to(&url, "alice"));
    alice.until_dial().await;
    let (bob, mut bob_events) = sdk_peer(&url, "bob").await;

    // bob calls; alice's phone rings; alice accepts.
    let invitation = bob.create_local_invitation("alice").unwrap();
    invitation.set_channel_id("room-e2e").unwrap();
    invitation.send().await.unwrap();
    alice.until_ringing().await;
    assert_eq!(alice.app.incoming().unwrap().call.facts.channel, "room-e2e");
    alice.send(Message::Incoming(incoming::Message::Accept));
    alice.until_in_call().await;
    assert_eq!(alice.app.tone(), None);
    next_event(&mut bob_events, |e| matches!(e, Event::LocalInvitationAccepted { .. }).then_some(())).await;
    assert!(matches!(alice.media.last(), Some(MediaRecord::Started(f)) if f.channel == "room-e2e"));

    // bob hangs up: alice's call ends and its media stops.
    invitation.hang_up().await.unwrap();
    alice.until_notice("bob hung up").await;
    assert!(matches!(alice.media.last(), Some(MediaRecord::Stopped(_))));

    // alice calls; bob's phone acknowledges (ringback), bob refuses busy.
    alice.call("bob");
    alice
        .until(
            "ringing at bob's",
            |app| matches!(app.screen(), Screen::Outgoing(c) if c.stage == OutgoingStage::Ringing),
        )
        .await;
    assert_eq!(alice.app.tone(), Some(Tone::Ringback));
    let call_id = next_event(&mut bob_events, |e| match e {
        Event::RemoteInvitationReceived { call_id, .. } => Some(call_id.clone()),
        _ => None,
    })
    .await;
    let remote = bob.remote_invitation(&call_id).unwrap();
    remote.set_response("busy").unwrap();
    remote.refuse().await.unwrap();
    alice.until_notice("bob is busy").await;
    assert_eq!(alice.app.tone(), None);

    // alice calls again, bob accepts, alice hangs up: bob hears of it.
    alice.call("bob");
    let call_id = next_event(&mut bob_events, |e| match e {
        Event::RemoteInvitationReceived { call_id, .. } => Some(call_id.clone()),
        _ => None,
    })
    .await;
    bob.remote_invitation(&call_id).unwrap().accept().await.unwrap();
    alice.until_in_call().await;
    alice.send(Message::InCall(in_call::Message::HangUp));
    let by = next_event(&mut bob_events, |e| match e {
        Event::HungUp { by, .. } => Some(by.clone()),
        _ => None,
    })
    .await;
    assert_eq!(by, "alice");

    // bob calls and gives up: a missed call, and silence.
    let invitation = bob.create_local_invitation("alice").unwrap();
    invitation.send().await.unwrap();
    alice.until_ringing().await;
    invitation.cancel().await.unwrap();
    alice.until_notice("Missed call from bob").await;
    assert_eq!(alice.app.tone(), None);
    assert_eq!(alice.tones.last(), Some(None));
}

/// A port on loopback that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn with_several_servers_the_app_skips_a_dead_one_and_moves_on_when_its_server_goes() {
    let (first, second) = (
        crate::servers::start_server(softphone_core::server::ServerConfig::default()).await,
        crate::servers::start_server(softphone_core::server::ServerConfig::default()).await,
    );
    // Nothing listens on the first: the sign-in goes on to the next
    // instead of giving up after one failed attempt.
    let dead = format!("ws://127.0.0.1:{}/", free_port());
    let list = format!("{dead},{},{}", first.url(), second.url());
    let mut alice = Driver::start("alice", signed_in_to(&list, "alice"));
    alice.until_dial().await;
    let (watcher, mut watcher_events) = sdk_peer(&second.url(), "watcher").await;
    assert!(!watcher.query_presence(&["alice"]).await.unwrap()["alice"], "alice is on the first");
    let (config, _) = softphone_app::config::AppConfig::load(&Paths::under(alice._home.path().to_owned()));
    assert_eq!(config.servers.urls(), [dead.as_str(), &first.url(), &second.url()], "the list is remembered");

    first.shutdown().await;
    let reconnecting = |app: &App| matches!(app.link(), Link::Up { status: Status::Reconnecting { .. }, .. });
    alice.until("reconnecting", reconnecting).await;
    alice
        .until("connected again", |app| matches!(app.link(), Link::Up { status: Status::Connected, .. }))
        .await;
    assert!(watcher.query_presence(&["alice"]).await.unwrap()["alice"], "now on the second");
    // And calls reach her there.
    let invitation = watcher.create_local_invitation("alice").unwrap();
    invitation.send().await.unwrap();
    alice.until_ringing().await;
    invitation.cancel().await.unwrap();
    alice.until_notice("Missed call from watcher").await;
    next_event(&mut watcher_events, |e| matches!(e, Event::LocalInvitationCanceled { .. }).then_some(()))
        .await;
    second.shutdown().await;
}

#[tokio::test]
async fn two_apps_share_the_embedded_default_server_and_its_demo_peers() {
    let listen = format!("127.0.0.1:{}", free_port());
    let default = |peer: &str| Options {
        peer_id: Some(peer.into()),
        default_listen: listen.clone(),
        ..Options::default()
    };
    let mut alice = Driver::start("alice", default("alice"));
    alice.until_dial().await;
    assert_eq!(alice.app.embedded_url(), Some(format!("ws://{listen}/")), "the first app hosts");
    // A second instance of the same user: it reads the same secret.
    let mut bob = Driver::start_beside("bob", default("bob"), &alice);
    bob.until_dial().await;
    assert_eq!(bob.app.embedded_url(), None, "the second app uses the first one's server");

    // The two phones call each other.
    alice.call("bob");
    bob.until_ringing().await;
    bob.send(Message::Incoming(incoming::Message::Accept));
    bob.until_in_call().await;
    alice.until_in_call().await;
    alice.send(Message::InCall(in_call::Message::HangUp));
    bob.until_notice("alice hung up").await;

    // The demo peer `busy` refuses.
    bob.call("busy");
    bob.until_notice("busy is busy").await;
}

#[tokio::test]
async fn do_not_disturb_and_call_waiting_through_a_real_server() {
    let server = crate::servers::start_server(softphone_core::server::ServerConfig::default()).await;
    let url = server.url();
    let dnd = AppConfig { do_not_disturb: true, ..AppConfig::default() };
    let mut alice = Driver::start_with("alice", signed_in_to(&url, "alice"), dnd);
    alice.until_dial().await;
    let (bob, mut bob_events) = sdk_peer(&url, "bob").await;

    // Do not disturb: bob hears `dnd`, alice's phone never rang.
    let invitation = bob.create_local_invitation("alice").unwrap();
    invitation.send().await.unwrap();
    alice.until("the missed call recorded", |app| app.history().unseen_missed().count() == 1).await;
    let response = next_event(&mut bob_events, |e| match e {
        Event::LocalInvitationRefused { response, .. } => Some(response.clone()),
        _ => None,
    })
    .await;
    assert_eq!(response, "dnd");
    assert!(!alice.tones.items().contains(&Some(Tone::Ringtone)));

    // Call waiting: alice in a call with bob; carol calls; alice takes carol's call.
    // (The do-not-disturb app goes first: a second device of alice in dnd would refuse for both.)
    drop(alice);
    let waiting = AppConfig { call_waiting: true, ..AppConfig::default() };
    let mut alice = Driver::start_with("alice", signed_in_to(&url, "alice"), waiting);
    alice.until_dial().await;
    let (carol, mut carol_events) = sdk_peer(&url, "carol").await;
    let first = bob.create_local_invitation("alice").unwrap();
    first.send().await.unwrap();
    alice.until_ringing().await;
    alice.send(Message::Incoming(incoming::Message::Accept));
    alice.until_in_call().await;
    let second = carol.create_local_invitation("alice").unwrap();
    second.send().await.unwrap();
    alice.until("the call-waiting prompt", |app| app.waiting().is_some()).await;
    // The beeps go into the call's own playback once its voice runs (the
    // echo canceller's reference), else through the ringer.
    match alice.app.voice().and_then(|voice| voice.control.clone()) {
        Some(control) => {
            assert!(control.is_call_waiting());
            assert_eq!(alice.app.tone(), None);
        }
        None => assert_eq!(alice.app.tone(), Some(Tone::CallWaiting)),
    }
    alice.send(Message::Waiting(incoming::Message::Accept));
    alice
        .until(
            "the call with carol",
            |app| matches!(app.screen(), Screen::InCall(c) if c.call.facts.peer == "carol"),
        )
        .await;
    next_event(&mut bob_events, |e| matches!(e, Event::HungUp { .. }).then_some(())).await;
    next_event(&mut carol_events, |e| matches!(e, Event::LocalInvitationAccepted { .. }).then_some(())).await;
    let first_call = &alice.app.history().records()[0];
    assert_eq!(
        (first_call.peer.as_str(), first_call.direction, first_call.outcome),
        ("bob", Direction::Incoming, Outcome::Answered)
    );
}

#[tokio::test]
async fn the_app_signs_in_over_wss_trusting_its_ca_file() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let tls = softphone_core::server::tls::load(&cert, &key).unwrap();
    let config = softphone_core::server::ServerConfig { tls: Some(tls), ..Default::default() };
    let server = crate::servers::start_server(config).await;
    assert!(server.url().starts_with("wss://"));
    let mut alice =
        Driver::start("alice", Options { ca_file: Some(cert), ..signed_in_to(&server.url(), "alice") });
    alice.until_dial().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_talk_through_the_relay_and_show_the_same_safety_code() {
    let server =
        softphone_core::server::spawn(softphone_core::server::ServerConfig::default()).await.unwrap();
    let url = server.url();
    let mut alice = Driver::start_voice("alice", signed_in_to(&url, "alice"), MICROPHONE_HZ);
    let mut bob = Driver::start_voice("bob", signed_in_to(&url, "bob"), SECOND_MICROPHONE_HZ);
    alice.until_dial().await;
    bob.until_dial().await;
    alice.call("bob");
    bob.tick_until("the invitation", |app| app.incoming().is_some()).await;
    bob.send(Message::Incoming(incoming::Message::Accept));
    let talking = |app: &App| {
        app.voice().and_then(|v| v.control.as_ref()).is_some_and(|c| c.speaker_level().rms_dbfs > -40.0)
    };
    for _ in 0..50 {
        if talking(&alice.app) && talking(&bob.app) {
            break;
        }
        alice.tick_until("alice's voice", |app| app.voice().is_some()).await;
        bob.tick_until("bob's voice", |app| app.voice().is_some()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        alice.send(Message::Tick(std::time::Instant::now()));
        bob.send(Message::Tick(std::time::Instant::now()));
    }
    alice.tick_until("alice hears bob's tone", talking).await;
    bob.tick_until("bob hears alice's tone", talking).await;
    let code = |d: &Driver| d.app.voice().unwrap().safety_code.clone();
    assert_eq!(code(&alice), code(&bob));
    assert_eq!(code(&alice).len(), 6);
    alice.send(Message::InCall(in_call::Message::HangUp));
    bob.until_notice("alice hung up").await;
}

/// Why the two apps above have different tones for microphones: each
/// app's echo canceller (on by default) takes what its speaker plays, the
/// other app's tone, for its reference. Were both 440 Hz, a steady tone
/// captured while the same tone plays is, to AEC3, that tone's echo: it
/// removes the microphone's tone within a few hundred milliseconds of the
/// far end starting, and the other app hears only the frames captured before
/// that. The check above then passed only when a poll caught that short
/// window, and a jitter buffer starting playout a frame sooner (a 25 ms
/// floor) shortened it enough to fail about one call in five. Driven
/// frame by frame: no thread, no clock.
#[test]
fn each_apps_tone_passes_the_other_apps_echo_canceller() {
    use softphone_core::voice::audio::{AudioSource, Tone};
    use softphone_core::voice::processing::{AudioProcessor, ProcessingConfig};
    /// Frames before the far end plays; frames in all (20 s, the wait above).
    const ALONE: usize = 5;
    const FRAMES: usize = 1000;
    let dbfs = |frame: &[i16]| {
        let power = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
        10.0 * (power.max(1e-3) / 32768f64.powi(2)).log10()
    };
    // The microphone's level after the canceller, frame by frame, while
    // the speaker plays a tone of `far_hz` from frame ALONE, at the level
    // the other app's processed tone arrives (about -35 dBFS RMS).
    let cleaned = |microphone_hz: f64, far_hz: f64| -> Vec<f64> {
        let mut processor = AudioProcessor::new(ProcessingConfig::default());
        let (mut microphone, mut far) = (Tone::new(microphone_hz, -20.0), Tone::new(far_hz, -32.0));
        let mut frame = [0i16; 960];
        (0..FRAMES)
            .map(|k| {
                if k >= ALONE {
                    far.read_frame(&mut frame).unwrap();
                    processor.on_far_end_frame(&frame);
                }
                microphone.read_frame(&mut frame).unwrap();
                processor.process_captured_frame(&mut frame);
                dbfs(&frame)
            })
            .collect()
    };
    let same = cleaned(MICROPHONE_HZ, MICROPHONE_HZ);
    assert!(
        same[..ALONE].iter().all(|&db| db > -40.0),
        "heard before the far end plays: {:?}",
        &same[..ALONE]
    );
    // Gone within 30 frames (0.6 s): the linear filter learns the tone in
    // about 20, since the suppressor stands back (with AEC3's defaults it
    // went in under 10).
    let gone = &same[ALONE + 30..ALONE + 100];
    assert!(gone.iter().all(|&db| db < -60.0), "the same tone is taken for its echo: {gone:?}");
    for (microphone_hz, far_hz) in
        [(MICROPHONE_HZ, SECOND_MICROPHONE_HZ), (SECOND_MICROPHONE_HZ, MICROPHONE_HZ)]
    {
        let kept = cleaned(microphone_hz, far_hz);
        let quietest = kept.iter().copied().fold(f64::INFINITY, f64::min);
        // The call screen's check above counts a speaker above -40 dBFS as hearing.
        assert!(quietest > -39.0, "{microphone_hz} Hz with {far_hz} Hz playing: down to {quietest:.1} dBFS");
    }
}

/// A v1.1 caller (a raw WebSocket with its key in the invite) still gets
/// voice with the app, whose call screen says the code does not protect it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v11_callers_call_screen_says_the_code_does_not_protect_the_call() {
    use futures_util::SinkExt;
    use softphone_core::protocol::Role;
    use softphone_core::voice::crypto::{LocalKey, decode_public_key, encode_public_key};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let server =
        softphone_core::server::spawn(softphone_core::server::ServerConfig::default()).await.unwrap();
    let url = server.url();
    let mut bob = Driver::start_voice("bob", signed_in_to(&url, "bob"), MICROPHONE_HZ);
    bob.until_dial().await;
    let (mut carol, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let carol_key = LocalKey::generate();
    let frames = [
        serde_json::json!({"type": "login", "req": 1, "peer_id": "carol"}),
        serde_json::json!({"type": "invite", "req": 2, "call_id": "v11", "callee_id": "bob",
                           "media_key": encode_public_key(&carol_key.public())}),
    ];
    for frame in frames {
        carol.send(Ws::Text(frame.to_string().into())).await.unwrap();
    }
    bob.tick_until("the invitation", |app| app.incoming().is_some()).await;
    bob.send(Message::Incoming(incoming::Message::Accept));
    let bob_public = loop {
        let Some(Ok(Ws::Text(text))) = tokio::time::timeout(WAIT, carol.next()).await.unwrap() else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["type"] == "accepted" {
            break decode_public_key(v["media_key"].as_str().unwrap()).unwrap();
        }
    };
    let keys = carol_key
        .agree(&bob_public, Role::Caller, "v11", softphone_core::voice::safety::Exchange::Uncommitted)
        .unwrap();
    let agreed = |app: &App| app.voice().is_some_and(|v| !v.safety_code.is_empty());
    for _ in 0..100 {
        if agreed(&bob.app) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        bob.send(Message::Tick(std::time::Instant::now()));
    }
    bob.tick_until("the code", agreed).await;
    let view = bob.app.voice().unwrap();
    assert_eq!(view.safety_code, keys.safety_code, "the v1.1 code, as the old phone shows it");
    let note = view.safety_note.clone().expect("a note under the code");
    assert!(note.contains("does not protect the call"), "{note}");
}
