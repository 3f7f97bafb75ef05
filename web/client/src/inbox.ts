// Inbox: the user's conversation list kept current from pushes
// (docs/protocol.md "The inbox: the conversation list"), the TypeScript
// twin of the Go client's client.Inbox.

import type { Body, Conversation, ConversationPush, Message, MemberPush, ReadPush } from "./types.js";
import type { NatterClient } from "./client.js";

/** MAX_SNIPPET bounds a preview's text, in characters (code points). */
export const MAX_SNIPPET = 140;
/** MAX_MENTION_COUNT is where mention_count saturates. */
export const MAX_MENTION_COUNT = 32;

// Go's unicode.IsSpace, which the server folds by.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const CONTROL = /\p{Cc}/u;

/**
 * snippet is the preview text of a body, as the server makes it: the
 * body's "text" with runs of white space folded to one space, cut to 140
 * characters; for a body without text, the kind ("message" for a plain one).
 */
export function snippet(body: Body | undefined, kind?: string): string {
  const text = body && typeof body.text === "string" ? body.text : "";
  let out = "";
  let n = 0;
  let space = false;
  for (const r of text) {
    if (SPACE.test(r)) {
      space = out.length > 0;
      continue;
    }
    if (CONTROL.test(r)) continue;
    if (space) {
      if (++n > MAX_SNIPPET) break;
      out += " ";
      space = false;
    }
    if (++n > MAX_SNIPPET) break;
    out += r;
  }
  if (out !== "") return out;
  return kind ? kind : "message";
}

/** A message as the inbox reads it: the wire fields it needs. */
type InboxMessage = Pick<Message, "conv" | "seq" | "sender" | "ts" | "body"> & {
  kind?: string;
  ref?: number;
  mentions?: string[];
};

/**
 * What orders the list, as the server orders it: the time of `last` (not
 * its seq: seqs of conversations in different partition streams do not
 * compare), as a string that compares like the time to the nanosecond;
 * "0" when it is not an RFC 3339 UTC time, "" without `last`.
 */
