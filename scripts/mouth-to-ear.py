#!/usr/bin/env python3
"""Mouth-to-ear delay from a 2-channel recording of the rig's room.monitor.

Left is the mouth (what was played into mouthA), right the ear (what phone B
played into spkB), both on one clock; the delay is the lag of the
cross-correlation peak of right against left, found coarsely at 4 kHz over
the whole take and refined at 48 kHz around it.

    python3 scripts/mouth-to-ear.py room.raw     # s16le, 2 ch, 48 kHz, raw

Prints the delay in ms, the normalised peak (how alike the two are: near 0
means the ear heard nothing like the mouth) and each channel's RMS; then
the delay of each second of speech (windows overlapping by half), found by
GCC-PHAT over 300 Hz-4 kHz, which a change of delay inside the take (a
jitter buffer dropping or inserting a frame, a speaker running dry) shows
and a single peak over the whole take hides (the peak's correlation falls).
"""
import sys

import numpy as np

RATE = 48000


def xcorr(a, b):
    """Full cross-correlation of b against a through the FFT."""
    n = len(a) + len(b)
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size))
    out = np.fft.irfft(spec, size)
    # Lags 0..len(b)-1 then negative lags; only non-negative ones are physical.
    return out[: len(b)]


def main(path, max_delay_s=1.0):
    raw = np.fromfile(path, dtype="<i2").astype(np.float64)
    raw = raw[: len(raw) // 2 * 2].reshape(-1, 2)
    mouth, ear = raw[:, 0], raw[:, 1]
    if not mouth.any() or not ear.any():
        sys.exit(f"silent channel: mouth rms {mouth.std():.1f}, ear rms {ear.std():.1f}")
    step = 12  # 48 kHz -> 4 kHz for the coarse search
    coarse = xcorr(mouth[::step], ear[::step])[: int(max_delay_s * RATE / step)]
    lag = int(np.argmax(np.abs(coarse))) * step
    lo = max(0, lag - 4 * step)
    fine = xcorr(mouth, ear)[lo : lag + 4 * step + 1]
    lag = lo + int(np.argmax(np.abs(fine)))
    a = mouth[: len(mouth) - lag]
    b = ear[lag:]
    peak = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
    print(
        f"mouth-to-ear {lag / RATE * 1000:.1f} ms  correlation {peak:.3f}  "
        f"mouth rms {mouth.std():.0f}  ear rms {ear.std():.0f}  "
        f"({len(mouth) / RATE:.1f} s recorded)"
    )


def phat_lag(mouth, ear, max_lag):
    """The lag of ear behind mouth by GCC-PHAT over 300 Hz-4 kHz: every
    frequency weighs the same, so the phase shifts of a high-pass filter
    or a codec at low frequencies do not move the peak."""
    n = len(mouth) + len(ear)
    size = 1 << (n - 1).bit_length()
    cross = np.fft.rfft(ear, size) * np.conj(np.fft.rfft(mouth, size))
    cross /= np.abs(cross) + 1e-9
    freq = np.fft.rfftfreq(size, 1 / RATE)
    cross[(freq < 300) | (freq > 4000)] = 0
    return int(np.argmax(np.fft.irfft(cross, size)[:max_lag]))


def delay_track(path, window_s=1.0, max_delay_s=0.25):
    """The delay of each window of the take in which the mouth speaks."""
    raw = np.fromfile(path, dtype="<i2").astype(np.float64)
    raw = raw[: len(raw) // 2 * 2].reshape(-1, 2)
    mouth, ear = raw[:, 0], raw[:, 1]
    window, reach = int(window_s * RATE), int(max_delay_s * RATE)
    lags = []
    for start in range(0, len(mouth) - window - reach, window // 2):
        part = mouth[start : start + window]
        if part.std() < 300:  # a pause: nothing to align
            continue
        lags.append(phat_lag(part, ear[start : start + window + reach], reach) / RATE * 1000)
    if lags:
        print(
            f"  per second of speech: {' '.join(f'{lag:.0f}' for lag in lags)} ms "
            f"(median {np.median(lags):.1f}, min {min(lags):.1f}, max {max(lags):.1f})"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
    delay_track(sys.argv[1])
