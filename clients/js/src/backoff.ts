/**
 * Reconnect delays: exponential backoff with full jitter.
 * @module
 */

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** Ceiling of the first delay, in ms (default 500). */
  minDelayMs?: number;
  /** Largest ceiling, in ms (default 30000). */
  maxDelayMs?: number;
  /** Source of randomness in [0, 1) (default `Math.random`). */
  random?: () => number;
}

/**
 * Attempt n (from 0) waits a uniformly random time in
 * [0, min(maxDelayMs, minDelayMs · 2ⁿ)] ("full jitter"), so that clients cut
 * off together do not come back together.
 */
export class Backoff {
  private attempt = 0;
  private readonly min: number;
  private readonly max: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.min = Math.max(1, options.minDelayMs ?? 500);
    this.max = Math.max(this.min, options.maxDelayMs ?? 30000);
    this.random = options.random ?? Math.random;
  }

  /** Attempts since the last {@link Backoff.reset}. */
  get attempts(): number {
    return this.attempt;
  }

  /** The ceiling of the next delay (without jitter). */
  ceiling(): number {
    // 2 ** 32 already exceeds any sensible cap; keep the exponent bounded
    return Math.min(this.max, this.min * 2 ** Math.min(this.attempt, 32));
  }

  /** The next delay in ms; counts one attempt. */
  next(): number {
    const delay = Math.floor(this.random() * (this.ceiling() + 1));
    this.attempt++;
    return Math.min(delay, this.max);
  }

  /** Starts over at the smallest ceiling (after a stable connection). */
  reset(): void {
    this.attempt = 0;
  }
}
