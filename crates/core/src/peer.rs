//! `softphone peer`: the headless peer. It logs in through the SDK, reads
//! commands one a line from standard input (or `--script`), answers calls
//! on its own when told to (`--auto`), and prints one JSON line for every
//! event and every command's result, so QA scripts and the end-to-end
//! tests can place, answer and watch calls without a GUI.
//!
//! - [`script`]: the command language (parsed with clap, line by line).
//! - [`output`]: the JSON lines (and `--pretty`).

use crate::command::{AnyError, parse_duration};
use crate::demo::{Answering, AutoMode};
use crate::sdk::{self, Client, ClientConfig, Event};
use crate::token::source::TokenSource;
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub mod output;
pub mod script;
pub mod voice;

use crate::voice::ProcessingConfig;
use output::{Output, event_line, failure, sdk_failure, success};
use script::Command;
use voice::{PeerVoice, VoiceFiles};

/// Events kept for `wait` at most; older ones are dropped first.
const WAIT_BACKLOG: usize = 1_000;
/// How long `quit` waits for the server to confirm the logout.
const LOGOUT_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The server, `ws://HOST:PORT` or `wss://...`; or several nodes of one
    /// deployment, comma-separated (`ws://a:7878/,ws://b:7878/`), tried in
    /// turn when a connection drops.
    #[arg(long)]
    pub server: String,
    /// The peer id to log in as.
    #[arg(long)]
    pub id: String,
    /// The login token (any token works against a server in open mode).
    #[arg(long, conflicts_with_all = ["token_file", "token_command"])]
    pub token: Option<String>,
    /// A file holding the login token (surrounding white space is trimmed),
    /// read again whenever the server says the token is expiring.
    #[arg(long, conflicts_with = "token_command")]
    pub token_file: Option<PathBuf>,
    /// A command (split like a shell's words, run without a shell) that
    /// prints a login token; run at start and whenever the server says the
    /// token is expiring.
    #[arg(long, value_name = "COMMAND")]
    pub token_command: Option<String>,
    /// The device label shown to callers whose call this peer accepts.
    #[arg(long, default_value = "peer")]
    pub device: String,
    /// Read commands from this file instead of standard input.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Answer incoming calls unattended; the peer then keeps running after
    /// its input ends, until SIGINT or SIGTERM.
    #[arg(long, value_enum)]
    pub auto: Option<AutoMode>,
    /// How long to let a call ring before the automatic answer.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub after: Duration,
    /// The response sent with automatic answers.
    #[arg(long, default_value = "")]
    pub response: String,
    /// Hang up every accepted call after this long.
    #[arg(long, value_parser = parse_duration)]
    pub hangup_after: Option<Duration>,
    /// Print for a person instead of JSON lines.
    #[arg(long)]
    pub pretty: bool,
    /// Also trusts the certificate authorities in this PEM file for wss://
    /// (a private deployment's own CA).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Built-in voice: send this WAV file (any rate, mono or stereo) as the
    /// microphone in accepted calls; silence when it runs out.
    #[arg(long, value_name = "FILE.wav")]
    pub audio_in: Option<PathBuf>,
    /// Built-in voice: write what the peer hears in accepted calls to this
    /// WAV file (48 kHz mono 16-bit), from accept to hang-up.
    #[arg(long, value_name = "FILE.wav")]
    pub audio_out: Option<PathBuf>,
    /// Built-in voice: clean the input file as the app cleans its
    /// microphone before Opus: `on` (echo cancellation, noise suppression
    /// and gain control), `off`, or stages joined by commas (`aec,ns,agc`).
    /// The canceller's reference is what the peer plays into --audio-out.
    #[arg(long, value_name = "on|off|aec,ns,agc", default_value = "off")]
    pub audio_processing: ProcessingConfig,
}

