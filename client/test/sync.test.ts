import { describe, expect, it } from "vitest";
import { WebSocketClient } from "../src/core/client";
import { ErrorCode } from "../src/core/codes";
import { StateSync } from "../src/core/stateSync";
import { FakeEnv, FakeTimers, SocketFactoryFake, quietLogger, type FakeSocket } from "./fakes";

function setup() {
  const timers = new FakeTimers();
  const sockets = new SocketFactoryFake();
  const env = new FakeEnv();
  const client = new WebSocketClient({ url: "ws://t/ws/", socketFactory: sockets.factory, timers, env, random: () => 0.5, logger: quietLogger });
  return { timers, sockets, env, client };
}

const msg = (channel: string, seq: number, data: unknown, epoch = "e1", snapshot = false) => ({
  type: "message",
  channel,
  seq,
  epoch,
  ...(snapshot ? { snapshot: true } : {}),
  data,
});

function subscribed(s: FakeSocket, channel: string, epoch: string, seq: number, extra: Record<string, unknown> = {}) {
  const frame = s.ofType("subscribe").filter((f) => f.channel === channel || (f.channel as string).toUpperCase() === channel.toUpperCase()).pop()!;
  s.deliver({ type: "subscribed", id: frame.id, channel, epoch, seq, ...extra });
  return frame;
}

describe("StateSync (pure)", () => {
  it("applies in order, drops duplicates, flags gaps and new epochs", () => {
    const sync = new StateSync();
    sync.onSubscribed("c", { type: "subscribed", id: 1, channel: "c", epoch: "e", seq: 5 }, undefined, false);
    const m = (seq: number, epoch = "e") => ({ type: "message" as const, channel: "c", seq, epoch, data: null });
    expect(sync.onMessage("c", m(6))).toBe("apply");
    expect(sync.onMessage("c", m(6))).toBe("duplicate");
    expect(sync.onMessage("c", m(4))).toBe("duplicate");
    expect(sync.onMessage("c", m(8))).toBe("gap");
    expect(sync.onMessage("c", m(7))).toBe("apply");
    expect(sync.onMessage("c", m(1, "other"))).toBe("epoch");
    expect(sync.since("c")).toEqual({ epoch: "e", seq: 7 });
  });

  it("accepts gaps on conflated channels (max_rate skips by design)", () => {
    const sync = new StateSync();
    sync.onSubscribed("c", { type: "subscribed", id: 1, channel: "c", epoch: "e", seq: 0 }, undefined, true);
    expect(sync.onMessage("c", { type: "message", channel: "c", seq: 10, epoch: "e", data: 1 })).toBe("apply");
  });

  it("recovered:true keeps the position, recovered:false resets it", () => {
    const sync = new StateSync();
    sync.onSubscribed("c", { type: "subscribed", id: 1, channel: "c", epoch: "e", seq: 3 }, undefined, false);
    const since = sync.since("c");
    expect(sync.onSubscribed("c", { type: "subscribed", id: 2, channel: "c", epoch: "e", seq: 9, recovered: true }, since, false)).toBe("recovered");
    expect(sync.since("c")).toEqual({ epoch: "e", seq: 3 });
    expect(sync.onSubscribed("c", { type: "subscribed", id: 3, channel: "c", epoch: "f", seq: 2, recovered: false }, since, false)).toBe("reset");
    expect(sync.since("c")).toEqual({ epoch: "f", seq: 2 });
  });
});

