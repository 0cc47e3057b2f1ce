/** Linking a wallet with SIWE through an EIP-1193 provider: the steps, and each failure's plain code. */
import { describe, expect, it } from "vitest";
import { LinkError, linkWallet, parseChainId, utf8ToHex, type Eip1193Provider } from "../src/core/linkWallet";

const ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

interface Call {
  url: string;
  method: string;
  body: unknown;
  csrf: string | null;
}

function site(replies: Record<string, [number, unknown]> = {}) {
  const calls: Call[] = [];
  const defaults: Record<string, [number, unknown]> = {
    "/api/wallets/chains/": [200, { chains: [{ chain_id: 31337, name: "anvil" }, { chain_id: 1, name: "Ethereum" }] }],
    "/api/wallets/challenge/": [201, { nonce: "n1", message: "site wants you to sign in\nNonce: n1 — ✓", address: ADDRESS, expires_at: 0 }],
    "/api/wallets/verify/": [200, { id: 7, address: ADDRESS, label: "", chains: [31337], verified: true }],
  };
  const fetchFake = (async (url: string, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({ url, method: init?.method ?? "GET", body: init?.body ? JSON.parse(String(init.body)) : null, csrf: headers["X-CSRFToken"] ?? null });
    const [status, body] = replies[url] ?? defaults[url] ?? [404, { code: "not_found", detail: url }];
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return { calls, fetch: fetchFake };
}

function wallet(overrides: Record<string, (params: unknown) => unknown> = {}): Eip1193Provider & { calls: [string, unknown][] } {
  const calls: [string, unknown][] = [];
  const handlers: Record<string, (params: unknown) => unknown> = {
    eth_requestAccounts: () => [ADDRESS],
    eth_chainId: () => "0x7a69",
    personal_sign: () => "0x" + "11".repeat(65),
    ...overrides,
  };
  return {
    calls,
    async request({ method, params }) {
      calls.push([method, params]);
      const handler = handlers[method];
      if (handler === undefined) throw { code: 4200, message: `unsupported ${method}` };
      return handler(params);
    },
  };
}

const rejected = () => {
  throw { code: 4001, message: "User rejected the request." };
};

async function failure(promise: Promise<unknown>): Promise<LinkError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(LinkError);
    return err as LinkError;
  }
  throw new Error("expected a LinkError");
}

describe("linkWallet", () => {
  it("requests accounts, checks the chain, signs the server's message as hex and verifies", async () => {
    const s = site();
    const provider = wallet();
    const steps: string[] = [];
    const linked = await linkWallet({ provider, fetch: s.fetch, csrfToken: () => "tok", onStep: (x) => steps.push(x) }, { label: "Mine" });
    expect(linked).toMatchObject({ id: 7, address: ADDRESS, verified: true });
    expect(steps).toEqual(["accounts", "chain", "challenge", "sign", "verify"]);
    expect(provider.calls.map(([m]) => m)).toEqual(["eth_requestAccounts", "eth_chainId", "personal_sign"]);
    expect(provider.calls[2]?.[1]).toEqual([utf8ToHex("site wants you to sign in\nNonce: n1 — ✓"), ADDRESS]);
    expect(s.calls.map((c) => [c.method, c.url])).toEqual([
      ["GET", "/api/wallets/chains/"],
      ["POST", "/api/wallets/challenge/"],
      ["POST", "/api/wallets/verify/"],
    ]);
    expect(s.calls[1]?.body).toEqual({ address: ADDRESS, chain: 31337 });
    expect(s.calls[2]?.body).toEqual({ nonce: "n1", signature: "0x" + "11".repeat(65), label: "Mine" });
    expect(s.calls.filter((c) => c.method === "POST").every((c) => c.csrf === "tok")).toBe(true);
  });

  it("utf8ToHex encodes UTF-8 bytes; parseChainId accepts hex and decimal only", () => {
    expect(utf8ToHex("a✓")).toBe("0x61e29c93");
    expect([parseChainId("0x1"), parseChainId("137"), parseChainId(56), parseChainId("0x"), parseChainId("zz"), parseChainId(null), parseChainId(-1)]).toEqual([1, 137, 56, null, null, null, null]);
  });

  it("no provider, no account, a busy wallet", async () => {
    const s = site();
    expect((await failure(linkWallet({ provider: undefined, fetch: s.fetch, csrfToken: () => "" }))).code).toBe("no_provider");
    expect((await failure(linkWallet({ provider: wallet({ eth_requestAccounts: () => [] }), fetch: s.fetch, csrfToken: () => "" }))).code).toBe("no_account");
    const busy = wallet({
      eth_requestAccounts: () => {
        throw { code: -32002, message: "Request already pending" };
      },
    });
    expect((await failure(linkWallet({ provider: busy, fetch: s.fetch, csrfToken: () => "" }))).code).toBe("busy");
    expect(s.calls).toEqual([]);
  });

  it("a user who rejects the accounts or the signature links nothing", async () => {
    const s = site();
    const e1 = await failure(linkWallet({ provider: wallet({ eth_requestAccounts: rejected }), fetch: s.fetch, csrfToken: () => "" }));
    expect([e1.code, e1.message]).toEqual(["user_rejected", "You rejected the connection request in your wallet. Nothing was linked."]);
    const e2 = await failure(linkWallet({ provider: wallet({ personal_sign: rejected }), fetch: s.fetch, csrfToken: () => "" }));
    expect([e2.code, e2.message]).toEqual(["user_rejected", "You rejected the signature request in your wallet. Nothing was linked."]);
    expect(s.calls.some((c) => c.url.endsWith("verify/"))).toBe(false);
  });

  it("a wallet on a chain the site does not follow is told which ones it does, before any challenge", async () => {
    const s = site();
    const e = await failure(linkWallet({ provider: wallet({ eth_chainId: () => "0x89" }), fetch: s.fetch, csrfToken: () => "" }));
    expect(e.code).toBe("wrong_chain");
    expect(e.message).toBe("Your wallet is on chain 137, which this site does not follow. Switch your wallet to anvil (31337), Ethereum (1) and try again.");
    expect(s.calls.map((c) => c.url)).toEqual(["/api/wallets/chains/"]);
  });

  it("server refusals become plain messages: expired challenge, another signer, signed out, anything else", async () => {
    const cases: [Record<string, [number, unknown]>, string, RegExp][] = [
      [{ "/api/wallets/verify/": [400, { code: "challenge_expired", detail: "x" }] }, "challenge_expired", /expired before your signature arrived/],
      [{ "/api/wallets/verify/": [403, { code: "signature_mismatch", detail: "x" }] }, "signature_mismatch", /not from this address/],
      [{ "/api/wallets/chains/": [403, { detail: "Authentication credentials were not provided." }] }, "server_error", /Sign in to the site first/],
      [{ "/api/wallets/challenge/": [500, "oops"] }, "server_error", /HTTP 500/],
    ];
    for (const [replies, code, text] of cases) {
      const e = await failure(linkWallet({ provider: wallet(), fetch: site(replies).fetch, csrfToken: () => "" }));
      expect(e.code).toBe(code);
      expect(e.message).toMatch(text);
    }
  });
});
