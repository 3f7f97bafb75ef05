// Tests of the client library against a real `natter serve --dev`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { createHash } from "node:crypto";
import { ACCOUNT_ERASED, NatterClient, NatterError, parseExport, deletedPeer, erasedConversation, applyThreadReply, backoffDelay, describeGroupEvent, describeTTL, dropExpired, groupEvent, isExpired, isModeratorDelete, newClientId, refreshAt, tokenExpiry } from "../dist/natter.js";
import { startNatter } from "../../testutil/natter.mjs";

let srv;
before(async () => {
  // A short heartbeat: connections survive only if the client pings.
  srv = await startNatter(["--heartbeat", "2s", "--delivered-delay", "200ms", "--test-ttl", "4s"]);
});
const clients = [];
after(async () => {
  for (const c of clients) c.close(); // a failed test must not leave timers running
  await srv?.stop();
});

/** A WebSocket constructor that records its sockets and can drop incoming frames. */
function recordingWS() {
  const sockets = [];
  const sent = [];
  const rec = { sockets, sent, dropIncoming: null };
  rec.WebSocket = class extends WebSocket {
    constructor(url) {
      super(url);
      sockets.push(this);
      const send = this.send.bind(this);
      this.send = (data) => {
        sent.push(JSON.parse(data));
        send(data);
      };
      const self = this;
      let handler = null;
      Object.defineProperty(this, "onmessage", {
        get: () => handler,
        set(fn) {
          handler = fn;
          if (!fn) return;
          self.removeAllListeners("message");
          self.on("message", (data) => {
            const text = data.toString();
            if (rec.dropIncoming && rec.dropIncoming(JSON.parse(text))) return;
            fn({ data: text });
          });
        },
      });
    }
  };
  return rec;
}

function track(c) {
  clients.push(c);
  return c;
}

function client(user, extra = {}) {
  return track(new NatterClient({ url: srv.wsURL, token: srv.token(user), WebSocket, backoffInitialMs: 50, backoffMaxMs: 500, ...extra }));
}

