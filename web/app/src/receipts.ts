// Ticks under my messages: sent (it has a seq), delivered (every other
// member's delivered marker reached it) and seen (every other member read
// it). The markers come from receipts when a conversation opens and are
// kept up to date by delivered and read pushes; conversations of more
// than 100 members have no receipts and show "sent" only.

import type { NatterClient } from "../../client/src/index.js";

export type Tick = "sent" | "delivered" | "seen";

/** Largest conversation with receipts (protocol.MaxReceiptsMembers). */
const MAX_RECEIPTS_MEMBERS = 100;

interface Marks {
  delivered: number;
  read: number;
}

// conv -> user -> markers
const marks = new Map<string, Map<string, Marks>>();

function of(conv: string, user: string): Marks {
  let m = marks.get(conv);
  if (!m) marks.set(conv, (m = new Map()));
  let u = m.get(user);
  if (!u) m.set(user, (u = { delivered: 0, read: 0 }));
  return u;
}

/** Notes a delivered push. */
export function noteDelivered(conv: string, user: string, seq: number): void {
  const u = of(conv, user);
  u.delivered = Math.max(u.delivered, seq);
}

/** Notes a read push: what was read was delivered. */
export function noteRead(conv: string, user: string, seq: number): void {
  const u = of(conv, user);
  u.read = Math.max(u.read, seq);
  u.delivered = Math.max(u.delivered, u.read);
}

/** Whether conv has receipts at all. */
export function hasReceipts(memberCount: number): boolean {
  return memberCount <= MAX_RECEIPTS_MEMBERS;
}

/** Fetches every member's markers of conv; the pushes keep them current after. */
export async function loadReceipts(client: NatterClient, conv: string, memberCount: number): Promise<void> {
  if (!hasReceipts(memberCount)) return;
  for (const r of await client.receipts(conv)) {
    noteRead(conv, r.user, r.read);
    noteDelivered(conv, r.user, r.delivered);
  }
}

/** The tick of my message seq in conv, whose other members are others. */
export function tick(conv: string, seq: number, others: string[]): Tick {
  const m = marks.get(conv);
  if (!m || others.length === 0) return "sent";
  const all = (f: (u: Marks) => boolean) => others.every((o) => {
    const u = m.get(o);
    return u !== undefined && f(u);
  });
  if (all((u) => u.read >= seq)) return "seen";
  if (all((u) => u.delivered >= seq)) return "delivered";
  return "sent";
}

/** The label of a tick, for its title and screen readers. */
export function tickLabel(t: Tick, group: boolean): string {
  if (t === "sent") return "Sent";
  const who = group ? " by everyone" : "";
  return t === "seen" ? `Seen${who}` : `Delivered${who}`;
}
