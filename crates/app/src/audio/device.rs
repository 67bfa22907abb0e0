//! The sound card through cpal: device lists for the settings screen, a
//! microphone [`DeviceSource`] and a speaker [`DeviceSink`] at whatever
//! rate and channel count the device wants, converted to and from 48 kHz
//! mono. Between cpal's real-time callbacks and the voice tasks sit
//! bounded channels (no lock on the audio path); a full one drops, an
//! empty one plays silence. Every failure is an [`AudioError`], never a panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat};

use softphone_core::voice::audio::resample::Resampler;
use softphone_core::voice::audio::{AudioError, AudioSink, AudioSource};
use softphone_core::voice::codec::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

mod latency;
mod realtime;
mod speaker_queue;

use latency::DelayMeter;
use speaker_queue::PlayQueue;

/// What the settings list shows first: the system's default device.
pub const SYSTEM_DEFAULT: &str = "system default";
/// Captured frames waiting for the sender at most (200 ms).
const CAPTURE_QUEUE: usize = 10;
/// Frames a microphone delivers as silence after it opens (100 ms): a
/// call's microphone opens just as the user answers, and hears the
/// answer's own sounds, the ringtone's tail above all, which the sound
/// server plays on for as long as the ringer's stream held it (25 ms at
/// the ringer's 10 ms buffer on PulseAudio, up to 100 ms at rodio's 50 ms
/// elsewhere) and no echo canceller has a reference for. Nobody speaks
/// within 100 ms of pressing "answer" (docs/media.md, "The ringtone's tail").
const OPENING_SILENCE_FRAMES: usize = 5;
/// A device that neither delivers nor takes a frame for this long has stalled.
const STALL: Duration = Duration::from_secs(1);
/// The buffer asked of a PulseAudio device, in milliseconds: with a fixed
/// buffer cpal's PulseAudio host asks the server for that end-to-end
/// latency (capture: one fragment; playback: two). Through ALSA's
/// PulseAudio plugin, with buffers the app did not size, the devices took
/// about 95 ms of a 155 ms mouth-to-ear (docs/media.md, "Two apps on the rig").
const PULSE_BUFFER_MS: u32 = 10;

/// Connections to PulseAudio tried before the app settles for ALSA.
const PULSE_TRIES: u32 = 3;
/// No new try once the tries took this long (cpal's own deadline for one
/// connection): a server that hangs costs a device's opening, or the
/// ringer's, no more than cpal's own choice did.
const PULSE_PATIENCE: Duration = Duration::from_secs(2);

/// The host to open devices on: PulseAudio's whenever a server runs here
/// (its socket is there), asked again if it does not answer at once, else
/// cpal's default. cpal's own choice settles for ALSA the first time a
/// connection fails, and through ALSA the devices go through PulseAudio's
/// ALSA plugin with buffers the app does not size. On the rig that is
/// what the calls that fell apart had (checked in one: the microphone's
/// samples held 12.5-55.8 ms on average with bursts of 124-985 ms,
/// mouth-to-ear 110-167 ms); with this choice, none in 8 calls
/// (docs/media.md, "The held microphone was the ALSA fallback").
pub(crate) fn audio_host() -> cpal::Host {
    if !cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
        return cpal::default_host();
    }
    let (mut refused, started) = (Vec::new(), std::time::Instant::now());
    while refused.len() < PULSE_TRIES as usize && started.elapsed() < PULSE_PATIENCE {
        match cpal::host_from_id(cpal::HostId::PulseAudio) {
            Ok(host) if refused.is_empty() => return host,
            Ok(host) => {
                tracing::info!(
                    "PulseAudio answered on try {} (before: {})",
                    refused.len() + 1,
                    refused.join("; ")
                );
                return host;
            }
            Err(e) => refused.push(e.to_string()),
        }
    }
    tracing::warn!("PulseAudio runs here but did not answer ({}); using ALSA", refused.join("; "));
    cpal::host_from_id(cpal::HostId::Alsa).unwrap_or_else(|_| cpal::default_host())
}

