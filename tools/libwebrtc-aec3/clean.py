"""Cleans the voice rig's scenes with libwebrtc's own audio processing
module (the C++ AEC3 Chromium ships), through LiveKit's Python SDK, whose
wheel bundles libwebrtc: the reference sonora's port is compared against
(docs/media.md, "Tuning the processing").

    python3 -m venv /tmp/lk && /tmp/lk/bin/pip install livekit==1.2.1 numpy
    VOICE_RIG_DIR=/tmp/rig cargo test -p softphone-core --lib \
        voice::processing_rig -- --ignored --nocapture     # writes the scenes
    /tmp/lk/bin/python tools/libwebrtc-aec3/clean.py /tmp/rig libwebrtc-aec3
    /tmp/lk/bin/python tools/libwebrtc-aec3/clean.py /tmp/rig libwebrtc-aec3-ns-agc
    VOICE_RIG_DIR=/tmp/rig cargo test ...                  # scores them too

A name containing "ns" also runs the noise suppressor and gain control;
every run has the high-pass filter, as the APM enforces with AEC3. LiveKit
exposes no EchoCanceller3Config: this is AEC3 with its defaults.
"""
import sys, wave, time, resource
import numpy as np
import livekit.rtc as rtc

def read(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy(), w.getframerate()

def write(path, samples, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(samples.tobytes())

directory, name = sys.argv[1], sys.argv[2]
ns = "ns" in name
for scene in ["echo", "talk", "alone", "noisy"]:
    far, rate = read(f"{directory}/{scene}-far.wav")
    mic, _ = read(f"{directory}/{scene}-mic.wav")
    apm = rtc.AudioProcessingModule(
        echo_cancellation=True, noise_suppression=ns, high_pass_filter=True, auto_gain_control=ns
    )
    chunk = rate // 100
    out = np.zeros_like(mic)
    start = time.process_time()
    for i in range(0, len(mic) - chunk + 1, chunk):
        # The far end of each 10 ms, then the microphone: as played, as heard.
        f = rtc.AudioFrame(far[i:i+chunk].tobytes(), rate, 1, chunk)
        apm.process_reverse_stream(f)
        apm.set_stream_delay_ms(0)
        m = rtc.AudioFrame(mic[i:i+chunk].tobytes(), rate, 1, chunk)
        apm.process_stream(m)
        out[i:i+chunk] = np.frombuffer(bytes(m._data), dtype=np.int16)
    cpu = time.process_time() - start
    write(f"{directory}/{scene}-out-{name}.wav", out, rate)
    if scene == "echo":
        open(f"{directory}/echo-cpu-{name}.txt", "w").write(str(int(cpu * 1e9)))