/// Runs the peer; `Err` (exit status 1) when any command or `wait` failed.
pub fn run(args: PeerArgs) -> Result<(), AnyError> {
    let source = token_source(&args);
    let lines = input_lines(&args)?;
    if let Some(path) = &args.audio_in {
        // Refused before logging in, so a typo is not found only when a call is accepted.
        crate::voice::audio::wav::WavSource::open(path).map_err(|e| format!("--audio-in: {e}"))?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let failed = runtime.block_on(async move {
        let token = match (&args.token, &source) {
            (Some(token), _) => token.clone(),
            (None, Some(source)) => source.fetch(&args.id).await?,
            (None, None) => String::new(),
        };
        let mut config = ClientConfig::with_servers(&args.server, &args.id);
        let initial_token = token.clone();
        config.token = token;
        config.device = args.device.clone();
        config.ca_file = args.ca_file.clone();
        let out = Output::new(args.pretty);
        let (client, events) = match Client::connect(config).await {
            Ok(connected) => connected,
            Err(e) => {
                out.print(&sdk_failure("connect", &e));
                return Err(AnyError::from(e.to_string()));
            }
        };
        let voice = (args.audio_in.is_some() || args.audio_out.is_some()).then(|| {
            let files = VoiceFiles {
                audio_in: args.audio_in.clone(),
                audio_out: args.audio_out.clone(),
                processing: args.audio_processing,
            };
            Arc::new(PeerVoice::new(files, args.server.clone(), &client, out.clone()))
        });
        let answering = Answering {
            mode: args.auto.unwrap_or(AutoMode::Ignore),
            after: args.after,
            response: args.response.clone(),
            hang_up_after: args.hangup_after,
            accept_with: voice.as_ref().map(|voice| voice_accept(voice.clone(), out.clone())),
        };
        let recent = Arc::new(Mutex::new(Recent::default()));
        let (waitable, backlog) = mpsc::unbounded_channel();
        let pumped = Pumped {
            answering,
            out: out.clone(),
            recent: recent.clone(),
            waitable,
            voice: voice.clone(),
            tokens: source.map(|source| Tokens { source, current: Arc::new(Mutex::new(initial_token)) }),
        };
        let pump = tokio::spawn(pump(client.clone(), events, pumped));
        let mut peer = Peer { client, out, recent, backlog, kept: VecDeque::new(), failures: 0, voice };
        peer.run_script(lines, args.auto.is_some()).await;
        if let Some(voice) = &peer.voice {
            for line in voice.stop_all().await {
                peer.out.print(&line);
            }
        }
        let _ = tokio::time::timeout(LOGOUT_WAIT, peer.client.logout()).await;
        drop(peer.client);
        let _ = tokio::time::timeout(LOGOUT_WAIT, pump).await;
        Ok(peer.failures)
    })?;
    // The stdin reader thread may still be blocked in a read; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} command(s) failed").into()),
    }
}

/// Where the peer renews its token from: `--token-file`, else `--token-command`.
fn token_source(args: &PeerArgs) -> Option<TokenSource> {
    match (&args.token_file, &args.token_command) {
        (Some(path), _) => Some(TokenSource::File(path.clone())),
        (None, Some(command)) => Some(TokenSource::Command(command.clone())),
        (None, None) => None,
    }
}

/// The commands to run: the `--script` file's lines, else standard input's.
fn input_lines(args: &PeerArgs) -> Result<mpsc::UnboundedReceiver<String>, AnyError> {
    match &args.script {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read script {}: {e}", path.display()))?;
            Ok(script_lines(text))
        }
        None => Ok(stdin_lines()),
    }
}

/// The lines of a script file, as a channel like standard input's.
fn script_lines(text: String) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    for line in text.lines() {
        let _ = tx.send(line.to_owned());
    }
    rx
}

/// Standard input, line by line, read on a thread of its own (a blocking
/// read must not hold up the runtime, nor its shutdown).
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The calls `CALL` defaults to.
#[derive(Debug, Default)]
struct Recent {
    /// The last call placed (for `cancel`).
    placed: Option<String>,
    /// The last call received (for `accept`, `refuse`).
    received: Option<String>,
    /// The last call accepted, on either side (for `hangup`).
    accepted: Option<String>,
}

/// Reads the SDK's events: prints each, remembers recent calls, answers
/// automatically, and hands each to `wait`.
/// What the event pump works with.
struct Pumped {
    answering: Answering,
    out: Output,
    recent: Arc<Mutex<Recent>>,
    waitable: mpsc::UnboundedSender<Event>,
    /// Built-in voice, with `--audio-in`/`--audio-out`.
    voice: Option<Arc<PeerVoice>>,
    /// Where a fresh token comes from when the server says ours is expiring.
    tokens: Option<Tokens>,
}

/// A token source and the token last taken from it.
#[derive(Clone)]
struct Tokens {
    source: TokenSource,
    /// The token in use: a fetch that gives it again is not a renewal.
    current: Arc<Mutex<String>>,
}

/// An automatic accept that offers a key and starts the call's voice.
fn voice_accept(voice: Arc<PeerVoice>, out: Output) -> crate::demo::AcceptWith {
    crate::demo::AcceptWith(Arc::new(move |invitation| {
        let (voice, out) = (voice.clone(), out.clone());
        Box::pin(async move {
            if let Some(line) = voice.accept(&invitation).await? {
                out.print(&line);
            }
            Ok(())
        })
    }))
}

