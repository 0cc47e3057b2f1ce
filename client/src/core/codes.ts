/** Error and close codes of protocol v1, mirroring realtime_project/gateway/errors.py. */

/** Stable codes carried by `{"type":"error"}` frames (docs/protocol.md "Errors"). */
export enum ErrorCode {
  BadRequest = "bad_request",
  UnknownType = "unknown_type",
  Forbidden = "forbidden",
  Unauthenticated = "unauthenticated",
  NotFound = "not_found",
  TooLarge = "too_large",
  RateLimited = "rate_limited",
  Internal = "internal",
  AlreadySubscribed = "already_subscribed",
  NotSubscribed = "not_subscribed",
  SubscriptionLimit = "subscription_limit",
  Unsupported = "unsupported",
  Unavailable = "unavailable",
}

/** Codes the client itself gives to failures that never reached the server. */
export enum ClientErrorCode {
  /** The request was not answered within its timeout. */
  Timeout = "timeout",
  /** The connection dropped while the request was in flight: its outcome is unknown. */
  ConnectionLost = "connection_lost",
  /** The offline queue was full (policy: the newest send is refused). */
  QueueFull = "queue_full",
  /** `disconnect()` was called. */
  Closed = "closed",
}

/** WebSocket close codes (RFC 6455 plus the gateway's 4xxx). */
export enum CloseCode {
  Normal = 1000,
  Abnormal = 1006,
  InvalidData = 1007,
  MessageTooBig = 1009,
  InternalError = 1011,
  ServiceRestart = 1012,
  TryAgainLater = 1013,
  Unauthenticated = 4401,
  HeartbeatTimeout = 4408,
  SlowConsumer = 4409,
  RateLimited = 4429,
}

/** Close codes the client uses when it drops a socket itself (4000-4099, private). */
export enum ClientCloseCode {
  /** No frame from the server for `interval + timeout`: a dead link. */
  DeadLink = 4000,
  /** The server accepted but sent no `welcome` in time. */
  NoWelcome = 4001,
  /** `disconnect()`: a normal close. */
  Requested = 1000,
}

/** An `error` frame from the server, or a client-side failure of a request. */
export class RealtimeError extends Error {
  readonly code: ErrorCode | ClientErrorCode | string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode | ClientErrorCode | string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "RealtimeError";
    this.code = code;
    this.details = details;
  }
}