/// The buffer size to ask of `device`: fixed on PulseAudio, the host's
/// default elsewhere (ALSA picks its own; a fixed one there gained nothing).
pub(crate) fn buffer_size(device: &cpal::Device, rate: u32) -> cpal::BufferSize {
    match device.id() {
        Ok(id) if id.host() == cpal::HostId::PulseAudio => {
            cpal::BufferSize::Fixed(rate * PULSE_BUFFER_MS / 1000)
        }
        _ => cpal::BufferSize::Default,
    }
}

/// Which device to open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    SystemDefault,
    /// A name as [`list_devices`] gave it.
    Named(String),
}

impl DeviceChoice {
    /// The settings' stored text: [`SYSTEM_DEFAULT`] or a device name.
    pub fn from_setting(text: &str) -> DeviceChoice {
        if text.is_empty() || text == SYSTEM_DEFAULT {
            DeviceChoice::SystemDefault
        } else {
            DeviceChoice::Named(text.to_string())
        }
    }
}

/// The devices the settings screen offers (without "system default").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceList {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl DeviceList {
    /// What a settings list offers for the microphone: [`SYSTEM_DEFAULT`] first.
    pub fn input_choices(&self) -> Vec<String> {
        std::iter::once(SYSTEM_DEFAULT.to_string()).chain(self.inputs.iter().cloned()).collect()
    }

    /// What a settings list offers for the speaker: [`SYSTEM_DEFAULT`] first.
    pub fn output_choices(&self) -> Vec<String> {
        std::iter::once(SYSTEM_DEFAULT.to_string()).chain(self.outputs.iter().cloned()).collect()
    }
}

fn device_error(error: impl std::fmt::Display) -> AudioError {
    AudioError::Device(error.to_string())
}

/// The input and output devices of the default host; empty lists (not an
/// error) on a machine without sound.
pub fn list_devices() -> DeviceList {
    let host = audio_host();
    let names = |devices: Option<Vec<cpal::Device>>| -> Vec<String> {
        devices.unwrap_or_default().iter().map(|d| d.to_string()).collect()
    };
    DeviceList {
        inputs: names(host.input_devices().ok().map(Iterator::collect)),
        outputs: names(host.output_devices().ok().map(Iterator::collect)),
    }
}

fn find(choice: &DeviceChoice, input: bool) -> Result<cpal::Device, AudioError> {
    let host = audio_host();
    let direction = if input { "input" } else { "output" };
    let found = match choice {
        DeviceChoice::SystemDefault => {
            if input {
                host.default_input_device()
            } else {
                host.default_output_device()
            }
        }
        DeviceChoice::Named(name) => {
            let devices = if input { host.input_devices() } else { host.output_devices() };
            devices.ok().and_then(|mut all| all.find(|d| d.to_string() == *name))
        }
    };
    let found = found.map(|default| pulse_override(&host, default, input));
    let name = match choice {
        DeviceChoice::SystemDefault => SYSTEM_DEFAULT.to_string(),
        DeviceChoice::Named(name) => name.clone(),
    };
    found.ok_or(AudioError::NoDevice { direction, name })
}

/// The system default as a PulseAudio client sees it: `PULSE_SOURCE` or
/// `PULSE_SINK` names the device when set (libpulse's own rule, which
/// ALSA's PulseAudio plugin followed; cpal's PulseAudio host asks the
/// server for its default instead). A name no device has keeps `default`.
fn pulse_override(host: &cpal::Host, default: cpal::Device, input: bool) -> cpal::Device {
    let variable = if input { "PULSE_SOURCE" } else { "PULSE_SINK" };
    let Some(wanted) = std::env::var(variable).ok().filter(|_| host.id() == cpal::HostId::PulseAudio) else {
        return default;
    };
    let devices = if input { host.input_devices() } else { host.output_devices() };
    devices.ok().and_then(|mut all| all.find(|d| d.id().is_ok_and(|id| id.id() == wanted))).unwrap_or(default)
}

/// Errors after which the stream cannot go on: the device or the sound
/// server is gone, or access was withdrawn. Others (over- and underruns,
/// rerouting, the I/O errors ALSA's PulseAudio plugin reports under load)
/// pass: if the stream really stopped, the voice task sees a stall.
fn is_fatal(error: &cpal::Error) -> bool {
    matches!(
        error.kind(),
        cpal::ErrorKind::DeviceNotAvailable
            | cpal::ErrorKind::HostUnavailable
            | cpal::ErrorKind::PermissionDenied
    )
}

