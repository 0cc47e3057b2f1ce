/** WebSocketClient: one multiplexed protocol-v1 connection with an explicit state machine. */

import { fullJitter } from "./backoff";
import { ClientCloseCode, ClientErrorCode, CloseCode, ErrorCode, RealtimeError } from "./codes";
import { Emitter, type Disposer } from "./emitter";
import { browserEnv, type BrowserEnv } from "./env";
import { Handover, type HandoverHost, type Move, type Planned } from "./handover";
import { HeartbeatMonitor } from "./heartbeat";
import { Outbox } from "./outbox";
import { decodeServerFrame, type FrameId, type MessageFrame, type Position, type ReconnectFrame, type ServerFrame, type SubscribedFrame, type WelcomeFrame } from "./protocol";
import type { Quality } from "./quality";
import { ReconnectionManager, type RetryHint } from "./reconnection";
import { browserSocketFactory, defaultUrl, type SocketFactory, type SocketLike } from "./socket";
import { StateSync, type MessageVerdict } from "./stateSync";
import { SubscriptionRegistry, type Sub } from "./subscriptions";
import { systemTimers, type Timers } from "./timers";
import type { ChannelListener, ChannelStatus, ClientEvents, ClientOptions, ClientState, ConnectionStatus, MessageMeta } from "./types";
import { desiredSubscription, type RateOptions } from "./visibility";

export type { ChannelListener, ChannelStatus, ClientEvents, ClientOptions, ClientState, ConnectionStatus, MessageMeta } from "./types";

/** The only legal transitions; anything else is a bug and throws. */
const TRANSITIONS: Record<ClientState, readonly ClientState[]> = {
  idle: ["connecting", "closed"],
  connecting: ["open", "reconnecting", "closed"],
  open: ["reconnecting", "closed"],
  reconnecting: ["open", "closed"],
  closed: ["connecting"],
};

export const REQUEST_TIMEOUT_MS = 10_000;
/** Subscribe errors worth retrying on the same connection. */
export const TRANSIENT_SUBSCRIBE_ERRORS: ReadonlySet<string> = new Set([ErrorCode.Internal, ErrorCode.Unavailable, ErrorCode.RateLimited]);
export const WELCOME_TIMEOUT_MS = 10_000;

export class WebSocketClient {
  private stateValue: ClientState = "idle";
  private socket: SocketLike | null = null;
  /** Incremented per socket: events of an old socket are ignored. */
  private generation = 0;
  /** A make-before-break reconnect in progress: the new socket until the switch. */
  private handover: Handover | null = null;
  private nextId = 1;
  private welcomeTimer: unknown = null;
  private welcome: WelcomeFrame | null = null;
  private lastCloseCode: number | null = null;
  private clockOffsetMs = 0;
  private statusCache: ConnectionStatus | null = null;
  private sleepingValue = false;
  private readonly events = new Emitter<ClientEvents>();
  private readonly subs: SubscriptionRegistry;
  private readonly outbox: Outbox;
  private readonly heartbeat: HeartbeatMonitor;
  private readonly reconnection: ReconnectionManager;
  private readonly timers: Timers;
  private readonly env: BrowserEnv;
  private readonly factory: SocketFactory;
  private readonly log: Pick<Console, "debug" | "warn">;
  private readonly requestTimeoutMs: number;
  private readonly welcomeTimeoutMs: number;
  private readonly disposers: Disposer[] = [];
  readonly sync = new StateSync();

