// WebSocket load generator for bench/fanout.py (Node + ws: far cheaper per message than
// the server under test, so it is not the bottleneck; its own CPU time is reported).
//
// argv[2]: JSON {url, n, mode: "ours"|"naive", channel, expect, concurrency}
// stdout: JSON lines {"event":"ready",...} then, after "stop" on stdin, {"event":"stats",...}
import WebSocket from "ws";
import { createInterface } from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const { url, n, mode, channel, expect } = cfg;
const concurrency = cfg.concurrency ?? 200;
const perMessageDeflate = cfg.deflate ?? false;

const now = () => performance.timeOrigin + performance.now();
const latencies = new Float64Array(Math.max(1, n * expect));
let received = 0;
let unexpected = 0;
const seen = Array.from({ length: n }, () => new Uint8Array(Math.max(1, expect)));
const dups = new Uint32Array(n);
const sockets = [];
let closedEarly = 0;

// The hot path reads only `n` and `t` with indexOf (a full JSON.parse of every frame
// made this generator, not the server, the bottleneck at 50,000 messages/s).
function numberAfter(text, key) {
  const at = text.indexOf(key);
  if (at < 0) return NaN;
  return parseFloat(text.slice(at + key.length, at + key.length + 24));
}

function onMessage(i, raw) {
  const t = now();
  const text = raw.toString();
  if (mode === "ours" && !text.startsWith('{"type":"message"')) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      unexpected++;
      return;
    }
    if (frame.type === "ping") sockets[i].send(JSON.stringify({ type: "pong", id: frame.id }));
    return;
  }
  if (text.includes('"snapshot":true')) return; // the snapshot on subscribe is not a publication
  const data = { n: numberAfter(text, '"n":'), t: numberAfter(text, '"t":') };
  if (!Number.isInteger(data.n) || data.n < 0 || data.n >= expect) {
    unexpected++;
    return;
  }
  if (seen[i][data.n]) dups[i]++;
  else seen[i][data.n] = 1;
  if (received < latencies.length) latencies[received] = t - data.t;
  received++;
}

function connectOne(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate });
    sockets[i] = ws;
    let ready = false;
    ws.on("message", (raw) => {
      if (ready) return onMessage(i, raw);
      const frame = JSON.parse(raw.toString());
      if (mode === "ours" && frame.type === "welcome") {
        ws.send(JSON.stringify({ type: "subscribe", id: 1, channel }));
      } else if (mode === "ours" && frame.type === "subscribed") {
        ready = true; // the snapshot that may follow is skipped by onMessage
        resolve();
      } else if (mode === "ours" && frame.type === "error") {
        reject(new Error(JSON.stringify(frame)));
      }
    });
    ws.on("open", () => {
      if (mode === "naive") {
        ready = true;
        resolve();
      }
    });
    ws.on("error", reject);
    ws.on("close", () => {
      if (ready) closedEarly++;
    });
  });
}

const start = now();
let next = 0;
async function worker() {
  while (next < n) {
    const i = next++;
    await connectOne(i);
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
const connectSeconds = (now() - start) / 1000;
const cpuAtReady = process.cpuUsage();
console.log(JSON.stringify({ event: "ready", connect_s: connectSeconds }));

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim() !== "stop") return;
  const cpu = process.cpuUsage(cpuAtReady);
  const count = Math.min(received, latencies.length);
  const sample = latencies.slice(0, count).sort();
  const pct = (p) => (count ? sample[Math.min(count - 1, Math.floor(p * count))] : null);
  let unique = 0;
  for (const s of seen) for (const v of s) unique += v;
  let duplicates = 0;
  for (const d of dups) duplicates += d;
  console.log(
    JSON.stringify({
      event: "stats",
      received,
      unique,
      expected: n * expect,
      lost: n * expect - unique,
      duplicates,
      unexpected,
      closed_early: closedEarly,
      p50_ms: pct(0.5),
      p99_ms: pct(0.99),
      max_ms: count ? sample[count - 1] : null,
      loadgen_cpu_s: (cpu.user + cpu.system) / 1e6,
    }),
  );
  for (const ws of sockets) ws.terminate();
  process.exit(0);
});
