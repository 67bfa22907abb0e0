//! The processing stage on the rig's synthetic scenes (no sound card):
//! the echo goes, the near end's speech stays, the noise goes, each stage
//! turns off, and the far end's channel never blocks. The margins are far
//! from the figures the rig measures (docs/media.md), so they cannot flake.

use super::super::codec::{FRAME_SAMPLES, Frame};
use super::super::processing_rig::{
    ECHO_ONLY, Scene, Untouched, near_pesq, pause_dbfs, ratio_db, run, speech_level_db,
};
use super::*;

#[test]
fn the_echo_is_far_below_the_uncancelled_echo_once_converged() {
    let untouched = run(ECHO_ONLY, &mut Untouched);
    let cancelled = run(ECHO_ONLY, &mut AudioProcessor::new(ProcessingConfig::default()));
    let before = ratio_db(&untouched.far, &untouched.out, &untouched.near, 8);
    let after = ratio_db(&cancelled.far, &cancelled.out, &cancelled.near, 8);
    eprintln!("echo once converged: {before:.1} dB unprocessed, {after:.1} dB cancelled");
    assert!((-22.0..-14.0).contains(&before), "the room couples at about -18 dB: {before}");
    assert!(after <= before - 30.0, "{after} dB left of {before} dB");
}

#[test]
fn the_gain_control_does_not_raise_the_echo_before_the_canceller_has_learnt_it() {
    let mut webrtc_start = AudioProcessor::module_config(ProcessingConfig::default());
    let adaptive = webrtc_start.gain_controller2.as_mut().unwrap().adaptive_digital.as_mut().unwrap();
    assert_eq!(adaptive.initial_gain_db, AGC_INITIAL_GAIN_DB);
    adaptive.initial_gain_db = 15.0;
    let raised =
        run(ECHO_ONLY, &mut AudioProcessor::with_module_config(ProcessingConfig::default(), webrtc_start));
    let kept = run(ECHO_ONLY, &mut AudioProcessor::new(ProcessingConfig::default()));
    let (raised, kept) =
        (ratio_db(&raised.far, &raised.out, &raised.near, 0), ratio_db(&kept.far, &kept.out, &kept.near, 0));
    eprintln!("echo over the whole call: {kept:.1} dB, {raised:.1} dB with AGC2 starting at +15 dB");
    // Measured -42.5 against -27.5 (with AEC3's default suppressor, before
    // it stood back for double talk: -63.8 against -48.8); the issue asks
    // for -35 dB or less.
    assert!(kept <= raised - 6.0, "{kept} dB against {raised} dB");
    assert!(kept <= -35.0, "the echo over the whole call: {kept} dB");
}

#[test]
fn near_end_speech_passes_alone_and_while_the_far_end_talks() {
    let alone = Scene { far_talks: false, near_from: Some(0), ..ECHO_ONLY };
    let run_alone = run(alone, &mut AudioProcessor::new(ProcessingConfig::default()));
    let (pesq_alone, lag) = near_pesq(&run_alone.near, &run_alone.out, 0);
    let double_talk = Scene { near_from: Some(6), ..ECHO_ONLY };
    let talk = run(double_talk, &mut AudioProcessor::new(ProcessingConfig::default()));
    let (pesq_talk, _) = near_pesq(&talk.near, &talk.out, 6);
    let (pesq_raw, _) = near_pesq(&talk.near, &talk.mic, 6);
    let level = speech_level_db(&talk.near, &talk.out, 6);
    eprintln!(
        "near end: alone PESQ-WB {pesq_alone:.2} (lag {lag}); double talk {pesq_talk:.2}, unprocessed \
         {pesq_raw:.2}, its level {level:+.1} dB"
    );
    // The rig measures 4.39 against 4.64 untouched; libwebrtc's elliptic
    // high-pass (run at two thirds of its cutoff, as libwebrtc does on a
    // 32 kHz buffer) gave 4.22, and at its designed 100 Hz 3.62.
    assert!(pesq_alone >= 4.3, "near end alone: {pesq_alone}");
    // The rig measures 2.84 against 1.94 unprocessed (whose echo is at
    // -18 dB); AEC3's default suppressor and coarse-filter switch gave 1.28.
    assert!(level >= -10.0, "the near end's speech is suppressed in double talk: {level} dB");
    assert!(pesq_talk >= 2.4, "double talk: {pesq_talk}");
}

