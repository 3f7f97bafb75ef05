// Natter's chat web app: plain TypeScript and the DOM over the client
// library. State lives in memory; the DOM is redrawn from it (the list
// parts only: inputs are built once and keep their focus and text).

import { NatterClient, deletedPeer, erasedConversation, newClientId, webStorageOutbox } from "../../client/src/index.js";
import type { AddPolicy, Conversation, Message, MuteLevel, OutboxEntry } from "../../client/src/index.js";
import { byActivity, mentionBadge, previewLine, startInbox } from "./inbox.js";
import { attachButton, drawFiles, sendFile } from "./attach.js";
import { $, h } from "./dom.js";
import { eventLine, groupPanel, isAdmin, mayPost, settingsButton } from "./group.js";
import { searchPanel } from "./search.js";
import { accountPanel } from "./account.js";
import { clearReply, closeThread, countReply, ownReplyFields, drawReplyBar, drawThreadPanel, messageActions, quoteBlock, replyTo, threadLink } from "./threads.js";
import { muteControl, mutedMark } from "./mute.js";
import { attachMentionComplete, mentionNodes, mentionsMe, mentionsOf } from "./mentions.js";
import { hasReceipts, loadReceipts, noteDelivered, noteRead, tick, tickLabel } from "./receipts.js";
import { ttlControl, watchExpiry } from "./ttl.js";

const PAGE = Number(new URLSearchParams(location.search).get("page")) || 50;
const TYPING_SEND_MS = 3000; // at most one typing notice per this
const TYPING_SHOW_MS = 5000; // hide an indicator after this without a notice

interface ConvState {
  c: Conversation;
  msgs: Map<number, Message>; // every kind, by seq
  loaded: boolean; // the newest page was fetched
  loading: boolean;
  more: boolean; // older messages exist
  oldest: number; // lowest seq fetched by history; 0 before
  unread: number;
  readSeq: number; // mine
  readBy: Map<string, number>; // other members' markers seen this session
  typing: Map<string, number>; // user -> hide at (ms)
}

const state = {
  me: "",
  convs: new Map<string, ConvState>(),
  open: "" as string,
  presence: new Map<string, boolean>(),
  outbox: [] as OutboxEntry[],
  editing: null as null | { conv: string; seq: number },
  status: "connecting",
  notice: "",
  blocked: new Set<string>(), // users I blocked
  revealed: new Set<string>(), // "conv seq" of blocked users' messages shown anyway
  addPolicy: "" as AddPolicy | "",
  groupOpen: false, // the open group's settings panel is shown
};

let client: NatterClient;
// What the group panel needs (group.ts); client is set by start.
const groupDeps = {
  get client() {
    return client;
  },
  get me() {
    return state.me;
  },
  notify: (text: string) => notify(text),
  render: () => render(),
};
// What replies and threads need (threads.ts).
const threadDeps = {
  get client() {
    return client;
  },
  notify: (text: string) => notify(text),
  render: () => render(),
  messages: (conv: string) => state.convs.get(conv)?.msgs,
};


// ---- sign in

// The token is kept in sessionStorage: this tab only, gone when it closes,
// and never in localStorage, where it would outlive the session and be
// readable by every tab of the origin for good. A dev sign-in also keeps
// the user id, so the app can fetch fresh tokens from /dev/token before
// the current one expires; a pasted token cannot be refreshed, and the
// app asks to sign in again when the server closes with 4003.
const TOKEN_KEY = "natter.token";
const DEV_USER_KEY = "natter.devUser";

async function devToken(user: string): Promise<string> {
  const r = await fetch(`/dev/token?user=${encodeURIComponent(user)}`, { cache: "no-store" });
  if (!r.ok) throw new Error(r.status === 404 ? "This server has no dev sign-in: paste a token." : (await r.text()) || `sign-in failed (${r.status})`);
  return (await r.json()).token;
}

function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(DEV_USER_KEY);
}

function tokenUser(token: string): string {
  try {
    const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(b64)).sub ?? "";
  } catch {
    return "";
  }
}

function showLogin(message = ""): void {
  const app = $("#app");
  app.replaceChildren(
    h(
      "form",
      { id: "login", class: "login", onsubmit: (ev: Event) => void signIn(ev) },
      h("h1", {}, "Natter"),
      h("label", { for: "login-user" }, "User id"),
      h("input", { id: "login-user", name: "user", autocomplete: "username", placeholder: "alice", pattern: "[A-Za-z0-9_\\-]{1,64}" }),
      h("label", { for: "login-token" }, "or paste a token"),
      h("textarea", { id: "login-token", rows: "3", placeholder: "eyJhbGciOi…" }),
      h("button", { id: "login-submit", type: "submit" }, "Sign in"),
      h("p", { class: "hint" }, "A --dev server signs you in by user id. Otherwise paste a token from natter token."),
      message ? h("p", { class: "error", id: "login-error" }, message) : null,
    ),
  );
}

