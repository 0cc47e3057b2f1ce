/**
 * Linking a wallet from the browser with Sign-In with Ethereum (EIP-4361) through the
 * page's EIP-1193 provider (`window.ethereum`): request the accounts, check the wallet's
 * chain against the site's chains, fetch the server's challenge, `personal_sign` it,
 * verify. Every failure becomes a `LinkError` with a stable code and a plain message.
 */

/** EIP-1193: the one method every injected provider has. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | Record<string, unknown> }): Promise<unknown>;
}

export type LinkErrorCode =
  /** No `window.ethereum`: no browser wallet installed (or enabled for this site). */
  | "no_provider"
  /** EIP-1193 4001: the user refused in the wallet (accounts or signature). */
  | "user_rejected"
  /** The wallet unlocked no account. */
  | "no_account"
  /** The wallet is on a chain this site does not follow. */
  | "wrong_chain"
  /** The challenge expired before the signature reached the server. */
  | "challenge_expired"
  /** The signature is not the address's (another account signed). */
  | "signature_mismatch"
  /** Another request of the wallet is already open (EIP-1193 -32002), or a link is running. */
  | "busy"
  /** The wallet failed in another way (its message is shown). */
  | "wallet_error"
  /** The site refused or failed (its code and detail are shown). */
  | "server_error";

export class LinkError extends Error {
  constructor(
    readonly code: LinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "LinkError";
  }
}

export interface SiteChain {
  chain_id: number;
  name: string;
}

export interface LinkedWalletInfo {
  id: number;
  address: string;
  label: string;
  chains: number[];
  verified: boolean;
}

export type LinkStep = "accounts" | "chain" | "challenge" | "sign" | "verify";

export interface LinkDeps {
  provider: Eip1193Provider | undefined;
  fetch: typeof fetch;
  /** Django's CSRF token (the `csrftoken` cookie) for the POSTs. */
  csrfToken: () => string;
  apiBase?: string;
  /** Told before each step, for the UI ("Check your wallet…"). */
  onStep?: (step: LinkStep) => void;
}

/** The provider's error code (EIP-1193 `ProviderRpcError.code`), when it has one. */
function providerCode(err: unknown): number | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : null;
}

function providerMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === "string" && message !== "" ? message : String(err);
}

function walletFailure(err: unknown, what: string): LinkError {
  const code = providerCode(err);
  if (code === 4001) return new LinkError("user_rejected", `You rejected the ${what} request in your wallet. Nothing was linked.`);
  if (code === -32002) return new LinkError("busy", "Your wallet already has a request open: finish or dismiss it in the wallet, then try again.");
  return new LinkError("wallet_error", `Your wallet failed to ${what === "signature" ? "sign" : "answer"}: ${providerMessage(err)}`);
}

