/** Injectable time: timers and clocks, so tests move time instead of sleeping. */

export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Monotonic milliseconds (never jumps with the wall clock): all durations use this. */
  now(): number;
  /** Wall-clock milliseconds since the epoch: only for comparing with server times. */
  wallNow(): number;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
  wallNow: () => Date.now(),
};
