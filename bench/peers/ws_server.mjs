// Raw Node `ws` broadcast server fed by Redis pub/sub: the peer of bench/live_path.py.
// A client connects to ws://HOST:PORT/?ch=NAME and receives every message PUBLISHed on
// the Redis channel `peer:NAME`, as is (one JSON text per publication). One Redis
// subscription per channel with local subscribers, like the gateway's hub.
// Usage: node ws_server.mjs PORT REDIS_URL
import { createClient } from "redis";
import { WebSocketServer } from "ws";

const [port, redisUrl] = [Number(process.argv[2]), process.argv[3]];
const rooms = new Map(); // channel -> Set of sockets
const sub = createClient({ url: redisUrl });
await sub.connect();

function onMessage(message, channel) {
  const room = rooms.get(channel.slice(5));
  if (room) for (const ws of room) ws.send(message);
}

const wss = new WebSocketServer({ port, perMessageDeflate: false });
wss.on("connection", async (ws, req) => {
  const ch = new URL(req.url, "http://x").searchParams.get("ch") || "BTC";
  let room = rooms.get(ch);
  if (!room) {
    room = new Set();
    rooms.set(ch, room);
    await sub.subscribe(`peer:${ch}`, onMessage);
  }
  room.add(ws);
  ws.on("close", () => room.delete(ws));
});
wss.on("listening", () => console.log(JSON.stringify({ event: "listening", port })));
