import { beforeEach, describe, expect, it } from "vitest";
import { WebSocketClient, type ClientState } from "../src/core/client";
import { ClientCloseCode, ClientErrorCode, CloseCode, ErrorCode, RealtimeError } from "../src/core/codes";
import { FakeEnv, FakeTimers, SocketFactoryFake, flush, quietLogger } from "./fakes";

function setup(extra: Partial<ConstructorParameters<typeof WebSocketClient>[0]> = {}) {
  const timers = new FakeTimers();
  const sockets = new SocketFactoryFake();
  const env = new FakeEnv();
  const client = new WebSocketClient({
    url: "ws://test/ws/",
    socketFactory: sockets.factory,
    timers,
    env,
    random: () => 0.5,
    logger: quietLogger,
    ...extra,
  });
  const states: string[] = [];
  client.on("state", ({ from, to }) => states.push(`${from}->${to}`));
  return { timers, sockets, env, client, states };
}

describe("state machine", () => {
  it("goes idle -> connecting -> open -> reconnecting -> open -> closed, one event per change", () => {
    const { client, sockets, timers, states } = setup();
    expect(client.state).toBe("idle");
    client.connect();
    expect(client.state).toBe("connecting");
    sockets.accept();
    expect(client.state).toBe("open");
    sockets.current.serverClose(CloseCode.InternalError);
    expect(client.state).toBe("reconnecting");
    timers.advance(10_000);
    expect(sockets.sockets).toHaveLength(2);
    expect(client.state).toBe("reconnecting"); // until the new welcome
    sockets.accept();
    client.disconnect();
    expect(states).toEqual(["idle->connecting", "connecting->open", "open->reconnecting", "reconnecting->open", "open->closed"]);
    expect(sockets.current.closedWith).toBe(1000);
  });

  it("is open only after welcome, not on the socket's open", () => {
    const { client, sockets } = setup();
    client.connect();
    sockets.current.open();
    expect(client.state).toBe("connecting");
  });

  it("rejects illegal transitions and ignores connect() while connected", () => {
    const { client, sockets, states } = setup();
    client.connect();
    client.connect();
    sockets.accept();
    client.connect();
    expect(sockets.sockets).toHaveLength(1);
    expect(states).toEqual(["idle->connecting", "connecting->open"]);
  });

  it("does not reconnect after disconnect(), even when the old socket reports its close", () => {
    const { client, sockets, timers } = setup();
    client.connect();
    const first = sockets.accept();
    client.disconnect();
    first.serverClose(1006);
    timers.advance(60_000);
    expect(sockets.sockets).toHaveLength(1);
    expect(client.state).toBe("closed");
  });

  it("status object is stable between changes (useSyncExternalStore contract)", () => {
    const { client, sockets } = setup();
    const a = client.getStatus();
    expect(client.getStatus()).toBe(a);
    client.connect();
    sockets.accept({ user: { id: 7, staff: false } });
    const b = client.getStatus();
    expect(b).not.toBe(a);
    expect(b.state).toBe("open");
    expect(b.user).toEqual({ id: 7, staff: false });
  });

  it("every on() returns a disposer", () => {
    const { client, sockets } = setup();
    const seen: ClientState[] = [];
    const dispose = client.on("state", ({ to }) => seen.push(to));
    client.connect();
    dispose();
    sockets.accept();
    expect(seen).toEqual(["connecting"]);
  });
});

