// The conversation list's inbox parts (issue 15): order by the server's
// activity, the preview line and the mention badge, from the client
// library's Inbox model, which follows the pushes.

import { Inbox, inboxActivity, isExpired } from "../../client/src/index.js";
import type { Conversation, Last, NatterClient } from "../../client/src/index.js";

let inbox: Inbox | null = null;

/** startInbox follows client's pushes for me; redraw runs after each change. */
export function startInbox(client: NatterClient, me: string, redraw: () => void): Inbox {
  inbox?.close();
  inbox = new Inbox(client, me);
  inbox.onChange(redraw);
  return inbox;
}

/** The inbox item of conv, when the inbox holds it. */
export function inboxItem(conv: string): Conversation | undefined {
  return inbox?.get(conv);
}

/**
 * What orders the list: the time of the newest message or event (the
 * inbox item's or the conversation's own, whichever is newer), compared as
 * strings; seqs would not do, since conversations in different partition
 * streams have seqs that do not compare.
 */
export function activityOf(c: Conversation): string {
  const item = inboxItem(c.conv);
  const a = item ? inboxActivity(item) : "";
  const b = inboxActivity(c);
  return a > b ? a : b;
}

/** Orders conversations as the server does: newest activity first, 0 when equal. */
export function byActivity(a: Conversation, b: Conversation): number {
  const x = activityOf(a), y = activityOf(b);
  return x < y ? 1 : x > y ? -1 : 0;
}

/** The preview line of c: "sender: snippet", "You: …", or the deletion. */
export function previewLine(c: Conversation, me: string): HTMLElement | null {
  const item = inboxItem(c.conv);
  const last: Last | undefined = item?.last ?? c.last;
  if (!last || isExpired(last)) return null; // disappeared (ttl.ts)
  const el = document.createElement("span");
  el.className = "preview";
  const who = last.sender === me ? "You" : last.sender;
  el.textContent = last.deleted ? `${who}: message deleted` : last.kind === "event" ? last.snippet : `${who}: ${last.snippet}`;
  el.title = new Date(last.ts).toLocaleString();
  return el;
}

/** The "@n" badge of mentions not read yet. */
export function mentionBadge(conv: string): HTMLElement | null {
  const n = inboxItem(conv)?.mention_count ?? 0;
  if (n === 0) return null;
  const el = document.createElement("span");
  el.className = "badge mention";
  el.title = `${n} mention${n > 1 ? "s" : ""}`;
  el.textContent = `@${n >= 32 ? "32+" : n}`;
  return el;
}
