/** The package: framework-free core, stores, React layer. */

export * from "./core";
export * from "./stores/channel";
export * from "./stores/notifications";
export * from "./stores/prices";
export * from "./stores/types";
export * from "./stores/wallet";
export * from "./react";
