// Mentions in the web app: "@" autocomplete among the conversation's
// members in the composer, the mentions list of a sent message, and
// rendering that highlights mentions (those of me more).

import { MENTION_ALL, completeMention, mentionCandidates, mentionQuery, mentionSpans, mentionsUser, parseMentions } from "../../client/src/index.js";
import type { Conversation, Message } from "../../client/src/index.js";

/** Whether me may mention "@all" in c: a group's owner or admin. */
export function mayMentionAll(c: Conversation, me: string): boolean {
  return c.kind === "group" && (c.role === "owner" || c.role === "admin" || c.owner === me);
}

/** The mentions list of text sent in c by me. */
export function mentionsOf(text: string, c: Conversation, me: string): string[] {
  return parseMentions(text, c.members ?? [], mayMentionAll(c, me));
}

/** Whether m mentions me (by id or "@all"): such messages are highlighted. */
export function mentionsMe(m: Message, me: string): boolean {
  return m.sender !== me && mentionsUser(m, me);
}

/** The text of a message with its mentions as highlighted spans. */
export function mentionNodes(text: string, m: Message, me: string): (Node | string)[] {
  return mentionSpans(text, m.mentions).map((s) => {
    if (!s.mention) return s.text;
    const el = document.createElement("span");
    el.className = s.mention === me || s.mention === MENTION_ALL ? "mention me" : "mention";
    el.dataset.user = s.mention;
    el.textContent = s.text;
    return el;
  });
}

/**
 * Attaches "@" autocomplete to the composer input: while the word at the
 * cursor starts with "@", a list of matching members shows above it;
 * arrows move, Enter or Tab picks, Escape closes, a click picks.
 * conv returns the open conversation (undefined: none).
 */
export function attachMentionComplete(input: HTMLInputElement, list: HTMLElement, conv: () => Conversation | undefined, me: () => string): void {
  let items: string[] = [];
  let active = 0;
  let query: { start: number; query: string } | null = null;

  const close = () => {
    items = [];
    query = null;
    list.classList.add("hidden");
    list.replaceChildren();
  };
  const draw = () => {
    list.replaceChildren(
      ...items.map((u, i) => {
        const li = document.createElement("li");
        li.className = i === active ? "active" : "";
        li.dataset.user = u;
        li.textContent = u === MENTION_ALL ? "@all (everyone)" : "@" + u;
        // mousedown, not click: the input keeps its focus and cursor.
        li.addEventListener("mousedown", (ev) => {
          ev.preventDefault();
          pick(i);
        });
        return li;
      }),
    );
    list.classList.toggle("hidden", items.length === 0);
  };
  const pick = (i: number) => {
    if (!query || !items[i]) return;
    const done = completeMention(input.value, query.start, input.selectionStart ?? input.value.length, items[i]);
    input.value = done.text;
    input.setSelectionRange(done.cursor, done.cursor);
    close();
  };
  const update = () => {
    const c = conv();
    query = c ? mentionQuery(input.value, input.selectionStart ?? input.value.length) : null;
    if (!c || !query) return close();
    const others = (c.members ?? []).filter((u) => u !== me());
    items = mentionCandidates(query.query, others, mayMentionAll(c, me()));
    active = 0;
    draw();
  };
  input.addEventListener("input", update);
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (ev) => {
    if (items.length === 0) return;
    switch (ev.key) {
      case "ArrowDown":
        active = (active + 1) % items.length;
        break;
      case "ArrowUp":
        active = (active + items.length - 1) % items.length;
        break;
      case "Enter":
      case "Tab":
        pick(active);
        break;
      case "Escape":
        close();
        break;
      default:
        return;
    }
    ev.preventDefault();
    draw();
  });
}
