// Replies and threads in the app: the quote a reply shows, the reply bar
// over the composer, the "N replies" link under a thread's root, and the
// thread side panel (the root, its replies paged with `thread`, and a
// composer that posts into the thread).
import { applyThreadReply } from "../../client/src/index.js";
import type { Message, NatterClient, OutboxEntry } from "../../client/src/index.js";
import { $, h } from "./dom.js";

/** What the thread parts need of the app. */
export interface ThreadDeps {
  client: NatterClient;
  notify(text: string): void;
  render(): void;
  /** The messages the app holds of conv, by seq (every kind). */
  messages(conv: string): Map<number, Message> | undefined;
}

/** The message the composer replies to, if any. */
let replying: { conv: string; seq: number; sender: string; snippet: string } | null = null;
/** The thread shown in the side panel, if any. */
let open: { conv: string; root: number; loaded: boolean; loading: boolean; rootMsg?: Message } | null = null;

/** The text a message shows, for a reply bar. */
function snippetOf(m: Message): string {
  const text = typeof m.body.text === "string" ? m.body.text : "message";
  return text.replace(/\s+/g, " ").trim().slice(0, 140);
}

/**
 * Fills thread and quote of m, the user's own message built from its ack
 * (the server's push goes to the other connections): the quote as the
 * server makes it, from the quoted message the app holds. A page read
 * later carries the server's own copy.
 */
export function ownReplyFields(entry: OutboxEntry, m: Message, deps: ThreadDeps): void {
  if (entry.thread) m.thread = entry.thread;
  if (!entry.reply_to) return;
  m.reply_to = entry.reply_to;
  const q = deps.messages(entry.conv)?.get(entry.reply_to);
  if (q) m.quote = { seq: q.seq, sender: q.sender, snippet: q.deleted ? "" : snippetOf(q), ...(q.deleted ? { deleted: true as const } : {}) };
}

/**
 * The quote block of a reply, or null. The quote is what the server copied
 * when the reply was sent; gone says whether the app knows the original
 * was deleted since, which the quote then shows instead of its snippet.
 */
export function quoteBlock(m: Message, gone = false): HTMLElement | null {
  const q = m.quote;
  if (!m.reply_to || !q) return null;
  const deleted = q.deleted || gone;
  return h(
    "blockquote",
    { class: `quote${deleted ? " deleted" : ""}`, "data-quote": String(q.seq) },
    h("span", { class: "quote-sender" }, q.sender),
    " ",
    h("span", { class: "quote-text" }, deleted ? "message deleted" : q.snippet),
  );
}

/** The "reply" and "thread" buttons of a plain message in the timeline (not of a thread reply). */
export function messageActions(conv: string, m: Message, deps: ThreadDeps): HTMLElement[] {
  const out = [
    h("button", { class: "link reply", type: "button", onclick: () => startReply(conv, m, deps) }, "reply"),
  ];
  if (!m.thread) {
    out.push(h("button", { class: "link thread", type: "button", onclick: () => void openThread(conv, m.seq, deps) }, "thread"));
  }
  return out;
}

/** The link under a root that has replies, or null. */
export function threadLink(conv: string, m: Message, deps: ThreadDeps): HTMLElement | null {
  const n = m.thread_count ?? 0;
  if (m.thread || n === 0) return null;
  return h(
    "button",
    { class: "link thread-link", type: "button", "data-root": String(m.seq), onclick: () => void openThread(conv, m.seq, deps) },
    n === 1 ? "1 reply" : `${n} replies`,
  );
}

/** Counts a live thread reply on the root the app holds (the push carries no count). */
export function countReply(m: Message, deps: ThreadDeps): void {
  if (!m.thread) return;
  const root = deps.messages(m.conv)?.get(m.thread);
  if (root) applyThreadReply(root, m);
}

function startReply(conv: string, m: Message, deps: ThreadDeps): void {
  replying = { conv, seq: m.seq, sender: m.sender, snippet: snippetOf(m) };
  $<HTMLInputElement>("#composer-input")?.focus();
  deps.render();
}

/** The reply the main composer sends now, for conv: the seq to quote. */
export function replyTo(conv: string): number | undefined {
  return replying?.conv === conv ? replying.seq : undefined;
}

/** Forgets the reply once sent or cancelled. */
export function clearReply(): void {
  replying = null;
}