describe("subscriptions through the client", () => {
  it("subscribes on open, uses the canonical name, delivers snapshot then live", () => {
    const { client, sockets } = setup();
    const got: unknown[] = [];
    client.subscribe("prices:btc", { onMessage: (d, meta) => got.push([d, meta.snapshot]) });
    client.connect();
    const s = sockets.accept();
    expect(s.last("subscribe")).toMatchObject({ channel: "prices:btc" });
    expect(s.last("subscribe").since).toBeUndefined();
    subscribed(s, "prices:BTC", "e1", 17);
    s.deliver(msg("prices:BTC", 17, { p: 1 }, "e1", true));
    s.deliver(msg("prices:BTC", 18, { p: 2 }));
    expect(got).toEqual([[{ p: 1 }, true], [{ p: 2 }, false]]);
    expect(client.channelStatus("prices:btc")?.status).toBe("active");
  });

  it("resubscribes with since after a reconnect; the replay fills the hole without duplicates", () => {
    const { client, sockets, timers } = setup();
    const got: number[] = [];
    const resets: number[] = [];
    client.subscribe("prices:BTC", { onMessage: (d) => got.push(d as number), onReset: () => resets.push(1) });
    client.connect();
    let s = sockets.accept();
    subscribed(s, "prices:BTC", "e1", 17);
    s.deliver(msg("prices:BTC", 18, 18));
    s.serverClose(1012);
    timers.advance(5000);
    s = sockets.accept();
    expect(s.last("subscribe").since).toEqual({ epoch: "e1", seq: 18 });
    subscribed(s, "prices:BTC", "e1", 21, { recovered: true });
    for (const n of [19, 20, 21]) s.deliver(msg("prices:BTC", n, n));
    s.deliver(msg("prices:BTC", 21, 21)); // a duplicate from the live path
    s.deliver(msg("prices:BTC", 22, 22));
    expect(got).toEqual([18, 19, 20, 21, 22]);
    expect(resets).toEqual([]);
    expect(client.sync.stats.duplicates).toBe(1);
  });

  it("drops the old subscription's stragglers while resubscribing", () => {
    const { client, sockets } = setup();
    const got: number[] = [];
    client.subscribe("prices:BTC", { onMessage: (d) => got.push(d as number) });
    client.connect();
    const s = sockets.accept();
    subscribed(s, "prices:BTC", "e1", 1);
    s.deliver(msg("prices:BTC", 2, 2));
    s.deliver(msg("prices:BTC", 4, 4)); // gap: 3 is missing
    expect(s.last("unsubscribe")).toMatchObject({ channel: "prices:BTC" });
    expect(s.last("subscribe").since).toEqual({ epoch: "e1", seq: 2 });
    s.deliver(msg("prices:BTC", 5, 5)); // in flight before the unsubscribe: dropped
    subscribed(s, "prices:BTC", "e1", 5, { recovered: true });
    for (const n of [3, 4, 5, 6]) s.deliver(msg("prices:BTC", n, n));
    expect(got).toEqual([2, 3, 4, 5, 6]);
  });

  it("on recovered:false emits a reset and applies the snapshot", () => {
    const { client, sockets, timers } = setup();
    const log: string[] = [];
    client.subscribe("notifications", { onMessage: (d) => log.push(`msg ${JSON.stringify(d)}`), onReset: () => log.push("reset") });
    client.connect();
    let s = sockets.accept();
    subscribed(s, "notifications", "e1", 3);
    s.deliver(msg("notifications", 4, { event: "created" }));
    s.serverClose(1006);
    timers.advance(5000);
    s = sockets.accept();
    subscribed(s, "notifications", "e2", 40, { recovered: false });
    s.deliver(msg("notifications", 40, { event: "snapshot" }, "e2", true));
    s.deliver(msg("notifications", 41, { event: "created" }, "e2"));
    expect(log).toEqual(['msg {"event":"created"}', "reset", 'msg {"event":"snapshot"}', 'msg {"event":"created"}']);
  });

  it("a new epoch mid-stream resubscribes with the old position and gets reset + snapshot", () => {
    const { client, sockets } = setup();
    const log: string[] = [];
    client.subscribe("market:overview", { onMessage: (d) => log.push(String(d)), onReset: () => log.push("reset") });
    client.connect();
    const s = sockets.accept();
    subscribed(s, "market:overview", "e1", 5);
    s.deliver(msg("market:overview", 6, "a"));
    s.deliver(msg("market:overview", 1, "b", "e2"));
    expect(s.last("subscribe").since).toEqual({ epoch: "e1", seq: 6 });
    subscribed(s, "market:overview", "e2", 1, { recovered: false });
    s.deliver(msg("market:overview", 1, "b", "e2", true));
    expect(log).toEqual(["a", "reset", "b"]);
  });

  it("reports subscription errors to listeners and keeps the connection", () => {
    const { client, sockets } = setup();
    const statuses: string[] = [];
    client.subscribe("announcements", { onStatus: (st, err) => statuses.push(`${st}:${err?.code ?? ""}`) });
    client.connect();
    const s = sockets.accept();
    s.deliver({ type: "error", id: s.last("subscribe").id, code: "not_found", message: "unknown channel namespace" });
    expect(statuses).toEqual(["pending:", `error:${ErrorCode.NotFound}`]);
    expect(client.state).toBe("open");
  });

  it("retries a subscribe refused for a passing reason, not one refused for good", () => {
    const { client, sockets, timers } = setup();
    client.subscribe("prices:BTC", {});
    client.subscribe("wallet:0x1", {});
    client.connect();
    const s = sockets.accept();
    const [btc, wallet] = s.ofType("subscribe");
    s.deliver({ type: "error", id: btc!.id, code: "internal", message: "internal error" });
    s.deliver({ type: "error", id: wallet!.id, code: "forbidden", message: "no" });
    timers.advance(4_000);
    const again = s.ofType("subscribe").slice(2);
    expect(again.map((f) => f.channel)).toEqual(["prices:BTC"]);
    subscribed(s, "prices:BTC", "e", 1);
    expect(client.channelStatus("prices:BTC")?.status).toBe("active");
    expect(client.channelStatus("wallet:0x1")?.status).toBe("error");
  });

  it("unsubscribes when the last listener goes, not before", () => {
    const { client, sockets } = setup();
    client.connect();
    const s = sockets.accept();
    const d1 = client.subscribe("prices:ETH", {});
    const d2 = client.subscribe("prices:ETH", {});
    expect(s.ofType("subscribe")).toHaveLength(1);
    subscribed(s, "prices:ETH", "e", 0);
    d1();
    expect(s.ofType("unsubscribe")).toHaveLength(0);
    d2();
    expect(s.last("unsubscribe")).toMatchObject({ channel: "prices:ETH" });
  });
});

