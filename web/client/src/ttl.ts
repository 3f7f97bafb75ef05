// Disappearing messages (docs/protocol.md "Disappearing messages"): a
// conversation's ttl in seconds, and the expires_at of the items sent
// under it. The client drops what expired: a push that arrives after its
// expires_at is not emitted (but counts as held for prev), and pages
// (sync, history, thread) leave expired items out. An application holding
// an item removes it at its expires_at (isExpired, expiresIn).

/** The ttl values a client may set, in seconds: 1 hour, 1 day, 7 days, 90 days (0 is off). */
export const TTLS: readonly number[] = [3600, 86400, 604800, 7776000];

/** Whether an item with expires_at has disappeared at now (ms since the epoch). */
export function isExpired(item: { expires_at?: string }, now: number = Date.now()): boolean {
  if (!item.expires_at) return false;
  const at = Date.parse(item.expires_at);
  return Number.isNaN(at) || at <= now;
}

/** Milliseconds until item disappears (0 when it has), Infinity when it does not. */
export function expiresIn(item: { expires_at?: string }, now: number = Date.now()): number {
  if (!item.expires_at) return Infinity;
  const at = Date.parse(item.expires_at);
  return Number.isNaN(at) ? 0 : Math.max(at - now, 0);
}

/** items without the expired ones. */
export function dropExpired<T extends { expires_at?: string }>(items: T[], now: number = Date.now()): T[] {
  return items.filter((m) => !isExpired(m, now));
}

/** A ttl for people: "off", "1 hour", "1 day", "7 days", "90 days", else in seconds. */
export function describeTTL(seconds: number): string {
  switch (seconds) {
    case 0:
      return "off";
    case 3600:
      return "1 hour";
    case 86400:
      return "1 day";
    case 604800:
      return "7 days";
    case 7776000:
      return "90 days";
  }
  return `${seconds} seconds`;
}