/// An error callback that hands fatal errors to the voice task.
fn error_callback(errors: SyncSender<String>) -> impl FnMut(cpal::Error) + Send + 'static {
    move |error| {
        if is_fatal(&error) {
            let _ = errors.try_send(error.to_string());
        }
    }
}

/// How long the sound server held the samples a microphone callback
/// brings (cpal's capture timestamp against the callback's).
fn capture_delay(info: &cpal::InputCallbackInfo) -> Duration {
    let at = info.timestamp();
    at.callback.duration_since(at.capture)
}

/// How long the sound server will hold what a speaker callback writes.
fn playback_delay(info: &cpal::OutputCallbackInfo) -> Duration {
    let at = info.timestamp();
    at.playback.duration_since(at.callback)
}

/// The microphone. See the module documentation.
pub struct DeviceSource {
    /// Dropping it stops capture.
    _stream: cpal::Stream,
    frames: Receiver<Frame>,
    errors: Receiver<String>,
    /// Frames dropped because the sender fell behind.
    overruns: Arc<AtomicU64>,
    /// The sound server's share of the delay, logged when capture stops.
    server_delay: Arc<DelayMeter>,
}

impl Drop for DeviceSource {
    fn drop(&mut self) {
        if let Some(held) = self.server_delay.summary() {
            tracing::info!(
                server_mean_ms = held.mean_ms,
                server_least_ms = held.least_ms,
                server_most_ms = held.most_ms,
                server_last_ms = held.latest_ms,
                overruns = self.overruns(),
                "microphone closed"
            );
        }
    }
}

/// Turns device samples into 48 kHz mono frames and queues them.
struct Capture {
    channels: usize,
    resampler: Resampler,
    mono: Vec<f32>,
    pending: Vec<f32>,
    frames: SyncSender<Frame>,
    overruns: Arc<AtomicU64>,
    /// Frames still to deliver as silence ([`OPENING_SILENCE_FRAMES`]).
    opening_silence: usize,
    /// How long the sound server held the samples before each callback.
    server_delay: Arc<DelayMeter>,
}

