import { describe, expect, it } from "vitest";
import { base64UrlToBytes, cookie, PushOptIn, type PushDeps } from "../src/core/push";

interface Call {
  url: string;
  init: RequestInit | undefined;
}

function fakes(options: { enabled?: boolean; permission?: NotificationPermission; answer?: NotificationPermission; refuse?: boolean } = {}) {
  const calls: Call[] = [];
  let subscription: { endpoint: string; toJSON(): unknown; unsubscribe(): Promise<boolean> } | null = null;
  const subscribed: unknown[] = [];
  const pushManager = {
    getSubscription: async () => subscription,
    subscribe: async (opts: unknown) => {
      subscribed.push(opts);
      subscription = {
        endpoint: "https://push.example.net/s/1",
        toJSON: () => ({ endpoint: "https://push.example.net/s/1", keys: { p256dh: "p", auth: "a" } }),
        unsubscribe: async () => {
          subscription = null;
          return true;
        },
      };
      return subscription;
    },
  };
  const registrations: string[] = [];
  const notification = {
    permission: options.permission ?? ("default" as NotificationPermission),
    requestPermission: async () => {
      notification.permission = options.answer ?? "granted";
      return notification.permission;
    },
  };
  const deps: PushDeps = {
    fetch: (async (url: string, init?: RequestInit) => {
      calls.push({ url, init });
      if (url === "/api/notifications/push/") {
        return new Response(JSON.stringify({ enabled: options.enabled ?? true, public_key: "BAEC", subscriptions: [] }), { status: 200 });
      }
      if (options.refuse) return new Response(JSON.stringify({ code: "bad_request", message: "endpoint must use https" }), { status: 400 });
      return new Response(url.endsWith("subscriptions/") ? "{}" : null, { status: url.endsWith("subscriptions/") ? 201 : 204 });
    }) as unknown as typeof fetch,
    serviceWorker: {
      register: async (url: string) => {
        registrations.push(url);
        return {};
      },
      ready: Promise.resolve({ pushManager }),
      getRegistration: async () => (registrations.length ? { pushManager } : undefined),
    } as unknown as ServiceWorkerContainer,
    notification,
    csrfToken: () => "tok",
  };
  return { deps, calls, subscribed, registrations, notification, get subscription() { return subscription; } };
}

describe("push opt-in", () => {
  it("asks nothing until enable(), then registers /sw.js, subscribes with the server key and posts it", async () => {
    const f = fakes();
    const push = new PushOptIn(f.deps);
    expect(await push.refresh()).toEqual({ status: "off", error: null });
    expect(f.registrations).toEqual([]); // never on load
    expect(f.notification.permission).toBe("default");
    const states: string[] = [];
    push.subscribe(() => states.push(push.getSnapshot().status));
    expect((await push.enable()).status).toBe("on");
    expect(states).toEqual(["busy", "on"]);
    expect(push.enabled).toBe(true);
    expect(f.registrations).toEqual(["/sw.js"]);
    expect(f.subscribed).toEqual([{ userVisibleOnly: true, applicationServerKey: new Uint8Array([4, 1, 2]) }]);
    const post = f.calls.find((c) => c.url === "/api/notifications/push/subscriptions/")!;
    expect(post.init?.method).toBe("POST");
    expect((post.init?.headers as Record<string, string>)["X-CSRFToken"]).toBe("tok");
    expect(JSON.parse(String(post.init?.body))).toEqual({ endpoint: "https://push.example.net/s/1", keys: { p256dh: "p", auth: "a" } });
    expect((await push.disable()).status).toBe("off");
    expect(f.calls.at(-1)?.url).toBe("/api/notifications/push/unsubscribe/");
    expect(f.subscription).toBeNull();
  });

  it("reports blocked, unconfigured and unsupported honestly", async () => {
    expect((await new PushOptIn(fakes({ answer: "denied" }).deps).enable()).status).toBe("denied");
    expect((await new PushOptIn(fakes({ enabled: false }).deps).refresh()).status).toBe("unavailable");
    expect((await new PushOptIn({ ...fakes().deps, serviceWorker: undefined }).refresh()).status).toBe("unsupported");
    expect((await new PushOptIn(fakes({ permission: "denied" }).deps).refresh()).status).toBe("denied");
  });

  it("undoes the browser subscription when the server refuses it, with the server's words", async () => {
    const f = fakes({ refuse: true });
    const result = await new PushOptIn(f.deps).enable();
    expect(result).toEqual({ status: "off", error: "endpoint must use https" });
    expect(f.subscription).toBeNull();
  });

  it("decodes base64url keys and reads cookies", () => {
    expect(Array.from(base64UrlToBytes("BAEC_-8"))).toEqual([4, 1, 2, 255, 239]);
    expect(cookie("csrftoken", "a=1; csrftoken=xyz%3D; b=2")).toBe("xyz=");
  });
});