/** `personal_sign` takes the message as 0x-hex of its UTF-8 bytes. */
export function utf8ToHex(text: string): string {
  let hex = "0x";
  for (const byte of new TextEncoder().encode(text)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

export function parseChainId(value: unknown): number | null {
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return value;
  if (typeof value !== "string") return null;
  const n = /^0x[0-9a-fA-F]+$/.test(value) ? parseInt(value, 16) : /^[0-9]+$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

const SERVER_MESSAGES: Record<string, [LinkErrorCode, string]> = {
  challenge_expired: ["challenge_expired", "The sign-in request expired before your signature arrived. Try again and sign within a few minutes."],
  challenge_used: ["challenge_expired", "This sign-in request was already used. Try again."],
  unknown_challenge: ["challenge_expired", "The sign-in request is no longer known to the site. Try again."],
  signature_mismatch: ["signature_mismatch", "The signature is not from this address: sign with the account you selected."],
  bad_signature: ["signature_mismatch", "Your wallet returned a signature the site cannot read."],
  unknown_chain: ["wrong_chain", "This site does not follow your wallet's chain."],
};

async function serverFailure(response: Response): Promise<LinkError> {
  let code = "";
  let detail = "";
  try {
    const body = (await response.json()) as { code?: unknown; detail?: unknown };
    code = typeof body.code === "string" ? body.code : "";
    detail = typeof body.detail === "string" ? body.detail : "";
  } catch {
    // not JSON: the status says enough
  }
  const known = SERVER_MESSAGES[code];
  if (known !== undefined) return new LinkError(known[0], known[1]);
  if (response.status === 401 || response.status === 403) return new LinkError("server_error", "Sign in to the site first, then link your wallet.");
  return new LinkError("server_error", `The site refused the link (${code || `HTTP ${response.status}`})${detail ? `: ${detail}` : "."}`);
}

/** `window.ethereum` when the page has one. */
export function injectedProvider(): Eip1193Provider | undefined {
  if (typeof window === "undefined") return undefined;
  const provider = (window as unknown as { ethereum?: unknown }).ethereum;
  return provider !== null && typeof provider === "object" && typeof (provider as Eip1193Provider).request === "function" ? (provider as Eip1193Provider) : undefined;
}

/** Link the wallet's selected account to the signed-in user; resolves with the linked wallet. */
export async function linkWallet(deps: LinkDeps, options: { label?: string } = {}): Promise<LinkedWalletInfo> {
  const { provider } = deps;
  if (provider === undefined) throw new LinkError("no_provider", "No browser wallet found: install or enable one (MetaMask, Rabby, …) and reload the page.");
  const api = deps.apiBase ?? "/api/wallets/";
  const step = (s: LinkStep) => deps.onStep?.(s);
  const post = (path: string, body: unknown) =>
    deps.fetch(`${api}${path}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": deps.csrfToken() },
      body: JSON.stringify(body),
    });

  step("accounts");
  let accounts: unknown;
  try {
    accounts = await provider.request({ method: "eth_requestAccounts" });
  } catch (err) {
    throw walletFailure(err, "connection");
  }
  const address = Array.isArray(accounts) ? accounts.find((a): a is string => typeof a === "string" && /^0x[0-9a-fA-F]{40}$/.test(a)) : undefined;
  if (address === undefined) throw new LinkError("no_account", "Your wallet shared no account: unlock it and choose an account.");

  step("chain");
  let chainId: number | null;
  try {
    chainId = parseChainId(await provider.request({ method: "eth_chainId" }));
  } catch (err) {
    throw walletFailure(err, "chain");
  }
  if (chainId === null) throw new LinkError("wallet_error", "Your wallet did not say which chain it is on.");
  const chainsResponse = await deps.fetch(`${api}chains/`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!chainsResponse.ok) throw await serverFailure(chainsResponse);
  const chains = ((await chainsResponse.json()) as { chains?: SiteChain[] }).chains ?? [];
  if (!chains.some((c) => c.chain_id === chainId)) {
    const names = chains.map((c) => `${c.name} (${c.chain_id})`).join(", ");
    throw new LinkError(
      "wrong_chain",
      names === "" ? `Your wallet is on chain ${chainId}, and this site follows no chain yet.` : `Your wallet is on chain ${chainId}, which this site does not follow. Switch your wallet to ${names} and try again.`,
    );
  }

  step("challenge");
  const challengeResponse = await post("challenge/", { address, chain: chainId });
  if (!challengeResponse.ok) throw await serverFailure(challengeResponse);
  const challenge = (await challengeResponse.json()) as { nonce: string; message: string; address: string };

  step("sign");
  let signature: unknown;
  try {
    // The address as the wallet gave it: wallets compare it with their own accounts.
    signature = await provider.request({ method: "personal_sign", params: [utf8ToHex(challenge.message), address] });
  } catch (err) {
    throw walletFailure(err, "signature");
  }
  if (typeof signature !== "string") throw new LinkError("wallet_error", "Your wallet returned no signature.");

  step("verify");
  const verifyResponse = await post("verify/", { nonce: challenge.nonce, signature, label: options.label ?? "" });
  if (!verifyResponse.ok) throw await serverFailure(verifyResponse);
  return (await verifyResponse.json()) as LinkedWalletInfo;
}
