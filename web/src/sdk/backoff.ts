/**
 * The reconnect backoff, as the Rust SDK's (docs/sdk.md, "Reconnecting"):
 * 250 ms doubling to 5 s, each wait shortened by a random fraction up to
 * half, so the clients of a restarted server do not all return at once.
 */

/** The backoff's shape; the defaults are the Rust SDK's. */
export interface Backoff {
  /** The first wait, in milliseconds. */
  initialMs: number;
  /** Each failed attempt multiplies the wait by this. */
  multiplier: number;
  /** The longest wait. */
  maxMs: number;
  /** Each wait is shortened by a random fraction up to this (0..1). */
  jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, multiplier: 2, maxMs: 5000, jitter: 0.5 };

/** How long to wait before attempt `attempt` (1 for the first retry); `random` in [0, 1). */
export function backoffDelay(backoff: Backoff, attempt: number, random: number = Math.random()): number {
  const exponent = Math.max(0, attempt - 1);
  const full = Math.min(backoff.maxMs, backoff.initialMs * backoff.multiplier ** exponent);
  return Math.round(full * (1 - backoff.jitter * random));
}
