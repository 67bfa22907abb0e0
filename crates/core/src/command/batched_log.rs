//! The server's log writer: lossy and batched, so that logging neither
//! stalls nor wakes anyone per line.
//!
//! A log line costs a copy into a shared buffer under a short lock; one
//! thread writes the buffer out every [`FLUSH_EVERY`]. The writer it
//! replaced (tracing-appender's non-blocking one) handed each line to its
//! thread through a channel and woke that thread for it: at 1,000 calls a
//! second, with a line per call outcome, those wake-ups cost the server
//! 45 to 60 µs of CPU a call, a quarter of all it spent
//! (docs/performance.md). When standard error is not read (a full pipe),
//! the buffer fills up to [`CAPACITY`], later lines are dropped and counted,
//! and the count is written once standard error drains.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How often the buffer is written out: a line reaches standard error at
/// most this late.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// The most bytes held for a standard error that is not read (about 4,000
/// lines); beyond it lines are dropped.
pub const CAPACITY: usize = 1 << 20;

/// How long the exit waits for the last lines to be written: a standard
/// error nobody reads must not hold the process open.
pub const EXIT_FLUSH_DEADLINE: Duration = Duration::from_secs(1);

/// What the writers and the flushing thread share.
struct Shared {
    state: Mutex<Pending>,
    /// Wakes the flushing thread early, only to close.
    closing: Condvar,
}

/// What waits to be written.
#[derive(Default)]
struct Pending {
    /// Whole lines, in the order written.
    bytes: Vec<u8>,
    /// Lines dropped since the last flush because `bytes` was full.
    dropped: u64,
    /// The guard was dropped: write what is left and stop.
    closing: bool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A writer that panicked mid-copy leaves at worst a torn line.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The writer handed to the log subscriber; cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes out what is left when dropped (at the end of `main`), and stops
/// the flushing thread.
pub struct FlushGuard {
    shared: Arc<Shared>,
    /// Disconnects when the flushing thread has written its last line and
    /// ended (its sender drops), which the guard waits for with a deadline.
    flushed: Receiver<()>,
}

/// A batched writer into `sink` (standard error in the server) and the
/// guard that flushes it at exit.
pub fn batched<W: Write + Send + 'static>(sink: W) -> (BatchedWriter, FlushGuard) {
    let shared = Arc::new(Shared { state: Mutex::new(Pending::default()), closing: Condvar::new() });
    let flushing = shared.clone();
    let (ended, flushed) = channel::<()>();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            flush_loop(&flushing, sink);
            drop(ended);
        })
        .expect("the log writer's thread starts");
    (BatchedWriter { shared: shared.clone() }, FlushGuard { shared, flushed })
}

/// Every [`FLUSH_EVERY`] (or at once when closing): takes what is pending
/// and writes it, outside the lock, so writers never wait for the sink.
fn flush_loop(shared: &Shared, mut sink: impl Write) {
    let mut spare = Vec::new();
    loop {
        let (dropped, closing) = {
            let mut pending = shared.pending();
            if !pending.closing {
                pending = shared
                    .closing
                    .wait_timeout(pending, FLUSH_EVERY)
                    .map_or_else(|p| p.into_inner().0, |r| r.0);
            }
            std::mem::swap(&mut pending.bytes, &mut spare);
            (std::mem::take(&mut pending.dropped), pending.closing)
        };
        if dropped > 0 {
            let _ = writeln!(sink, "log: {dropped} line(s) dropped: standard error was not read");
        }
        if !spare.is_empty() {
            let _ = sink.write_all(&spare).and_then(|()| sink.flush());
            spare.clear();
        }
        if closing {
            return;
        }
    }
}

impl Write for BatchedWriter {
    /// Takes a whole line (the subscriber writes each event at once), or
    /// drops it when the buffer is full; never blocks on the sink.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.pending();
        if pending.bytes.len() + line.len() > CAPACITY {
            pending.dropped += 1;
        } else {
            pending.bytes.extend_from_slice(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> BatchedWriter {
        self.clone()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.pending().closing = true;
        self.shared.closing.notify_one();
        // Disconnected: all written. A timeout: the sink is stuck (a full
        // pipe nobody reads), and the process exits without the last lines.
        let _ = self.flushed.recv_timeout(EXIT_FLUSH_DEADLINE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read, that can be made to block like a full pipe.
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
        blocked: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let _wait = self.blocked.lock().unwrap();
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_and_the_guard_writes_what_is_left() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone());
        for i in 0..1000 {
            writer.make_writer().write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.written.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert!(lines.iter().enumerate().all(|(i, l)| *l == format!("line {i}")));
    }

    #[test]
    fn a_sink_that_is_not_read_makes_lines_drop_never_the_writer_wait() {
        let sink = Sink::default();
        let stuck = sink.blocked.lock().unwrap();
        let (writer, guard) = batched(sink.clone());
        writer.make_writer().write_all(b"first\n").unwrap();
        // The flushing thread takes "first" and blocks in the sink; what
        // follows fills the buffer, and the rest is dropped at once.
        std::thread::sleep(FLUSH_EVERY * 3);
        let line = [b'x'; 1023].iter().copied().chain(*b"\n").collect::<Vec<u8>>();
        for _ in 0..(CAPACITY / line.len() + 100) {
            writer.make_writer().write_all(&line).unwrap();
        }
        assert!(writer.shared.pending().dropped >= 100);
        drop(stuck);
        drop(guard);
        let text = String::from_utf8(sink.written.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("first\n"));
        assert!(text.contains("line(s) dropped: standard error was not read"));
    }

    #[test]
    fn a_sink_stuck_for_good_holds_the_exit_no_longer_than_the_deadline() {
        let sink = Sink::default();
        let stuck = sink.blocked.lock().unwrap();
        let (writer, guard) = batched(sink.clone());
        writer.make_writer().write_all(b"never read\n").unwrap();
        let started = std::time::Instant::now();
        drop(guard);
        // Generous: the point is that it returns at all while the sink blocks.
        assert!(started.elapsed() < EXIT_FLUSH_DEADLINE * 10);
        drop(stuck);
    }
}