/** Resolves with the first event of that name passing pred. */
function next(c, event, pred = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event in ${ms} ms`));
    }, ms);
    const off = c.on(event, (ev) => {
      if (!pred(ev)) return;
      clearTimeout(t);
      off();
      resolve(ev);
    });
  });
}

/** Collects message events of conv. */
function collect(c, conv) {
  const got = [];
  c.on("message", (m) => m.conv === conv && got.push(m));
  return got;
}

async function until(cond, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A gate: the token function waits on it, which holds a reconnect back. */
function gate(tok) {
  let open = true;
  let release;
  let p = Promise.resolve();
  return {
    token: async () => {
      await p;
      return tok;
    },
    close() {
      if (!open) return;
      open = false;
      p = new Promise((r) => (release = r));
    },
    open() {
      open = true;
      release?.();
    },
  };
}

let n = 0;
const uid = (name) => `${name}${++n}${Date.now().toString(36)}`;

describe("NatterClient", { timeout: 60_000 }, () => {
  test("connects with hello and gets a typed welcome", async () => {
    const u = uid("alice");
    const c = track(new NatterClient({ url: srv.wsURL, token: srv.token(u), WebSocket, device: "node-test" }));
    const states = [];
    c.on("state", (s) => states.push(s));
    const w = await c.connect();
    assert.equal(w.type, "welcome");
    assert.equal(w.user, u);
    assert.equal(w.device, "node-test");
    assert.equal(w.heartbeat_s, 2);
    assert.equal(c.state, "open");
    assert.deepEqual(states, ["connecting", "open"]);
    c.close();
    assert.equal(c.state, "closed");
  });

  test("a refused token rejects connect and does not loop", async () => {
    const c = track(new NatterClient({ url: srv.wsURL, token: "not-a-jwt", WebSocket }));
    await assert.rejects(c.connect(), (e) => e instanceof NatterError && e.code === "unauthorized");
    assert.equal(c.state, "closed");
  });

  test("pushes: conversation, message, typing, read, presence, member", async () => {
    const [a, b, carol] = [uid("a"), uid("b"), uid("carol")];
    // b started a direct conversation with a (b's own request shares b's
    // presence with a): a is told when b comes online.
    const cb0 = client(b);
    await cb0.connect();
    await cb0.create("direct", [a]);
    cb0.close();
    const ca = client(a);
    await ca.connect();
    const cb = client(b);
    const onlineB = next(ca, "presence", (p) => p.user === b && p.online);
    await cb.connect();
    const on = await onlineB;
    assert.equal(on.online, true);
    assert.equal(on.devices, 1);
    assert.equal((await ca.presence([b]))[b].online, true);

    // The fan-out is partitioned: a push of the direct conversation made
    // above may still arrive (delivery is ordered per conversation, and at
    // least once), so wait for the group's own.
    const convPushes = [];
    const offConv = cb.on("conversation", (c) => convPushes.push(c));
    const group = await ca.create("group", [b], "Team");
    assert.equal(group.kind, "group");
    assert.equal(group.title, "Team");
    for (let waited = 0; !convPushes.some((c) => c.conversation.conv === group.conv); waited += 10) {
      assert.ok(waited < 10_000, "no conversation push of the group in 10 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    offConv();

    const msg = next(cb, "message");
    const ack = await ca.send(group.conv, { text: "hello" });
    assert.equal(ack.type, "ack");
    assert.ok(ack.seq >= 1);
    const m = await msg;
    assert.equal(m.source, "push");
    assert.equal(m.sender, a);
    assert.equal(m.seq, ack.seq);
    assert.deepEqual(m.body, { text: "hello" });
    assert.equal(ca.lastSeq(group.conv), ack.seq);
    assert.equal(cb.lastSeq(group.conv), ack.seq);

    const typing = next(ca, "typing");
    cb.typing(group.conv);
    assert.deepEqual(await typing, { type: "typing", conv: group.conv, user: b });

    const read = next(ca, "read", (r) => r.user === b);
    await cb.read(group.conv, ack.seq);
    assert.equal((await read).seq, ack.seq);

    const member = next(cb, "member", (e) => e.user === carol);
    await ca.addMembers(group.conv, [carol]);
    const me = await member;
    assert.equal(me.action, "added");
    assert.equal(me.by, a);

    const offline = next(ca, "presence", (p) => p.user === b && !p.online);
    cb.close();
    assert.equal((await offline).online, false);
    ca.close();
  });

  test("block, unblock, blocked; the other device hears of it; the blocked user is refused", async () => {
    const [a, m] = [uid("a"), uid("mallory")];
    const phone = client(a);
    const laptop = client(a);
    const cm = client(m);
    await Promise.all([phone.connect(), laptop.connect(), cm.connect()]);
    const heard = next(laptop, "blocked");
    assert.deepEqual(await phone.block(m), [m]);
    assert.deepEqual(await heard, [m]);
    assert.deepEqual(await laptop.blocked(), [m]);
    await assert.rejects(cm.create("direct", [a]), (e) => e instanceof NatterError && e.code === "forbidden");
    await assert.rejects(phone.block(a), (e) => e.code === "bad_request");
    assert.deepEqual(await phone.unblock(m), []);
    assert.equal((await cm.create("direct", [a])).kind, "direct");
  });

  test("consent: requests, decline, add_policy, invitations, hide", async () => {
    const [a, b, c] = [uid("ca"), uid("cb"), uid("cc")];
    const [ca, cb, cc] = [client(a), client(b), client(c)];
    await Promise.all([ca.connect(), cb.connect(), cc.connect()]);
    // A stranger's direct conversation is a request to b, pending for a.
    const pushed = next(cb, "conversation");
    const d = await ca.create("direct", [b]);
    assert.equal(d.state, "pending");
    assert.equal((await pushed).conversation.state, "request");
    assert.equal((await cb.conversations()).find((x) => x.conv === d.conv).state, "request");
    // b declines: it is gone for b, and a's messages do not bring it back.
    await cb.decline(d.conv);
    await ca.send(d.conv, { text: "hello?" });
    assert.equal((await cb.conversations()).find((x) => x.conv === d.conv), undefined);
    // add_policy: contacts refuses a stranger with a clear error; nobody invites.
    assert.equal((await cb.settings()).add_policy, "everyone");
    assert.equal((await cb.setAddPolicy("contacts")).add_policy, "contacts");
    const g = await ca.create("group", [], "G");
    await assert.rejects(ca.addOrInvite(g.conv, [b]), (e) => e.code === "forbidden" && /accepts adds only from contacts/.test(e.message));
    await cc.setAddPolicy("nobody");
    const invitation = next(cc, "conversation");
    assert.deepEqual(await ca.addOrInvite(g.conv, [c]), [c]);
    assert.equal((await invitation).conversation.state, "invited");
    await assert.rejects(cc.sync(g.conv), (e) => e.code === "forbidden");
    const joined = await cc.accept(g.conv);
    assert.equal(joined.state, undefined);
    // hide: off the list until a new message.
    await cc.hide(g.conv);
    assert.equal((await cc.conversations()).find((x) => x.conv === g.conv), undefined);
    await ca.send(g.conv, { text: "back" });
    assert.ok((await cc.conversations()).find((x) => x.conv === g.conv));
  });

  test("group settings: roles, update with event items, read-only, moderator delete, bans", async () => {
    const [a, b, c] = [uid("ga"), uid("gb"), uid("gc")];
    const [ca, cb, cc] = [client(a), client(b), client(c)];
    await Promise.all([ca.connect(), cb.connect(), cc.connect()]);
    const g = await ca.create("group", [b, c], "G");
    assert.equal(g.role, "owner");
    await assert.rejects(cb.update(g.conv, { title: "mine" }), (e) => e.code === "forbidden");
    const promoted = next(cb, "conversation", (p) => p.conversation.conv === g.conv && p.conversation.role === "admin");
    await ca.setRole(g.conv, b, "admin");
    assert.deepEqual((await promoted).conversation.admins, [b]);
    // The admin renames the group: c sees the event item and describes it.
    const item = next(cc, "message", (m) => groupEvent(m)?.event === "renamed");
    const got = await cb.update(g.conv, { title: "Launch", topic: "ship it", avatar: "https://img.example/l.png" });
    assert.equal(got.title, "Launch");
    assert.equal(got.topic, "ship it");
    assert.equal(got.role, "admin");
    assert.equal(describeGroupEvent(groupEvent(await item)), `${b} renamed the group to Launch`);
    await assert.rejects(cb.update(g.conv, { avatar: "http://img.example/l.png" }), (e) => e.code === "bad_request");
    // Only admins add: c may not add, the admin may; then every member again.
    const oaa = next(cc, "message", (m) => groupEvent(m)?.event === "only_admins_add");
    assert.equal((await cb.update(g.conv, { only_admins_add: true })).only_admins_add, true);
    assert.equal(describeGroupEvent(groupEvent(await oaa)), `${b} let only admins add members`);
    await assert.rejects(cc.addMembers(g.conv, [uid("gd")]), (e) => e.code === "forbidden" && /only the owner and admins add/.test(e.message));
    assert.equal((await cb.update(g.conv, { only_admins_add: false })).only_admins_add, undefined);
    // Read-only: c may not send, the admin may; the admin deletes c's message.
    const own = await cc.send(g.conv, { text: "hi" });
    await cb.update(g.conv, { read_only: true });
    await assert.rejects(cc.send(g.conv, { text: "may I?" }), (e) => e.code === "forbidden");
    await cb.send(g.conv, { text: "announcement" });
    const del = await cb.delete(g.conv, own.seq);
    assert.ok(isModeratorDelete({ kind: "delete", sender: b }, { sender: c }) && del.seq > own.seq);
    // Bans: c is removed and cannot be added back until unbanned.
    await cb.ban(g.conv, c);
    await assert.rejects(ca.addMembers(g.conv, [c]), (e) => e.code === "forbidden" && /banned/.test(e.message));
    assert.deepEqual(await cb.banned(g.conv), [c]);
    await ca.unban(g.conv, c);
    assert.deepEqual(await ca.banned(g.conv), []);
    await ca.transfer(g.conv, b);
    assert.equal((await ca.conversations()).find((x) => x.conv === g.conv).role, "admin");
  });

  test("push devices: register, list, unregister by id and by token", async () => {
    const c = client(uid("dev"));
    await c.connect();
    const tok = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const id = await c.registerDevice("apns", tok);
    const want = createHash("sha256").update("apns\0" + tok).digest("hex").slice(0, 16);
    assert.equal(id, want);
    assert.equal(await c.registerDevice("apns", tok), id);
    const fcm = await c.registerDevice("fcm", "fcm-token-1");
    assert.deepEqual((await c.devices()).map((d) => [d.device_id, d.platform]), [[id, "apns"], [fcm, "fcm"]]);
    await c.unregisterDevice({ device_id: id });
    await c.unregisterDevice({ token: "fcm-token-1" });
    assert.deepEqual(await c.devices(), []);
    await assert.rejects(c.registerDevice("pager", "x"), (e) => e.code === "bad_request");
    c.close();
  });

  test("requests: errors carry the contract's code, timeouts reject", async () => {
    const rec = recordingWS();
    const c = client(uid("e"), { WebSocket: rec.WebSocket });
    await c.connect();
    await assert.rejects(c.sync("g_doesnotexist"), (e) => e instanceof NatterError && e.code === "forbidden");
    await assert.rejects(c.create("direct", []), (e) => e.code === "bad_request");
    rec.dropIncoming = (f) => f.type === "conversations"; // a server that never answers
    await assert.rejects(c.request({ type: "conversations" }, 200), (e) => e.code === "timeout");
    rec.dropIncoming = null;
    // The connection is still fine.
    assert.ok(Array.isArray(await c.conversations()));
    c.close();
    await assert.rejects(c.conversations(), (e) => e.code === "closed");
  });

  test("history pages backwards; send is idempotent by client_id", async () => {
    const [a, b] = [uid("h"), uid("hb")];
    const c = client(a);
    await c.connect();
    const conv = (await c.create("direct", [b])).conv;
    const seqs = [];
    for (let i = 0; i < 7; i++) seqs.push((await c.send(conv, { text: `m${i}` })).seq);
    const newest = await c.history(conv, 0, 3);
    assert.deepEqual(newest.messages.map((m) => m.body.text), ["m4", "m5", "m6"]);
    assert.equal(newest.more, true);
    const older = await c.history(conv, newest.messages[0].seq, 10);
    assert.deepEqual(older.messages.map((m) => m.body.text), ["m0", "m1", "m2", "m3"]);
    assert.equal(older.more, false);

    const id = newClientId();
    const first = await c.send(conv, { text: "once" }, { clientId: id });
    const again = await c.send(conv, { text: "twice?" }, { clientId: id });
    assert.equal(again.seq, first.seq);
    assert.equal(again.duplicate, true);

    const edit = await c.edit(conv, seqs[0], { text: "m0!" });
    const del = await c.delete(conv, seqs[1]);
    const page = await c.sync(conv, first.seq);
    assert.deepEqual(page.messages.map((m) => [m.kind, m.ref, m.seq]), [["edit", seqs[0], edit.seq], ["delete", seqs[1], del.seq]]);
    c.close();
  });

  test("search finds the user's messages with highlights, pages by cursor, refuses a non-member", async () => {
    const [a, b, m] = [uid("sa"), uid("sb"), uid("sm")];
    const ca = client(a);
    const cm = client(m);
    await Promise.all([ca.connect(), cm.connect()]);
    const conv = (await ca.create("direct", [b])).conv;
    const seqs = [];
    for (const text of ["a <b>lighthouse</b> & more", "second lighthouse", "no match here", "third Lighthouse"]) {
      seqs.push((await ca.send(conv, { text })).seq);
    }
    // The index is written just behind the stream.
    let res;
    for (let i = 0; i < 200; i++) {
      res = await ca.search("lighthouse", { limit: 2 });
      if (res.hits.length === 2 && res.cursor) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(res.hits.map((h) => h.seq), [seqs[3], seqs[1]]);
    assert.equal(res.hits[0].conv, conv);
    assert.equal(res.hits[0].sender, a);
    assert.deepEqual(res.hits[0].highlights, ["third <mark>Lighthouse</mark>"]);
    const older = await ca.search("lighthouse", { limit: 2, cursor: res.cursor, conv });
    assert.deepEqual(older.hits.map((h) => h.seq), [seqs[0]]);
    assert.equal(older.cursor, undefined);
    assert.equal(older.hits[0].highlights[0], "a &lt;b&gt;<mark>lighthouse</mark>&lt;/b&gt; &amp; more");
    assert.deepEqual((await cm.search("lighthouse")).hits, []);
    await assert.rejects(cm.search("lighthouse", { conv }), (e) => e instanceof NatterError && e.code === "forbidden");
    await assert.rejects(ca.search("  "), (e) => e instanceof NatterError && e.code === "bad_request");
  });

  test("replies carry the server's quote; threads page and count on their root", async () => {
    const [a, b] = [uid("ra"), uid("rb")];
    const ca = client(a);
    const cb = client(b);
    await Promise.all([ca.connect(), cb.connect()]);
    const conv = (await ca.create("group", [b], "replies")).conv;
    // Listeners first: a push may come before the ack.
    const gotB = collect(cb, conv);
    const gotA = collect(ca, conv);
    const pushOf = async (got, seq) => {
      await until(() => got.some((m) => m.seq === seq));
      return got.find((m) => m.seq === seq);
    };
    const root = await ca.send(conv, { text: "the   root" });
    const heldRoot = await pushOf(gotB, root.seq);

    const reply = await cb.reply(conv, root.seq, { text: "re" });
    const pushed = await pushOf(gotA, reply.seq);
    assert.equal(pushed.reply_to, root.seq);
    assert.deepEqual(pushed.quote, { seq: root.seq, sender: a, snippet: "the root" });

    const inThread = [];
    for (let i = 0; i < 3; i++) {
      const ack = await ca.sendInThread(conv, root.seq, { text: `t${i}` });
      inThread.push(ack.seq);
      const m = await pushOf(gotB, ack.seq);
      assert.equal(m.thread, root.seq);
      assert.equal(applyThreadReply(heldRoot, m), true);
      assert.equal(applyThreadReply(heldRoot, m), false); // counted once
    }
    assert.equal(heldRoot.thread_count, 3);
    assert.equal(heldRoot.thread_last_seq, inThread[2]);

    const newest = await cb.threadBefore(conv, root.seq, 0, 2);
    assert.equal(newest.thread, root.seq);
    assert.deepEqual(newest.messages.map((m) => m.seq), inThread.slice(1));
    assert.equal(newest.more, true);
    const oldest = await cb.threadAfter(conv, root.seq, 0, 10);
    assert.deepEqual(oldest.messages.map((m) => m.body.text), ["t0", "t1", "t2"]);
    assert.equal(oldest.more, false);
    // Both directions carry the root as it reads now, with its counts.
    for (const p of [newest, oldest]) {
      assert.equal(p.root.seq, root.seq);
      assert.equal(p.root.sender, a);
      assert.deepEqual(p.root.body, { text: "the   root" });
      assert.equal(p.root.thread_count, 3);
      assert.equal(p.root.thread_last_seq, inThread[2]);
    }
    const page = await cb.history(conv, 0, 50);
    const r = page.messages.find((m) => m.seq === root.seq);
    assert.equal(r.thread_count, 3);
    assert.equal(r.thread_last_seq, inThread[2]);

    await assert.rejects(cb.sendInThread(conv, inThread[0], { text: "nested" }), (e) => e instanceof NatterError && e.code === "bad_request");
    await assert.rejects(cb.reply(conv, inThread[2] + 1000, { text: "?" }), (e) => e instanceof NatterError && e.code === "not_found");
    await assert.rejects(cb.threadAfter(conv, inThread[0]), (e) => e instanceof NatterError && e.code === "bad_request");
    ca.close();
    cb.close();
  });

  test("reconnects and resumes: conversations, then sync page by page", async () => {
    const [a, b] = [uid("r"), uid("rb")];
    const g = gate(srv.token(a));
    const rec = recordingWS();
    const ca = track(new NatterClient({ url: srv.wsURL, token: g.token, WebSocket: rec.WebSocket, syncLimit: 3, backoffInitialMs: 20, backoffMaxMs: 100 }));
    await ca.connect();
    const cb = client(b);
    await cb.connect();
    const conv = (await ca.create("direct", [b])).conv;
    await cb.send(conv, { text: "before" });
    await until(() => ca.lastSeq(conv) > 0);
    const got = collect(ca, conv);

    g.close();
    rec.sockets.at(-1).terminate(); // the network drops
    await next(ca, "state", (s) => s === "reconnecting");
    const sent = [];
    for (let i = 0; i < 7; i++) sent.push((await cb.send(conv, { text: `missed ${i}` })).seq);
    const resumed = next(ca, "resumed");
    g.open();
    const { conversations } = await resumed;
    assert.ok(conversations.some((c) => c.conv === conv));
    assert.deepEqual(got.map((m) => m.seq), sent);
    assert.deepEqual(got.map((m) => m.source), Array(7).fill("sync"));
    assert.deepEqual(got.map((m) => m.body.text), sent.map((_, i) => `missed ${i}`));
    // Three pages of at most 3.
    const syncs = rec.sent.filter((f) => f.type === "sync");
    assert.deepEqual(syncs.map((f) => f.limit), [3, 3, 3]);
    // Live again.
    const live = next(ca, "message", (m) => m.body.text === "live");
    await cb.send(conv, { text: "live" });
    assert.equal((await live).source, "push");
    ca.close();
    cb.close();
  });

  test("resume pages through conversations to the last page", async () => {
    const [a, b] = [uid("p"), uid("pb")];
    const g = gate(srv.token(a));
    const rec = recordingWS();
    // Pages of 2: five conversations take three.
    const ca = track(new NatterClient({ url: srv.wsURL, token: g.token, WebSocket: rec.WebSocket, conversationsLimit: 2, backoffInitialMs: 20, backoffMaxMs: 100 }));
    await ca.connect();
    const cb = client(b);
    await cb.connect();
    const convs = [];
    for (let i = 0; i < 5; i++) convs.push((await cb.create("group", [a], `g${i}`)).conv);
    for (const conv of convs) await cb.send(conv, { text: "before" });
    await until(() => convs.every((conv) => ca.lastSeq(conv) > 0));

    g.close();
    rec.sockets.at(-1).terminate();
    await next(ca, "state", (s) => s === "reconnecting");
    const missed = new Map();
    for (const conv of convs) missed.set(conv, (await cb.send(conv, { text: "missed" })).seq);
    const got = new Map();
    ca.on("message", (m) => m.source === "sync" && got.set(m.conv, m.seq));
    rec.sent.length = 0;
    const resumed = next(ca, "resumed");
    g.open();
    const { conversations } = await resumed;
    assert.deepEqual(conversations.map((c) => c.conv).sort(), [...convs].sort());
    // Every conversation was synced, those on the last page too.
    assert.deepEqual([...got.entries()].sort(), [...missed.entries()].sort());
    const asked = rec.sent.filter((f) => f.type === "conversations");
    assert.equal(asked.length, 3);
    assert.equal(asked[0].after, undefined);
    assert.ok(asked.slice(1).every((f) => typeof f.after === "string" && f.limit === 2));

    const first = await ca.conversationsPage(undefined, 2);
    assert.equal(first.conversations.length, 2);
    assert.equal(first.more, true);
    assert.equal(typeof first.next, "string");
    const all = await ca.conversations();
    assert.deepEqual(all.map((c) => c.conv).sort(), [...convs].sort());
    ca.close();
    cb.close();
  });

  test("a resync push makes the client sync what it missed, on the open connection", async () => {
    const [a, b] = [uid("s"), uid("sb")];
    const rec = recordingWS();
    const ca = client(a, { WebSocket: rec.WebSocket });
    await ca.connect();
    const cb = client(b);
    await cb.connect();
    const conv = (await ca.create("direct", [b])).conv;
    await cb.send(conv, { text: "before" });
    await until(() => ca.lastSeq(conv) > 0);
    const got = collect(ca, conv);

    // Pushes lost on the way (as when the gateway's NATS connection drops).
    rec.dropIncoming = (f) => f.type === "message";
    const sent = [];
    for (let i = 0; i < 4; i++) sent.push((await cb.send(conv, { text: `lost ${i}` })).seq);
    await new Promise((r) => setTimeout(r, 200));
    rec.dropIncoming = null;
    assert.equal(got.length, 0);

    // The gateway says so.
    const sockets = rec.sockets.length;
    const syncsBefore = rec.sent.filter((f) => f.type === "sync").length;
    const resumed = next(ca, "resumed");
    const socket = rec.sockets.at(-1);
    socket.onmessage({ data: JSON.stringify({ type: "resync", reason: "reconnect" }) });
    await resumed;
    assert.deepEqual(got.map((m) => m.seq), sent);
    assert.deepEqual(got.map((m) => m.source), Array(4).fill("sync"));
    assert.ok(rec.sent.filter((f) => f.type === "sync").length > syncsBefore);
    assert.equal(rec.sockets.length, sockets, "no reconnect");
    assert.equal(ca.state, "open");
    ca.close();
    cb.close();
  });

  test("a lost push is noticed by the next push's prev and fetched at once", async () => {
    const [a, b] = [uid("g"), uid("gb")];
    const rec = recordingWS();
    const ca = client(a, { WebSocket: rec.WebSocket });
    await ca.connect();
    const cb = client(b);
    await cb.connect();
    const conv = (await ca.create("direct", [b])).conv;
    const got = collect(ca, conv);
    const first = (await cb.send(conv, { text: "first" })).seq;
    await until(() => ca.heldSeq(conv) === first);
    assert.equal(got[0].prev, 0, "the first item's prev is 0");

    // One push lost on the way; nothing says so but the next push's prev.
    let dropped = null;
    rec.dropIncoming = (f) => {
      if (f.type !== "message" || dropped) return false;
      dropped = f;
      return true;
    };
    const lost = (await cb.send(conv, { text: "lost" })).seq;
    await until(() => dropped !== null);
    rec.dropIncoming = null;
    assert.equal(dropped.seq, lost);
    assert.equal(dropped.prev, first);
    const syncsBefore = rec.sent.filter((f) => f.type === "sync").length;
    const sockets = rec.sockets.length;
    const next = (await cb.send(conv, { text: "next" })).seq;
    const sent = Date.now();
    await until(() => got.some((m) => m.seq === lost), 2_000);
    assert.ok(Date.now() - sent < 2_000);
    await until(() => ca.heldSeq(conv) === next);
    assert.deepEqual(
      got.map((m) => [m.seq, m.prev, m.source]),
      [
        [first, 0, "push"],
        [next, lost, "push"],
        [lost, first, "sync"],
      ],
    );
    assert.ok(rec.sent.filter((f) => f.type === "sync" && f.after === first).length > 0, "synced after the contiguous point");
    assert.ok(rec.sent.filter((f) => f.type === "sync").length > syncsBefore);
    assert.equal(rec.sockets.length, sockets, "no reconnect");
    ca.close();
    cb.close();
  });

  test("the outbox survives a reconnect and keeps send order", async () => {
    const [a, b] = [uid("o"), uid("ob")];
    const g = gate(srv.token(a));
    const rec = recordingWS();
    const ca = track(new NatterClient({ url: srv.wsURL, token: g.token, WebSocket: rec.WebSocket, backoffInitialMs: 20, backoffMaxMs: 100 }));
    await ca.connect();
    const cb = client(b);
    await cb.connect();
    const conv = (await ca.create("direct", [b])).conv;
    const got = collect(cb, conv);

    g.close();
    rec.sockets.at(-1).terminate();
    await next(ca, "state", (s) => s === "reconnecting");
    const acks = [1, 2, 3, 4, 5].map((i) => ca.send(conv, { text: `queued ${i}` }));
    assert.equal(ca.outbox.length, 5);
    g.open();
    const seqs = (await Promise.all(acks)).map((x) => x.seq);
    assert.deepEqual([...seqs].sort((x, y) => x - y), seqs, "seqs follow send order");
    assert.equal(ca.outbox.length, 0);
    await until(() => got.length === 5);
    assert.deepEqual(got.map((m) => m.body.text), [1, 2, 3, 4, 5].map((i) => `queued ${i}`));
    ca.close();
    cb.close();
  });

  test("a lost ack is retried with the same client_id and delivered once", async () => {
    const [a, b] = [uid("l"), uid("lb")];
    const rec = recordingWS();
    const ca = track(new NatterClient({ url: srv.wsURL, token: srv.token(a), WebSocket: rec.WebSocket, backoffInitialMs: 20, backoffMaxMs: 100 }));
    await ca.connect();
    const cb = client(b);
    await cb.connect();
    const conv = (await ca.create("direct", [b])).conv;
    const got = collect(cb, conv);

    // Swallow the first ack, then cut the connection: the message is stored
    // but the client cannot know.
    let dropped = false;
    rec.dropIncoming = (f) => {
      if (f.type === "ack" && !dropped) {
        dropped = true;
        setTimeout(() => rec.sockets.at(-1).terminate(), 10);
        return true;
      }
      return false;
    };
    const ack = await ca.send(conv, { text: "exactly once" });
    assert.ok(dropped);
    const sends = rec.sent.filter((f) => f.type === "send");
    assert.ok(sends.length >= 1);
    assert.ok(sends.every((f) => f.client_id === sends[0].client_id));
    // The first attempt is a first send; every later one is marked, so the
    // server finds the original past its short duplicate window.
    assert.ok(sends.length >= 2);
    assert.equal(sends[0].resend, undefined);
    assert.ok(sends.slice(1).every((f) => f.resend === true));
    await until(() => got.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, 1);
    assert.equal(got[0].seq, ack.seq);
    ca.close();
    cb.close();
  });

  test("a persisted outbox is sent by the next client", async () => {
    const [a, b] = [uid("p"), uid("pb")];
    let saved = [];
    const storage = { load: () => saved, save: (e) => (saved = JSON.parse(JSON.stringify(e))) };
    const ca = client(a, { storage });
    await ca.connect();
    const conv = (await ca.create("direct", [b])).conv;
    ca.close();
    const lost = ca.send(conv, { text: "from the last page load" });
    await assert.rejects(lost, (e) => e.code === "closed");
    assert.equal(saved.length, 1);
    assert.equal(saved[0].conv, conv);
    const savedId = saved[0].client_id;

    const cb = client(b);
    await cb.connect();
    const got = next(cb, "message");
    const ca2 = client(a, { storage });
    const sent = next(ca2, "sent");
    await ca2.connect();
    const { entry, ack } = await sent;
    assert.equal(entry.client_id, savedId);
    assert.deepEqual(saved, []);
    const m = await got;
    assert.equal(m.seq, ack.seq);
    assert.equal(m.client_id, entry.client_id);
    ca2.close();
    cb.close();
  });

  test("an outbox entry older than sendExpiryMs fails as expired and is not resent", async () => {
    const [a, b] = [uid("x"), uid("xb")];
    const ca = client(a);
    await ca.connect();
    const conv = (await ca.create("direct", [b])).conv;
    ca.close();
    // Left by a page that was closed long ago: past the expiry, a resend
    // could fall outside the server's de-duplication window.
    let saved = [{ conv, client_id: newClientId(), body: { text: "stale" }, queued_at: Date.now() - 60_000 },
                 { conv, client_id: newClientId(), body: { text: "fresh" }, queued_at: Date.now() }];
    const storage = { load: () => saved, save: (e) => (saved = JSON.parse(JSON.stringify(e))) };
    const rec = recordingWS();
    const ca2 = track(new NatterClient({ url: srv.wsURL, token: srv.token(a), WebSocket: rec.WebSocket, storage, sendExpiryMs: 30_000, backoffInitialMs: 50, backoffMaxMs: 500 }));
    const failed = next(ca2, "send_failed");
    const sent = next(ca2, "sent");
    await ca2.connect();
    const { entry, error } = await failed;
    assert.ok(error instanceof NatterError);
    assert.equal(error.code, "expired");
    assert.equal(entry.body.text, "stale");
    assert.equal((await sent).entry.body.text, "fresh");
    const sends = rec.sent.filter((f) => f.type === "send");
    assert.deepEqual(sends.map((f) => f.body.text), ["fresh"]);
    assert.deepEqual(saved, []);
    ca2.close();
  });

  test("account: exportData gives an archive of the user's own data; deleteAccount erases and closes for good", async () => {
    const [ua, ub] = [uid("acc-a"), uid("acc-b")];
    const a = client(ua);
    const b = client(ub);
    await Promise.all([a.connect(), b.connect()]);
    const conv = await a.create("group", [ub], "export me");
    const id = await a.uploadFile(new TextEncoder().encode("a's file"), "text/plain", "f.txt");
    const mine = await a.send(conv.conv, { text: "a's words", attachments: [id] });
    await b.send(conv.conv, { text: "b's words" });
    const ready = await a.exportData();
    assert.equal(ready.type, "export_ready");
    assert.equal(ready.conversations, 1);
    assert.equal(ready.messages, 1);
    const resp = await fetch(a.fileURL(ready.file.url));
    assert.equal(resp.status, 200);
    const lines = parseExport(await resp.text());
    assert.deepEqual(lines.map((l) => l.type), ["export", "conversation", "message", "end"]);
    assert.equal(lines[2].message.seq, mine.seq);
    assert.equal(lines[2].message.sender, ua);
    assert.equal((await fetch(a.fileURL(lines[2].message.files[0].url))).status, 200);
    const direct = await b.create("direct", [ua]);
    await a.send(direct.conv, { text: "a in private" });
    assert.equal(deletedPeer(direct, ub), undefined);
    // Deleting: b sees a leave the group, and the direct conversation
    // become one with a deleted account; a is closed and its token refused.
    const left = next(b, "member", (m) => m.user === ua && m.action === "removed");
    const marked = next(b, "conversation", (e) => e.conversation.conv === direct.conv && (e.conversation.erased ?? []).includes(ua), 20_000);
    const item = next(b, "message", (m) => m.conv === direct.conv && groupEvent(m)?.event === "account_deleted", 20_000);
    const res = await a.deleteAccount();
    assert.equal(res.user, ua);
    assert.equal(a.state, "closed");
    await left;
    assert.equal(deletedPeer((await marked).conversation, ub), ua);
    assert.equal(describeGroupEvent(groupEvent(await item)), `${ua}'s account was deleted`);
    const listed = (await b.conversations()).find((c) => c.conv === direct.conv);
    assert.deepEqual(listed.erased, [ua]);
    assert.equal(erasedConversation(listed), true);
    assert.equal(deletedPeer(listed, ub), ua);
    await assert.rejects(b.send(direct.conv, { text: "anyone there?" }), (e) => e instanceof NatterError && e.code === "forbidden");
    const again = client(ua);
    await assert.rejects(again.connect(), (e) => e instanceof NatterError && e.code === "unauthorized" && e.message.includes(ACCOUNT_ERASED));
    b.close();
  });

  test("attachments: uploadFile PUTs the bytes, members get file URLs, others are refused", async () => {
    const [ua, ub, uc] = [uid("att-a"), uid("att-b"), uid("att-c")];
    const a = client(ua);
    const b = client(ub);
    const c = client(uc);
    await Promise.all([a.connect(), b.connect(), c.connect()]);
    const conv = await a.create("group", [ub], "files");
    const bytes = new TextEncoder().encode("hello from node");
    const id = await a.uploadFile(bytes, "text/plain", "hello.txt");
    assert.match(id, /^att_[a-z0-9]+$/);
    const pushed = next(b, "message", (m) => m.conv === conv.conv);
    const ack = await a.send(conv.conv, { text: "see file", attachments: [id] });
    assert.equal(ack.files?.[0]?.id, id);
    const m = await pushed;
    assert.equal(m.files?.length, 1);
    assert.equal(m.files[0].name, "hello.txt");
    assert.equal(m.files[0].size, bytes.byteLength);
    const resp = await fetch(b.fileURL(m.files[0].url));
    assert.equal(resp.status, 200);
    assert.equal(await resp.text(), "hello from node");
    // Tampered: the same signature for another file.
    const other = await a.uploadFile(new TextEncoder().encode("private"), "text/plain");
    assert.equal((await fetch(b.fileURL(m.files[0].url.replace(id, other)))).status, 403);
    // Not a member: no page, and the id is not c's to send.
    await assert.rejects(c.history(conv.conv), (e) => e instanceof NatterError && e.code === "forbidden");
    const own = await c.create("group", [], "mine");
    await assert.rejects(c.send(own.conv, { attachments: [id] }), (e) => e instanceof NatterError && e.code === "forbidden");
    // Bounds.
    await assert.rejects(a.upload("text/html", 10), (e) => e instanceof NatterError && e.code === "bad_request");
    const page = await b.history(conv.conv);
    assert.equal(page.messages.at(-1).files?.[0]?.id, id);
    for (const x of [a, b, c]) x.close();
  });

  test("heartbeat pings keep an idle connection open", async () => {
    const rec = recordingWS();
    const c = track(new NatterClient({ url: srv.wsURL, token: srv.token(uid("hb")), WebSocket: rec.WebSocket }));
    const closes = [];
    c.on("close", (e) => closes.push(e));
    await c.connect();
    await new Promise((r) => setTimeout(r, 5_500)); // more than 2 × heartbeat_s
    assert.deepEqual(closes, []);
    assert.equal(c.state, "open");
    assert.ok(rec.sent.filter((f) => f.type === "ping").length >= 2);
    c.close();
  });

  test("backoff is full jitter under a growing cap", () => {
    assert.equal(backoffDelay(0, 500, 30_000, () => 0.999999), 499);
    assert.equal(backoffDelay(3, 500, 30_000, () => 0.5), 2000);
    assert.equal(backoffDelay(20, 500, 30_000, () => 0.5), 15_000);
    assert.equal(backoffDelay(5, 500, 30_000, () => 0), 0);
  });
});