async function signIn(ev: Event): Promise<void> {
  ev.preventDefault();
  const user = $<HTMLInputElement>("#login-user").value.trim();
  let token = $<HTMLTextAreaElement>("#login-token").value.trim();
  forgetToken();
  if (!token) {
    if (!user) return showLogin("Enter a user id or a token.");
    try {
      token = await devToken(user);
    } catch (err) {
      return showLogin((err as Error).message);
    }
    sessionStorage.setItem(DEV_USER_KEY, user);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  start(token);
}

function signOut(): void {
  client?.close();
  forgetToken();
  location.reload();
}

// ---- the client and its events

function start(token: string): void {
  state.me = tokenUser(token);
  buildShell();
  attachMentionComplete($<HTMLInputElement>("#composer-input"), $("#mention-list"), () => state.convs.get(state.open)?.c, () => state.me);
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/ws`;
  const devUser = sessionStorage.getItem(DEV_USER_KEY);
  const refreshToken = devUser
    ? async () => {
        const t = await devToken(devUser);
        sessionStorage.setItem(TOKEN_KEY, t);
        return t;
      }
    : undefined;
  client = new NatterClient({ url, token, refreshToken, device: "web", storage: webStorageOutbox(`natter.outbox.${state.me}`) });
  startInbox(client, state.me, () => render());
  watchExpiry(state, () => render());
  client.on("close", ({ code }) => {
    if (code !== 4003 || refreshToken) return;
    // The pasted token expired and cannot be refreshed here.
    client.close();
    forgetToken();
    showLogin("Your session expired: sign in again.");
  });
  client.on("state", (s) => {
    state.status = s;
    render();
  });
  client.on("resumed", ({ conversations }) => {
    void onConversations(conversations);
    void loadSettings();
    // Pushes missed while offline: the open conversation's ticks are asked again.
    const open = state.convs.get(state.open);
    if (open && open.c.state !== "invited") void loadReceipts(client, open.c.conv, open.c.member_count).then(() => render(), () => {});
  });
  client.on("message", (m) => onMessage(m));
  client.on("sent", ({ entry, ack }) => {
    // Built from the ack, which has no prev; the app shows messages by seq
    // and never reads prev (the client uses it to find gaps).
    const m: Message = { conv: entry.conv, seq: ack.seq, sender: state.me, client_id: entry.client_id, ts: ack.ts, body: entry.body, prev: 0 };
    if (ack.files) m.files = ack.files;
    if (entry.kind) Object.assign(m, { kind: entry.kind, ref: entry.ref });
    ownReplyFields(entry, m, threadDeps);
    onMessage(m, true);
  });
  client.on("send_failed", ({ entry, error }) => {
    if (error.code === "expired") {
      // The client stopped retrying: past the server's de-duplication window a
      // retry could post it twice, so the user decides.
      const text = String(entry.body.text ?? "").slice(0, 40);
      notify(`Not confirmed in time: "${text}" may not have been sent. Check the conversation and send it again if it is missing.`);
      return;
    }
    notify(`Not sent: ${error.message}`);
  });
  client.on("outbox", (entries) => {
    state.outbox = entries;
    render();
  });
  client.on("conversation", ({ conversation, inbox }) => {
    // Only my own inbox item (and the conversations reply) says my mute
    // level; a change of the group pushed to every member keeps it.
    const old = state.convs.get(conversation.conv);
    if (!inbox && old?.c.mute && conversation.mute === undefined) conversation.mute = old.c.mute;
    const cs = upsert(conversation);
    // My inbox item changed elsewhere (a read on another device).
    if (inbox && !(state.open === conversation.conv && visible())) cs.unread = conversation.unread;
    void queryPresence(conversation.members ?? []);
    render();
  });
  client.on("member", (e) => {
    const cs = state.convs.get(e.conv);
    if (!cs) return;
    if (e.action === "removed" && e.user === state.me) {
      state.convs.delete(e.conv);
      if (state.open === e.conv) state.open = "";
    } else if (cs.c.members) {
      const set = new Set(cs.c.members);
      if (e.action === "added") set.add(e.user);
      else set.delete(e.user);
      cs.c.members = [...set].sort();
      cs.c.member_count = set.size;
    }
    // An accepted invitation: no longer invited. Other changes of the
    // invited list come as conversation pushes.
    if (e.action === "added" && cs.c.invited) cs.c.invited = cs.c.invited.filter((u) => u !== e.user);
    render();
  });
  client.on("typing", (e) => {
    const cs = state.convs.get(e.conv);
    if (!cs) return;
    cs.typing.set(e.user, Date.now() + TYPING_SHOW_MS);
    render();
    setTimeout(render, TYPING_SHOW_MS + 50);
  });
  client.on("read", (e) => {
    const cs = state.convs.get(e.conv);
    if (!cs) return;
    if (e.user === state.me) {
      cs.readSeq = Math.max(cs.readSeq, e.seq);
      cs.unread = 0;
    } else {
      cs.readBy.set(e.user, Math.max(cs.readBy.get(e.user) ?? 0, e.seq));
      noteRead(e.conv, e.user, e.seq);
    }
    render();
  });
  client.on("delivered", (e) => {
    noteDelivered(e.conv, e.user, e.seq);
    render();
  });
  client.on("presence", (p) => {
    state.presence.set(p.user, p.online);
    render();
  });
  client.on("blocked", (users) => {
    state.blocked = new Set(users);
    render();
  });
  client.on("welcome", () => {
    client
      .blocked()
      .then((users) => {
        state.blocked = new Set(users);
        render();
      })
      .catch(() => {});
  });
  client.connect().catch((err) => {
    forgetToken();
    showLogin(`Sign-in refused: ${err.message}`);
  });
  document.addEventListener("visibilitychange", () => markRead());
}

function upsert(c: Conversation): ConvState {
  let cs = state.convs.get(c.conv);
  if (!cs) {
    cs = { c, msgs: new Map(), loaded: false, loading: false, more: true, oldest: 0, unread: c.unread, readSeq: c.read_seq, readBy: new Map(), typing: new Map() };
    state.convs.set(c.conv, cs);
  } else {
    cs.c = c;
    cs.readSeq = Math.max(cs.readSeq, c.read_seq);
  }
  return cs;
}

async function onConversations(list: Conversation[]): Promise<void> {
  const listed = new Set(list.map((c) => c.conv));
  for (const id of [...state.convs.keys()]) if (!listed.has(id)) state.convs.delete(id);
  if (state.open && !listed.has(state.open)) state.open = "";
  for (const c of list) upsert(c).unread = state.open === c.conv && visible() ? 0 : c.unread;
  render();
  await queryPresence(list.flatMap((c) => c.members ?? []));
  if (state.open) markRead();
}

async function queryPresence(users: string[]): Promise<void> {
  const others = [...new Set(users)].filter((u) => u !== state.me).slice(0, 500);
  if (others.length === 0) return;
  try {
    const res = await client.presence(others);
    for (const [u, p] of Object.entries(res)) state.presence.set(u, p.online);
    render();
  } catch {
    // presence is decoration: the next push corrects it
  }
}

function onMessage(m: Message, mine = false): void {
  const cs = state.convs.get(m.conv);
  if (!cs) {
    // A conversation the user hid: a new message brings it back.
    refreshList();
    return;
  }
  if (cs.msgs.has(m.seq)) return;
  cs.msgs.set(m.seq, m);
  countReply(m, threadDeps); // the root's "N replies"
  if (m.sender === state.me) {
    cs.readSeq = Math.max(cs.readSeq, m.seq); // sending moves my marker
  } else if (!mine && !m.kind && !state.blocked.has(m.sender)) {
    cs.typing.delete(m.sender);
    if (state.open === m.conv && visible()) markRead();
    else if (m.seq > cs.readSeq) cs.unread++;
  }
  render();
}

function visible(): boolean {
  return document.visibilityState === "visible";
}

function markRead(): void {
  const cs = state.convs.get(state.open);
  if (!cs || !visible() || client.state !== "open") return;
  const newest = Math.max(0, ...cs.msgs.keys());
  cs.unread = 0;
  if (newest > cs.readSeq) {
    cs.readSeq = newest;
    client.read(cs.c.conv, newest).catch(() => {});
  }
  render();
}

function notify(text: string): void {
  state.notice = text;
  render();
  setTimeout(() => {
    if (state.notice === text) {
      state.notice = "";
      render();
    }
  }, 4000);
}

// ---- actions

async function openConv(conv: string): Promise<void> {
  if (state.open !== conv) {
    state.groupOpen = false;
    closeThread();
    clearReply();
  }
  state.open = conv;
  state.editing = null;
  $("#shell").classList.add("show-chat");
  const cs = state.convs.get(conv)!;
  render(true);
  // An invitation is not membership: nothing to load until accepted.
  if (!cs.loaded && cs.c.state !== "invited") await loadOlder(cs);
  if (cs.c.state !== "invited") void loadReceipts(client, conv, cs.c.member_count).then(() => render(), () => {});
  markRead();
  $<HTMLInputElement>("#composer-input").focus();
}

async function loadOlder(cs: ConvState): Promise<void> {
  if (cs.loading || (cs.loaded && !cs.more)) return;
  cs.loading = true;
  const box = $("#messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    const page = await client.history(cs.c.conv, cs.loaded ? cs.oldest : 0, PAGE);
    for (const m of page.messages) cs.msgs.set(m.seq, m);
    if (page.messages.length) cs.oldest = cs.oldest ? Math.min(cs.oldest, page.messages[0].seq) : page.messages[0].seq;
    cs.more = page.more;
    const first = !cs.loaded;
    cs.loaded = true;
    cs.loading = false;
    render(true);
    if (state.open === cs.c.conv) {
      if (first) box.scrollTop = box.scrollHeight;
      else box.scrollTop = box.scrollHeight - fromBottom;
      // Fill the view: a short page leaves no room to scroll up from.
      if (cs.more && box.scrollHeight <= box.clientHeight + 10) await loadOlder(cs);
    }
  } catch (err) {
    cs.loading = false;
    notify(`Could not load messages: ${(err as Error).message}`);
  }
}

async function createConv(ev: Event): Promise<void> {
  ev.preventDefault();
  const kind = $<HTMLSelectElement>("#new-kind").value as "direct" | "group";
  const members = $<HTMLInputElement>("#new-members")
    .value.split(/[\s,]+/)
    .filter(Boolean);
  const title = $<HTMLInputElement>("#new-title").value.trim();
  try {
    const c = await client.create(kind, members, kind === "group" ? title : undefined);
    upsert(c);
    if (c.invited?.length) notify(`Invited ${c.invited.join(", ")}: they join once they accept.`);
    void queryPresence(c.members ?? []);
    $<HTMLFormElement>("#new-form").reset();
    $("#new-form").classList.add("hidden");
    await openConv(c.conv);
  } catch (err) {
    notify(`Could not create: ${(err as Error).message}`);
  }
}

let lastTyping = 0;
function onComposerInput(): void {
  if (!state.open || state.editing) return;
  if (Date.now() - lastTyping < TYPING_SEND_MS) return;
  lastTyping = Date.now();
  client.typing(state.open);
}

function submitComposer(ev: Event): void {
  ev.preventDefault();
  const input = $<HTMLInputElement>("#composer-input");
  const text = input.value.trim();
  if (!text || !state.open) return;
  input.value = "";
  lastTyping = 0;
  const conv = state.open;
  if (state.editing) {
    const { seq } = state.editing;
    state.editing = null;
    client.edit(conv, seq, { text }).catch(() => {});
  } else {
    const cs = state.convs.get(conv);
    const mentions = cs ? mentionsOf(text, cs.c, state.me) : [];
    client.send(conv, { text }, { clientId: newClientId(), mentions, replyTo: replyTo(conv) }).catch(() => {});
    clearReply();
  }
  render();
}

// pickFile sends the chosen file with the composer's text as its caption.
function pickFile(file: File): void {
  if (!state.open) return;
  const input = $<HTMLInputElement>("#composer-input");
  const text = input.value.trim();
  input.value = "";
  notify(`Uploading ${file.name}…`);
  sendFile(client, state.open, file, text, newClientId()).then(
    () => notify(""),
    (e: Error) => notify(`Not sent: ${e.message}`),
  );
}

async function toggleBlock(user: string): Promise<void> {
  const blocking = !state.blocked.has(user);
  if (blocking && !confirm(`Block ${user}? They will no longer be able to start a conversation with you, add you to groups, or see when you are online or typing. Their messages will be hidden.`)) return;
  try {
    state.blocked = new Set(blocking ? await client.block(user) : await client.unblock(user));
    notify(blocking ? `${user} is blocked.` : `${user} is unblocked.`);
  } catch (err) {
    notify(`Could not ${blocking ? "block" : "unblock"} ${user}: ${(err as Error).message}`);
  }
  render();
}

function startEdit(conv: string, seq: number, text: string): void {
  state.editing = { conv, seq };
  const input = $<HTMLInputElement>("#composer-input");
  input.value = text;
  input.focus();
  render();
}

// ---- view

function convTitle(c: Conversation): string {
  if (deletedPeer(c, state.me)) return "deleted account";
  if (c.kind === "direct") return (c.members ?? []).find((u) => u !== state.me) ?? "direct";
  return c.title || (c.members ?? []).filter((u) => u !== state.me).join(", ") || "group";
}

// The other member of a direct conversation, unless that account was erased.
function peer(c: Conversation): string | undefined {
  if (deletedPeer(c, state.me)) return undefined;
  return c.kind === "direct" ? (c.members ?? []).find((u) => u !== state.me) : undefined;
}

function dot(user: string | undefined, id?: string): HTMLElement | null {
  if (!user) return null;
  // A blocked user's presence no longer comes: show none rather than a stale one.
  const on = state.presence.get(user) === true && !state.blocked.has(user);
  return h("span", { id, class: `dot ${on ? "online" : "offline"}`, title: on ? `${user} is online` : `${user} is offline` });
}

function buildShell(): void {
  $("#app").replaceChildren(
    h(
      "div",
      { id: "shell", class: "shell" },
      h(
        "aside",
        { class: "sidebar" },
        h(
          "header",
          { class: "bar" },
          h("strong", {}, "Natter"),
          h("span", { id: "me", class: "me" }, state.me),
          h("span", { id: "status", class: "status" }),
          h("button", { id: "signout", class: "link", type: "button", onclick: signOut }, "Sign out"),
        ),
        h("button", { id: "new-toggle", class: "new", type: "button", onclick: () => $("#new-form").classList.toggle("hidden") }, "+ New conversation"),
        h(
          "form",
          { id: "new-form", class: "new-form hidden", onsubmit: (ev: Event) => void createConv(ev) },
          h("select", { id: "new-kind", onchange: () => render() }, h("option", { value: "direct" }, "Direct"), h("option", { value: "group" }, "Group")),
          h("input", { id: "new-members", placeholder: "user ids, comma separated", required: true }),
          h("input", { id: "new-title", placeholder: "group title" }),
          h("button", { id: "new-submit", type: "submit" }, "Create"),
        ),
        searchPanel({
          search: (q, opts) => client.search(q, opts),
          title: (conv) => {
            const cs = state.convs.get(conv);
            return cs ? convTitle(cs.c) : conv;
          },
          open: (conv) => void openConv(conv),
          time,
        }),
        h("ul", { id: "convs", class: "convs" }),
        h(
          "label",
          { class: "setting", for: "add-policy" },
          "Who may add me to groups ",
          h(
            "select",
            { id: "add-policy", onchange: () => void changeAddPolicy() },
            h("option", { value: "everyone" }, "Everyone"),
            h("option", { value: "contacts" }, "Contacts only"),
            h("option", { value: "nobody" }, "Nobody (ask me)"),
          ),
        ),
        accountPanel({
          me: state.me,
          exportData: () => client.exportData(),
          fileURL: (url) => client.fileURL(url),
          deleteAccount: () => client.deleteAccount(),
          deleted: () => {
            forgetToken();
            setTimeout(() => location.reload(), 1500);
          },
        }),
      ),
      h(
        "main",
        { class: "chat" },
        h(
          "header",
          { class: "bar" },
          h("button", { id: "back", class: "back", type: "button", title: "Conversations", onclick: () => {
            state.open = "";
            $("#shell").classList.remove("show-chat");
            render();
          } }, "‹"),
          h("span", { id: "chat-head", class: "chat-head" }),
        ),
        h("div", { id: "consent", class: "consent hidden" }),
        h("div", { id: "group-panel", class: "group-panel hidden" }),
        h("div", { id: "messages", class: "messages", onscroll: onScroll }),
        h("div", { id: "typing", class: "typing" }),
        h("div", { id: "editing", class: "editing hidden" }),
        h("div", { id: "replying", class: "editing hidden" }),
        h("div", { id: "erased-note", class: "erased-note hidden" }, "This account was deleted. No one can send messages here."),
        h(
          "form",
          { id: "composer", class: "composer", onsubmit: submitComposer },
          ...attachButton(pickFile),
          h("ul", { id: "mention-list", class: "mention-list hidden" }),
          h("input", { id: "composer-input", autocomplete: "off", placeholder: "Message", oninput: onComposerInput }),
          h("button", { id: "composer-send", type: "submit" }, "Send"),
        ),
        h("div", { id: "notice", class: "notice hidden" }),
      ),
    ),
  );
}

function onScroll(): void {
  const cs = state.convs.get(state.open);
  const box = $("#messages");
  if (cs && cs.loaded && cs.more && box.scrollTop < 80) void loadOlder(cs);
}

let scheduled = false;
function render(now = false): void {
  if (now) return draw();
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    draw();
  });
}

function draw(): void {
  if (!$("#shell")) return;
  $("#status").textContent = state.status === "open" ? "" : state.status === "closed" ? "offline" : `${state.status}…`;
  $("#new-title").classList.toggle("hidden", $<HTMLSelectElement>("#new-kind").value !== "group");
  const notice = $("#notice");
  notice.textContent = state.notice;
  notice.classList.toggle("hidden", !state.notice);

  // Conversation list, newest activity first.
  // Newest activity first, then (no time known yet: a conversation just
  // made) by what this session holds of it, then by id.
  const list = [...state.convs.values()].sort((a, b) => byActivity(a.c, b.c) || lastActivity(b) - lastActivity(a) || (a.c.conv < b.c.conv ? -1 : a.c.conv > b.c.conv ? 1 : 0));
  $("#convs").replaceChildren(
    ...list.map((cs) =>
      h(
        "li",
        { class: `conv${cs.c.conv === state.open ? " active" : ""}`, "data-conv": cs.c.conv, onclick: () => void openConv(cs.c.conv) },
        dot(peer(cs.c)) ?? h("span", { class: "dot group" }),
        h("span", { class: "info" }, h("span", { class: "name" }, convTitle(cs.c)), previewLine(cs.c, state.me)),
        cs.c.state ? h("span", { class: `tag ${cs.c.state}` }, stateLabel(cs.c.state)) : null,
        mutedMark(cs.c),
        mentionBadge(cs.c.conv),
        cs.unread > 0 ? h("span", { class: "badge" }, String(cs.unread)) : null,
      ),
    ),
    ...(list.length === 0 ? [h("li", { class: "empty" }, "No conversations yet.")] : []),
  );

  const cs = state.convs.get(state.open);
  $("#shell").classList.toggle("has-chat", !!cs);
  if (!cs) {
    $("#chat-head").replaceChildren(h("span", { class: "muted" }, "Pick or start a conversation"));
    $("#messages").replaceChildren();
    $("#typing").textContent = "";
    $("#consent").classList.add("hidden");
    $("#composer").classList.remove("hidden");
    $("#erased-note").classList.add("hidden");
    groupPanel(undefined, false, groupDeps);
    drawThreadPanel(undefined, threadDeps, () => h("div"));
    return;
  }
  drawConsent(cs);
  // An invitation is not membership: nothing can be sent until accepted.
  // In a read-only group only the owner and admins send.
  // With a deleted account nobody sends any more.
  const erased = erasedConversation(cs.c);
  $("#composer").classList.toggle("hidden", cs.c.state === "invited" || !mayPost(cs.c) || erased);
  $("#erased-note").classList.toggle("hidden", !erased);
  const isGroup = cs.c.kind === "group" && cs.c.state !== "invited";
  groupPanel(cs.c, state.groupOpen && isGroup, groupDeps);
  const members = cs.c.members ?? [];
  const other = peer(cs.c);
  $("#chat-head").replaceChildren(
    dot(other, "chat-dot") ?? h("span", { class: "dot group" }),
    h("span", { id: "chat-title", class: "title" }, convTitle(cs.c)),
    ...(cs.c.kind === "group" ? [h("span", { class: "muted" }, `${cs.c.member_count} members`)] : []),
    ...(cs.c.topic ? [h("span", { id: "chat-topic", class: "muted topic" }, cs.c.topic)] : []),
    ...(cs.c.read_only ? [h("span", { id: "read-only", class: "tag", title: "Only the owner and admins post" }, "read-only")] : []),
    ...ttlControl(cs.c, client, notify),
    ...(isGroup ? [settingsButton(() => {
      state.groupOpen = !state.groupOpen;
      render();
    })] : []),
    ...(cs.c.kind === "group" && cs.c.state !== "invited" && cs.c.invited?.length ? [drawInvited(cs.c)] : []),
    ...(other
      ? [h("button", { id: "block-toggle", class: "link block-toggle", type: "button", onclick: () => void toggleBlock(other) }, state.blocked.has(other) ? "Unblock" : "Block")]
      : []),
    ...(cs.c.state !== "invited" ? [muteControl(cs.c, (level, until) => void setMute(cs, level, until))] : []),
    ...(cs.c.state !== "invited"
      ? [h("button", { id: "hide-conv", class: "link", type: "button", title: "Hide until a new message arrives", onclick: () => void hideConv(cs.c.conv) }, "Hide")]
      : []),
  );
  const now = Date.now();
  const typers = [...cs.typing].filter(([, until]) => until > now).map(([u]) => u);
  $("#typing").textContent = typers.length ? `${typers.join(", ")} ${typers.length > 1 ? "are" : "is"} typing…` : "";
  const ed = $("#editing");
  ed.classList.toggle("hidden", !state.editing);
  ed.replaceChildren(
    ...(state.editing
      ? ["Editing message ", h("button", { class: "link", type: "button", onclick: () => {
          state.editing = null;
          $<HTMLInputElement>("#composer-input").value = "";
          render();
        } }, "cancel")]
      : []),
  );
  drawReplyBar(cs.c.conv, threadDeps);
  drawMessages(cs, members);
  const applied = appliedEvents(cs);
  drawThreadPanel(cs.c.conv, threadDeps, (m) => threadItem(m, applied));
}

/** Edits and deletions as they apply to the messages of cs. */
interface Applied {
  edits: Map<number, Message>;
  deleted: Set<number>;
  deletedBy: Map<number, string>;
}

function appliedEvents(cs: ConvState): Applied {
  // Edits and deletions apply to their targets, only when they come from the target's sender.
  // A delete by someone else is a moderator's (the group's owner or an
  // admin): the server refuses it from anyone else.
  const a: Applied = { edits: new Map(), deleted: new Set(), deletedBy: new Map() };
  for (const m of [...cs.msgs.values()].sort((x, y) => x.seq - y.seq)) {
    const target = m.ref !== undefined ? cs.msgs.get(m.ref) : undefined;
    if (m.kind === "edit" && (!target || target.sender === m.sender)) a.edits.set(m.ref!, m);
    if (m.kind === "delete") {
      a.deleted.add(m.ref!);
      if (target && target.sender !== m.sender) a.deletedBy.set(m.ref!, m.sender);
    }
  }
  // Pages carry what the server applied (deleted, deleted_by, edit_seq).
  for (const m of cs.msgs.values()) {
    if (m.deleted) a.deleted.add(m.seq);
    if (m.deleted_by) a.deletedBy.set(m.seq, m.deleted_by);
  }
  return a;
}

/** A message as the thread panel shows it: sender, quote, text, time. */
function threadItem(m: Message, a: Applied): HTMLElement {
  const isDeleted = a.deleted.has(m.seq);
  const text = String((a.edits.get(m.seq) ?? m).body.text ?? "");
  return h(
    "div",
    { class: `msg${m.sender === state.me ? " mine" : ""}${isDeleted ? " deleted" : ""}${m.thread ? " thread-reply" : " thread-root"}`, "data-seq": String(m.seq), "data-sender": m.sender },
    h("div", { class: "sender" }, m.sender),
    quoteBlock(m, m.reply_to !== undefined && a.deleted.has(m.reply_to)),
    h("div", { class: "bubble" }, h("span", { class: "text" }, isDeleted ? (a.deletedBy.has(m.seq) ? `removed by ${a.deletedBy.get(m.seq)}` : "message deleted") : text)),
    h("div", { class: "meta" }, h("time", { datetime: m.ts }, time(m.ts))),
  );
}

function lastActivity(cs: ConvState): number {
  return Math.max(cs.c.last_seq, 0, ...cs.msgs.keys());
}

function drawMessages(cs: ConvState, members: string[]): void {
  const box = $("#messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  // Thread replies are shown in the thread panel, not the timeline.
  const sorted = [...cs.msgs.values()].filter((m) => !m.thread || m.kind).sort((a, b) => a.seq - b.seq);
  const { edits, deleted, deletedBy } = appliedEvents(cs);
  const plain = sorted.filter((m) => !m.kind);
  const moderator = isAdmin(cs.c);
  const myLast = [...plain].reverse().find((m) => m.sender === state.me && !deleted.has(m.seq));
  const others = members.filter((u) => u !== state.me);
  const ticks = hasReceipts(cs.c.member_count) && others.length > 0;
  const seenBy = myLast ? [...cs.readBy].filter(([u, s]) => u !== state.me && s >= myLast.seq && members.includes(u)).map(([u]) => u) : [];

  const nodes: Node[] = [];
  if (cs.loaded && cs.more) nodes.push(h("div", { class: "loadmore", id: "loadmore" }, cs.loading ? "Loading…" : "Scroll up for older messages"));
  if (cs.loaded && !cs.more) nodes.push(h("div", { class: "loadmore" }, plain.length ? "Beginning of the conversation" : "No messages yet. Say hi!"));
  let prevSender = "";
  for (const m of sorted) {
    const line = m.kind === "event" ? eventLine(m) : null;
    if (line) {
      nodes.push(line);
      prevSender = "";
      continue;
    }
    if (m.kind) continue;
    const mine = m.sender === state.me;
    const isDeleted = deleted.has(m.seq);
    const edit = edits.get(m.seq);
    const text = String((edit ?? m).body.text ?? "");
    const key = `${cs.c.conv} ${m.seq}`;
    if (!mine && state.blocked.has(m.sender) && !state.revealed.has(key)) {
      // Collapsed: it stays in history, one click away.
      nodes.push(
        h(
          "div",
          { class: "msg collapsed", "data-seq": String(m.seq), "data-sender": m.sender },
          h(
            "div",
            { class: "bubble" },
            h("span", { class: "text" }, "Message from a blocked user "),
            h("button", { class: "link reveal", type: "button", onclick: () => {
              state.revealed.add(key);
              render();
            } }, "show"),
          ),
        ),
      );
      prevSender = "";
      continue;
    }
    nodes.push(
      h(
        "div",
        { class: `msg${mine ? " mine" : ""}${isDeleted ? " deleted" : ""}${!isDeleted && mentionsMe(m, state.me) ? " mentions-me" : ""}`, "data-seq": String(m.seq), "data-sender": m.sender },
        m.sender !== prevSender && !mine ? h("div", { class: "sender" }, m.sender) : null,
        quoteBlock(m, m.reply_to !== undefined && deleted.has(m.reply_to)),
        h("div", { class: "bubble" }, h("span", { class: "text" }, ...(isDeleted ? [deletedBy.has(m.seq) ? `removed by ${deletedBy.get(m.seq)}` : "message deleted"] : mentionNodes(text, m, state.me))), isDeleted ? null : drawFiles(client, edit ?? m)),
        h(
          "div",
          { class: "meta" },
          h("time", { datetime: m.ts }, time(m.ts)),
          edit && !isDeleted ? h("span", { class: "edited" }, "edited") : null,
          mine && !isDeleted
            ? h("button", { class: "link edit", type: "button", onclick: () => startEdit(cs.c.conv, m.seq, text) }, "edit")
            : null,
          (mine || moderator) && !isDeleted
            ? h("button", { class: `link delete${mine ? "" : " moderate"}`, type: "button", onclick: () => void client.delete(cs.c.conv, m.seq).catch(() => {}) }, "delete")
            : null,
          !mine && cs.c.kind === "group"
            ? h("button", { class: "link block", type: "button", onclick: () => void toggleBlock(m.sender) }, state.blocked.has(m.sender) ? "unblock" : "block")
            : null,
          m === myLast && seenBy.length ? h("span", { class: "seen" }, cs.c.kind === "direct" ? "seen" : `seen by ${seenBy.join(", ")}`) : null,
          ...(!isDeleted && mayPost(cs.c) && cs.c.state !== "invited" ? messageActions(cs.c.conv, m, threadDeps) : []),
          threadLink(cs.c.conv, m, threadDeps),
          mine && !isDeleted && ticks ? drawTick(cs.c.conv, m.seq, others, cs.c.kind === "group") : null,
        ),
      ),
    );
    prevSender = m.sender;
  }
  // Sends not acknowledged yet.
  for (const e of state.outbox) {
    if (e.conv !== cs.c.conv || e.kind || e.thread) continue;
    nodes.push(
      h(
        "div",
        { class: "msg mine pending", "data-client-id": e.client_id },
        h("div", { class: "bubble" }, h("span", { class: "text" }, String(e.body.text ?? ""))),
        h("div", { class: "meta" }, "sending…"),
      ),
    );
  }
  box.replaceChildren(...nodes);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function drawTick(conv: string, seq: number, others: string[], group: boolean): HTMLElement {
  const t = tick(conv, seq, others);
  const label = tickLabel(t, group);
  return h("span", { class: `tick tick-${t}`, "data-tick": t, title: label, "aria-label": label }, t === "sent" ? "✓" : "✓✓");
}

function time(ts: string): string {
  const d = new Date(ts);
  return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// ---- consent: requests, invitations, hiding, who may add me

let refreshing = false;
/** Reloads the conversation list, once at a time. */
function refreshList(): void {
  if (refreshing) return;
  refreshing = true;
  client
    .conversations()
    .then((list) => onConversations(list))
    .catch(() => {})
    .finally(() => (refreshing = false));
}

function stateLabel(st: string): string {
  return st === "request" ? "request" : st === "invited" ? "invitation" : st === "pending" ? "not accepted yet" : st;
}

async function loadSettings(): Promise<void> {
  try {
    state.addPolicy = (await client.settings()).add_policy;
    $<HTMLSelectElement>("#add-policy").value = state.addPolicy;
  } catch {
    // the select keeps its default; changing it tries again
  }
}

async function changeAddPolicy(): Promise<void> {
  const sel = $<HTMLSelectElement>("#add-policy");
  try {
    state.addPolicy = (await client.setAddPolicy(sel.value as AddPolicy)).add_policy;
    notify(`Saved: ${sel.selectedOptions[0]?.textContent ?? sel.value} may add you.`);
  } catch (err) {
    if (state.addPolicy) sel.value = state.addPolicy;
    notify(`Could not save: ${(err as Error).message}`);
  }
}

/** The bar over a request or an invitation: accept or decline it. */
function drawConsent(cs: ConvState): void {
  const bar = $("#consent");
  const st = cs.c.state;
  bar.classList.toggle("hidden", st !== "request" && st !== "invited" && st !== "pending");
  if (st === "pending") {
    bar.replaceChildren(h("span", {}, "They have not accepted your message request yet."));
    return;
  }
  if (st !== "request" && st !== "invited") return bar.replaceChildren();
  const who = st === "request" ? `${convTitle(cs.c)} wants to send you messages.` : `You are invited to ${convTitle(cs.c)}.`;
  bar.replaceChildren(
    h("span", {}, `${who} They do not see whether you are online or have read anything until you accept.`),
    h("button", { id: "consent-accept", type: "button", onclick: () => void acceptConv(cs.c.conv) }, "Accept"),
    h("button", { id: "consent-decline", class: "link", type: "button", onclick: () => void declineConv(cs.c.conv) }, "Decline"),
  );
}

async function acceptConv(conv: string): Promise<void> {
  try {
    const cs = upsert(await client.accept(conv));
    render(true);
    if (!cs.loaded) await loadOlder(cs);
  } catch (err) {
    notify(`Could not accept: ${(err as Error).message}`);
  }
}

function forget(conv: string): void {
  state.convs.delete(conv);
  if (state.open === conv) {
    state.open = "";
    $("#shell").classList.remove("show-chat");
  }
  render();
}

async function declineConv(conv: string): Promise<void> {
  try {
    await client.decline(conv);
    forget(conv);
  } catch (err) {
    notify(`Could not decline: ${(err as Error).message}`);
  }
}

/**
 * The group's pending invitations; its owner can withdraw each. The list
 * follows the conversation pushes members get when it changes.
 */
function drawInvited(c: Conversation): HTMLElement {
  const owner = c.owner === state.me;
  return h(
    "span",
    { id: "invited", class: "muted" },
    "invited: ",
    ...(c.invited ?? []).flatMap((u, i) => [
      ...(i > 0 ? [", "] : []),
      h("span", { class: "invitee", "data-user": u }, u),
      ...(owner
        ? [" ", h("button", { class: "link withdraw", type: "button", title: `Withdraw the invitation of ${u}`, onclick: () => void withdraw(c.conv, u) }, "withdraw")]
        : []),
    ]),
  );
}

async function withdraw(conv: string, user: string): Promise<void> {
  try {
    await client.removeMember(conv, user);
    notify(`Withdrew the invitation of ${user}.`);
  } catch (err) {
    notify(`Could not withdraw: ${(err as Error).message}`);
  }
}

async function setMute(cs: ConvState, level: MuteLevel, until?: Date): Promise<void> {
  try {
    await client.mute(cs.c.conv, level, until);
    // The server's answer is ok: the level shows what it now holds (a
    // mute's end is not part of the conversation frame).
    cs.c = { ...cs.c, mute: level === "none" ? undefined : level };
  } catch (err) {
    notify(`Could not change notifications: ${(err as Error).message}`);
  }
  render();
}

async function hideConv(conv: string): Promise<void> {
  try {
    await client.hide(conv);
    forget(conv);
  } catch (err) {
    notify(`Could not hide: ${(err as Error).message}`);
  }
}

// ---- boot

// Older versions kept the token in localStorage: drop it.
localStorage.removeItem(TOKEN_KEY);
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else showLogin();
