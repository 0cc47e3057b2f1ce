/** The socket the client drives: the browser's WebSocket, or a fake in tests. */

export interface SocketCloseEvent {
  code: number;
  reason?: string;
  wasClean?: boolean;
}

/** The subset of the WHATWG WebSocket the client uses. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: SocketCloseEvent) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => SocketLike;

export const OPEN = 1;

export const browserSocketFactory: SocketFactory = (url) => new WebSocket(url) as unknown as SocketLike;

/** `ws(s)://<this page's host>/ws/`. */
export function defaultUrl(path = "/ws/"): string {
  if (typeof location === "undefined") throw new Error("no default URL outside a browser: pass `url`");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