describe("page visibility", () => {
  it("asks for max_rate on high-rate channels when hidden and restores full rate when visible", () => {
    const { client, sockets, env } = setup();
    client.subscribe("prices:BTC", {}, { hiddenPolicy: "conflate", hiddenMaxRate: 0.5 });
    client.subscribe("notifications", {});
    client.connect();
    const s = sockets.accept();
    subscribed(s, "prices:BTC", "e", 3);
    subscribed(s, "notifications", "n", 1);
    env.setVisible(false);
    const hidden = s.last("subscribe");
    expect(hidden).toMatchObject({ channel: "prices:BTC", max_rate: 0.5, since: { epoch: "e", seq: 3 } });
    expect(s.ofType("subscribe").filter((f) => f.channel === "notifications")).toHaveLength(1);
    s.deliver({ type: "subscribed", id: hidden.id, channel: "prices:BTC", epoch: "e", seq: 9, recovered: true, max_rate: 0.5 });
    s.deliver(msg("prices:BTC", 9, 9, "e")); // conflated: a gap by design, applied
    expect(client.sync.since("prices:BTC")).toEqual({ epoch: "e", seq: 9 });
    env.setVisible(true);
    const visible = s.last("subscribe");
    expect(visible.max_rate).toBeUndefined();
    expect(visible.since).toEqual({ epoch: "e", seq: 9 });
  });

  it("pauses (unsubscribes) with the pause policy and resubscribes with since", () => {
    const { client, sockets, env } = setup();
    client.subscribe("prices", {}, { hiddenPolicy: "pause" });
    client.connect();
    const s = sockets.accept();
    subscribed(s, "prices", "e", 3);
    env.setVisible(false);
    expect(s.last("unsubscribe")).toMatchObject({ channel: "prices" });
    expect(client.channelStatus("prices")?.status).toBe("paused");
    env.setVisible(true);
    expect(s.last("subscribe")).toMatchObject({ channel: "prices", since: { epoch: "e", seq: 3 } });
  });
});