#[test]
fn the_high_pass_filter_takes_dc_and_leaves_the_voice() {
    let kept = AudioProcessor::module_config(ProcessingConfig::default());
    let only_filter = sonora::Config { high_pass_filter: kept.high_pass_filter, ..sonora::Config::default() };
    let processor = || AudioProcessor::with_module_config(ProcessingConfig::default(), only_filter.clone());
    let alone = Scene { far_talks: false, near_from: Some(0), ..ECHO_ONLY };
    let filtered = run(alone, &mut processor());
    let (score, _) = near_pesq(&filtered.near, &filtered.out, 0);
    // A DC offset, a second of it: gone once the filter has settled.
    let mut dc = processor();
    let mut left = f64::NAN;
    for _ in 0..50 {
        let mut frame: Frame = [1000; FRAME_SAMPLES];
        dc.process_captured_frame(&mut frame);
        left = frame.iter().map(|&s| f64::from(s)).sum::<f64>() / FRAME_SAMPLES as f64;
    }
    eprintln!("the high-pass filter alone: near end PESQ-WB {score:.3}, DC 1000 -> {left:.1}");
    // Measured 4.61 (4.64 untouched); libwebrtc's elliptic at 100 Hz 3.78.
    assert!(score >= 4.5, "clean speech through the high-pass filter: {score}");
    assert!(left.abs() < 20.0, "DC left after a second: {left}");
}

#[test]
fn noise_in_the_pauses_is_suppressed_and_only_with_noise_suppression_on() {
    let noisy = Scene { far_talks: false, near_from: Some(2), noise_dbfs: Some(-50.0), ..ECHO_ONLY };
    let without_ns = ProcessingConfig { noise_suppression: false, ..ProcessingConfig::default() };
    let left = |config: ProcessingConfig| {
        let r = run(noisy, &mut AudioProcessor::new(config));
        pause_dbfs(&r.near, &r.out, 4) - pause_dbfs(&r.near, &r.mic, 4)
    };
    let (suppressed, kept) = (left(ProcessingConfig::default()), left(without_ns));
    // Gain control raises speech and noise alike; compare against it.
    eprintln!("noise in the pauses: {suppressed:+.1} dB with NS, {kept:+.1} dB without");
    assert!(suppressed <= kept - 6.0, "{suppressed} dB with NS, {kept} dB without");
}

#[test]
fn with_echo_cancellation_off_the_echo_stays() {
    let config = ProcessingConfig { echo_cancellation: false, ..ProcessingConfig::default() };
    let (processing, tap) = CaptureProcessing::new(config);
    assert!(tap.is_none(), "no far end is needed without the canceller");
    drop(processing);
    let echo = run(ECHO_ONLY, &mut AudioProcessor::new(config));
    let untouched = run(ECHO_ONLY, &mut Untouched);
    let (with, without) = (
        ratio_db(&echo.far, &echo.out, &echo.near, 8),
        ratio_db(&untouched.far, &untouched.out, &untouched.near, 8),
    );
    eprintln!("echo with the canceller off: {with:.1} dB, unprocessed {without:.1} dB");
    assert!(with > without - 10.0, "{with} dB against {without} dB");
    assert!(!ProcessingConfig::OFF.any() && ProcessingConfig::default().any());
}

#[test]
fn the_far_end_channel_drops_when_full_and_feeds_the_canceller() {
    let (mut processing, tap) = CaptureProcessing::new(ProcessingConfig::default());
    let tap = tap.expect("echo cancellation needs the far end");
    let played: Frame = [1000; FRAME_SAMPLES];
    // Far more than it holds: never waits.
    for _ in 0..FAR_END_FRAMES * 4 {
        tap.played(&played);
    }
    let far_end = processing.far_end.as_ref().unwrap();
    assert_eq!(far_end.try_iter().count(), FAR_END_FRAMES);
    tap.played(&played);
    let mut frame: Frame = [0; FRAME_SAMPLES];
    processing.process(&mut frame);
    assert_eq!(processing.far_end.as_ref().unwrap().try_recv().ok(), None, "drained into the canceller");
    // A call that ended: the tap ignores frames.
    drop(processing);
    tap.played(&played);
}

#[test]
fn a_setting_names_all_stages_none_or_some_and_nothing_else() {
    let off = ProcessingConfig::OFF;
    assert_eq!("on".parse(), Ok(ProcessingConfig::default()));
    assert_eq!("off".parse(), Ok(off));
    assert_eq!(
        "aec,ns".parse(),
        Ok(ProcessingConfig { echo_cancellation: true, noise_suppression: true, ..off })
    );
    assert_eq!("agc".parse(), Ok(ProcessingConfig { gain_control: true, ..off }));
    for bad in ["", "yes", "aec,,ns", "aec;ns", "AEC"] {
        assert!(bad.parse::<ProcessingConfig>().is_err(), "{bad:?}");
    }
}
