import { describe, expect, it } from "vitest";
import { WebSocketClient } from "../src/core/client";
import { ClientErrorCode, CloseCode } from "../src/core/codes";
import { decodeServerFrame } from "../src/core/protocol";
import { FakeEnv, FakeTimers, SocketFactoryFake, flush, welcome, type FakeSocket } from "./fakes";

function setup(extra: Partial<ConstructorParameters<typeof WebSocketClient>[0]> = {}) {
  const timers = new FakeTimers();
  const sockets = new SocketFactoryFake();
  const env = new FakeEnv();
  const debug: string[] = [];
  const client = new WebSocketClient({
    url: "ws://t/ws/",
    socketFactory: sockets.factory,
    timers,
    env,
    random: () => 0.5,
    logger: { debug: (m: string) => debug.push(m), warn: () => undefined },
    ...extra,
  });
  const states: string[] = [];
  const connectionStates = new Set<string>();
  client.on("state", ({ from, to }) => states.push(`${from}->${to}`));
  client.on("status", (status) => connectionStates.add(status.state));
  return { timers, sockets, env, client, states, connectionStates, debug };
}

const msg = (channel: string, seq: number, data: unknown, epoch = "e1") => ({ type: "message", channel, seq, epoch, data });
const HANDOVER = { type: "reconnect", reason: "rebalance", after_ms: 0, handover_ms: 10_000 };

function subscribeFrame(s: FakeSocket, channel: string): Record<string, unknown> {
  const frame = s.ofType("subscribe").filter((f) => f.channel === channel).pop();
  if (frame === undefined) throw new Error(`no subscribe to ${channel}`);
  return frame;
}

function subscribed(s: FakeSocket, channel: string, seq: number, extra: Record<string, unknown> = {}): void {
  s.deliver({ type: "subscribed", id: subscribeFrame(s, channel).id, channel, epoch: "e1", seq, ...extra });
}

/** Connected, with prices:BTC at seq 10 and prices:ETH at seq 5 on the first socket. */
function connected(extra: Partial<ConstructorParameters<typeof WebSocketClient>[0]> = {}) {
  const t = setup(extra);
  const got: Record<string, number[]> = { "prices:BTC": [], "prices:ETH": [] };
  const statuses: string[] = [];
  for (const channel of ["prices:BTC", "prices:ETH"]) {
    t.client.subscribe(channel, { onMessage: (d) => got[channel]!.push(d as number), onStatus: (st) => statuses.push(`${channel} ${st}`) });
  }
  t.client.connect();
  const old = t.sockets.accept();
  subscribed(old, "prices:BTC", 9);
  subscribed(old, "prices:ETH", 5);
  old.deliver(msg("prices:BTC", 10, 10));
  return { ...t, old, got, statuses };
}

/** The server asks for a handover; the new socket opens and says welcome. */
async function handOver(old: FakeSocket, sockets: SocketFactoryFake, welcomeExtra: Record<string, unknown> = {}): Promise<FakeSocket> {
  old.deliver(HANDOVER);
  await flush();
  const next = sockets.current;
  expect(next).not.toBe(old);
  next.open();
  next.deliver(welcome({ session: "gw2:c1", ...welcomeExtra }));
  return next;
}

