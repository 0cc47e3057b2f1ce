/** Protocol v1 frames (docs/protocol.md): types and a strict decoder for server frames. */

export const PROTOCOL_VERSION = 1;

export type FrameId = string | number;

export interface Position {
  epoch: string;
  seq: number;
}

export interface WelcomeFrame {
  type: "welcome";
  protocol: number;
  session: string;
  user: { id: number; staff?: boolean } | null;
  heartbeat: { interval: number; timeout: number };
  limits: { max_frame_bytes?: number; max_subscriptions?: number; rate?: number; burst?: number };
  server_time: number;
}

export interface SubscribedFrame {
  type: "subscribed";
  id: FrameId | null;
  channel: string;
  epoch: string;
  seq: number;
  recovered?: boolean;
  max_rate?: number;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  id: FrameId | null;
  channel: string;
  reason?: string;
}

export interface MessageFrame {
  type: "message";
  channel: string;
  seq?: number;
  epoch?: string;
  snapshot?: boolean;
  data: unknown;
}

export interface ReplyFrame {
  type: "reply";
  id: FrameId | null;
  request?: string;
  data: unknown;
}

export interface ErrorFrame {
  type: "error";
  id: FrameId | null;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface PingFrame {
  type: "ping";
  id: FrameId;
  server_time?: number;
}

export interface PongFrame {
  type: "pong";
  id: FrameId | null;
  server_time?: number;
}

export interface ReconnectFrame {
  type: "reconnect";
  reason?: string;
  after_ms: number;
  /**
   * Make-before-break ("handover"): the server keeps this socket open this long (ms)
   * while the client opens a new one and moves its subscriptions; absent or 0: a drain.
   */
  handover_ms?: number;
}

export interface AuthenticatedFrame {
  type: "authenticated";
  id: FrameId | null;
  user: { id: number } | null;
}

export type ServerFrame =
  | WelcomeFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | MessageFrame
  | ReplyFrame
  | ErrorFrame
  | PingFrame
  | PongFrame
  | ReconnectFrame
  | AuthenticatedFrame;

/** Why a server frame was ignored (reported through the debug log only). */
export type DecodeResult = { ok: true; frame: ServerFrame } | { ok: false; reason: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isFiniteNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isId = (v: unknown): v is FrameId => typeof v === "string" || isInt(v);
const isOptId = (v: unknown): v is FrameId | null | undefined => v === undefined || v === null || isId(v);

function bad(reason: string): DecodeResult {
  return { ok: false, reason };
}

/**
 * Decode one text frame from the server.
 *
 * Malformed frames and unknown types are rejected with a reason instead of throwing:
 * the protocol says clients must ignore what they do not understand (forward
 * compatibility within v1), and a hostile or buggy server must never crash the page.
 */
export function decodeServerFrame(raw: unknown): DecodeResult {
  if (typeof raw !== "string") return bad("binary or non-text frame");
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return bad("not JSON");
  }
  if (!isObj(value)) return bad("not a JSON object");
  const f = value;
  if (typeof f.type !== "string") return bad("missing type");
  switch (f.type) {
    case "welcome": {
      const hb = f.heartbeat;
      if (!isObj(hb) || !isFiniteNum(hb.interval) || !isFiniteNum(hb.timeout) || hb.interval <= 0 || hb.timeout <= 0)
        return bad("welcome without a valid heartbeat");
      if (f.user !== null && f.user !== undefined && !(isObj(f.user) && isInt(f.user.id)))
        return bad("welcome with a malformed user");
      return {
        ok: true,
        frame: {
          type: "welcome",
          protocol: isInt(f.protocol) ? f.protocol : PROTOCOL_VERSION,
          session: typeof f.session === "string" ? f.session : "",
          user: isObj(f.user) ? { id: f.user.id as number, staff: f.user.staff === true } : null,
          heartbeat: { interval: hb.interval, timeout: hb.timeout },
          limits: isObj(f.limits) ? (f.limits as WelcomeFrame["limits"]) : {},
          server_time: isFiniteNum(f.server_time) ? f.server_time : NaN,
        },
      };
    }
    case "subscribed":
      if (!isOptId(f.id) || typeof f.channel !== "string") return bad("subscribed without channel");
      if (typeof f.epoch !== "string" || !isInt(f.seq) || f.seq < 0) return bad("subscribed without a position");
      if (f.recovered !== undefined && typeof f.recovered !== "boolean") return bad("subscribed.recovered not boolean");
      return { ok: true, frame: f as unknown as SubscribedFrame };
    case "unsubscribed":
      if (!isOptId(f.id) || typeof f.channel !== "string") return bad("unsubscribed without channel");
      return { ok: true, frame: f as unknown as UnsubscribedFrame };
    case "message":
      if (typeof f.channel !== "string" || !("data" in f)) return bad("message without channel or data");
      if (f.seq !== undefined && f.seq !== null && !(isInt(f.seq) && f.seq >= 0)) return bad("message.seq not an integer");
      if (f.epoch !== undefined && f.epoch !== null && typeof f.epoch !== "string") return bad("message.epoch not a string");
      if ((f.seq === undefined || f.seq === null) !== (f.epoch === undefined || f.epoch === null))
        return bad("message with seq but no epoch (or the reverse)");
      return {
        ok: true,
        frame: {
          type: "message",
          channel: f.channel,
          seq: isInt(f.seq) ? f.seq : undefined,
          epoch: typeof f.epoch === "string" ? f.epoch : undefined,
          snapshot: f.snapshot === true,
          data: f.data,
        },
      };
    case "reply":
      if (!isOptId(f.id)) return bad("reply with a malformed id");
      return { ok: true, frame: { type: "reply", id: (f.id as FrameId | undefined) ?? null, request: typeof f.request === "string" ? f.request : undefined, data: f.data } };
    case "error":
      if (!isOptId(f.id) || typeof f.code !== "string") return bad("error without code");
      return {
        ok: true,
        frame: {
          type: "error",
          id: (f.id as FrameId | undefined) ?? null,
          code: f.code,
          message: typeof f.message === "string" ? f.message : f.code,
          details: isObj(f.details) ? f.details : undefined,
        },
      };
    case "ping":
      if (!isId(f.id)) return bad("ping without id");
      return { ok: true, frame: { type: "ping", id: f.id, server_time: isFiniteNum(f.server_time) ? f.server_time : undefined } };
    case "pong":
      if (!isOptId(f.id)) return bad("pong with a malformed id");
      return { ok: true, frame: { type: "pong", id: (f.id as FrameId | undefined) ?? null, server_time: isFiniteNum(f.server_time) ? f.server_time : undefined } };
    case "reconnect": {
      // A missing or absurd after_ms is clamped by the reconnection manager, not refused:
      // the server still wants us to reconnect. handover_ms, when present, must be exact.
      if (f.handover_ms !== undefined && !(isInt(f.handover_ms) && f.handover_ms >= 0))
        return bad("reconnect.handover_ms not a non-negative integer");
      const frame: ReconnectFrame = { type: "reconnect", reason: typeof f.reason === "string" ? f.reason : undefined, after_ms: isFiniteNum(f.after_ms) ? f.after_ms : NaN };
      if (f.handover_ms !== undefined) frame.handover_ms = f.handover_ms;
      return { ok: true, frame };
    }
    case "authenticated":
      return { ok: true, frame: { type: "authenticated", id: isId(f.id) ? f.id : null, user: isObj(f.user) && isInt(f.user.id) ? { id: f.user.id } : null } };
    default:
      return bad(`unknown frame type ${JSON.stringify(f.type).slice(0, 40)}`);
  }
}

/** Frames the client sends. */
export type ClientFrame =
  | { type: "subscribe"; id: FrameId; channel: string; since?: Position; max_rate?: number }
  | { type: "unsubscribe"; id: FrameId; channel: string }
  | { type: "ping"; id: FrameId }
  | { type: "pong"; id: FrameId }
  | { type: "auth"; id: FrameId; ticket: string }
  | ({ type: string; id?: FrameId } & Record<string, unknown>);
