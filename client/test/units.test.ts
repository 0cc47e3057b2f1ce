import { describe, expect, it } from "vitest";
import { backoffCeiling, fullJitter } from "../src/core/backoff";
import { OfflineQueue } from "../src/core/offlineQueue";
import { OptimisticState } from "../src/core/optimistic";
import { Pacer } from "../src/core/pacer";
import { QualityTracker } from "../src/core/quality";
import { Coalescer, LatestPerKey, intervalScheduler } from "../src/core/throttle";
import { desiredSubscription } from "../src/core/visibility";
import { decodeServerFrame } from "../src/core/protocol";
import { ClientErrorCode, CloseCode, ErrorCode } from "../src/core/codes";
import { FakeTimers } from "./fakes";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

describe("backoff", () => {
  it("full jitter stays in [0, min(cap, base*2^n)] and the first retry is fast", () => {
    expect(backoffCeiling(0)).toBe(250);
    expect(backoffCeiling(1)).toBe(500);
    expect(backoffCeiling(4)).toBe(4000);
    expect(backoffCeiling(50)).toBe(4000);
    expect(fullJitter(0, () => 0)).toBe(0);
    expect(fullJitter(0, () => 0.999)).toBeLessThan(250);
    for (let i = 0; i < 200; i++) {
      const d = fullJitter(i % 10, Math.random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });

  it("survives a broken random source", () => {
    expect(fullJitter(3, () => NaN)).toBe(1000);
    expect(fullJitter(3, () => 7)).toBe(2000);
  });
});

describe("OfflineQueue", () => {
  it("is FIFO, bounded, refuses the newest when full, removes by predicate", () => {
    const q = new OfflineQueue<number>(3);
    expect([q.push(1), q.push(2), q.push(3), q.push(4)]).toEqual([true, true, true, false]);
    expect(q.remove((n) => n === 2)).toBe(2);
    expect(q.drain()).toEqual([1, 3]);
    expect(q.size).toBe(0);
    expect(() => new OfflineQueue(-1)).toThrow(RangeError);
  });
});

interface N {
  items: Record<string, { read: boolean }>;
  unread: number;
}
const markRead = (id: string) => (s: N): N => {
  const item = s.items[id];
  if (item === undefined || item.read) return s; // idempotent
  return { items: { ...s.items, [id]: { read: true } }, unread: Math.max(0, s.unread - 1) };
};

describe("OptimisticState", () => {
  it("applies, confirms and rolls back by request id", () => {
    const st = new OptimisticState<N>({ items: { a: { read: false }, b: { read: false } }, unread: 2 });
    let notified = 0;
    st.subscribe(() => notified++);
    st.applyOptimistic(1, markRead("a"));
    st.applyOptimistic(2, markRead("b"));
    expect(st.view.unread).toBe(0);
    st.rollbackUpdate(2);
    expect(st.view.unread).toBe(1);
    expect(st.view.items.b?.read).toBe(false);
    st.confirmUpdate(1);
    expect(st.pendingCount).toBe(0);
    expect(st.serverState.unread).toBe(1);
    expect(notified).toBe(4);
  });

  it("is idempotent when the server's event arrives before the reply", () => {
    const st = new OptimisticState<N>({ items: { a: { read: false } }, unread: 1 });
    st.applyOptimistic("r", markRead("a"));
    st.setBase(() => ({ items: { a: { read: true } }, unread: 0 })); // the `read` event
    expect(st.view.unread).toBe(0);
    st.confirmUpdate("r");
    expect(st.view).toEqual({ items: { a: { read: true } }, unread: 0 });
  });

  it("keeps a stable view identity until something changes", () => {
    const st = new OptimisticState<N>({ items: {}, unread: 0 });
    expect(st.view).toBe(st.view);
    const before = st.view;
    st.applyOptimistic(1, (s) => s);
    expect(st.view).toBe(before); // identity patch: same object back
  });
});

describe("throttling", () => {
  it("coalesces many requests into one flush per interval", () => {
    const timers = new FakeTimers();
    let flushes = 0;
    const c = new Coalescer(() => flushes++, intervalScheduler(100, timers));
    for (let i = 0; i < 50; i++) c.request();
    timers.advance(99);
    expect(flushes).toBe(0);
    timers.advance(1);
    expect(flushes).toBe(1);
    c.request();
    c.flushNow();
    expect(flushes).toBe(2);
    timers.advance(1000);
    expect(flushes).toBe(2);
  });

  it("LatestPerKey keeps the newest value per channel", () => {
    const l = new LatestPerKey<number>();
    l.set("a", 1);
    l.set("a", 2);
    l.set("b", 3);
    expect([...l.take()]).toEqual([
      ["a", 2],
      ["b", 3],
    ]);
    expect(l.size).toBe(0);
  });
});

describe("visibility policy", () => {
  it("maps policy and visibility to the subscription to hold", () => {
    expect(desiredSubscription({ hiddenPolicy: "conflate" }, true)).toEqual({ active: true, maxRate: undefined });
    expect(desiredSubscription({ hiddenPolicy: "conflate" }, false)).toEqual({ active: true, maxRate: 0.2 });
    expect(desiredSubscription({ hiddenPolicy: "conflate", maxRate: 0.1 }, false)).toEqual({ active: true, maxRate: 0.1 });
    expect(desiredSubscription({ hiddenPolicy: "pause" }, false)).toEqual({ active: false, maxRate: undefined });
    expect(desiredSubscription({}, false)).toEqual({ active: true, maxRate: undefined });
  });
});

describe("quality", () => {
  it("grades like the server and counts recent reconnects", () => {
    let now = 0;
    const q = new QualityTracker(() => now);
    expect(q.get().level).toBe("good");
    q.rttSample(100);
    expect(q.get()).toMatchObject({ level: "good", rttMs: 100 });
    for (let i = 0; i < 20; i++) q.rttSample(600);
    expect(q.get().level).toBe("degraded");
    for (let i = 0; i < 20; i++) q.rttSample(1500);
    expect(q.get().level).toBe("poor");
    const fresh = new QualityTracker(() => now);
    fresh.connected(false);
    for (let i = 0; i < 4; i++) fresh.connected(true);
    expect(fresh.get()).toMatchObject({ level: "poor", recentReconnects: 4 });
    now += 6 * 60_000;
    expect(fresh.get()).toMatchObject({ level: "good", recentReconnects: 0 });
  });
});

describe("codes mirror realtime_project/gateway/errors.py", () => {
  // Parse the Python enums so a code added on the server without the client fails here.
  const source = readFileSync(fileURLToPath(new URL("../../realtime_project/gateway/errors.py", import.meta.url)), "utf8");
  const block = (name: string) => source.split(`class ${name}(`)[1]!.split("\nclass ")[0]!;
  it("has every error code", () => {
    const python = [...block("ErrorCode").matchAll(/= "([a-z_]+)"/g)].map((m) => m[1]).sort();
    expect(python.length).toBeGreaterThan(10);
    expect(Object.values(ErrorCode).sort()).toEqual(python);
  });
  it("has every close code", () => {
    const python = [...block("CloseCode").matchAll(/= (\d+)/g)].map((m) => Number(m[1]));
    const ours = Object.values(CloseCode).filter((v): v is number => typeof v === "number");
    for (const code of python) expect(ours).toContain(code);
    expect(ClientErrorCode.QueueFull).toBe("queue_full");
  });
});

describe("decodeServerFrame", () => {
  it("keeps reconnect frames with absurd after_ms for clamping, rejects junk", () => {
    expect(decodeServerFrame('{"type":"reconnect","after_ms":"soon"}')).toEqual({ ok: true, frame: { type: "reconnect", reason: undefined, after_ms: NaN } });
    expect(decodeServerFrame('{"type":"ping"}').ok).toBe(false);
    expect(decodeServerFrame(new Uint8Array(2)).ok).toBe(false);
  });
});

describe("Pacer.continueFrom (handover switch)", () => {
  it("takes the other pacer's limits, spent tokens and backlog, in order", () => {
    // Each writes to its own list here; in the client both write to "the socket".
    const timers = new FakeTimers();
    const oldWrites: string[] = [];
    const newWrites: string[] = [];
    const current = new Pacer(timers, (t) => oldWrites.push(t));
    current.configure(10, 10);
    const handover = new Pacer(timers, (t) => newWrites.push(t));
    handover.configure(2, 2); // rate 1.8/s, burst 1
    handover.send("sub1");
    handover.send("sub2"); // waits for a token
    current.continueFrom(handover);
    expect(handover.backlog).toBe(0);
    expect(current.backlog).toBe(1);
    current.send("req"); // behind the backlog: the burst was spent on the handover's socket
    expect(oldWrites).toEqual([]);
    timers.advance(600);
    expect(oldWrites).toEqual(["sub2"]);
    timers.advance(600);
    expect(oldWrites).toEqual(["sub2", "req"]);
    expect(newWrites).toEqual(["sub1"]);
  });
});