/** Draws the reply bar over the main composer. */
export function drawReplyBar(conv: string, deps: ThreadDeps): void {
  const bar = $("#replying");
  if (!bar) return;
  const r = replying?.conv === conv ? replying : null;
  bar.classList.toggle("hidden", !r);
  bar.replaceChildren(
    ...(r
      ? [
          `Replying to ${r.sender}: `,
          h("span", { class: "quote-text" }, r.snippet),
          " ",
          h("button", { id: "reply-cancel", class: "link", type: "button", onclick: () => {
            replying = null;
            deps.render();
          } }, "cancel"),
        ]
      : []),
  );
}

async function openThread(conv: string, root: number, deps: ThreadDeps): Promise<void> {
  open = { conv, root, loaded: false, loading: true };
  deps.render();
  try {
    // Every reply, page by page: a thread is usually short.
    const msgs = deps.messages(conv);
    let after = 0;
    for (;;) {
      const page = await deps.client.threadAfter(conv, root, after, 100);
      // The page carries the root: shown even when the timeline has not
      // loaded it (a thread opened from far back), with its counts.
      // The timeline's copy stays the one drawn when it has it (it follows
      // edits and live replies); counts newer than it are taken.
      if (page.root && open?.root === root && open.conv === conv) {
        open.rootMsg = page.root;
        const held = msgs?.get(root);
        if (held && (page.root.thread_last_seq ?? 0) > (held.thread_last_seq ?? 0)) {
          held.thread_count = page.root.thread_count;
          held.thread_last_seq = page.root.thread_last_seq;
        }
      }
      for (const m of page.messages) msgs?.set(m.seq, msgs.get(m.seq) ?? m);
      if (!page.more || page.messages.length === 0) break;
      after = page.messages[page.messages.length - 1].seq;
    }
    if (open?.root === root && open.conv === conv) open.loaded = true;
  } catch (err) {
    deps.notify(`Could not load the thread: ${(err as Error).message}`);
  } finally {
    if (open?.root === root) open.loading = false;
    deps.render();
  }
}

/** Closes the panel (another conversation was opened). */
export function closeThread(): void {
  open = null;
}

/** Draws the thread side panel for the open conversation. */
export function drawThreadPanel(conv: string | undefined, deps: ThreadDeps, render: (m: Message) => HTMLElement): void {
  let panel = $("#thread-panel");
  if (!panel) {
    panel = h(
      "aside",
      { id: "thread-panel", class: "thread-panel hidden" },
      h(
        "header",
        { class: "bar" },
        h("strong", {}, "Thread"),
        h("button", { id: "thread-close", class: "link", type: "button", onclick: () => {
          open = null;
          deps.render();
        } }, "Close"),
      ),
      h("div", { id: "thread-messages", class: "messages" }),
      h(
        "form",
        { id: "thread-composer", class: "composer", onsubmit: (ev: Event) => submitThread(ev, deps) },
        h("input", { id: "thread-input", autocomplete: "off", placeholder: "Reply in thread" }),
        h("button", { id: "thread-send", type: "submit" }, "Send"),
      ),
    );
    $("#shell")?.append(panel);
  }
  const t = open && open.conv === conv ? open : null;
  panel.classList.toggle("hidden", !t);
  $("#shell")?.classList.toggle("has-thread", !!t);
  if (!t) return;
  const msgs = deps.messages(t.conv);
  // The root from the timeline, else as the thread page carried it.
  const root = msgs?.get(t.root) ?? t.rootMsg;
  const replies = [...(msgs?.values() ?? [])].filter((m) => m.thread === t.root && !m.kind).sort((a, b) => a.seq - b.seq);
  $("#thread-messages").replaceChildren(
    ...(root ? [render(root)] : []),
    h("div", { class: "loadmore" }, t.loading ? "Loading…" : replies.length ? `${replies.length} ${replies.length === 1 ? "reply" : "replies"}` : "No replies yet"),
    ...replies.map(render),
  );
}

function submitThread(ev: Event, deps: ThreadDeps): void {
  ev.preventDefault();
  const input = $<HTMLInputElement>("#thread-input");
  const text = input.value.trim();
  if (!text || !open) return;
  input.value = "";
  deps.client.sendInThread(open.conv, open.root, { text }).catch((err: Error) => deps.notify(`Not sent: ${err.message}`));
  deps.render();
}
