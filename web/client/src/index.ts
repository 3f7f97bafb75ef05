// Natter's TypeScript client: an ES module with no runtime dependencies.
export * from "./types.js";
export * from "./client.js";
export * from "./inbox.js";
export * from "./attach.js";
export * from "./mentions.js";
export * from "./group.js";
export * from "./ttl.js";
export * from "./account.js";