describe("heartbeat", () => {
  it("answers server pings with the same id", () => {
    const { client, sockets } = setup();
    client.connect();
    const s = sockets.accept();
    s.deliver({ type: "ping", id: "s12", server_time: 1 });
    expect(s.last("pong")).toEqual({ type: "pong", id: "s12" });
  });

  it("treats silence for interval + timeout as a dead link and reconnects", () => {
    const { client, sockets, timers } = setup();
    client.connect();
    const s = sockets.accept({ heartbeat: { interval: 1000, timeout: 500 } });
    timers.advance(1000);
    s.deliver({ type: "ping", id: "s1" }); // traffic keeps it alive
    timers.advance(1400);
    expect(client.state).toBe("open");
    timers.advance(200);
    expect(client.state).toBe("reconnecting");
    expect(s.closedWith).toBe(ClientCloseCode.DeadLink);
    expect(client.getStatus().lastCloseCode).toBe(ClientCloseCode.DeadLink);
  });

  it("measures RTT with client pings and grades quality", () => {
    const { client, sockets, timers } = setup({ pingEveryMs: 5000 });
    client.connect();
    const s = sockets.accept();
    const ping = s.last("ping");
    timers.advance(40);
    s.deliver({ type: "pong", id: ping.id, server_time: timers.wallNow() });
    expect(client.getQuality()).toMatchObject({ level: "good", rttMs: 40, missedPings: 0 });
    timers.advance(5000); // next ping, unanswered
    timers.advance(5000); // and another: the previous one counts as missed
    expect(client.getQuality().missedPings).toBe(1);
    expect(client.getQuality().level).toBe("degraded");
  });

  it("estimates the server clock despite client clock skew", () => {
    const { client, sockets, timers } = setup();
    client.connect();
    // The server's clock is one hour ahead of the client's.
    const s = sockets.accept({ server_time: timers.wallNow() + 3_600_000 });
    expect(Math.abs(client.serverNow() - (timers.wallNow() + 3_600_000))).toBeLessThan(5);
    // A wall-clock step on the client moves neither the heartbeat nor the backoff (monotonic time).
    timers.skewWall(-86_400_000);
    timers.advance(30_000);
    expect(client.state).toBe("open"); // client pings and pongs would keep it; no pong here but 35 s not elapsed
    s.deliver({ type: "ping", id: "s1" });
    timers.advance(34_000);
    expect(client.state).toBe("open");
  });
});

describe("requests", () => {
  it("resolves with the reply's data, matched by id", async () => {
    const { client, sockets } = setup();
    client.connect();
    const s = sockets.accept();
    const p = client.request("alerts.list", {});
    const frame = s.last("alerts.list");
    s.deliver({ type: "reply", id: frame.id, request: "alerts.list", data: { rules: [] } });
    await expect(p).resolves.toEqual({ rules: [] });
  });

  it("rejects with the server's error code", async () => {
    const { client, sockets } = setup();
    client.connect();
    const s = sockets.accept();
    const p = client.request("notifications.mark_read", { notification_id: "n:9" });
    s.deliver({ type: "error", id: s.last("notifications.mark_read").id, code: "not_found", message: "no such notification" });
    await expect(p).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it("times out", async () => {
    const { client, sockets, timers } = setup();
    client.connect();
    sockets.accept();
    const p = client.request("x.y", {}, { timeoutMs: 500 });
    timers.advance(500);
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.Timeout });
  });

  it("rejects in-flight requests with connection_lost when the link drops", async () => {
    const { client, sockets } = setup();
    client.connect();
    const s = sockets.accept();
    const p = client.request("x.y");
    s.serverClose(1006);
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.ConnectionLost });
  });
});

describe("offline queue", () => {
  it("holds requests while reconnecting and flushes them in order after resubscribing", async () => {
    const { client, sockets, timers } = setup();
    client.subscribe("prices:BTC", {});
    client.connect();
    sockets.accept();
    sockets.current.serverClose(1006);
    const a = client.request("notifications.mark_read", { notification_id: "n:1" });
    const b = client.request("notifications.mark_read", { notification_id: "n:2" });
    expect(client.getStatus().queued).toBe(2);
    timers.advance(5000);
    const s = sockets.accept();
    const types = s.sent.map((f) => f.type);
    expect(types.indexOf("subscribe")).toBeLessThan(types.indexOf("notifications.mark_read"));
    const marks = s.ofType("notifications.mark_read");
    expect(marks.map((f) => f.notification_id)).toEqual(["n:1", "n:2"]);
    for (const f of marks) s.deliver({ type: "reply", id: f.id, data: { unread_count: 0 } });
    await expect(Promise.all([a, b])).resolves.toHaveLength(2);
  });

  it("refuses the newest send when full (documented policy) and keeps the older ones", async () => {
    const { client, sockets } = setup({ queueCapacity: 2 });
    client.connect();
    sockets.current.serverClose(1006);
    const ok1 = client.request("a.b", { n: 1 });
    const ok2 = client.request("a.b", { n: 2 });
    const refused = client.request("a.b", { n: 3 });
    await expect(refused).rejects.toMatchObject({ code: ClientErrorCode.QueueFull });
    expect(client.send({ type: "a.c" })).toBe(false);
    expect(client.getStatus().queued).toBe(2);
    void ok1.catch(() => undefined);
    void ok2.catch(() => undefined);
  });

  it("drops a queued request that timed out (the UI rolled it back) instead of sending it later", async () => {
    const { client, sockets, timers } = setup();
    client.connect();
    sockets.current.serverClose(1006);
    const p = client.request("a.b", {}, { timeoutMs: 1000 });
    timers.advance(1000);
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.Timeout });
    timers.advance(10_000);
    const s = sockets.accept();
    expect(s.ofType("a.b")).toHaveLength(0);
  });

  it("fails everything queued on disconnect()", async () => {
    const { client, sockets } = setup();
    client.connect();
    sockets.current.serverClose(1006);
    const p = client.request("a.b");
    client.disconnect();
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.Closed });
  });
});