async fn pump(client: Client, mut events: sdk::Events, pumped: Pumped) {
    let Pumped { answering, out, recent, waitable, voice, tokens } = pumped;
    let mut actions = tokio::task::JoinSet::new();
    while let Some(event) = events.next().await {
        out.print(&event_line(&event));
        if let Some(voice) = &voice
            && let Some(line) = voice.on_event(&client, &event).await
        {
            out.print(&line);
        }
        {
            let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
            match &event {
                Event::RemoteInvitationReceived { call_id, .. } => recent.received = Some(call_id.clone()),
                Event::LocalInvitationAccepted { call_id, .. }
                | Event::RemoteInvitationAccepted { call_id } => recent.accepted = Some(call_id.clone()),
                _ => {}
            }
        }
        if let Event::TokenExpiring { expires_in } = &event {
            actions.spawn(renew_token(client.clone(), tokens.clone(), *expires_in, out.clone()));
        }
        if let Some(action) = answering.react(&client, &event) {
            let out = out.clone();
            actions.spawn(async move {
                if let Some(action) = action.await {
                    out.print(&output::auto_line(action.kind, &action.call_id, &action.result));
                }
            });
        }
        while actions.try_join_next().is_some() {}
        let _ = waitable.send(event);
    }
}

/// Renews the session's token from `source` and prints how it went
/// (`{"auto":"renew_token","ok":…}`); with no source, says that the
/// session will end at the token's expiry.
async fn renew_token(client: Client, tokens: Option<Tokens>, expires_in: Duration, out: Output) {
    let result = match &tokens {
        Some(tokens) => {
            let current = tokens.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let send = |token: &str| client.renew_token(token);
            let renewed =
                crate::token::source::renew(&tokens.source, client.peer_id(), &current, expires_in, send)
                    .await;
            renewed.map(|token| *tokens.current.lock().unwrap_or_else(|p| p.into_inner()) = token)
        }
        None => Err("no --token-file or --token-command to renew from: the session ends at expiry".into()),
    };
    out.print(&output::renew_line(&result));
}

/// The script's side: runs commands one after another.
struct Peer {
    client: Client,
    /// Where result lines go (shared with the event pump).
    out: Output,
    /// The calls `CALL` defaults to (kept current by the event pump).
    recent: Arc<Mutex<Recent>>,
    /// Events from the pump not yet looked at by `wait`.
    backlog: mpsc::UnboundedReceiver<Event>,
    /// Events looked at but not taken by a `wait`, oldest first.
    kept: VecDeque<Event>,
    /// How many commands failed.
    failures: usize,
    /// Built-in voice, with `--audio-in`/`--audio-out`.
    voice: Option<Arc<PeerVoice>>,
}

impl Peer {
    /// Runs every line until `quit`, the end of input (then, when answering
    /// unattended, until a signal), or a signal.
    async fn run_script(&mut self, mut lines: mpsc::UnboundedReceiver<String>, unattended: bool) {
        let stop = crate::command::shutdown_signal();
        tokio::pin!(stop);
        let mut number = 0;
        loop {
            let line = tokio::select! {
                line = lines.recv() => line,
                _ = &mut stop => return,
            };
            let Some(line) = line else { break };
            number += 1;
            let command = match script::parse_line(&line) {
                Ok(None) => continue,
                Ok(Some(Command::Quit)) => return,
                Ok(Some(command)) => command,
                Err(message) => {
                    let name = line.split_whitespace().next().unwrap_or("");
                    self.fail(failure(name, "bad_command", &format!("line {number}: {message}")));
                    continue;
                }
            };
            tokio::select! {
                _ = self.execute(command) => {}
                _ = &mut stop => return,
            }
        }
        if unattended {
            stop.await;
        }
    }