describe("handover (reconnect with handover_ms)", () => {
  it("moves every subscription with since, and closes the old socket with 1000 only after every subscribed", async () => {
    const { client, sockets, old, states } = connected();
    const next = await handOver(old, sockets);
    expect(sockets.sockets).toHaveLength(2);
    expect(subscribeFrame(next, "prices:BTC").since).toEqual({ epoch: "e1", seq: 10 });
    expect(subscribeFrame(next, "prices:ETH").since).toEqual({ epoch: "e1", seq: 5 });
    subscribed(next, "prices:BTC", 10, { recovered: true });
    expect(old.closedWith).toBeNull(); // ETH is not confirmed yet
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(old.closedWith).toBe(CloseCode.Normal);
    expect(client.getStatus().session).toBe("gw2:c1");
    expect(states).toEqual(["idle->connecting", "connecting->open"]);
    // The new socket is the socket now: requests, pongs and the heartbeat go there.
    void client.request("alerts.list").catch(() => undefined);
    next.deliver({ type: "ping", id: "s9" });
    expect(next.last("alerts.list")).toBeDefined();
    expect(next.last("pong")).toEqual({ type: "pong", id: "s9" });
    expect(next.ofType("ping").length).toBeGreaterThanOrEqual(1);
    expect(old.ofType("alerts.list")).toHaveLength(0);
  });

  it("asks the new socket for max_rate as a reconnect would (hidden tab, conflate policy)", async () => {
    const { client, sockets, env } = setup();
    client.subscribe("prices:BTC", {}, { hiddenPolicy: "conflate", hiddenMaxRate: 0.5 });
    client.connect();
    const old = sockets.accept();
    subscribed(old, "prices:BTC", 3);
    env.setVisible(false);
    subscribed(old, "prices:BTC", 4, { recovered: true, max_rate: 0.5 });
    const next = await handOver(old, sockets);
    expect(subscribeFrame(next, "prices:BTC")).toMatchObject({ since: { epoch: "e1", seq: 3 }, max_rate: 0.5 });
  });

  it("delivers what both sockets send exactly once and in order", async () => {
    const { client, sockets, old, got } = connected();
    const next = await handOver(old, sockets);
    old.deliver(msg("prices:BTC", 11, 11));
    subscribed(next, "prices:BTC", 10, { recovered: true });
    next.deliver(msg("prices:BTC", 11, 11)); // the replay
    next.deliver(msg("prices:BTC", 12, 12));
    old.deliver(msg("prices:BTC", 12, 12));
    next.deliver(msg("prices:BTC", 13, 13)); // live on the new socket
    old.deliver(msg("prices:BTC", 13, 13));
    old.deliver(msg("prices:ETH", 6, 6));
    subscribed(next, "prices:ETH", 5, { recovered: true });
    next.deliver(msg("prices:ETH", 6, 6));
    next.deliver(msg("prices:ETH", 7, 7));
    expect(got["prices:BTC"]).toEqual([10, 11, 12, 13]);
    expect(got["prices:ETH"]).toEqual([6, 7]);
    expect(client.sync.stats.duplicates).toBe(4);
    expect(client.sync.since("prices:BTC")).toEqual({ epoch: "e1", seq: 13 });
  });

  it("keeps the state open and every subscription's status as it was", async () => {
    const { client, sockets, old, states, statuses, connectionStates } = connected();
    const before = [...statuses];
    const next = await handOver(old, sockets);
    subscribed(next, "prices:BTC", 10, { recovered: true });
    subscribed(next, "prices:ETH", 5, { recovered: true });
    next.deliver(msg("prices:BTC", 11, 11));
    expect(statuses).toEqual(before);
    expect(states).toEqual(["idle->connecting", "connecting->open"]);
    expect([...connectionStates]).toEqual(["connecting", "open"]);
    expect(client.channelStatus("prices:BTC")?.status).toBe("active");
  });

  it("answers pings on the socket they came on, and takes position-less messages from the old socket only", async () => {
    const { client, sockets, old } = connected();
    const user: unknown[] = [];
    client.on("message", ({ channel, data }) => channel === "user" && user.push(data));
    const next = await handOver(old, sockets);
    next.deliver({ type: "ping", id: "n1" });
    old.deliver({ type: "ping", id: "o1" });
    expect(next.ofType("pong")).toEqual([{ type: "pong", id: "n1" }]);
    expect(old.last("pong")).toEqual({ type: "pong", id: "o1" });
    old.deliver({ type: "message", channel: "user", data: "a" });
    next.deliver({ type: "message", channel: "user", data: "a" });
    expect(user).toEqual(["a"]);
  });

  it("gets a fresh URL (ticket) for the new socket", async () => {
    let n = 0;
    const { client, sockets } = setup({ url: async () => `ws://t/ws/?ticket=${++n}` });
    client.connect();
    await flush();
    const old = sockets.accept();
    await handOver(old, sockets);
    expect(sockets.sockets.map((s) => s.url)).toEqual(["ws://t/ws/?ticket=1", "ws://t/ws/?ticket=2"]);
  });

  describe("requests during the overlap", () => {
    it("wait for the switch and go on the new socket once, after the resubscribes", async () => {
      const { client, sockets, old } = connected();
      const next = await handOver(old, sockets);
      const p = client.request("notifications.mark_read", { notification_id: "n:1" });
      expect(client.send({ type: "presence.ping" })).toBe(true);
      expect(old.ofType("notifications.mark_read")).toHaveLength(0);
      subscribed(next, "prices:BTC", 10, { recovered: true });
      subscribed(next, "prices:ETH", 5, { recovered: true });
      const types = next.sent.map((f) => f.type);
      expect(types.filter((t) => t === "notifications.mark_read")).toHaveLength(1);
      expect(types.lastIndexOf("subscribe")).toBeLessThan(types.indexOf("notifications.mark_read"));
      expect(next.ofType("presence.ping")).toHaveLength(1);
      expect(old.ofType("notifications.mark_read")).toHaveLength(0);
      next.deliver({ type: "reply", id: next.last("notifications.mark_read").id, data: { ok: true } });
      await expect(p).resolves.toEqual({ ok: true });
    });

    it("the switch waits for the replies the old socket owes", async () => {
      const { client, sockets, old } = connected();
      const p = client.request("alerts.list");
      const next = await handOver(old, sockets);
      subscribed(next, "prices:BTC", 10, { recovered: true });
      subscribed(next, "prices:ETH", 5, { recovered: true });
      expect(old.closedWith).toBeNull();
      old.deliver({ type: "reply", id: old.last("alerts.list").id, data: { rules: [] } });
      await expect(p).resolves.toEqual({ rules: [] });
      expect(old.closedWith).toBe(CloseCode.Normal);
    });

    it("a reply that never comes does not hold the switch past its timeout", async () => {
      const { client, sockets, old, timers } = connected();
      const p = client.request("alerts.list", {}, { timeoutMs: 3000 });
      const next = await handOver(old, sockets);
      subscribed(next, "prices:BTC", 10, { recovered: true });
      subscribed(next, "prices:ETH", 5, { recovered: true });
      timers.advance(3000);
      await expect(p).rejects.toMatchObject({ code: ClientErrorCode.Timeout });
      expect(old.closedWith).toBe(CloseCode.Normal);
    });
  });

  describe("the new socket fails before the switch", () => {
    const failures: [string, (next: FakeSocket, timers: FakeTimers) => void][] = [
      ["refused", (next) => next.serverClose(1006)],
      ["closed after welcome", (next) => (next.open(), next.deliver(welcome()), next.serverClose(1011))],
      ["error event", (next) => (next.open(), next.onerror?.({}))],
      ["no welcome in time", (next, timers) => (next.open(), timers.advance(10_000))],
      ["asks to reconnect itself", (next) => (next.open(), next.deliver(welcome()), next.deliver(HANDOVER))],
    ];
    for (const [name, failNewSocket] of failures) {
      it(`${name}: stays on the old socket, then the old one's 1012 reconnects as usual`, async () => {
        const { client, sockets, old, got, timers, states } = connected();
        old.deliver(HANDOVER);
        await flush();
        const next = sockets.current;
        const p = client.request("alerts.list", {}, { timeoutMs: 60_000 }); // waits for the switch
        failNewSocket(next, timers);
        expect(next.readyState === 3 || next.closedWith !== null).toBe(true);
        expect(client.state).toBe("open");
        expect(old.ofType("alerts.list")).toHaveLength(1); // the handover is over: the queue went on the old socket
        old.deliver(msg("prices:BTC", 11, 11));
        expect(got["prices:BTC"]).toEqual([10, 11]);
        old.serverClose(CloseCode.ServiceRestart);
        await expect(p).rejects.toMatchObject({ code: ClientErrorCode.ConnectionLost });
        expect(client.state).toBe("reconnecting");
        expect(states).toEqual(["idle->connecting", "connecting->open", "open->reconnecting"]);
        const delay = client.getStatus().nextRetryAt! - timers.now();
        expect(delay).toBeGreaterThan(0);
        expect(delay).toBeLessThanOrEqual(4000);
        const count = sockets.sockets.length;
        timers.advance(delay);
        expect(sockets.sockets).toHaveLength(count + 1);
        const third = sockets.accept();
        expect(subscribeFrame(third, "prices:BTC").since).toEqual({ epoch: "e1", seq: 11 });
      });
    }
  });

  describe("the old socket dies during the handover", () => {
    it("with the new socket open: switches at once, and the resubscribes pending there continue", async () => {
      const { client, sockets, old, got, states, statuses } = connected();
      const before = [...statuses];
      const next = await handOver(old, sockets);
      subscribed(next, "prices:BTC", 10, { recovered: true });
      old.serverClose(CloseCode.ServiceRestart); // ETH is still pending on the new socket
      expect(client.state).toBe("open");
      expect(states).toEqual(["idle->connecting", "connecting->open"]);
      old.deliver(msg("prices:ETH", 6, 6)); // detached: ignored
      subscribed(next, "prices:ETH", 5, { recovered: true });
      next.deliver(msg("prices:ETH", 6, 6));
      next.deliver(msg("prices:BTC", 11, 11));
      expect(got).toEqual({ "prices:BTC": [10, 11], "prices:ETH": [6] });
      expect(statuses).toEqual(before);
      expect(next.ofType("subscribe")).toHaveLength(2); // nothing subscribed twice
      void client.request("alerts.list").catch(() => undefined);
      expect(next.ofType("alerts.list")).toHaveLength(1);
    });

    it("with the heartbeat: a dead old link switches too, and the heartbeat then watches the new socket", async () => {
      const { client, sockets, timers } = setup();
      client.subscribe("prices:BTC", {});
      client.connect();
      const heartbeat = { interval: 1000, timeout: 500 };
      const old = sockets.accept({ heartbeat });
      subscribed(old, "prices:BTC", 3);
      const next = await handOver(old, sockets, { heartbeat }); // BTC stays pending there
      timers.advance(1500);
      expect(old.closedWith).toBe(4000);
      expect(client.state).toBe("open");
      timers.advance(1000);
      next.deliver({ type: "ping", id: "s1" });
      timers.advance(1400);
      expect(client.state).toBe("open");
      timers.advance(100);
      expect(client.state).toBe("reconnecting");
      expect(next.closedWith).toBe(4000);
    });

    it("a reconnect without handover_ms on the old socket counts as its end: switches", async () => {
      const { client, sockets, old, states } = connected();
      const next = await handOver(old, sockets);
      old.deliver({ type: "reconnect", reason: "server_restart", after_ms: 100 });
      expect(old.closedWith).toBe(CloseCode.Normal);
      expect(client.state).toBe("open");
      expect(states).toEqual(["idle->connecting", "connecting->open"]);
      subscribed(next, "prices:BTC", 10, { recovered: true });
      expect(client.channelStatus("prices:BTC")?.status).toBe("active");
    });

    it("before the new socket's welcome: closes it and reconnects as usual", async () => {
      const { client, sockets, old, timers } = connected();
      old.deliver(HANDOVER);
      await flush();
      const next = sockets.current;
      next.open();
      old.serverClose(CloseCode.ServiceRestart);
      expect(next.closedWith).toBe(CloseCode.Normal);
      expect(client.state).toBe("reconnecting");
      next.deliver(welcome()); // too late: detached
      expect(client.state).toBe("reconnecting");
      timers.advance(client.getStatus().nextRetryAt! - timers.now());
      expect(sockets.sockets).toHaveLength(3);
    });
  });

  it("ignores a second reconnect with handover_ms during a handover", async () => {
    const { client, sockets, old, debug } = connected();
    const next = await handOver(old, sockets);
    old.deliver(HANDOVER);
    await flush();
    expect(sockets.sockets).toHaveLength(2);
    expect(debug.some((m) => m.includes("ignored a reconnect with handover_ms"))).toBe(true);
    subscribed(next, "prices:BTC", 10, { recovered: true });
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(old.closedWith).toBe(CloseCode.Normal);
    expect(client.state).toBe("open");
  });

  it("a reconnect without handover_ms (or with 0) is a drain as before", () => {
    const { client, sockets, timers } = setup();
    client.connect();
    const s = sockets.accept();
    s.deliver({ type: "reconnect", reason: "server_restart", after_ms: 1200, handover_ms: 0 });
    expect(client.state).toBe("reconnecting");
    expect(s.closedWith).toBe(CloseCode.Normal);
    timers.advance(1199);
    expect(sockets.sockets).toHaveLength(1);
    timers.advance(1);
    expect(sockets.sockets).toHaveLength(2);
  });

  it("a subscription that does not resume on the new socket is subscribed again after the switch, without a reset during the overlap", async () => {
    const { client, sockets, old, got } = connected();
    const resets: string[] = [];
    client.on("reset", ({ channel }) => resets.push(channel));
    const next = await handOver(old, sockets);
    subscribed(next, "prices:BTC", 40, { recovered: false, epoch: "e2" });
    next.deliver({ ...msg("prices:BTC", 40, 40, "e2"), snapshot: true }); // not applied: the move is stale
    old.deliver(msg("prices:BTC", 11, 11));
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(old.closedWith).toBe(CloseCode.Normal);
    expect(resets).toEqual([]);
    expect(got["prices:BTC"]).toEqual([10, 11]);
    // After the switch: unsubscribe, then subscribe again with the position, as a resync.
    const types = next.sent.filter((f) => f.channel === "prices:BTC").map((f) => f.type);
    expect(types).toEqual(["subscribe", "unsubscribe", "subscribe"]);
    expect(next.last("subscribe")).toMatchObject({ channel: "prices:BTC", since: { epoch: "e1", seq: 11 } });
  });

  it("a resync on the old socket during the overlap makes the move stale; the switch resubscribes it", async () => {
    const { client, sockets, old, got } = connected();
    const next = await handOver(old, sockets);
    subscribed(next, "prices:BTC", 10, { recovered: true });
    old.deliver(msg("prices:BTC", 12, 12)); // a gap on the old socket: resync there
    expect(old.last("subscribe")).toMatchObject({ channel: "prices:BTC", since: { epoch: "e1", seq: 10 } });
    next.deliver(msg("prices:BTC", 11, 11)); // dropped: stale
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(old.closedWith).toBeNull(); // the old socket owes the resync's answers
    old.deliver({ type: "unsubscribed", id: old.last("unsubscribe").id, channel: "prices:BTC" });
    expect(old.closedWith).toBeNull();
    subscribed(old, "prices:BTC", 12, { recovered: true });
    expect(old.closedWith).toBe(CloseCode.Normal);
    old.deliver(msg("prices:BTC", 11, 11)); // the old socket's replay: too late, detached
    // Unsubscribed and subscribed again on the new socket, from the position.
    expect(next.sent.filter((f) => f.channel === "prices:BTC").map((f) => f.type)).toEqual(["subscribe", "unsubscribe", "subscribe"]);
    expect(next.last("subscribe")).toMatchObject({ channel: "prices:BTC", since: { epoch: "e1", seq: 10 } });
    subscribed(next, "prices:BTC", 12, { recovered: true });
    for (const n of [11, 12]) next.deliver(msg("prices:BTC", n, n));
    expect(got["prices:BTC"]).toEqual([10, 11, 12]);
    expect(client.channelStatus("prices:BTC")?.status).toBe("active");
  });

  it("a rate change on the old socket during the overlap reaches the new socket at the switch", async () => {
    const { client, sockets, env } = setup();
    client.subscribe("prices:BTC", {}, { hiddenPolicy: "conflate", hiddenMaxRate: 0.5 });
    client.subscribe("prices:ETH", {});
    client.connect();
    const old = sockets.accept();
    subscribed(old, "prices:BTC", 3);
    subscribed(old, "prices:ETH", 5);
    const next = await handOver(old, sockets);
    expect(subscribeFrame(next, "prices:BTC").max_rate).toBeUndefined();
    env.setVisible(false); // resync on the old socket with max_rate
    old.deliver({ type: "unsubscribed", id: old.last("unsubscribe").id, channel: "prices:BTC" });
    subscribed(old, "prices:BTC", 3, { recovered: true, max_rate: 0.5 });
    subscribed(next, "prices:BTC", 3, { recovered: true }); // at the full rate: not to be kept
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(old.closedWith).toBe(CloseCode.Normal);
    expect(next.last("subscribe")).toMatchObject({ channel: "prices:BTC", max_rate: 0.5, since: { epoch: "e1", seq: 3 } });
  });

  it("a subscription joined during the overlap is subscribed on the new socket after the switch", async () => {
    const { client, sockets, old } = connected();
    const statuses: string[] = [];
    old.deliver(HANDOVER);
    await flush();
    client.subscribe("market:overview", { onStatus: (st) => statuses.push(st) });
    expect(old.last("subscribe")).toMatchObject({ channel: "market:overview" }); // on the socket of the moment
    const next = sockets.current;
    next.open();
    next.deliver(welcome());
    subscribed(old, "market:overview", 7);
    expect(subscribeFrame(next, "prices:BTC")).toBeDefined();
    expect(next.ofType("subscribe").some((f) => f.channel === "market:overview")).toBe(false); // not settled at welcome
    subscribed(next, "prices:BTC", 10, { recovered: true });
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(old.closedWith).toBe(CloseCode.Normal);
    expect(subscribeFrame(next, "market:overview").since).toEqual({ epoch: "e1", seq: 7 });
    subscribed(next, "market:overview", 7, { recovered: true });
    expect(statuses).toEqual(["pending", "active"]);
  });

  it("a subscription left during the overlap is unsubscribed on the new socket at the switch", async () => {
    const { client, sockets, old } = connected();
    const next = await handOver(old, sockets);
    subscribed(next, "prices:BTC", 10, { recovered: true });
    client.unsubscribe("prices:BTC");
    expect(old.last("unsubscribe")).toMatchObject({ channel: "prices:BTC" });
    subscribed(next, "prices:ETH", 5, { recovered: true });
    expect(next.last("unsubscribe")).toMatchObject({ channel: "prices:BTC" });
  });

  it("a resubscribe refused on the new socket fails as after a reconnect", async () => {
    const { client, sockets, old } = connected();
    const next = await handOver(old, sockets);
    subscribed(next, "prices:BTC", 10, { recovered: true });
    next.deliver({ type: "error", id: subscribeFrame(next, "prices:ETH").id, code: "forbidden", message: "no" });
    expect(old.closedWith).toBe(CloseCode.Normal);
    expect(client.channelStatus("prices:ETH")?.status).toBe("error");
    expect(client.channelStatus("prices:BTC")?.status).toBe("active");
  });

  describe("disconnect during a handover", () => {
    it("closes both sockets", async () => {
      const { client, sockets, old, timers } = connected();
      const next = await handOver(old, sockets);
      client.disconnect();
      expect(old.closedWith).toBe(1000);
      expect(next.closedWith).toBe(1000);
      timers.advance(60_000);
      expect(sockets.sockets).toHaveLength(2);
      expect(client.state).toBe("closed");
    });

    it("destroy() while the new socket's URL is still being fetched: that socket is closed when it comes", async () => {
      let release: (url: string) => void = () => undefined;
      let n = 0;
      const { client, sockets } = setup({ url: () => (++n === 1 ? "ws://t/ws/?ticket=1" : new Promise<string>((r) => (release = r))) });
      client.connect();
      await flush();
      const old = sockets.accept();
      old.deliver(HANDOVER);
      await flush();
      expect(sockets.sockets).toHaveLength(1);
      client.destroy();
      expect(old.closedWith).toBe(1000);
      release("ws://t/ws/?ticket=2");
      await flush();
      expect(sockets.sockets).toHaveLength(2);
      expect(sockets.current.closedWith).toBe(1000);
    });
  });
});

describe("decodeServerFrame: reconnect.handover_ms", () => {
  it("accepts a non-negative integer or its absence", () => {
    expect(decodeServerFrame(JSON.stringify(HANDOVER))).toEqual({ ok: true, frame: HANDOVER });
    expect(decodeServerFrame('{"type":"reconnect","after_ms":5,"handover_ms":0}')).toEqual({ ok: true, frame: { type: "reconnect", reason: undefined, after_ms: 5, handover_ms: 0 } });
    const plain = decodeServerFrame('{"type":"reconnect","reason":"server_restart","after_ms":5}');
    expect(plain.ok && "handover_ms" in plain.frame).toBe(false);
  });

  it("rejects anything else as a bad frame", () => {
    for (const bad of ["-1", "1.5", '"10000"', "null", "true", "1e300", "{}"]) {
      const result = decodeServerFrame(`{"type":"reconnect","after_ms":0,"handover_ms":${bad}}`);
      expect(result, bad).toEqual({ ok: false, reason: "reconnect.handover_ms not a non-negative integer" });
    }
  });
});
