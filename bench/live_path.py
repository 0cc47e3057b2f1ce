"""Live data path benchmark (issue #10): the product beside raw Node `ws`, Socket.IO 4 and
naive Channels, in the SAME run, on many channels as well as one.

Servers (each fed by Redis on this machine): the product's gateway (uvicorn, the hub,
publications through the product's `apublish`), the naive Channels consumer on the same
server (`group_send` per publication), `bench/peers/ws_server.mjs` (raw Node `ws`) and
`bench/peers/sio_server.mjs` (Socket.IO 4), both fed by a plain Redis PUBLISH.
Load: `bench/loadgen/loadgen.c` (one epoll thread). Publisher: `bench/live_publisher.py`
in its own process, one call per message unless batched.

Scenarios (each server in turn, same settings; `--only` picks some):
- idle:  RSS per idle subscribed connection: 5,000 connections over 100 channels (run
         first, before the other scenarios grow the processes' heaps);
- one:   1 channel x 1,000 subscribers, 50 msg/s;
- many:  100 channels x 50 subscribers, 200 msg/s, each message to a random channel;
- wide:  500 channels x 20 subscribers, 2,000 msg/s random, published in batches of 20
         every 10 ms (naive Channels skipped: it cannot connect 10,000 clients in time);
- ramp:  maximum sustained deliveries/s with p99 <= 100 ms and nothing lost: 1 channel x
         1,000 subscribers, 50, 100, 150 ... msg/s for 4 s each until a step fails;
- stalled: `many`, while a channel S gets 500 msg/s x 1 KB read by ten healthy readers,
         then by ten readers that never read (raw sockets, 4 KB receive buffer): others'
         p99, the server's RSS growth, and whether it still holds the stalled sockets;
- intake: 100 channels x 1 subscriber, 100,000 publications in batches of 500 from two
         publisher processes as fast as they go: publications/s the server delivered,
         its CPU per publication, publisher CPU per publication (batched, single
         `apublish`, plain Redis PUBLISH);
- cold:  5,000 connections subscribing to 500 channels with no history, then the same
         after one publication per channel (warm).
Conditions: heartbeat on (the gateway pings every 5 s here, Socket.IO every 5 s, raw
`ws` has none), history warm (steady state: each channel has a latest value) unless
stated, the event loop given by --loop (uvicorn "auto" picks uvloop when it is
installed). `--profile DIR` records py-spy stacks of the gateway per scenario (not in
runs whose figures are reported: the sampler takes CPU of its own).

Usage: .venv/bin/python -m bench.live_path [--quick] [--loop auto|asyncio|uvloop] [--only one,many,...]
       [--servers hub,ws,sio,naive] [--json out.json] [--profile DIR]
Needs Redis on 127.0.0.1:6379, cc, Node 20 (`npm ci` in bench/peers is run when needed).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import REDIS_URL, Gateway, ensure_loadgen, proc_stats  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

PEERS = ROOT / "bench" / "peers"


class NodePeer:
    def __init__(self, script: str) -> None:
        if not (PEERS / "node_modules" / "socket.io").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=PEERS, check=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["node", str(PEERS / script), str(self.port), REDIS_URL], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"{script} did not start: {line!r}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def loadgen(url: str, n: int, mode: str, channel: str, channels: int, expect: int) -> subprocess.Popen[str]:
    cfg = {"url": url, "n": n, "mode": mode, "channel": channel, "expect": expect, "channels": channels}
    return subprocess.Popen(
        [*ensure_loadgen("c"), json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    text = proc.stdout.readline()
    if not text:
        raise RuntimeError("load generator exited early")
    return json.loads(text)  # type: ignore[no-any-return]


def stop_loadgen(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdin is not None
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    stats = line(proc)
    proc.wait(10)
    return stats


def publish(env: dict[str, str], mode: str, count: int, rate: float, channels: int, batch: int = 1) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.live_publisher", mode, str(count), str(rate), str(channels), str(batch)]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def warm(env: dict[str, str], channels: int) -> None:
    """Steady state: every channel has a latest value before subscribers arrive."""
    publish(env, "ours", max(channels, 1) * 4, 100_000, channels, 500)


def profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the process for `seconds` (collapsed stacks, one per line)."""
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw", "-o", str(out)]
    return subprocess.Popen([*cmd, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(
    target: dict[str, Any],
    env: dict[str, str],
    subs: int,
    channels: int,
    rate: float,
    seconds: float,
    profile: Path | None = None,
    batch: int = 1,
) -> dict[str, Any]:
    count = max(1, int(rate * seconds))
    gen = loadgen(target["url"], subs, target["mode"], target["channel"], channels, count)
    ready = line(gen)
    time.sleep(0.5)
    cpu0, _ = proc_stats(target["pid"])
    spy = profiler(target["pid"], seconds, profile) if profile is not None else None
    pub = publish(env, target["pub"], count, rate, channels, batch)
    time.sleep(1.5)
    cpu1, rss = proc_stats(target["pid"])
    if spy is not None:
        spy.wait(30)
    stats = stop_loadgen(gen)
    delivered = stats["unique"]
    return {
        "connect_s": round(ready["connect_s"], 2),
        "delivered_per_s": round(delivered / pub["seconds"]),
        "p50_ms": stats["p50_ms"],
        "p99_ms": stats["p99_ms"],
        "max_ms": stats["max_ms"],
        "lost": stats["lost"],
        "duplicates": stats["duplicates"],
        "server_cpu_us_per_delivery": round((cpu1 - cpu0) * 1e6 / max(1, delivered), 1),
        "publisher_cpu_ms_per_msg": round(pub["cpu_s"] * 1000 / count, 3),
        "server_rss_mb": round(rss / 2**20, 1),
    }


def show(name: str, label: str, r: dict[str, Any]) -> None:
    print(
        f"  {name:6} {label:14} p50 {r['p50_ms']} p99 {r['p99_ms']} max {r['max_ms']} ms; lost {r['lost']} dup "
        f"{r['duplicates']}; {r['delivered_per_s']}/s; cpu {r['server_cpu_us_per_delivery']} µs/delivery; "
        f"publisher {r['publisher_cpu_ms_per_msg']} ms/msg; connect {r['connect_s']} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    parser.add_argument("--only", default="idle,one,many,wide,ramp,stalled,intake,cold")
    parser.add_argument("--servers", default="hub,ws,sio,naive")
    parser.add_argument("--json")
    parser.add_argument("--profile", help="directory: py-spy collapsed stacks of the gateway per scenario")
    args = parser.parse_args()
    only = set(args.only.split(","))
    servers = args.servers.split(",")
    scale = 0.2 if args.quick else 1.0
    seconds = 3 if args.quick else 8
    os.environ["REALTIME_EVENT_LOOP"] = args.loop
    os.environ["REALTIME_HEARTBEAT_INTERVAL"] = "5"
    (ROOT / "var").mkdir(exist_ok=True)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    prefix = f"lp{secrets.token_hex(3)}"
    results: dict[str, Any] = {"loop": args.loop, "cpus": os.cpu_count(), "scenarios": {}}
    peers: dict[str, NodePeer] = {}
    with Gateway("uvicorn", prefix) as gw:
        env = gw.env
        try:
            if "ws" in servers:
                peers["ws"] = NodePeer("ws_server.mjs")
            if "sio" in servers:
                peers["sio"] = NodePeer("sio_server.mjs")
            targets = {
                "hub": {"url": gw.url("ours"), "mode": "ours", "channel": "prices:C", "pid": gw.pid, "pub": "ours"},
                "naive": {"url": gw.url("naive"), "mode": "naive", "channel": "C", "pid": gw.pid, "pub": "naive"},
            }
            if "ws" in peers:
                ws = peers["ws"]
                targets["ws"] = {"url": f"ws://127.0.0.1:{ws.port}/", "mode": "naive", "channel": "C", "pid": ws.pid}
                targets["ws"]["pub"] = "peer"
            if "sio" in peers:
                sio = peers["sio"]
                url = f"ws://127.0.0.1:{sio.port}/socket.io/?EIO=4&transport=websocket"
                targets["sio"] = {"url": url, "mode": "sio", "channel": "C", "pid": sio.pid, "pub": "peer"}
            for label, target in targets.items():
                target["label"] = label
            if "idle" in only:  # first: before the other scenarios grow the processes' heaps
                results["scenarios"]["idle"] = {
                    label: idle(targets[label], int(5000 * scale), 100) for label in servers if label != "naive"
                }
            # (name, channels, subscribers per channel, msg/s, publisher batch). At 2,000
            # msg/s the publishers send every 10 ms a batch of 20 (`apublish_many`, or one
            # pipeline of 20 PUBLISH for the peers), as a real publisher of that rate would.
            plan = [
                ("one", 1, int(1000 * scale), 50.0, 1),
                ("many", 100, int(50 * scale) or 1, 200.0, 1),
                ("wide", 500, int(20 * scale) or 1, 2000.0, 20),
            ]
            for name, channels, per_channel, rate, batch in plan:
                if name not in only:
                    continue
                warm(env, channels)
                print(f"== {name}: {channels} channel(s) x {per_channel} subscribers, {rate:g} msg/s", flush=True)
                out = {}
                for label in servers:
                    if label == "naive" and name == "wide":
                        continue
                    spy = Path(args.profile) / f"{name}.txt" if args.profile and label == "hub" else None
                    subs = channels * per_channel
                    out[label] = run(targets[label], env, subs, channels, rate, seconds, spy, batch)
                    show(name, label, out[label])
                results["scenarios"][name] = out
            if "ramp" in only:
                warm(env, 1)
                print("== ramp: 1 channel x 1,000 subscribers, rate up until p99 > 100 ms or a loss", flush=True)
                results["scenarios"]["ramp"] = {
                    label: ramp(targets[label], env, int(1000 * scale)) for label in servers
                }
            if "stalled" in only:
                warm(env, 100)
                print("== stalled: 100 x 50 at 200 msg/s, plus 500 msg/s x 1 KB to 10 readers", flush=True)
                results["scenarios"]["stalled"] = {
                    label: stalled(targets[label], env, int(50 * scale) or 1, seconds)
                    for label in servers
                    if label != "naive"
                }
            if "intake" in only:
                results["scenarios"]["intake"] = intake(gw, targets, env, scale)
            if "cold" in only:
                results["scenarios"]["cold"] = cold(gw, env, scale)
        finally:
            for peer in peers.values():
                peer.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def idle(target: dict[str, Any], n: int, channels: int) -> dict[str, Any]:
    """Server RSS per idle subscribed connection: N connections over `channels` channels."""
    time.sleep(1.0)
    _, before = proc_stats(target["pid"])
    gen = loadgen(target["url"], n, target["mode"], target["channel"], channels, 1)
    ready = line(gen)
    time.sleep(3.0)  # heartbeats run meanwhile (pings every 5 s)
    _, after = proc_stats(target["pid"])
    stop_loadgen(gen)
    out = {
        "connections": n,
        "connect_subscribe_s": round(ready["connect_s"], 2),
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "kb_per_connection": round((after - before) / n / 1024, 1),
    }
    print(f"  idle   {target['label']:6} {out}", flush=True)
    return out


def publishers(
    env: dict[str, str], mode: str, count: int, channels: int, batch: int, procs: int
) -> list[dict[str, Any]]:
    """`procs` publisher processes at once, each sending count/procs as fast as it goes."""
    args = [sys.executable, "-m", "bench.live_publisher", mode, str(count // procs), "1e9", str(channels), str(batch)]
    running = [
        subprocess.Popen(
            args, cwd=ROOT, env={**env, "LIVE_PUB_START": str(k * (count // procs))}, stdout=subprocess.PIPE, text=True
        )
        for k in range(procs)
    ]
    out = []
    for proc in running:
        text, _ = proc.communicate(timeout=300)
        out.append(json.loads(text.strip().splitlines()[-1]))
    return out


def intake(gw: Gateway, targets: dict[str, Any], env: dict[str, str], scale: float) -> dict[str, Any]:
    """Publications/s a server takes across 100 channels (one subscriber each), offered by
    two publisher processes in batches of 500 as fast as they go (one process cannot
    offer 20,000/s on this machine); publisher CPU per publication."""
    channels, count, procs = 100, int(100_000 * scale), 2
    warm(env, channels)
    print(f"== intake: {count} publications over {channels} channels, batches of 500, {procs} publishers", flush=True)
    out: dict[str, Any] = {}
    for label, target in targets.items():
        if label == "naive":
            continue
        gen = loadgen(target["url"], channels, target["mode"], target["channel"], channels, count)
        line(gen)
        time.sleep(0.5)
        cpu0, _ = proc_stats(target["pid"])
        began = time.perf_counter()
        pubs = publishers(env, target["pub"], count, channels, 500, procs)
        offered_s = time.perf_counter() - began
        time.sleep(1.5)
        cpu1, _ = proc_stats(target["pid"])
        stats = stop_loadgen(gen)
        # The server kept up if everything arrived within the publishers' window (+ p99).
        window = offered_s + (stats["p99_ms"] or 0) / 1000
        out[label] = {
            "published": count,
            "publications_per_s_offered": round(count / offered_s),
            "publications_per_s_delivered": round(stats["unique"] / window),
            "lost": stats["lost"],
            "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"],
            "server_cpu_us_per_publication": round((cpu1 - cpu0) * 1e6 / max(1, stats["unique"]), 1),
            "publisher_cpu_ms_per_publication_batched": round(sum(p["cpu_s"] for p in pubs) * 1000 / count, 4),
        }
        print(f"  intake {label:6} {out[label]}", flush=True)
    single = publish(env, "ours", 2000, 1e9, channels, 1)
    peer = publish(env, "peer", 2000, 1e9, channels, 1)
    out["publisher_cpu_ms_per_publication_single_apublish"] = round(single["cpu_s"] * 1000 / 2000, 4)
    out["publisher_cpu_ms_per_publish_redis_publish"] = round(peer["cpu_s"] * 1000 / 2000, 4)
    print(
        f"  single apublish {out['publisher_cpu_ms_per_publication_single_apublish']} ms, "
        f"Redis PUBLISH {out['publisher_cpu_ms_per_publish_redis_publish']} ms",
        flush=True,
    )
    return out


def ramp(target: dict[str, Any], env: dict[str, str], subs: int) -> dict[str, Any]:
    """Maximum sustained deliveries/s with p99 <= 100 ms and nothing lost: 1 channel x
    `subs` subscribers, the rate raised step by step (4 s each) until a step fails."""
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for rate in (50, 100, 150, 200, 250, 300, 400, 500):
        r = run(target, env, subs, 1, float(rate), 4.0)
        r["rate"] = rate
        steps.append(r)
        ok = r["p99_ms"] is not None and r["p99_ms"] <= 100 and r["lost"] == 0
        print(
            f"  ramp   {target['label']:6} {rate} msg/s: {r['delivered_per_s']}/s p99 {r['p99_ms']} ms "
            f"lost {r['lost']} cpu {r['server_cpu_us_per_delivery']} µs {'ok' if ok else 'FAIL'}",
            flush=True,
        )
        if not ok:
            break
        best = r
    return {"best_delivered_per_s": best["delivered_per_s"] if best else 0, "best": best, "steps": steps}


def raw_ws(port: int, path: str) -> socket.socket:
    """A WebSocket client socket (tiny receive buffer) after the handshake; never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    return sock


def masked(text: str) -> bytes:
    data = text.encode()
    key = os.urandom(4)
    assert len(data) < 126
    return bytes((0x81, 0x80 | len(data))) + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


def stalled_readers(target: dict[str, Any], n: int) -> list[socket.socket]:
    """N readers of channel S that subscribe, then never read."""
    url = urlsplit(target["url"])
    socks = []
    for _ in range(n):
        if target["mode"] == "ours":
            sock = raw_ws(url.port or 80, url.path)
            sock.sendall(masked(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:S"})))
        elif target["mode"] == "sio":
            sock = raw_ws(url.port or 80, f"{url.path}?{url.query}&ch=S")
            sock.sendall(masked("40"))
        else:
            sock = raw_ws(url.port or 80, f"{url.path}?ch=S")
        socks.append(sock)
    return socks


def established(port: int, socks: list[socket.socket]) -> int:
    """How many of these client sockets the server still holds ESTABLISHED."""
    ports = {f"{s.getsockname()[1]:04X}" for s in socks}
    count = 0
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[1].endswith(f":{port:04X}") and fields[2].rsplit(":", 1)[1] in ports and fields[3] == "01":
            count += 1
    return count


def stalled(target: dict[str, Any], env: dict[str, str], per_channel: int, seconds: float) -> dict[str, Any]:
    """Others' p99 (100 x 50 at 200 msg/s) while channel S gets 500 msg/s x 1 KB, read by
    ten healthy readers (baseline), then by ten readers that never read."""
    out: dict[str, Any] = {}
    s_channel = {"ours": "prices:S", "naive": "S", "sio": "S"}[target["mode"]]
    s_pub = "S"
    port = urlsplit(target["url"]).port or 80
    for case in ("reading", "stalled"):
        count = int(500 * (seconds + 45))  # flows until the stalled sockets are dropped (or 30 s)
        args = [sys.executable, "-m", "bench.live_publisher", target["pub"], str(count), "500", "1", "1", s_pub, "1000"]
        readers: list[socket.socket] = []
        healthy = None
        if case == "reading":
            url = (
                target["url"]
                if target["mode"] == "ours"
                else target["url"] + ("&" if "?" in target["url"] else "?") + "ch=S"
            )
            healthy = loadgen(url, 10, target["mode"], s_channel, 0, count)
            line(healthy)
        else:
            readers = stalled_readers(target, 10)
            stalled_at = time.monotonic()
        s_publisher = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)  # the S stream is flowing (and the stalled readers' buffers filling)
        _, rss0 = proc_stats(target["pid"])
        r = run(target, env, 100 * per_channel, 100, 200.0, seconds)
        _, rss1 = proc_stats(target["pid"])
        r["server_rss_growth_mb"] = round((rss1 - rss0) / 2**20, 1)
        if readers:
            # Still held at the end of the measured run, then how long until the server let
            # go of every stalled socket (send queue overflow -> 4409 or abort, or the
            # heartbeat timeout), polled for up to 30 s with the S stream still flowing.
            r["stalled_still_established"] = established(port, readers)
            while established(port, readers) and time.monotonic() - stalled_at < 30 + seconds:
                time.sleep(0.25)
            left = established(port, readers)
            r["stalled_dropped_after_s"] = None if left else round(time.monotonic() - stalled_at, 1)
        s_publisher.kill()
        s_publisher.wait()
        if healthy is not None:
            stop_loadgen(healthy)
        for sock in readers:
            sock.close()
        out[case] = r
        show("stalled", f"{target['label']} {case}", r)
        extra = {
            k: r[k] for k in ("server_rss_growth_mb", "stalled_still_established", "stalled_dropped_after_s") if k in r
        }
        print(f"          {extra}", flush=True)
        time.sleep(1.0)
    return out


def cold(gw: Gateway, env: dict[str, str], scale: float) -> dict[str, Any]:
    n, channels = int(5000 * scale), 500
    print(f"== cold vs warm subscribes: {n} connections over {channels} channels", flush=True)
    out = {}
    for label in ("cold", "warm"):
        prefix = "prices:K" if label == "cold" else "prices:W"
        if label == "warm":
            publish(env, "ours", channels, 1e9, channels, 500)  # one value each on prices:C*
            prefix = "prices:C"
        gen = loadgen(gw.url("ours"), n, "ours", prefix, channels, 1)
        ready = line(gen)
        stop_loadgen(gen)
        out[f"{label}_connect_subscribe_s"] = round(ready["connect_s"], 2)
        time.sleep(1.0)
    out["cold_over_warm"] = round(out["cold_connect_subscribe_s"] / max(0.01, out["warm_connect_subscribe_s"]), 2)
    print(f"  {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
