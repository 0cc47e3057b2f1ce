import { describe, expect, it } from "vitest";
import { BatterySaver, DEFAULT_SLEEP_AFTER_MS } from "../src/core/battery";
import { WebSocketClient } from "../src/core/client";
import { FakeEnv, FakeTimers, SocketFactoryFake, quietLogger } from "./fakes";

const DAY = 24 * 3600_000;
/** A server whose heartbeat does not expire during these long hidden periods. */
const LIVE = { user: { id: 7 }, heartbeat: { interval: DAY, timeout: DAY } };

function setup(pushOn = true, sleepAfterMs?: number) {
  const timers = new FakeTimers();
  const sockets = new SocketFactoryFake();
  const env = new FakeEnv();
  const client = new WebSocketClient({ url: "ws://test/ws/", socketFactory: sockets.factory, timers, env, random: () => 0.5, logger: quietLogger, pingEveryMs: DAY });
  const push = { on: pushOn };
  const battery = new BatterySaver(client, { env, timers, canSleep: () => push.on, sleepAfterMs });
  battery.start();
  client.connect();
  sockets.accept(LIVE);
  return { timers, sockets, env, client, push, battery };
}

describe("battery mode", () => {
  it("closes the socket after 5 minutes hidden with push on, and resumes with since when visible", () => {
    const { timers, sockets, env, client } = setup();
    const received: unknown[] = [];
    client.subscribe("notifications", { onMessage: (data) => received.push(data) });
    const sub = sockets.current.last("subscribe") as { id: number };
    sockets.current.deliver({ type: "subscribed", id: sub.id, channel: "notifications", seq: 4, epoch: "e1", recovered: true });
    sockets.current.deliver({ type: "message", channel: "notifications", seq: 5, epoch: "e1", data: { event: "created" } });
    env.setVisible(false);
    timers.advance(DEFAULT_SLEEP_AFTER_MS - 1);
    expect(client.state).toBe("open"); // hidden, but not long enough
    timers.advance(1);
    expect(client.state).toBe("closed");
    expect(client.getStatus().sleeping).toBe(true);
    expect(sockets.current.closedWith).toBe(1000);
    const count = sockets.sockets.length;
    timers.advance(60 * 60_000);
    expect(sockets.sockets).toHaveLength(count); // asleep: no reconnect attempts, no heartbeat
    env.setVisible(true);
    expect(client.getStatus().sleeping).toBe(false);
    expect(sockets.sockets).toHaveLength(count + 1);
    sockets.accept(LIVE);
    const again = sockets.current.last("subscribe") as { channel: string; since?: unknown };
    expect(again.channel).toBe("notifications");
    expect(again.since).toEqual({ epoch: "e1", seq: 5 }); // recovers what push told meanwhile
    expect(client.state).toBe("open");
  });

  it("never sleeps without push, nor when the page comes back in time", () => {
    const off = setup(false);
    off.env.setVisible(false);
    off.timers.advance(DEFAULT_SLEEP_AFTER_MS * 3);
    expect(off.client.state).toBe("open");
    const on = setup(true, 1000);
    on.env.setVisible(false);
    on.timers.advance(999);
    on.env.setVisible(true);
    on.timers.advance(5000);
    expect(on.client.state).toBe("open");
    expect(on.client.getStatus().sleeping).toBe(false);
  });

  it("stops listening when stopped", () => {
    const { env, timers, client, battery } = setup(true, 10);
    battery.stop();
    env.setVisible(false);
    timers.advance(100);
    expect(client.state).toBe("open");
  });
});