    fn fail(&mut self, line: output::Line) {
        self.failures += 1;
        self.out.print(&line);
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The call a command names, or the most recent relevant one.
    fn pick(&self, given: Option<String>, default: impl Fn(&Recent) -> Option<String>) -> Option<String> {
        given.or_else(|| default(&self.recent()))
    }

    async fn execute(&mut self, command: Command) {
        let name = command.name();
        let result = match command {
            Command::Call { peer, channel, content } => self.call(&peer, channel, content).await,
            Command::Cancel { call } => match self.pick(call, |r| r.placed.clone()) {
                None => Err(no_call("no call placed to cancel")),
                Some(id) => match self.client.local_invitation(&id) {
                    None => Err(no_call(&format!("no outgoing call {id}"))),
                    Some(invitation) => {
                        invitation.cancel().await.map(|()| json!({ "call_id": id })).map_err(sdk_err)
                    }
                },
            },
            Command::Accept { call, response } | Command::Refuse { call, response } => {
                let accept = name == "accept";
                match self.pick(call, |r| r.received.clone()) {
                    None => Err(no_call("no call received to answer")),
                    Some(id) => match self.client.remote_invitation(&id) {
                        None => Err(no_call(&format!("no incoming call {id}"))),
                        Some(invitation) => {
                            let answered = async {
                                if let Some(response) = response {
                                    invitation.set_response(response)?;
                                }
                                match (&self.voice, accept) {
                                    (Some(voice), true) => {
                                        if let Some(line) = voice.accept(&invitation).await? {
                                            self.out.print(&line);
                                        }
                                        Ok(())
                                    }
                                    (None, true) => invitation.accept().await,
                                    (_, false) => invitation.refuse().await,
                                }
                            };
                            answered.await.map(|()| json!({ "call_id": id })).map_err(sdk_err)
                        }
                    },
                }
            }
            Command::Hangup { call } => match self.pick(call, |r| r.accepted.clone()) {
                None => Err(no_call("no accepted call to hang up")),
                Some(id) => {
                    self.client.hang_up(&id).await.map(|()| json!({ "call_id": id })).map_err(sdk_err)
                }
            },
            Command::Presence { peers } => self
                .client
                .query_presence(&peers)
                .await
                .map(|online| json!({ "online": online }))
                .map_err(sdk_err),
            Command::Subscribe { peers } => self
                .client
                .subscribe_presence(&peers)
                .await
                .map(|online| json!({ "online": online }))
                .map_err(sdk_err),
            Command::Unsubscribe { peers } => self
                .client
                .unsubscribe_presence(&peers)
                .await
                .map(|()| json!({ "peers": peers }))
                .map_err(sdk_err),
            Command::Wait { event, timeout } => self.wait(&event, timeout).await,
            Command::Sleep { duration } => {
                tokio::time::sleep(duration).await;
                Ok(json!({ "ms": duration.as_millis() as u64 }))
            }
            Command::Quit => Ok(json!({})),
        };
        match result {
            Ok(fields) => self.out.print(&success(name, fields)),
            Err((code, message)) => self.fail(failure(name, &code, &message)),
        }
    }

    async fn call(
        &mut self,
        peer: &str,
        channel: String,
        content: String,
    ) -> Result<serde_json::Value, Failed> {
        let invitation = self.client.create_local_invitation(peer).map_err(sdk_err)?;
        invitation.set_channel_id(channel).map_err(sdk_err)?;
        invitation.set_content(content).map_err(sdk_err)?;
        if let Some(voice) = &self.voice {
            voice.offer(&invitation).map_err(sdk_err)?;
        }
        // Remembered before sending, so `cancel` right after finds it.
        let id = invitation.call_id().to_owned();
        self.recent().placed = Some(id.clone());
        invitation.send().await.map_err(sdk_err)?;
        Ok(json!({ "call_id": id, "callee": peer }))
    }

    /// Takes the first event named `name` that no earlier `wait` took,
    /// waiting up to `timeout` for it.
    async fn wait(&mut self, name: &str, timeout: Duration) -> Result<serde_json::Value, Failed> {
        let found = |e: &Event| e.name() == name;
        if let Some(at) = self.kept.iter().position(found) {
            let event = self.kept.remove(at).expect("found above");
            return Ok(waited(&event));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.backlog.recv()).await {
                Ok(Some(event)) if found(&event) => return Ok(waited(&event)),
                Ok(Some(event)) => {
                    if self.kept.len() == WAIT_BACKLOG {
                        self.kept.pop_front();
                    }
                    self.kept.push_back(event);
                }
                Ok(None) => return Err(("stopped".into(), format!("the client stopped before {name}"))),
                Err(_) => return Err(("timeout".into(), format!("no {name} within {timeout:?}"))),
            }
        }
    }
}

/// A command's failure: its code and message.
type Failed = (String, String);

fn sdk_err(e: sdk::Error) -> Failed {
    (e.code().to_owned(), e.to_string())
}

fn no_call(message: &str) -> Failed {
    ("no_call".into(), message.to_owned())
}

/// The result fields of a successful `wait`: the event's name and call.
fn waited(event: &Event) -> serde_json::Value {
    match event.call_id() {
        Some(call_id) => json!({ "event": event.name(), "call_id": call_id }),
        None => json!({ "event": event.name() }),
    }
}
