/** Public types of the client: states, listeners, status, events, options. */

import type { BackoffOptions } from "./backoff";
import type { RealtimeError } from "./codes";
import type { BrowserEnv } from "./env";
import type { WelcomeFrame } from "./protocol";
import type { Quality } from "./quality";
import type { SocketFactory } from "./socket";
import type { Timers } from "./timers";

export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export type ChannelStatus = "pending" | "active" | "paused" | "error";

export interface MessageMeta {
  channel: string;
  seq: number | undefined;
  epoch: string | undefined;
  snapshot: boolean;
}

export interface ChannelListener {
  onMessage?(data: unknown, meta: MessageMeta): void;
  /** The server could not replay what was missed (`recovered: false`): drop state, a snapshot follows. */
  onReset?(): void;
  onStatus?(status: ChannelStatus, error: RealtimeError | null): void;
}

export interface ConnectionStatus {
  state: ClientState;
  online: boolean;
  /** Monotonic time (Timers.now) of the next retry while reconnecting, else null. */
  nextRetryAt: number | null;
  attempt: number;
  quality: Quality;
  user: { id: number; staff?: boolean } | null;
  session: string | null;
  lastCloseCode: number | null;
  /** Frames waiting in the offline queue. */
  queued: number;
  /** Battery mode: the socket is closed on purpose while the page is hidden (push is on). */
  sleeping: boolean;
}

export interface ClientEvents {
  state: { from: ClientState; to: ClientState };
  status: ConnectionStatus;
  /** A connection's `welcome`: after each connect or reconnect, and at a handover's switch (the new socket's). */
  welcome: WelcomeFrame;
  message: { channel: string; data: unknown; meta: MessageMeta };
  reset: { channel: string };
  /** `error` frames that answer no pending request (for example the heartbeat timeout). */
  serverError: RealtimeError;
}

export interface ClientOptions {
  /** WebSocket URL, or a function (for example fetching a fresh ticket) called on every attempt. */
  url?: string | (() => string | Promise<string>);
  socketFactory?: SocketFactory;
  timers?: Timers;
  env?: BrowserEnv;
  random?: () => number;
  backoff?: BackoffOptions;
  maxServerDelayMs?: number;
  stableAfterMs?: number;
  requestTimeoutMs?: number;
  welcomeTimeoutMs?: number;
  queueCapacity?: number;
  pingEveryMs?: number;
  logger?: Pick<Console, "debug" | "warn">;
}
