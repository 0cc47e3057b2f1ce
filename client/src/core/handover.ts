/**
 * Make-before-break reconnect ("handover", docs/protocol.md "Server-initiated reconnect"):
 * the new socket of a `reconnect` with `handover_ms`, from its opening to the switch.
 *
 * While the old socket keeps delivering, a Handover opens the new one, waits for its
 * `welcome`, resubscribes there every subscription settled on the old one with `since` =
 * its position, and reports `ready` once each resubscribe is confirmed or has failed. The
 * client then switches (client.ts `switchTo`): the new socket becomes the socket and the
 * old one is closed with 1000.
 *
 * Messages on the new socket go through the client's position logic (StateSync), so what
 * both sockets deliver during the overlap reaches the application once and in order. A
 * subscription is moved only if its `subscribed` here continues the position
 * (`recovered: true`, same epoch) and nothing asked the old socket about it meanwhile;
 * otherwise the move is "stale": its messages here are dropped and the switch resubscribes
 * it as a reconnect would. Messages without a position (the `user` channel) cannot be
 * deduplicated: until the switch they count on the old socket only.
 *
 * Any failure of the new socket before the switch (refused, closed, error, no welcome in
 * time, a `reconnect` of its own) ends the handover with `failed`: the client stays on the
 * old socket.
 */

import { ClientCloseCode, CloseCode, RealtimeError } from "./codes";
import { Pacer } from "./pacer";
import { decodeServerFrame, type ErrorFrame, type FrameId, type MessageFrame, type Position, type SubscribedFrame, type WelcomeFrame } from "./protocol";
import type { SocketLike } from "./socket";
import type { MessageVerdict } from "./stateSync";
import type { Sub } from "./subscriptions";
import type { TimerHandle, Timers } from "./timers";

/** A subscription to move: what to ask the new socket for (as a reconnect would). */
export interface Planned {
  sub: Sub;
  channel: string;
  since: Position;
  maxRate: number | undefined;
}

/** One subscription's resubscribe on the new socket. */
export interface Move extends Planned {
  id: FrameId;
  state: "pending" | "live" | "failed";
  /** Why it failed (state "failed"). */
  error: RealtimeError | null;
  /** Not to be kept as it is: the switch unsubscribes it here (unless failed) and subscribes again. */
  stale: boolean;
  timer: TimerHandle | null;
}

/** What a handover needs from the client. */
export interface HandoverHost {
  readonly timers: Timers;
  readonly log: Pick<Console, "debug">;
  readonly welcomeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** A new socket, by the same URL logic as a reconnect (a fresh ticket). */
  connect(): Promise<SocketLike>;
  allocateId(): FrameId;
  /** The subscriptions settled on the old socket, with `since` and `max_rate`. */
  plan(): Planned[];
  /** A `subscribed` here: if it continues the channel's position, record it and return true. */
  resumed(sub: Sub, frame: SubscribedFrame, since: Position, conflated: boolean): boolean;
  /** A message of a live move, through the client's position logic ("dropped": no longer settled on the old socket). */
  message(sub: Sub, frame: MessageFrame): MessageVerdict | "dropped";
  /** Welcomed and every move settled (may come more than once; the client checks the rest). */
  ready(): void;
  /** The new socket failed before the switch; it is closed already. */
  failed(reason: string): void;
}

/** What the client takes over at the switch. */
export interface Handed {
  socket: SocketLike;
  welcome: WelcomeFrame;
  pacer: Pacer;
  moves: ReadonlyMap<Sub, Move>;
}

export class Handover {
  private socket: SocketLike | null = null;
  private welcome: WelcomeFrame | null = null;
  private welcomeTimer: TimerHandle | null = null;
  private ended = false;
  private readonly pacer: Pacer;
  private readonly moves = new Map<Sub, Move>();
  private readonly byId = new Map<FrameId, Move>();
  /** By the canonical name from `subscribed` (messages carry it). */
  private readonly byChannel = new Map<string, Move>();

  constructor(private readonly host: HandoverHost) {
    this.pacer = new Pacer(host.timers, (text) => this.write(text));
  }

  /** The new socket has its `welcome`: it can take over if the old one dies. */
  get welcomed(): boolean {
    return this.welcome !== null && !this.ended;
  }

  /** Welcomed, and every move confirmed, failed or stale. */
  get settled(): boolean {
    if (!this.welcomed) return false;
    for (const move of this.moves.values()) if (move.state === "pending" && !move.stale) return false;
    return true;
  }

