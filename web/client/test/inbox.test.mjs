// Tests of the Inbox model against a real `natter serve --dev`: fed with
// the pushes, it shows what the server lists.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { Inbox, NatterClient, inboxActivity, snippet } from "../dist/natter.js";
import { startNatter } from "../../testutil/natter.mjs";

let srv;
before(async () => {
  srv = await startNatter([]);
});
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

function client(user) {
  const c = new NatterClient({ url: srv.wsURL, token: srv.token(user), WebSocket, backoffInitialMs: 50, backoffMaxMs: 500 });
  clients.push(c);
  return c;
}

let n = 0;
const uid = (name) => `${name}${++n}${Date.now().toString(36)}`;

/** What a list shows: order, previews, counts, markers. */
function shown(list) {
  return list.map((c) => ({
    conv: c.conv,
    last_seq: c.last_seq,
    read_seq: c.read_seq,
    unread: c.unread,
    mention_count: c.mention_count ?? 0,
    last: c.last ?? null,
  }));
}

/** Waits until the inbox shows what the server lists now. */
async function converges(inbox, c, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const want = shown((await c.conversationsPage(undefined, 100)).conversations);
    const got = shown(inbox.list());
    try {
      assert.deepEqual(got, want);
      return want;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("Inbox", { timeout: 60_000 }, () => {
  test("snippet folds white space and cuts to 140 characters like the server", () => {
    assert.equal(snippet({ text: "  a \n\t b  " }), "a b");
    assert.equal(snippet({ image: "x" }), "message");
    assert.equal(snippet({}, "event"), "event");
    assert.equal(snippet({ text: "é".repeat(200) }), "é".repeat(140));
    assert.equal(snippet({ text: "😀".repeat(141) }), "😀".repeat(140));
    assert.equal(snippet({ text: "a\u0007b\u0085c" }), "ab c");
  });

  test("orders by the time of the newest message, not its seq", () => {
    // Seqs of conversations in different partition streams do not compare.
    const quiet = { on: () => () => {} };
    const inbox = new Inbox(quiet, "alice");
    const item = (conv, seq, ts) => ({ conv, kind: "group", title: "", member_count: 2, last_seq: seq, read_seq: 0, unread: 0, ...(ts ? { last: { seq, sender: "bob", ts, snippet: "x" } } : {}) });
    for (const c of [
      item("busy", 900, "2026-12-03T10:00:00.5Z"),
      item("newest", 3, "2026-12-03T10:00:01Z"),
      item("old", 40, "2026-12-03T10:00:00.25Z"),
      item("also-old", 7, "2026-12-03T10:00:00.250Z"),
      item("empty", 0),
    ])
      inbox.applyConversation({ conversation: c, inbox: true });
    assert.deepEqual(
      inbox.list().map((c) => c.conv),
      ["newest", "busy", "also-old", "old", "empty"],
    );
    inbox.applyMessage({ conv: "old", seq: 41, sender: "bob", ts: "2026-12-03T10:00:02.1Z", body: { text: "up" } });
    assert.equal(inbox.list()[0].conv, "old");
    // The key apps order their own lists by (the web app does).
    assert.ok(inboxActivity(item("a", 900, "2026-12-03T10:00:00.5Z")) < inboxActivity(item("b", 3, "2026-12-03T10:00:01Z")));
    assert.equal(inboxActivity(item("c", 0)), "");
  });

  test("orders by activity, previews, counts; follows pushes from other devices", async () => {
    const [a, b] = [uid("a"), uid("b")];
    const laptop = client(a);
    const phone = client(a);
    const cb = client(b);
    await Promise.all([laptop.connect(), phone.connect(), cb.connect()]);
    const g1 = await laptop.create("group", [b], "one");
    const g2 = await laptop.create("group", [b], "two");
    const inbox = new Inbox(phone, a);
    await inbox.load();
    let changes = 0;
    inbox.onChange(() => changes++);

    const long = "word ".repeat(60);
    await cb.send(g1.conv, { text: "first" });
    const second = await cb.send(g2.conv, { text: long });
    const third = await cb.send(g1.conv, { text: "  third\n\tline " });
    let want = await converges(inbox, laptop);
    assert.deepEqual(
      want.map((c) => c.conv),
      [g1.conv, g2.conv],
    );
    assert.equal(want[0].unread, 2);
    assert.equal(want[0].last.snippet, "third line");
    assert.equal(want[0].last.seq, third.seq);
    assert.equal(want[1].last.snippet, snippet({ text: long }));
    assert.equal([...want[1].last.snippet].length, 140);
    assert.ok(changes >= 3);

    // An edit of g2's newest message, a message sent from the laptop
    // (read, on top), a partial read of g1 on the laptop.
    await cb.send(g2.conv, { text: "edited" }, { kind: "edit", ref: second.seq });
    await laptop.send(g2.conv, { text: "mine" });
    want = await converges(inbox, laptop);
    assert.deepEqual(
      want.map((c) => c.conv),
      [g2.conv, g1.conv],
    );
    assert.equal(want[0].unread, 0);
    assert.equal(want[0].last.sender, a);

    await laptop.read(g1.conv, third.seq - 1);
    want = await converges(inbox, laptop);
    assert.equal(want[1].unread, 1);
    assert.equal(want[1].read_seq, third.seq - 1);
    await laptop.read(g1.conv, third.seq);
    want = await converges(inbox, laptop);
    assert.equal(want[1].unread, 0);

    // Removed from g1: it drops out.
    await cb.send(g1.conv, { text: "bye" });
    await laptop.leave(g1.conv);
    want = await converges(inbox, laptop);
    assert.deepEqual(
      want.map((c) => c.conv),
      [g2.conv],
    );
    inbox.close();
  });
});