describe("delivery receipts", { timeout: 60_000 }, () => {
  test("messages that reach a client are reported delivered, coalesced; receipts; reports can be turned off", async () => {
    const [a, b, c] = [uid("a"), uid("b"), uid("c")];
    const rec = recordingWS();
    const ca = client(a);
    const cb = client(b, { WebSocket: rec.WebSocket, deliveredDelayMs: 100 });
    const cc = client(c, { deliveredDelayMs: 0 }); // off
    await Promise.all([ca.connect(), cb.connect(), cc.connect()]);
    const group = await ca.create("group", [b, c], "Ticks");
    const got = collect(cb, group.conv);
    const gotC = collect(cc, group.conv);
    const delivered = [];
    ca.on("delivered", (d) => d.conv === group.conv && delivered.push(d));
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await ca.send(group.conv, { text: `m${i}` })).seq;
    await until(() => got.length === 5 && gotC.length === 5);
    await until(() => delivered.some((d) => d.user === b && d.seq === last));
    // Five messages cost b at most a couple of reports, cumulative, no ids.
    const reports = rec.sent.filter((f) => f.type === "delivered");
    assert.ok(reports.length >= 1 && reports.length <= 3, `b sent ${reports.length} delivered frames`);
    assert.ok(reports.every((f) => f.conv === group.conv && f.id === undefined));
    assert.equal(reports.at(-1).seq, last);
    // c turned reports off: nothing from c.
    await new Promise((r) => setTimeout(r, 800));
    assert.ok(!delivered.some((d) => d.user === c), JSON.stringify(delivered));

    const byUser = Object.fromEntries((await ca.receipts(group.conv)).map((r) => [r.user, r]));
    assert.deepEqual(byUser[b], { user: b, delivered: last, read: 0 });
    assert.deepEqual(byUser[c], { user: c, delivered: 0, read: 0 });
    await cc.markDelivered(group.conv, last);
    await until(() => delivered.some((d) => d.user === c && d.seq === last));
  });
});

