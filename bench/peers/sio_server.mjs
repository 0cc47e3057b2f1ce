// Socket.IO 4 server fed by Redis pub/sub: a peer of bench/live_path.py.
// A client connects with ?ch=NAME (WebSocket transport) and joins room NAME; every
// message PUBLISHed on the Redis channel `peer:NAME` is emitted to the room as event
// "m" (Socket.IO encodes a room broadcast once). Heartbeat on (Socket.IO's default).
// Usage: node sio_server.mjs PORT REDIS_URL
import { createServer } from "node:http";
import { createClient } from "redis";
import { Server } from "socket.io";

const [port, redisUrl] = [Number(process.argv[2]), process.argv[3]];
const sub = createClient({ url: redisUrl });
await sub.connect();
const joined = new Set();

const http = createServer();
const io = new Server(http, { transports: ["websocket"], perMessageDeflate: false, serveClient: false, pingInterval: 5000 });
io.on("connection", async (socket) => {
  const ch = socket.handshake.query.ch || "BTC";
  socket.join(ch);
  if (!joined.has(ch)) {
    joined.add(ch);
    await sub.subscribe(`peer:${ch}`, (message) => io.to(ch).emit("m", JSON.parse(message)));
  }
});
http.listen(port, () => console.log(JSON.stringify({ event: "listening", port })));