impl Capture {
    /// Queues what the microphone heard: `data`, which the sound server
    /// held for `held` before this callback.
    fn take<T: Sample>(&mut self, data: &[T], held: Duration)
    where
        f32: FromSample<T>,
    {
        realtime::promote_current_thread();
        self.server_delay.record(held);
        self.mono.clear();
        let scale = 32768.0 / self.channels as f32;
        self.mono.extend(
            data.chunks(self.channels).map(|c| c.iter().map(|s| f32::from_sample(*s)).sum::<f32>() * scale),
        );
        self.resampler.process(&self.mono, &mut self.pending);
        while self.pending.len() >= FRAME_SAMPLES {
            let mut frame: Frame =
                std::array::from_fn(|i| self.pending[i].round().clamp(-32768.0, 32767.0) as i16);
            self.pending.drain(..FRAME_SAMPLES);
            if self.opening_silence > 0 {
                self.opening_silence -= 1;
                frame.fill(0);
            }
            if let Err(TrySendError::Full(_)) = self.frames.try_send(frame) {
                self.overruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl DeviceSource {
    pub fn open(choice: &DeviceChoice) -> Result<DeviceSource, AudioError> {
        let device = find(choice, true)?;
        let config = device.default_input_config().map_err(device_error)?;
        let (frame_tx, frames) = sync_channel(CAPTURE_QUEUE);
        let (error_tx, errors) = sync_channel(4);
        let overruns = Arc::new(AtomicU64::new(0));
        let server_delay = Arc::new(DelayMeter::default());
        let mut capture = Capture {
            channels: usize::from(config.channels()).max(1),
            resampler: Resampler::new(config.sample_rate(), SAMPLE_RATE),
            mono: Vec::with_capacity(8192),
            pending: Vec::with_capacity(8192),
            frames: frame_tx,
            overruns: Arc::clone(&overruns),
            opening_silence: OPENING_SILENCE_FRAMES,
            server_delay: Arc::clone(&server_delay),
        };
        let format = config.sample_format();
        let rate = config.sample_rate();
        let mut stream_config: cpal::StreamConfig = config.into();
        stream_config.buffer_size = buffer_size(&device, rate);
        let on_error = error_callback(error_tx);
        let stream = match format {
            SampleFormat::F32 => device.build_input_stream(
                stream_config,
                move |d: &[f32], info: &cpal::InputCallbackInfo| capture.take(d, capture_delay(info)),
                on_error,
                None,
            ),
            SampleFormat::I16 => device.build_input_stream(
                stream_config,
                move |d: &[i16], info: &cpal::InputCallbackInfo| capture.take(d, capture_delay(info)),
                on_error,
                None,
            ),
            SampleFormat::I32 => device.build_input_stream(
                stream_config,
                move |d: &[i32], info: &cpal::InputCallbackInfo| capture.take(d, capture_delay(info)),
                on_error,
                None,
            ),
            SampleFormat::U16 => device.build_input_stream(
                stream_config,
                move |d: &[u16], info: &cpal::InputCallbackInfo| capture.take(d, capture_delay(info)),
                on_error,
                None,
            ),
            other => return Err(AudioError::Device(format!("unsupported sample format {other}"))),
        }
        .map_err(device_error)?;
        stream.play().map_err(device_error)?;
        Ok(DeviceSource { _stream: stream, frames, errors, overruns, server_delay })
    }
}

impl AudioSource for DeviceSource {
    /// Frames dropped because nobody read them in time.
    fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }

    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        realtime::promote_current_thread();
        if let Ok(message) = self.errors.try_recv() {
            return Err(AudioError::Device(message));
        }
        match self.frames.recv_timeout(STALL) {
            Ok(captured) => {
                *frame = captured;
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(AudioError::Stalled),
            Err(RecvTimeoutError::Disconnected) => Err(AudioError::Device("capture stopped".into())),
        }
    }
}

/// The speaker. See the module documentation.
pub struct DeviceSink {
    /// Dropping it stops playback.
    _stream: cpal::Stream,
    /// The playback thread's end of the queue to the callback.
    queue: PlayQueue,
    errors: Receiver<String>,
    resampler: Resampler,
    /// Callbacks that found nothing to play (the receiver fell behind).
    underruns: Arc<AtomicU64>,
    /// The sound server's share of the delay, logged when playback stops.
    server_delay: Arc<DelayMeter>,
    /// The app's queue's share, logged with it.
    queue_delay: Arc<DelayMeter>,
}

impl Drop for DeviceSink {
    fn drop(&mut self) {
        if let (Some(held), Some(queued)) = (self.server_delay.summary(), self.queue_delay.summary()) {
            tracing::info!(
                server_mean_ms = held.mean_ms,
                server_least_ms = held.least_ms,
                server_most_ms = held.most_ms,
                server_last_ms = held.latest_ms,
                queue_mean_ms = queued.mean_ms,
                queue_most_ms = queued.most_ms,
                underruns = self.underruns(),
                "speaker closed"
            );
        }
    }
}

impl DeviceSink {
    pub fn open(choice: &DeviceChoice) -> Result<DeviceSink, AudioError> {
        let device = find(choice, false)?;
        let config = device.default_output_config().map_err(device_error)?;
        let (error_tx, errors) = sync_channel(4);
        let rate = config.sample_rate();
        let (queue, mut play) = PlayQueue::new(usize::from(config.channels()), rate);
        let underruns = Arc::clone(&play.underruns);
        let (server_delay, queue_delay) = (Arc::clone(&play.server_delay), Arc::clone(&play.queue_delay));
        let format = config.sample_format();
        let mut stream_config: cpal::StreamConfig = config.into();
        stream_config.buffer_size = buffer_size(&device, rate);
        let on_error = error_callback(error_tx);
        let stream = match format {
            SampleFormat::F32 => device.build_output_stream(
                stream_config,
                move |d: &mut [f32], info: &cpal::OutputCallbackInfo| play.fill(d, playback_delay(info)),
                on_error,
                None,
            ),
            SampleFormat::I16 => device.build_output_stream(
                stream_config,
                move |d: &mut [i16], info: &cpal::OutputCallbackInfo| play.fill(d, playback_delay(info)),
                on_error,
                None,
            ),
            SampleFormat::I32 => device.build_output_stream(
                stream_config,
                move |d: &mut [i32], info: &cpal::OutputCallbackInfo| play.fill(d, playback_delay(info)),
                on_error,
                None,
            ),
            SampleFormat::U16 => device.build_output_stream(
                stream_config,
                move |d: &mut [u16], info: &cpal::OutputCallbackInfo| play.fill(d, playback_delay(info)),
                on_error,
                None,
            ),
            other => return Err(AudioError::Device(format!("unsupported sample format {other}"))),
        }
        .map_err(device_error)?;
        stream.play().map_err(device_error)?;
        let resampler = Resampler::new(SAMPLE_RATE, rate);
        Ok(DeviceSink { _stream: stream, queue, errors, resampler, underruns, server_delay, queue_delay })
    }
}

impl AudioSink for DeviceSink {
    /// Until the speaker holds less than its next request plus the margin.
    fn wait_for_room(&mut self) -> Result<(), AudioError> {
        realtime::promote_current_thread();
        if let Ok(message) = self.errors.try_recv() {
            return Err(AudioError::Device(message));
        }
        self.queue.wait_until_low()
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        if let Ok(message) = self.errors.try_recv() {
            return Err(AudioError::Device(message));
        }
        let input: Vec<f32> = frame.iter().map(|&s| f32::from(s)).collect();
        let mut chunk = Vec::with_capacity(FRAME_SAMPLES * 2);
        self.resampler.process(&input, &mut chunk);
        self.queue.hand_over(chunk)
    }

    /// Callbacks that found nothing to play.
    fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_a_typed_error_not_a_panic() {
        let choice = DeviceChoice::Named("no such device 7f3a".into());
        match DeviceSource::open(&choice) {
            Err(AudioError::NoDevice { direction: "input", name }) => assert_eq!(name, "no such device 7f3a"),
            other => panic!("expected NoDevice, got {:?}", other.err()),
        }
        assert!(matches!(DeviceSink::open(&choice), Err(AudioError::NoDevice { direction: "output", .. })));
    }

    #[test]
    fn a_microphone_gives_silence_for_its_first_100_ms_then_what_it_hears() {
        let (frames, captured) = sync_channel(CAPTURE_QUEUE);
        let mut capture = Capture {
            channels: 2,
            resampler: Resampler::new(SAMPLE_RATE, SAMPLE_RATE),
            mono: Vec::new(),
            pending: Vec::new(),
            frames,
            overruns: Arc::default(),
            opening_silence: OPENING_SILENCE_FRAMES,
            server_delay: Arc::default(),
        };
        // A ringtone's tail, then a voice: 8 frames of a loud stereo signal.
        let heard = vec![0.25f32; FRAME_SAMPLES * 2 * 8];
        for callback in heard.chunks(960) {
            capture.take(callback, Duration::ZERO);
        }
        let peaks: Vec<i16> = captured.try_iter().map(|f| f.iter().copied().max().unwrap()).collect();
        assert_eq!(peaks.len(), 8, "{peaks:?}");
        assert!(peaks[..5].iter().all(|&p| p == 0), "the first 100 ms are silent: {peaks:?}");
        assert!(peaks[5..].iter().all(|&p| p > 8000), "then what the microphone hears: {peaks:?}");
    }

    #[test]
    fn the_setting_text_names_the_device_or_the_default() {
        assert_eq!(DeviceChoice::from_setting(SYSTEM_DEFAULT), DeviceChoice::SystemDefault);
        assert_eq!(DeviceChoice::from_setting(""), DeviceChoice::SystemDefault);
        assert_eq!(DeviceChoice::from_setting("USB"), DeviceChoice::Named("USB".into()));
        // Listing never fails, even on a machine without sound.
        let list = DeviceList { inputs: vec!["USB".into()], outputs: vec![] };
        assert_eq!(list.input_choices(), vec![SYSTEM_DEFAULT.to_string(), "USB".to_string()]);
        assert_eq!(list.output_choices(), vec![SYSTEM_DEFAULT.to_string()]);
        assert!(list_devices().input_choices().starts_with(&[SYSTEM_DEFAULT.to_string()]));
    }
}