describe("bad server input", () => {
  it("ignores malformed frames and unknown types without crashing, with a debug log", () => {
    const debug: string[] = [];
    const { client, sockets } = setup({ logger: { debug: (m: string) => debug.push(m), warn: () => undefined } });
    const got: unknown[] = [];
    client.subscribe("prices:BTC", { onMessage: (d) => got.push(d) });
    client.connect();
    const s = sockets.accept();
    const sub = s.last("subscribe");
    s.deliver({ type: "subscribed", id: sub.id, channel: "prices:BTC", epoch: "e1", seq: 0 });
    for (const junk of [
      "not json{",
      "[1,2]",
      "null",
      '"text"',
      { no: "type" },
      { type: 42 },
      { type: "totally_new_frame", x: 1 },
      { type: "message", channel: "prices:BTC" },
      { type: "message", channel: "prices:BTC", seq: "7", epoch: "e1", data: {} },
      { type: "message", channel: "prices:BTC", seq: 1, data: {} },
      { type: "subscribed", id: 99, channel: "x" },
      { type: "error", id: {}, code: "x" },
      { type: "welcome" },
    ]) {
      s.deliver(junk);
    }
    s.onmessage?.({ data: new ArrayBuffer(4) });
    expect(client.state).toBe("open");
    expect(got).toEqual([]);
    expect(debug.filter((m) => m.includes("ignored")).length).toBeGreaterThanOrEqual(13);
    s.deliver({ type: "message", channel: "prices:BTC", seq: 1, epoch: "e1", data: { price: 1 } });
    expect(got).toEqual([{ price: 1 }]);
  });

  it("backs off against a server that accepts and closes at once: no tight loop", () => {
    const { client, sockets, timers } = setup({ random: () => 1 });
    client.connect();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      sockets.accept(); // welcome arrives, then the server hangs up at once
      sockets.current.serverClose(1011);
      const delay = client.getStatus().nextRetryAt! - timers.now();
      delays.push(delay);
      timers.advance(delay);
    }
    // Welcome does not reset the counter (only STABLE_AFTER_MS of uptime does): the
    // delays grow to the cap instead of hammering the server.
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
    expect(sockets.sockets).toHaveLength(9);
  });

  it("keeps retrying a dead server at most 4 s apart, so its return is noticed within 5 s", () => {
    for (let seed = 1; seed <= 50; seed++) {
      let x = seed;
      const random = () => ((x = (x * 16807) % 2147483647) / 2147483647);
      const { client, sockets, timers } = setup({ random });
      client.connect();
      sockets.accept();
      sockets.current.serverClose(1006);
      // The server is down for a random while; every attempt is refused.
      const downFor = 20_000 + (seed * 997) % 30_000;
      let last = timers.now();
      while (timers.now() < downFor) {
        const before = sockets.sockets.length;
        timers.advance(10);
        if (sockets.sockets.length > before) {
          expect(timers.now() - last).toBeLessThanOrEqual(4_010);
          last = timers.now();
          sockets.current.serverClose(1006);
        }
      }
      // Back now: the next attempt comes within the 4 s cap.
      const back = timers.now();
      const count = sockets.sockets.length;
      while (sockets.sockets.length === count) timers.advance(10);
      expect(timers.now() - back).toBeLessThanOrEqual(4_010);
      sockets.accept();
      expect(client.state).toBe("open");
      client.destroy();
    }
  });

  it("resets the backoff once a connection has been stable", () => {
    const { client, sockets, timers } = setup({ random: () => 1 });
    client.connect();
    for (let i = 0; i < 4; i++) {
      sockets.accept();
      sockets.current.serverClose(1011);
      timers.advance(4000);
    }
    sockets.accept();
    timers.advance(5000);
    sockets.current.serverClose(1011);
    expect(client.getStatus().nextRetryAt! - timers.now()).toBe(250);
  });

  it("honours reconnect.after_ms and clamps an absurd one", () => {
    const { client, sockets, timers } = setup();
    client.connect();
    let s = sockets.accept();
    s.deliver({ type: "reconnect", reason: "server_restart", after_ms: 2315 });
    expect(client.state).toBe("reconnecting");
    timers.advance(2314);
    expect(sockets.sockets).toHaveLength(1);
    timers.advance(1);
    expect(sockets.sockets).toHaveLength(2);
    s = sockets.accept();
    s.deliver({ type: "reconnect", after_ms: 1e12 });
    expect(client.getStatus().nextRetryAt! - timers.now()).toBe(30_000);
    timers.advance(30_000);
    s = sockets.accept();
    s.deliver({ type: "reconnect", after_ms: -5 });
    expect(client.getStatus().nextRetryAt! - timers.now()).toBeLessThanOrEqual(4_000);
  });

  it("waits at least the rate-limit delay after close 4429", () => {
    const { client, sockets, timers } = setup({ random: () => 0 });
    client.connect();
    sockets.accept();
    sockets.current.serverClose(CloseCode.RateLimited);
    expect(client.getStatus().nextRetryAt! - timers.now()).toBe(5_000);
  });

  it("waits at least the rate-limit delay after close 1013 (gateway full)", () => {
    const { client, sockets, timers } = setup({ random: () => 0 });
    client.connect();
    sockets.current.open();
    sockets.current.serverClose(CloseCode.TryAgainLater);
    expect(client.getStatus().nextRetryAt! - timers.now()).toBe(5_000);
  });

  it("reconnects when the server never sends welcome", () => {
    const { client, sockets, timers } = setup();
    client.connect();
    sockets.current.open();
    timers.advance(10_000);
    expect(sockets.sockets[0]!.closedWith).toBe(ClientCloseCode.NoWelcome);
    expect(client.state).toBe("reconnecting");
  });

  it("surfaces error frames without a pending request as serverError", () => {
    const { client, sockets } = setup();
    const errors: RealtimeError[] = [];
    client.on("serverError", (e) => errors.push(e));
    client.connect();
    sockets.accept().deliver({ type: "error", id: null, code: "unavailable", message: "heartbeat timeout" });
    expect(errors.map((e) => e.code)).toEqual(["unavailable"]);
  });
});