  constructor(private readonly options: ClientOptions = {}) {
    this.timers = options.timers ?? systemTimers;
    this.env = options.env ?? browserEnv();
    this.factory = options.socketFactory ?? browserSocketFactory;
    this.log = options.logger ?? console;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.welcomeTimeoutMs = options.welcomeTimeoutMs ?? WELCOME_TIMEOUT_MS;
    this.subs = new SubscriptionRegistry(this.log);
    this.outbox = new Outbox(
      this.timers,
      (text) => this.write(text),
      options.queueCapacity ?? 100,
      () => this.statusChanged(),
      () => this.maybeSwitch(),
    );
    this.heartbeat = new HeartbeatMonitor(
      this.timers,
      {
        onDead: () => this.linkLost({ closeCode: ClientCloseCode.DeadLink }, ClientCloseCode.DeadLink),
        sendPing: (id) => this.outbox.sendNow(JSON.stringify({ type: "ping", id })),
        onRtt: (ms) => {
          this.reconnection.rttSample(ms);
          this.statusChanged();
        },
        onMissed: () => {
          this.reconnection.missedPing();
          this.statusChanged();
        },
        onClockOffset: (offset) => {
          this.clockOffsetMs = offset;
        },
      },
      options.pingEveryMs,
    );
    this.reconnection = new ReconnectionManager({
      timers: this.timers,
      env: this.env,
      random: options.random,
      backoff: options.backoff,
      maxServerDelayMs: options.maxServerDelayMs,
      stableAfterMs: options.stableAfterMs,
      onRetry: () => this.openSocket(),
      onChange: () => this.statusChanged(),
    });
    this.disposers.push(this.env.onVisibilityChange((visible) => this.applyVisibility(visible)));
  }

  // --- state -------------------------------------------------------------------------

  get state(): ClientState {
    return this.stateValue;
  }