export function inboxActivity(c: Pick<Conversation, "last">): string {
  if (!c.last) return "";
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(c.last.ts);
  return m ? m[1] + "." + (m[2] ?? "").padEnd(9, "0") : "0";
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Inbox keeps the user's conversation list from pushes so it never has to
 * be fetched again: load() reads the first page(s), then every message,
 * conversation, read and member push (and every message this client
 * sends) updates it. list() is in the server's order: newest activity
 * first, then by id. onChange listeners run after each change.
 */
export class Inbox {
  private items = new Map<string, Conversation>();
  private next?: string;
  private more = false;
  private listeners = new Set<() => void>();
  private offs: Array<() => void> = [];

  constructor(
    private readonly client: NatterClient,
    private readonly user: string,
  ) {
    this.offs.push(
      client.on("message", (m) => this.applyMessage(m) && this.changed()),
      client.on("conversation", (p) => this.applyConversation(p) && this.changed()),
      client.on("read", (r) => this.applyRead(r) && this.changed()),
      client.on("member", (p) => this.applyMember(p) && this.changed()),
      client.on("resumed", ({ conversations }) => {
        // After a reconnect the client read the whole list again.
        this.items = new Map(conversations.map((c) => [c.conv, c]));
        this.more = false;
        this.next = undefined;
        this.changed();
      }),
      client.on("sent", ({ entry, ack }) => {
        const m: InboxMessage = { conv: ack.conv, seq: ack.seq, ts: ack.ts, sender: this.user, body: entry.body };
        if (entry.kind) m.kind = entry.kind;
        if (entry.ref) m.ref = entry.ref;
        if (this.applyMessage(m)) this.changed();
      }),
    );
  }

  /** Stops following the client's pushes. */
  close(): void {
    for (const off of this.offs) off();
    this.offs = [];
  }

  /** Calls fn after every change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  /** Reads up to pages pages of limit conversations (0: the server's default), replacing the list. */
  async load(pages = 1, limit = 0): Promise<void> {
    const items = new Map<string, Conversation>();
    let after: string | undefined;
    let more = false;
    for (let i = 0; i < Math.max(pages, 1); i++) {
      const page = await this.client.conversationsPage(after, limit || undefined);
      for (const c of page.conversations) items.set(c.conv, c);
      more = !!page.more;
      after = page.next;
      if (!more) break;
    }
    this.items = items;
    this.next = after;
    this.more = more;
    this.changed();
  }

  /** Reads the next page after what load read; resolves to whether more remain. */
  async loadMore(limit = 0): Promise<boolean> {
    if (!this.more) return false;
    const page = await this.client.conversationsPage(this.next, limit || undefined);
    for (const c of page.conversations) if (!this.items.has(c.conv)) this.items.set(c.conv, c);
    this.next = page.next;
    this.more = !!page.more;
    this.changed();
    return this.more;
  }

  /** Whether pages beyond the loaded ones exist. */
  get hasMore(): boolean {
    return this.more;
  }

  /** The items, newest activity first. */
  list(): Conversation[] {
    return [...this.items.values()].sort((a, b) => compare(inboxActivity(b), inboxActivity(a)) || compare(a.conv, b.conv));
  }

  get(conv: string): Conversation | undefined {
    return this.items.get(conv);
  }

  /** Takes a conversation push: an inbox item replaces the item, other pushes change settings and members only. */
  applyConversation(p: ConversationPush): boolean {
    const c = { ...p.conversation };
    const old = this.items.get(c.conv);
    if (old && !p.inbox) {
      keepCounts(c, old);
    } else if (old && old.last_seq > c.last_seq) {
      // Rendered before a message already applied: keep what it told.
      c.last_seq = old.last_seq;
      c.last = old.last;
      c.unread = Math.max(c.unread, old.unread);
      const mc = Math.max(c.mention_count ?? 0, old.mention_count ?? 0);
      if (mc) c.mention_count = mc;
    }
    this.items.set(c.conv, c);
    return true;
  }

  /** Takes a message: a push, or one this client sent (with its ack's seq and ts). */
  applyMessage(m: InboxMessage): boolean {
    let c = this.items.get(m.conv);
    if (!c) {
      // Not loaded yet: kind and title come with the next load.
      c = { conv: m.conv, kind: "group", title: "", member_count: 0, last_seq: 0, read_seq: 0, unread: 0 };
      this.items.set(m.conv, c);
    }
    if (m.seq <= c.last_seq) return false;
    c = { ...c, last_seq: m.seq };
    const kind = m.kind ?? "";
    if (kind === "" || kind === "event") {
      c.last = { seq: m.seq, sender: m.sender, ts: m.ts, snippet: snippet(m.body, kind) };
      if (kind === "event") c.last.kind = "event";
    } else if (kind === "edit") {
      const l = c.last;
      if (l && l.seq === m.ref && l.sender === m.sender && !l.deleted && !l.kind) c.last = { ...l, snippet: snippet(m.body, "") };
    } else if (kind === "delete") {
      const l = c.last;
      if (l && l.seq === m.ref && !l.kind) c.last = { seq: l.seq, sender: l.sender, ts: l.ts, snippet: "", deleted: true };
    }
    if (m.sender === this.user) {
      // Sending reads the conversation up to the message.
      c.read_seq = m.seq;
      c.unread = 0;
      delete c.mention_count;
    } else if (kind === "") {
      c.unread++;
      const mentions = m.mentions ?? [];
      if ((mentions.includes(this.user) || mentions.includes("@all")) && (c.mention_count ?? 0) < MAX_MENTION_COUNT) {
        c.mention_count = (c.mention_count ?? 0) + 1;
      }
    }
    this.items.set(m.conv, c);
    return true;
  }

  /** Takes a read push: only the user's own marker changes the inbox. */
  applyRead(r: ReadPush): boolean {
    const c = this.items.get(r.conv);
    if (r.user !== this.user || !c || r.seq <= c.read_seq) return false;
    const n = { ...c, read_seq: r.seq };
    if (r.seq >= c.last_seq) {
      // A partial read's exact counts come with the inbox push after it.
      n.unread = 0;
      delete n.mention_count;
    }
    this.items.set(r.conv, n);
    return true;
  }

  /** Takes a member push: the user removed drops the item. */
  applyMember(p: MemberPush): boolean {
    if (p.user !== this.user || p.action !== "removed") return false;
    return this.items.delete(p.conv);
  }
}

function keepCounts(c: Conversation, old: Conversation): void {
  c.last_seq = old.last_seq;
  c.read_seq = old.read_seq;
  c.unread = old.unread;
  if (old.last) c.last = old.last;
  else delete c.last;
  if (old.mention_count) c.mention_count = old.mention_count;
  else delete c.mention_count;
}
