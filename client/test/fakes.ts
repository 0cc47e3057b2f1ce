/** Test doubles: deterministic timers, a fake socket, a scriptable server and browser env. */

import type { BrowserEnv } from "../src/core/env";
import type { SocketCloseEvent, SocketLike } from "../src/core/socket";
import type { Timers } from "../src/core/timers";

export class FakeTimers implements Timers {
  private t = 0;
  private wallOffset = 1_764_100_000_000;
  private seq = 0;
  private readonly tasks = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.tasks.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.tasks.delete(handle as number);
  }

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.t + this.wallOffset;
  }

  /** Jump the wall clock (NTP step, user changing the clock) without moving monotonic time. */
  skewWall(ms: number): void {
    this.wallOffset += ms;
  }

  get pending(): number {
    return this.tasks.size;
  }

  /** Run every timer due within `ms`, in time order (timers set meanwhile included). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.tasks) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.tasks.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

export class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: SocketCloseEvent) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  // --- server side -----------------------------------------------------------------

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  serverClose(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }

  /** Frames of a type the client sent. */
  ofType(type: string): Record<string, unknown>[] {
    return this.sent.filter((f) => f.type === type);
  }

  last(type?: string): Record<string, unknown> {
    const list = type === undefined ? this.sent : this.ofType(type);
    const frame = list[list.length - 1];
    if (frame === undefined) throw new Error(`no ${type ?? ""} frame sent`);
    return frame;
  }
}

export function welcome(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "welcome",
    protocol: 1,
    session: "gw:c1",
    user: null,
    heartbeat: { interval: 25_000, timeout: 10_000 },
    limits: { rate: 1000, burst: 1000 },
    server_time: 1_764_100_000_000,
    ...extra,
  };
}

export class SocketFactoryFake {
  readonly sockets: FakeSocket[] = [];
  readonly factory = (url: string): FakeSocket => {
    const socket = new FakeSocket(url);
    this.sockets.push(socket);
    return socket;
  };

  get current(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (s === undefined) throw new Error("no socket opened");
    return s;
  }

  /** Open the current socket and send welcome. */
  accept(extra: Record<string, unknown> = {}): FakeSocket {
    const s = this.current;
    s.open();
    s.deliver(welcome(extra));
    return s;
  }
}

export class FakeEnv implements BrowserEnv {
  online = true;
  visible = true;
  private readonly onlineFns = new Set<() => void>();
  private readonly offlineFns = new Set<() => void>();
  private readonly visFns = new Set<(v: boolean) => void>();

  isOnline(): boolean {
    return this.online;
  }
  isVisible(): boolean {
    return this.visible;
  }
  onOnline(fn: () => void): () => void {
    this.onlineFns.add(fn);
    return () => this.onlineFns.delete(fn);
  }
  onOffline(fn: () => void): () => void {
    this.offlineFns.add(fn);
    return () => this.offlineFns.delete(fn);
  }
  onVisibilityChange(fn: (v: boolean) => void): () => void {
    this.visFns.add(fn);
    return () => this.visFns.delete(fn);
  }
  setOnline(online: boolean): void {
    this.online = online;
    for (const fn of online ? this.onlineFns : this.offlineFns) fn();
  }
  setVisible(visible: boolean): void {
    this.visible = visible;
    for (const fn of this.visFns) fn(visible);
  }
}

export const quietLogger = { debug: (): void => undefined, warn: (): void => undefined };

/** Let promise callbacks (async URL resolution, request rejections) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