describe("token expiry", { timeout: 60_000 }, () => {
  // Its own server without clock-skew leeway, so that a connection ends
  // right at its token's exp.
  let strict;
  before(async () => {
    strict = await startNatter(["--heartbeat", "2s", "--jwt-leeway", "0s"]);
  });
  after(async () => {
    await strict?.stop();
  });

  test("a token that expires closes the connection with 4003 and stops the client", async () => {
    const tok = strict.token(uid("exp"), "2s");
    const c = track(new NatterClient({ url: strict.wsURL, token: tok, WebSocket }));
    const closed = next(c, "close", () => true, 10_000);
    await c.connect();
    const { code } = await closed;
    assert.equal(code, 4003);
    await until(() => c.state === "closed");
    assert.ok(Date.now() >= tokenExpiry(tok) - 100, "closed before exp");
  });

  test("the refreshToken hook keeps the connection open past the first token's exp", async () => {
    const u = uid("refresh");
    let calls = 0;
    const first = strict.token(u, "3s");
    const rec = recordingWS();
    const c = track(
      new NatterClient({
        url: strict.wsURL,
        token: first,
        refreshToken: () => {
          calls++;
          return strict.token(u, "3s");
        },
        WebSocket: rec.WebSocket,
      }),
    );
    const closes = [];
    c.on("close", (e) => closes.push(e));
    await c.connect();
    await new Promise((r) => setTimeout(r, tokenExpiry(first) - Date.now() + 2_500));
    assert.deepEqual(closes, []);
    assert.equal(c.state, "open");
    assert.equal(rec.sockets.length, 1);
    assert.ok(calls >= 2, `refreshed ${calls} times`);
    assert.ok(rec.sent.filter((f) => f.type === "reauth").length >= 2);
    await c.conversations(); // still serves requests
    c.close();
  });

  test("reauth refuses another user's token and a bad one", async () => {
    const c = track(new NatterClient({ url: strict.wsURL, token: strict.token(uid("ra")), WebSocket }));
    await c.connect();
    await assert.rejects(c.reauth(strict.token(uid("other"))), (e) => e instanceof NatterError && e.code === "forbidden");
    await assert.rejects(c.reauth("not.a.token"), (e) => e instanceof NatterError && e.code === "unauthorized");
    assert.equal(c.state, "open");
    c.close();
  });

  test("refreshAt leads by a quarter of the remaining life, at most a minute", () => {
    assert.equal(refreshAt(0, 4_000), 3_000);
    assert.equal(refreshAt(0, 24 * 3600_000), 24 * 3600_000 - 60_000);
    assert.equal(tokenExpiry("x"), 0);
  });
});

