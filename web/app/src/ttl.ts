// Disappearing messages in the app: expired items leave the timeline and
// the list's previews on time (a sweep every second), the chat head says
// when a conversation's messages disappear, and who may (a group's owner
// and admins, either member of a direct conversation) changes it there.
import { TTLS, describeTTL, isExpired } from "../../client/src/index.js";
import type { Conversation, Last, Message, NatterClient } from "../../client/src/index.js";
import { h } from "./dom.js";
import { inboxItem } from "./inbox.js";

/** What the sweep looks at: each conversation's items and preview. */
export interface ExpiryState {
  convs: Map<string, { c: Conversation; msgs: Map<number, Message> }>;
}

/** How often the sweep runs: an item is gone within this of its expires_at. */
const sweepEveryMs = 1000;

let timer: ReturnType<typeof setInterval> | undefined;

/** Starts (again) the sweep that removes expired items; redraw runs when it removed any. */
export function watchExpiry(state: ExpiryState, redraw: () => void): void {
  if (timer !== undefined) clearInterval(timer);
  timer = setInterval(() => {
    if (sweepExpired(state)) redraw();
  }, sweepEveryMs);
}

/** Removes the expired items and previews of state; reports whether it removed any. */
export function sweepExpired(state: ExpiryState, now: number = Date.now()): boolean {
  let changed = false;
  for (const cs of state.convs.values()) {
    for (const [seq, m] of cs.msgs) {
      if (isExpired(m, now)) {
        cs.msgs.delete(seq);
        changed = true;
      }
    }
    if (cs.c.last && isExpired(cs.c.last, now)) {
      delete cs.c.last;
      changed = true;
    }
    const item = inboxItem(cs.c.conv);
    if (item?.last && isExpired(item.last, now)) changed = true; // previewLine hides it
  }
  return changed;
}

/** Whether a preview is still to be shown. */
export function livePreview(last: Last | undefined): Last | undefined {
  return last && !isExpired(last) ? last : undefined;
}

/** Whether the user may change c's ttl. */
function mayChange(c: Conversation): boolean {
  if (c.state === "invited") return false;
  return c.kind === "direct" || c.role === "owner" || c.role === "admin";
}

/**
 * The chat head's part: for those who may change the ttl a select of the
 * allowed values showing it, for the others a tag "disappearing: 1 day"
 * when set.
 */
export function ttlControl(c: Conversation, client: NatterClient, notify: (text: string) => void): HTMLElement[] {
  const ttl = c.ttl ?? 0;
  if (!mayChange(c)) {
    return ttl ? [h("span", { id: "chat-ttl", class: "tag", title: "Messages sent now disappear after this" }, `disappearing: ${describeTTL(ttl)}`)] : [];
  }
  const out: HTMLElement[] = [];
  const values = [0, ...TTLS];
  if (!values.includes(ttl)) values.push(ttl); // a server's test value
  const select = h(
    "select",
    {
      id: "chat-ttl-select",
      class: "ttl",
      title: "Disappearing messages: new messages disappear after this",
      onchange: (ev: Event) => {
        const v = Number((ev.target as HTMLSelectElement).value);
        client.setTTL(c.conv, v).catch((e: Error) => notify(`Could not change disappearing messages: ${e.message}`));
      },
    },
    ...values.map((v) => {
      const o = h("option", { value: String(v) }, v ? describeTTL(v) : "no expiry");
      o.selected = v === ttl;
      return o;
    }),
  );
  out.push(select);
  return out;
}