  private setState(to: ClientState): void {
    const from = this.stateValue;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`realtime: illegal transition ${from} -> ${to}`);
    this.stateValue = to;
    this.log.debug(`realtime: ${from} -> ${to}`);
    this.events.emit("state", { from, to });
    this.statusChanged();
  }

  /** A stable object until something changes (for useSyncExternalStore). */
  getStatus(): ConnectionStatus {
    if (this.statusCache === null) {
      this.statusCache = {
        state: this.stateValue,
        online: this.env.isOnline(),
        nextRetryAt: this.reconnection.nextRetryAt,
        attempt: this.reconnection.attempt,
        quality: this.reconnection.getQuality(),
        user: this.welcome?.user ?? null,
        session: this.welcome?.session ?? null,
        lastCloseCode: this.lastCloseCode,
        queued: this.outbox.queued,
        sleeping: this.sleepingValue,
      };
    }
    return this.statusCache;
  }

  getQuality(): Quality {
    return this.reconnection.getQuality();
  }

  /** The server's clock, estimated (welcome, then refined by client pings): never trust Date.now() for server times. */
  serverNow(): number {
    return this.timers.wallNow() + this.clockOffsetMs;
  }

  get clockOffset(): number {
    return this.clockOffsetMs;
  }

  now(): number {
    return this.timers.now();
  }

  on<K extends keyof ClientEvents>(event: K, fn: (payload: ClientEvents[K]) => void): Disposer {
    return this.events.on(event, fn);
  }

  off<K extends keyof ClientEvents>(event: K, fn: (payload: ClientEvents[K]) => void): void {
    this.events.off(event, fn);
  }

  // --- lifecycle ---------------------------------------------------------------------

  connect(): void {
    this.sleepingValue = false;
    if (this.stateValue !== "idle" && this.stateValue !== "closed") return;
    this.setState("connecting");
    this.openSocket();
  }

  /** Close for good (until `connect()`); pending and queued requests fail with `closed`. */
  disconnect(): void {
    this.sleepingValue = false;
    if (this.stateValue === "closed" || this.stateValue === "idle") {
      if (this.stateValue === "idle") this.setState("closed");
      return;
    }
    this.setState("closed");
    this.reconnection.cancel();
    this.abortHandover(ClientCloseCode.Requested, "client disconnect");
    this.dropSocket(ClientCloseCode.Requested, "client disconnect");
    for (const sub of this.subs.values()) sub.onServer = false;
    this.outbox.closeAll();
    this.statusChanged();
  }

  /**
   * Battery mode (see battery.ts): close the socket but keep every subscription and its
   * position; `wake()` reconnects and resubscribes with `since`, so durable channels
   * replay what was published meanwhile (or send a snapshot). Requests in flight fail
   * with `closed`, as on `disconnect()`.
   */
  sleep(): void {
    if (this.stateValue === "closed" || this.stateValue === "idle") return;
    this.disconnect();
    this.sleepingValue = true;
    this.log.debug("realtime: sleeping (battery mode)");
    this.statusChanged();
  }

  wake(): void {
    if (!this.sleepingValue) return;
    this.log.debug("realtime: waking up");
    this.connect();
  }

  get sleeping(): boolean {
    return this.sleepingValue;
  }

  /** Disconnect and remove every listener (unmount). */
  destroy(): void {
    this.disconnect();
    this.reconnection.dispose();
    for (const d of this.disposers.splice(0)) d();
    this.events.clear();
  }

  /** The URL for a new socket: `url` (at once), or what its function gives now (a fresh ticket). */
  private resolveUrl(): string | Promise<string> {
    const source = this.options.url ?? defaultUrl();
    return typeof source === "function" ? Promise.resolve(source()) : source;
  }

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    let url: string;
    try {
      const resolved = this.resolveUrl();
      url = typeof resolved === "string" ? resolved : await resolved;
    } catch (err) {
      this.log.warn("realtime: could not get the WebSocket URL", err);
      if (generation === this.generation) this.linkLost({}, null);
      return;
    }
    if (generation !== this.generation || this.stateValue === "closed") return;
    let socket: SocketLike;
    try {
      socket = this.factory(url);
    } catch (err) {
      this.log.warn("realtime: could not open a WebSocket", err);
      this.linkLost({}, null);
      return;
    }
    this.socket = socket;
    this.attach(socket, generation);
  }

  private attach(socket: SocketLike, generation: number): void {
    socket.onopen = () => {
      if (generation !== this.generation) return;
      this.welcomeTimer = this.timers.setTimeout(() => {
        if (generation === this.generation) this.linkLost({}, ClientCloseCode.NoWelcome);
      }, this.welcomeTimeoutMs);
    };
    socket.onmessage = (event) => {
      if (generation === this.generation) this.receive(event.data);
    };
    socket.onerror = () => {
      // The close event follows with the code; nothing to do here.
    };
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      this.socket = null;
      this.linkLost({ closeCode: event.code }, null);
    };
  }

  /** Detach and close the current socket without reacting to its close event. */
  private dropSocket(code: number, reason: string): void {
    this.generation += 1;
    this.clearWelcomeTimer();
    this.heartbeat.stop();
    this.outbox.linkLost();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close(code, reason);
      } catch {
        // Already closed or closing.
      }
    }
  }

  /** The link is gone (closed, dead, refused, told to reconnect): schedule a retry. */
  private linkLost(hint: RetryHint, closeOurselves: number | null): void {
    if (hint.closeCode !== undefined) this.lastCloseCode = hint.closeCode;
    const handover = this.handover;
    if (handover !== null && handover.welcomed && this.stateValue === "open") {
      // The old socket is gone mid-handover and the new one is open: switch now; its
      // resubscribes still pending continue there.
      this.log.debug("realtime: the old socket is gone during a handover: switching now", hint);
      this.switchTo(handover, closeOurselves ?? CloseCode.Normal);
      return;
    }
    this.abortHandover(CloseCode.Normal, "reconnecting");
    this.dropSocket(closeOurselves ?? CloseCode.Normal, "reconnecting");
    for (const sub of this.subs.values()) {
      sub.onServer = false;
      sub.pendingId = null;
      if (sub.status === "active") this.subs.setStatus(sub, "pending", null);
    }
    if (this.stateValue === "closed") return;
    if (this.stateValue !== "reconnecting") this.setState("reconnecting");
    const delay = this.reconnection.schedule(hint);
    this.log.debug(`realtime: reconnect in ${delay ?? "(waiting for network)"} ms`, hint);
    this.statusChanged();
  }

  private clearWelcomeTimer(): void {
    if (this.welcomeTimer !== null) this.timers.clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
  }

  // --- incoming ----------------------------------------------------------------------

  private receive(raw: unknown): void {
    this.heartbeat.seen();
    const result = decodeServerFrame(raw);
    if (!result.ok) {
      this.log.debug(`realtime: ignored server frame (${result.reason})`);
      return;
    }
    this.handle(result.frame);
    if (this.handover !== null) this.maybeSwitch(); // that may have been the last reply the old socket owed
  }

  private handle(frame: ServerFrame): void {
    switch (frame.type) {
      case "welcome":
        return this.onWelcome(frame);
      case "message":
        return this.onMessage(frame);
      case "ping":
        // Answered at once, outside the pacer: pongs cost nothing on the server.
        this.write(JSON.stringify({ type: "pong", id: frame.id }));
        return;
      case "pong":
        if (!this.heartbeat.pong(frame.id, frame.server_time) && frame.id !== null) this.outbox.pending.resolve(frame.id, frame);
        return;
      case "subscribed":
        return this.onSubscribed(frame);
      case "unsubscribed":
        if (frame.id !== null) this.outbox.pending.resolve(frame.id, frame);
        else if (frame.reason === "auth_changed") {
          const sub = this.subs.lookup(frame.channel);
          if (sub !== undefined) {
            sub.onServer = false;
            this.subs.setStatus(sub, "error", new RealtimeError(ErrorCode.Unauthenticated, "signed out of this channel"));
          }
        }
        return;
      case "reply":
        if (frame.id !== null) this.outbox.pending.resolve(frame.id, frame.data);
        return;
      case "authenticated":
        if (frame.id !== null) this.outbox.pending.resolve(frame.id, frame.user);
        return;
      case "error":
        return this.onError(frame.id, new RealtimeError(frame.code, frame.message, frame.details));
      case "reconnect":
        if (frame.handover_ms !== undefined && frame.handover_ms > 0 && this.stateValue === "open") return this.startHandover(frame);
        // Drain: go now and come back after the server's (clamped) delay.
        this.linkLost({ serverAfterMs: frame.after_ms, closeCode: CloseCode.ServiceRestart }, CloseCode.Normal);
        return;
    }
  }

  private onWelcome(frame: WelcomeFrame): void {
    if (this.socket === null || this.welcome !== null && this.stateValue === "open") {
      this.log.debug("realtime: ignored a second welcome");
      return;
    }
    this.clearWelcomeTimer();
    this.welcome = frame;
    if (Number.isFinite(frame.server_time)) this.clockOffsetMs = frame.server_time - this.timers.wallNow();
    this.outbox.configure(frame.limits.rate, frame.limits.burst);
    this.heartbeat.start(frame.heartbeat.interval, frame.heartbeat.timeout);
    this.reconnection.connected();
    this.setState("open");
    this.events.emit("welcome", frame);
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
    this.outbox.flush();
    this.statusChanged();
  }

  private onMessage(frame: MessageFrame): void {
    const sub = this.subs.lookup(frame.channel);
    if (sub === undefined) {
      // `user` channel messages and stragglers of a channel we just left.
      this.events.emit("message", { channel: frame.channel, data: frame.data, meta: metaOf(frame) });
      return;
    }
    if (!this.settledHere(sub)) return; // resubscribing: the replay will bring it
    const verdict = this.apply(sub, frame);
    if (verdict === "gap" || verdict === "epoch") {
      this.log.debug(`realtime: ${verdict} on ${frame.channel} at seq ${frame.seq}: resubscribing with since`);
      this.resync(sub);
    }
  }

  /** Subscribed on the socket, no subscribe in flight: its messages count. */
  private settledHere(sub: Sub): boolean {
    return sub.onServer && sub.pendingId === null && this.subs.has(sub);
  }

  /** The position logic, for the socket and a handover's new socket alike: delivers what is new. */
  private apply(sub: Sub, frame: MessageFrame): MessageVerdict {
    const verdict = this.sync.onMessage(sub.channel, frame);
    if (verdict === "duplicate") this.log.debug(`realtime: duplicate ${frame.channel} seq ${frame.seq} dropped`);
    if (verdict !== "apply") return verdict;
    const meta = metaOf(frame);
    this.subs.deliver(sub, frame.data, meta);
    this.events.emit("message", { channel: sub.channel, data: frame.data, meta });
    return verdict;
  }

  private onSubscribed(frame: SubscribedFrame): void {
    if (frame.id === null) return;
    const known = this.outbox.pending.has(frame.id);
    const sub = this.subs.byPendingId(frame.id);
    this.outbox.pending.resolve(frame.id, frame);
    if (sub === undefined) {
      if (known && this.stateValue === "open") {
        // Unsubscribed locally while the subscribe was in flight.
        this.sendFrame({ type: "unsubscribe", id: this.allocateId(), channel: frame.channel });
      }
      return;
    }
    sub.pendingId = null;
    sub.retries = 0;
    this.confirm(sub, frame, sub.sentSince, sub.sentMaxRate !== undefined);
  }

  /** A `subscribed` of `sub` (on the socket, or on a handover's new socket). */
  private confirm(sub: Sub, frame: SubscribedFrame, sentSince: Position | undefined, conflated: boolean): void {
    this.subs.setCanonical(sub, frame.channel);
    const outcome = this.sync.onSubscribed(sub.channel, frame, sentSince, conflated);
    this.subs.setStatus(sub, "active", null);
    if (outcome === "reset") {
      this.subs.reset(sub);
      this.events.emit("reset", { channel: sub.channel });
    }
  }

  private onError(id: FrameId | null, error: RealtimeError): void {
    if (id !== null) {
      const sub = this.subs.byPendingId(id);
      if (sub !== undefined) this.subscribeFailed(sub, error);
      if (this.outbox.pending.reject(id, error)) return;
    }
    this.events.emit("serverError", error);
  }

  private subscribeFailed(sub: Sub, error: RealtimeError): void {
    sub.pendingId = null;
    sub.onServer = false;
    this.subs.setStatus(sub, "error", error);
    if (TRANSIENT_SUBSCRIBE_ERRORS.has(error.code)) this.retrySubscribe(sub);
  }

  /**
   * A subscribe refused for a passing reason (the server's store was busy, rate limit)
   * is retried on the same connection with full-jitter backoff; refusals that will not
   * change (`not_found`, `forbidden`, …) wait for the next connection.
   */
  private retrySubscribe(sub: Sub): void {
    const delay = fullJitter(sub.retries, this.options.random ?? Math.random, this.options.backoff);
    sub.retries += 1;
    const generation = this.generation;
    this.timers.setTimeout(() => {
      if (generation !== this.generation || this.stateValue !== "open" || !this.subs.has(sub)) return;
      if (!sub.onServer && sub.status === "error") this.sendSubscribe(sub);
    }, delay);
  }

  // --- handover (make-before-break reconnect, handover.ts) ----------------------------

  /** `reconnect` with `handover_ms`: open a new socket now, keep this one until the switch. */
  private startHandover(frame: ReconnectFrame): void {
    if (this.handover !== null) {
      this.log.debug("realtime: ignored a reconnect with handover_ms during a handover");
      return;
    }
    this.log.debug(`realtime: handover (${frame.reason ?? "no reason"}) within ${frame.handover_ms} ms`);
    this.handover = new Handover(this.handoverHost());
    void this.handover.start();
  }

  private handoverHost(): HandoverHost {
    return {
      timers: this.timers,
      log: this.log,
      welcomeTimeoutMs: this.welcomeTimeoutMs,
      requestTimeoutMs: this.requestTimeoutMs,
      connect: async () => this.factory(await this.resolveUrl()),
      allocateId: () => this.allocateId(),
      plan: () => this.handoverPlan(),
      resumed: (sub, frame, since, conflated) => {
        // Only a continuation of our position is kept; anything else is left to the switch.
        if (!this.settledHere(sub) || frame.recovered !== true || this.sync.position(sub.channel)?.epoch !== frame.epoch) return false;
        this.confirm(sub, frame, since, conflated);
        return true;
      },
      message: (sub, frame) => (this.settledHere(sub) ? this.apply(sub, frame) : "dropped"),
      ready: () => this.maybeSwitch(),
      failed: (reason) => {
        this.handover = null;
        this.log.debug(`realtime: handover failed (${reason}): staying on this socket`);
        this.outbox.flush(); // what waited for the switch goes on this socket
      },
    };
  }

  /** What a reconnect would resubscribe, for the subscriptions settled on the socket (the rest wait for the switch). */
  private handoverPlan(): Planned[] {
    const plan: Planned[] = [];
    for (const sub of this.subs.values()) {
      const since = this.sync.since(sub.channel);
      const desired = desiredSubscription(sub.options, this.env.isVisible());
      if (!this.settledHere(sub) || since === undefined || !desired.active) continue;
      plan.push({ sub, channel: this.subs.wireName(sub), since, maxRate: desired.maxRate });
    }
    return plan;
  }

  private maybeSwitch(): void {
    const handover = this.handover;
    if (handover === null || !handover.settled || this.outbox.awaitingReplies) return;
    this.switchTo(handover, CloseCode.Normal);
  }

  /** The handover's socket becomes the socket; the old one is closed with `oldCode`. The state stays open. */
  private switchTo(handover: Handover, oldCode: number): void {
    this.handover = null;
    const next = handover.release();
    this.dropSocket(oldCode, "handover"); // requests it still owed (only if it died first) fail with connection_lost
    this.socket = next.socket;
    this.attach(next.socket, this.generation);
    this.welcome = next.welcome;
    this.outbox.adoptPacer(next.pacer);
    // Starts with a client ping: its pong gives this gateway's clock offset.
    this.heartbeat.start(next.welcome.heartbeat.interval, next.welcome.heartbeat.timeout);
    for (const [sub, move] of next.moves) {
      // Left meanwhile (first: the channel may have been joined again since).
      if (!this.subs.has(sub) && move.state !== "failed") this.sendUnsubscribe(move.channel);
    }
    for (const sub of this.subs.values()) this.moveSubscription(sub, next.moves.get(sub));
    this.outbox.flush();
    this.log.debug(`realtime: handover done (${next.welcome.session})`);
    this.events.emit("welcome", next.welcome);
    this.statusChanged();
  }

  /** At the switch: keep what the new socket has, else do what a reconnect would. */
  private moveSubscription(sub: Sub, move: Move | undefined): void {
    const kept = move !== undefined && !move.stale && this.settledHere(sub);
    if (kept && move.state !== "failed") {
      sub.sentSince = move.since;
      sub.sentMaxRate = move.maxRate;
      this.sync.setConflated(sub.channel, move.maxRate !== undefined);
      if (move.state === "pending") {
        sub.pendingId = move.id; // the old socket died first: its `subscribed` comes to onSubscribed
        this.trackSubscribe(sub, move.id);
      }
      return;
    }
    if (kept) return this.subscribeFailed(sub, move.error ?? new RealtimeError(ErrorCode.Internal, "resubscribe failed"));
    if (move !== undefined && move.state !== "failed") this.sendUnsubscribe(move.channel);
    sub.onServer = false;
    sub.pendingId = null;
    this.sendSubscribe(sub);
  }

  private abortHandover(code: number, reason: string): void {
    this.handover?.abort(code, reason);
    this.handover = null;
  }

  // --- subscriptions -----------------------------------------------------------------

  /**
   * Listen to a channel; the first listener subscribes on the server, the last
   * disposer unsubscribes. Subscriptions survive reconnects (resubscribed with `since`).
   */
  subscribe(channel: string, listener: ChannelListener, options: RateOptions = {}): Disposer {
    let sub = this.subs.get(channel);
    if (sub === undefined) {
      sub = this.subs.create(channel, options);
      if (this.stateValue === "open") this.sendSubscribe(sub);
    }
    sub.listeners.add(listener);
    listener.onStatus?.(sub.status, sub.error);
    const owned = sub;
    return () => {
      owned.listeners.delete(listener);
      if (owned.listeners.size === 0 && this.subs.has(owned)) this.unsubscribe(channel);
    };
  }

  /** Leave a channel entirely (every listener). */
  unsubscribe(channel: string): void {
    const sub = this.subs.get(channel);
    if (sub === undefined) return;
    this.subs.remove(sub);
    this.sync.forget(channel);
    if (sub.onServer && sub.pendingId === null && this.stateValue === "open") {
      this.sendFrame({ type: "unsubscribe", id: this.allocateId(), channel: this.subs.wireName(sub) });
    }
  }

  channelStatus(channel: string): { status: ChannelStatus; error: RealtimeError | null } | undefined {
    const sub = this.subs.get(channel);
    return sub === undefined ? undefined : { status: sub.status, error: sub.error };
  }

  private sendSubscribe(sub: Sub): void {
    this.handover?.invalidate(sub); // asked again on the old socket: the new one's copy is stale
    const desired = desiredSubscription(sub.options, this.env.isVisible());
    if (!desired.active) {
      sub.onServer = false;
      this.subs.setStatus(sub, "paused", null);
      return;
    }
    const id = this.allocateId();
    const since = this.sync.since(sub.channel);
    const frame: Record<string, unknown> = { type: "subscribe", id, channel: this.subs.wireName(sub) };
    if (since !== undefined) frame.since = since;
    if (desired.maxRate !== undefined) frame.max_rate = desired.maxRate;
    sub.pendingId = id;
    sub.sentSince = since;
    sub.sentMaxRate = desired.maxRate;
    sub.onServer = true;
    this.sync.setConflated(sub.channel, desired.maxRate !== undefined);
    this.trackSubscribe(sub, id);
    this.outbox.sendNow(JSON.stringify(frame));
  }

  private trackSubscribe(sub: Sub, id: FrameId): void {
    this.outbox.track(id, "subscribe", this.requestTimeoutMs, true).catch((err: RealtimeError) => {
      if (err.code === ClientErrorCode.Timeout && sub.pendingId === id && this.subs.has(sub)) {
        this.resync(sub); // no answer: try again on this connection
      }
    });
  }

  private sendUnsubscribe(channel: string): void {
    const id = this.allocateId();
    this.outbox.track(id, "unsubscribe", this.requestTimeoutMs, true).catch(() => undefined);
    this.outbox.sendNow(JSON.stringify({ type: "unsubscribe", id, channel }));
  }

  /** Unsubscribe and subscribe again with `since` (gap, new epoch, rate change). */
  private resync(sub: Sub): void {
    if (this.stateValue !== "open") return;
    if (sub.onServer && sub.pendingId === null) this.sendUnsubscribe(this.subs.wireName(sub));
    this.sendSubscribe(sub);
  }

  private applyVisibility(visible: boolean): void {
    if (this.stateValue !== "open") return; // the next connect applies it
    for (const sub of this.subs.values()) {
      const desired = desiredSubscription(sub.options, visible);
      if (!desired.active) {
        if (sub.onServer && sub.pendingId === null) {
          this.sendFrame({ type: "unsubscribe", id: this.allocateId(), channel: this.subs.wireName(sub) });
        }
        sub.onServer = false;
        this.subs.setStatus(sub, "paused", null);
      } else if (!sub.onServer) {
        this.sendSubscribe(sub);
      } else if (desired.maxRate !== sub.sentMaxRate) {
        this.resync(sub);
      }
    }
  }

  // --- outgoing ----------------------------------------------------------------------

  private allocateId(): number {
    return this.nextId++;
  }

  /**
   * Send an app message and wait for its `reply` (resolves with `data`) or `error`
   * (rejects with a RealtimeError carrying the server's code). While offline the frame
   * waits in the bounded queue; the timeout counts from this call, and a request that
   * times out in the queue is removed from it (the UI has rolled it back).
   */
  request<T = unknown>(type: string, payload: Record<string, unknown> = {}, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.stateValue === "closed" || this.stateValue === "idle") {
      return Promise.reject(new RealtimeError(ClientErrorCode.Closed, "client is not connected"));
    }
    const id = this.allocateId();
    const text = JSON.stringify({ ...payload, type, id });
    return this.outbox.request(id, type, text, options.timeoutMs ?? this.requestTimeoutMs, this.acceptsRequests()) as Promise<T>;
  }

  /** Send a frame without waiting for an answer; queued while offline. Returns false if refused (queue full). */
  send(frame: { type: string } & Record<string, unknown>): boolean {
    if (this.stateValue === "closed") return false;
    return this.outbox.post(JSON.stringify(frame), this.acceptsRequests());
  }

  private sendFrame(frame: Record<string, unknown>): boolean {
    if (this.stateValue === "closed") return false;
    return this.outbox.post(JSON.stringify(frame), this.isOpen());
  }

  private isOpen(): boolean {
    return this.stateValue === "open" && this.socket !== null;
  }

  /**
   * The application's requests and frames are written now, or wait in the queue: while
   * offline, and during a handover until the switch. Queued rather than written on the
   * old socket: a reply to a request written there would be lost when the switch closes
   * it (and sending it again on the new socket could do it twice). Queued, each goes out
   * once, after the resubscribes, on the new socket (or on the old one if the handover
   * fails), and the switch waits until the old socket owes no reply (maybeSwitch).
   */
  private acceptsRequests(): boolean {
    return this.isOpen() && this.handover === null;
  }

  private write(text: string): void {
    const socket = this.socket;
    if (socket === null) return;
    try {
      socket.send(text);
    } catch (err) {
      this.log.debug("realtime: send failed", err);
    }
  }

  private statusChanged(): void {
    this.statusCache = null;
    this.events.emit("status", this.getStatus());
  }
}

function metaOf(frame: MessageFrame): MessageMeta {
  return { channel: frame.channel, seq: frame.seq, epoch: frame.epoch, snapshot: frame.snapshot === true };
}
