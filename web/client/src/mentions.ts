// Mentions (docs/protocol.md "Mentions"): helpers to write them into a
// message, to find them while the user types, and to render them. The
// server checks the list sent as `mentions` (members only, at most 50,
// "@all" for a group's owner or admins); the text is the app's own, and
// these helpers write a mention as "@" followed by the user id.

/** Mentions every member of a group; only its owner and admins may send it. */
export const MENTION_ALL = "@all";

/** The most mentions one message may carry. */
export const MAX_MENTIONS = 50;

/** Mute levels of `mute`: "all" silences every push, "mentions" pushes only messages mentioning the user, "none" unmutes. */
export type MuteLevel = "all" | "mentions" | "none";

// A mention starts at "@" that does not follow a character of an id (so
// "bob@example.org" is no mention) and runs over the id's characters.
const MENTION = /(^|[^A-Za-z0-9_-])@([A-Za-z0-9_-]{1,64})/g;

/** Whether message m mentions user, by id or with "@all". */
export function mentionsUser(m: { mentions?: string[] }, user: string): boolean {
  return !!m.mentions?.some((x) => x === user || x === MENTION_ALL);
}

/**
 * The mentions list of a message text: every "@id" naming one of members,
 * and "@all" when allowAll, without repeats, in order, at most
 * MAX_MENTIONS. Other "@words" are left as text.
 */
export function parseMentions(text: string, members: Iterable<string>, allowAll = false): string[] {
  const known = new Set(members);
  const out: string[] = [];
  for (const m of text.matchAll(MENTION)) {
    const id = m[2];
    const mention = id === "all" && allowAll ? MENTION_ALL : known.has(id) ? id : "";
    if (mention && !out.includes(mention)) out.push(mention);
    if (out.length === MAX_MENTIONS) break;
  }
  return out;
}

/** A piece of text to render: plain, or a mention of `mention` (a user id or "@all"). */
export interface MentionSpan {
  text: string;
  mention?: string;
}

/** Splits text into plain pieces and the "@id" mentions the message carries (in mentions). */
export function mentionSpans(text: string, mentions: string[] | undefined): MentionSpan[] {
  if (!mentions?.length) return [{ text }];
  const out: MentionSpan[] = [];
  let at = 0;
  for (const m of text.matchAll(MENTION)) {
    const id = m[2];
    const mention = id === "all" ? MENTION_ALL : id;
    if (!mentions.includes(mention)) continue;
    const start = (m.index ?? 0) + m[1].length;
    if (start > at) out.push({ text: text.slice(at, start) });
    out.push({ text: "@" + id, mention });
    at = start + 1 + id.length;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

/**
 * The mention being typed just before cursor: where its "@" is and what
 * follows it so far; null when the cursor is not in one.
 */
export function mentionQuery(text: string, cursor: number): { start: number; query: string } | null {
  const m = /(^|[^A-Za-z0-9_-])@([A-Za-z0-9_-]{0,64})$/.exec(text.slice(0, cursor));
  if (!m) return null;
  return { start: cursor - m[2].length - 1, query: m[2] };
}

/**
 * Autocomplete candidates for query: "@all" first when allowAll and it
 * fits, then the members whose id starts with query (case-insensitive),
 * then those containing it, sorted, at most limit.
 */
export function mentionCandidates(query: string, members: Iterable<string>, allowAll = false, limit = 8): string[] {
  const q = query.toLowerCase();
  const starts: string[] = [];
  const contains: string[] = [];
  for (const u of members) {
    const l = u.toLowerCase();
    if (l.startsWith(q)) starts.push(u);
    else if (l.includes(q)) contains.push(u);
  }
  const out = allowAll && "all".startsWith(q) ? [MENTION_ALL] : [];
  return [...out, ...starts.sort(), ...contains.sort()].slice(0, limit);
}

/** Replaces the mention being typed (from start, the "@", to cursor) with "@id " and returns the text and the new cursor. */
export function completeMention(text: string, start: number, cursor: number, id: string): { text: string; cursor: number } {
  const insert = (id === MENTION_ALL ? MENTION_ALL : "@" + id) + " ";
  return { text: text.slice(0, start) + insert + text.slice(cursor), cursor: start + insert.length };
}