describe("online/offline", () => {
  it("does not retry while offline and retries at once when back online", async () => {
    const { client, sockets, env, timers } = setup();
    client.connect();
    sockets.accept();
    env.setOnline(false);
    sockets.current.serverClose(1006);
    expect(client.getStatus().online).toBe(false);
    timers.advance(60_000);
    expect(sockets.sockets).toHaveLength(1);
    env.setOnline(true);
    await flush();
    expect(sockets.sockets).toHaveLength(2);
  });

  it("cuts a pending backoff short when the browser comes back online", () => {
    const { client, sockets, env } = setup({ random: () => 1 });
    client.connect();
    sockets.current.serverClose(1006);
    sockets.current.serverClose(1006);
    env.setOnline(true);
    expect(sockets.sockets.length).toBeGreaterThanOrEqual(2);
  });
});

describe("url factory", () => {
  it("asks for a fresh URL (ticket) on every attempt", async () => {
    let n = 0;
    const { client, sockets, timers } = setup({ url: async () => `ws://t/ws/?ticket=${++n}` });
    client.connect();
    await flush();
    sockets.accept();
    sockets.current.serverClose(CloseCode.Unauthenticated);
    timers.advance(5000);
    await flush();
    expect(sockets.sockets.map((s) => s.url)).toEqual(["ws://t/ws/?ticket=1", "ws://t/ws/?ticket=2"]);
  });
});