  async start(): Promise<void> {
    let socket: SocketLike;
    try {
      socket = await this.host.connect();
    } catch (err) {
      this.fail(`could not open a socket: ${String(err)}`);
      return;
    }
    if (this.ended) {
      close(socket, CloseCode.Normal, "handover ended");
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.welcomeTimer = this.host.timers.setTimeout(() => this.fail("no welcome in time", ClientCloseCode.NoWelcome), this.host.welcomeTimeoutMs);
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onerror = () => this.fail("socket error");
    socket.onclose = (event) => this.fail(`closed with ${event.code}`);
  }

  /** The old socket asked for this subscription again (resync, rate change): the move is stale. */
  invalidate(sub: Sub): void {
    const move = this.moves.get(sub);
    if (move !== undefined) move.stale = true;
  }

  /** The switch: hand the socket over (its handlers are the client's to set). */
  release(): Handed {
    const { socket, welcome } = this;
    if (socket === null || welcome === null || this.ended) throw new Error("realtime: no handover to release");
    this.end(false); // the pacer's backlog goes with the socket (Outbox.adoptPacer)
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    return { socket, welcome, pacer: this.pacer, moves: this.moves };
  }

  /** Give up (disconnect, or the old socket died first): close the new socket. */
  abort(code: number, reason: string): void {
    if (this.ended) return;
    this.end(true);
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) close(socket, code, reason);
  }

  private fail(reason: string, code: number = CloseCode.Normal): void {
    if (this.ended) return;
    this.abort(code, "handover failed");
    this.host.failed(reason);
  }

  /** No more events, timers or (with `dropBacklog`) writes. */
  private end(dropBacklog: boolean): void {
    this.ended = true;
    if (this.welcomeTimer !== null) this.host.timers.clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
    for (const move of this.moves.values()) this.clearTimer(move);
    if (dropBacklog) this.pacer.reset();
  }

  private receive(raw: unknown): void {
    if (this.ended) return;
    const result = decodeServerFrame(raw);
    if (!result.ok) {
      this.host.log.debug(`realtime: handover: ignored server frame (${result.reason})`);
      return;
    }
    const frame = result.frame;
    switch (frame.type) {
      case "welcome":
        return this.onWelcome(frame);
      case "ping":
        this.write(JSON.stringify({ type: "pong", id: frame.id }));
        return;
      case "subscribed":
        return this.onSubscribed(frame);
      case "error":
        return this.onError(frame);
      case "message":
        return this.onMessage(frame);
      case "reconnect":
        return this.fail("the new socket asked to reconnect too");
      default:
        this.host.log.debug(`realtime: handover: ignored ${frame.type} on the new socket`);
    }
  }

  private onWelcome(frame: WelcomeFrame): void {
    if (this.welcome !== null) return;
    if (this.welcomeTimer !== null) this.host.timers.clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
    this.welcome = frame;
    this.pacer.configure(frame.limits.rate, frame.limits.burst);
    for (const planned of this.host.plan()) {
      const move: Move = { ...planned, id: this.host.allocateId(), state: "pending", error: null, stale: false, timer: null };
      move.timer = this.host.timers.setTimeout(() => {
        // No answer: the switch subscribes again, as a subscribe timeout on the socket would.
        move.timer = null;
        move.stale = true;
        this.check();
      }, this.host.requestTimeoutMs);
      this.moves.set(move.sub, move);
      this.byId.set(move.id, move);
      const out: Record<string, unknown> = { type: "subscribe", id: move.id, channel: move.channel, since: move.since };
      if (move.maxRate !== undefined) out.max_rate = move.maxRate;
      this.pacer.send(JSON.stringify(out));
    }
    this.check();
  }

  private onSubscribed(frame: SubscribedFrame): void {
    const move = frame.id === null ? undefined : this.byId.get(frame.id);
    if (move === undefined || move.state !== "pending") return;
    this.clearTimer(move);
    move.state = "live";
    move.channel = frame.channel;
    this.byChannel.set(frame.channel, move);
    if (!move.stale && !this.host.resumed(move.sub, frame, move.since, move.maxRate !== undefined)) {
      this.host.log.debug(`realtime: handover: ${frame.channel} not resumed on the new socket; the switch resubscribes it`);
      move.stale = true;
    }
    this.check();
  }

  private onError(frame: ErrorFrame): void {
    const move = frame.id === null ? undefined : this.byId.get(frame.id);
    if (move === undefined || move.state !== "pending") {
      this.host.log.debug(`realtime: handover: error ${frame.code} on the new socket`);
      return;
    }
    this.clearTimer(move);
    move.state = "failed";
    move.error = new RealtimeError(frame.code, frame.message, frame.details);
    this.check();
  }

  private onMessage(frame: MessageFrame): void {
    // Channels not moved (the `user` channel has no position to deduplicate by) count on the old socket only.
    const move = this.byChannel.get(frame.channel);
    if (move === undefined || move.state !== "live" || move.stale) return;
    const verdict = this.host.message(move.sub, frame);
    if (verdict !== "apply" && verdict !== "duplicate") {
      this.host.log.debug(`realtime: handover: ${verdict} on ${frame.channel} on the new socket; the switch resubscribes it`);
      move.stale = true;
    }
  }

  private check(): void {
    if (this.settled) this.host.ready();
  }

  private clearTimer(move: Move): void {
    if (move.timer !== null) this.host.timers.clearTimeout(move.timer);
    move.timer = null;
  }

  private write(text: string): void {
    const socket = this.socket;
    if (socket === null || this.ended) return;
    try {
      socket.send(text);
    } catch (err) {
      this.host.log.debug("realtime: handover: send failed", err);
    }
  }
}

function close(socket: SocketLike, code: number, reason: string): void {
  socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
  try {
    socket.close(code, reason);
  } catch {
    // Already closed or closing.
  }
}