// Mentions and mute levels (client/src/mentions.ts).
import { MENTION_ALL, completeMention, mentionCandidates, mentionQuery, mentionSpans, mentionsUser, parseMentions } from "../dist/natter.js";

describe("mentions", { timeout: 60_000 }, () => {
  test("send with mentions reaches the members; the server refuses outsiders and @all from a member", async () => {
    const [a, b, c] = [uid("ma"), uid("mb"), uid("mc")];
    const ca = client(a);
    const cb = client(b);
    await ca.connect();
    await cb.connect();
    const g = await ca.create("group", [b, c], "Team");
    const got = next(cb, "message", (m) => m.conv === g.conv && m.sender === a);
    const ack = await ca.send(g.conv, { text: `@${b} @${c} hi` }, { mentions: parseMentions(`@${b} @${c} hi`, g.members) });
    const m = await got;
    assert.equal(m.seq, ack.seq);
    assert.deepEqual(m.mentions, [b, c]);
    assert.ok(mentionsUser(m, b));
    assert.ok(!mentionsUser(m, a));
    const all = next(cb, "message", (m) => m.conv === g.conv && m.seq > ack.seq);
    await ca.send(g.conv, { text: "@all hi" }, { mentions: [MENTION_ALL] });
    assert.ok(mentionsUser(await all, b));

    await assert.rejects(cb.send(g.conv, { text: "@all" }, { mentions: [MENTION_ALL] }), (e) => e instanceof NatterError && e.code === "forbidden");
    await assert.rejects(cb.send(g.conv, { text: "@zed" }, { mentions: ["zed"] }), (e) => e instanceof NatterError && e.code === "bad_request" && e.message.includes('"zed"'));
    assert.equal(cb.outbox.length, 0, "a refused send leaves the outbox");
  });

  test("mute levels show in the conversation list", async () => {
    const a = uid("mu");
    const ca = client(a);
    await ca.connect();
    const g = await ca.create("group", [uid("mv")], "Quiet");
    const level = async () => (await ca.conversations()).find((x) => x.conv === g.conv).mute;
    assert.equal(await level(), undefined);
    await ca.mute(g.conv, "mentions");
    assert.equal(await level(), "mentions");
    await ca.mute(g.conv, "all", new Date(Date.now() + 3600_000));
    assert.equal(await level(), "all");
    await ca.mute(g.conv, "none");
    assert.equal(await level(), undefined);
    await assert.rejects(ca.mute(g.conv, "loud"), (e) => e.code === "bad_request");
  });

  test("parse, find, complete and render mentions", () => {
    const members = ["alice", "bob", "bobby", "carol"];
    assert.deepEqual(parseMentions("@bob and @carol, @bob again, @zed, mail bob@example.org", members), ["bob", "carol"]);
    assert.deepEqual(parseMentions("@all see @alice", members), ["alice"]);
    assert.deepEqual(parseMentions("@all see @alice", members, true), [MENTION_ALL, "alice"]);
    assert.deepEqual(mentionQuery("hi @bo", 6), { start: 3, query: "bo" });
    assert.deepEqual(mentionQuery("@", 1), { start: 0, query: "" });
    assert.equal(mentionQuery("mail bob@ex", 11), null);
    assert.equal(mentionQuery("hi @bob there", 13), null);
    assert.deepEqual(mentionCandidates("bo", members), ["bob", "bobby"]);
    assert.deepEqual(mentionCandidates("o", members), ["alice", "bob", "bobby", "carol"].filter((u) => u.includes("o")).sort());
    assert.deepEqual(mentionCandidates("a", members, true), [MENTION_ALL, "alice", "carol"]);
    assert.deepEqual(mentionCandidates("", members, false, 2), ["alice", "bob"]);
    assert.deepEqual(completeMention("hi @bo!", 3, 6, "bobby"), { text: "hi @bobby !", cursor: 10 });
    assert.deepEqual(mentionSpans("hey @bob, @carol and @zed", ["bob"]), [{ text: "hey " }, { text: "@bob", mention: "bob" }, { text: ", @carol and @zed" }]);
    assert.deepEqual(mentionSpans("@all go", [MENTION_ALL]), [{ text: "@all", mention: MENTION_ALL }, { text: " go" }]);
    assert.deepEqual(mentionSpans("plain", undefined), [{ text: "plain" }]);
  });
});

