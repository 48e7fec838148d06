/** The longest delay setTimeout honours (2^31 − 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 0x7fffffff;

/**
 * setTimeout for a timeout the application gave: one longer than a timer can wait
 * (`Infinity`, or past {@link MAX_TIMER_MS}) means no timeout, not an immediate one,
 * and sets no timer (undefined).
 */
export function timeoutAfter(ms: number, fn: () => void): ReturnType<typeof setTimeout> | undefined {
  if (!(ms <= MAX_TIMER_MS)) return undefined; // NaN too
  return setTimeout(fn, Math.max(0, ms));
}
