/** Public API of the framework-free core. */

export * from "./backoff";
export * from "./client";
export * from "./outbox";
export * from "./subscriptions";
export * from "./types";
export * from "./codes";
export * from "./emitter";
export * from "./env";
export * from "./offlineQueue";
export * from "./optimistic";
export * from "./protocol";
export * from "./quality";
export * from "./reconnection";
export * from "./socket";
export * from "./stateSync";
export * from "./throttle";
export * from "./timers";
export * from "./visibility";
export * from "./battery";
export * from "./push";
export * from "./linkWallet";