describe("disappearing messages", { timeout: 60_000 }, () => {
  test("a ttl set on a group stamps messages with expires_at; once expired the client shows them nowhere", async () => {
    const [a, b] = [uid("ta"), uid("tb")];
    const ca = client(a);
    const cb = client(b);
    await ca.connect();
    await cb.connect();
    const g = await ca.create("group", [b], "Vanishing");
    await assert.rejects(ca.setTTL(g.conv, 5), (e) => e instanceof NatterError && e.code === "bad_request");
    await assert.rejects(cb.setTTL(g.conv, 4), (e) => e instanceof NatterError && e.code === "forbidden");
    const keep = await ca.send(g.conv, { text: "before" });
    assert.equal(keep.expires_at, undefined);
    const item = next(cb, "message", (m) => m.conv === g.conv && m.kind === "event");
    const c = await ca.setTTL(g.conv, 4);
    assert.equal(c.ttl, 4);
    const ev = groupEvent(await item);
    assert.equal(describeGroupEvent(ev), `${a} turned on disappearing messages (${describeTTL(4)})`);
    const ack = await ca.send(g.conv, { text: "vanishing" });
    assert.ok(ack.expires_at, "the ack carries expires_at");
    assert.equal(Date.parse(ack.expires_at) - Date.parse(ack.ts), 4000);
    await ca.setTTL(g.conv, 0);
    const after = await ca.send(g.conv, { text: "after" });
    assert.equal(after.expires_at, undefined);
    // Past expires_at: pages leave it out, chained over it.
    await until(() => isExpired(ack), 30_000);
    const page = await cb.sync(g.conv, 0, 100);
    assert.ok(!page.messages.some((m) => m.seq === ack.seq), "sync returns the expired message");
    const texts = page.messages.filter((m) => !m.kind).map((m) => m.body.text);
    assert.deepEqual(texts, ["before", "after"]);
    const hist = await cb.history(g.conv, 0, 100);
    assert.ok(!hist.messages.some((m) => m.seq === ack.seq), "history returns the expired message");
  });

  test("isExpired and dropExpired", () => {
    const now = Date.parse("2026-12-03T10:00:00Z");
    const items = [{ seq: 1 }, { seq: 2, expires_at: "2026-12-03T09:59:59Z" }, { seq: 3, expires_at: "2026-12-03T10:00:01Z" }];
    assert.deepEqual(dropExpired(items, now).map((m) => m.seq), [1, 3]);
    assert.equal(isExpired({ expires_at: "2026-12-03T10:00:00Z" }, now), true);
    assert.equal(isExpired({}, now), false);
    assert.equal(describeTTL(86400), "1 day");
    assert.equal(describeGroupEvent({ event: "retention_changed", by: "carol", retention_days: 30 }), "carol keeps messages 30 days");
    assert.equal(describeGroupEvent({ event: "ttl_changed", by: "carol", ttl: 0 }), "carol turned off disappearing messages");
  });
});
