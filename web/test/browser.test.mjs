// The chat web app in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core), against a real `natter serve --dev` whose
// embedded dist/ is what is tested: two users chat both ways, see typing
// and presence, and one catches up on 20 messages sent while offline;
// search finds a message and opens its conversation; a disappearing
// message vanishes from the open conversation on time.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startNatter } from "../testutil/natter.mjs";

const artifacts = join(dirname(fileURLToPath(import.meta.url)), "..", "test-artifacts");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let srv;
let browser;
before(async () => {
  mkdirSync(artifacts, { recursive: true });
  // --test-ttl: a disappearing message disappears within the test.
  srv = await startNatter(["--test-ttl", "6s"]);
  browser = await chromium.launch({ executablePath, args, headless: true });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

/**
 * A fresh browser context (its own storage) with a page signed in as user.
 * It checks that the page ran under the server's Content-Security-Policy
 * without a violation and keeps the token out of localStorage.
 */
async function signIn(user, viewport, server = srv) {
  const ctx = await browser.newContext({ viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500 });
  const page = await ctx.newPage();
  page.on("pageerror", (err) => console.error(`[${user}] page error:`, err));
  const violations = [];
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
  });
  const res = await page.goto(server.httpURL + "/");
  assert.match(res.headers()["content-security-policy"] ?? "", /default-src 'self'/);
  await page.fill("#login-user", user);
  await page.click("#login-submit");
  await page.waitForSelector("#shell");
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "");
  assert.deepEqual(violations, [], "CSP violations");
  const stored = await page.evaluate(() => ({
    local: Object.entries(localStorage).filter(([k, v]) => /token/i.test(k) || /eyJ[\w-]+\.[\w-]+\./.test(v)),
    session: sessionStorage.getItem("natter.token"),
  }));
  assert.deepEqual(stored.local, [], "a token in localStorage");
  assert.ok(stored.session?.startsWith("eyJ"), "the token is in sessionStorage");
  return { ctx, page };
}

const texts = (page) => page.$$eval("#messages .msg:not(.pending) .text", (els) => els.map((e) => e.textContent));

async function waitForText(page, text, timeout = 10_000) {
  await page.waitForFunction((t) => [...document.querySelectorAll("#messages .msg .text")].some((e) => e.textContent === t), text, { timeout });
}

test("two users chat in Chromium", { timeout: 120_000 }, async () => {
  const alice = "alice", bob = "bob";
  const a = await signIn(alice, { width: 1000, height: 700 });
  let b = await signIn(bob, { width: 390, height: 760 }); // a phone

  // Alice starts a direct conversation with bob.
  await a.page.click("#new-toggle");
  await a.page.selectOption("#new-kind", "direct");
  await a.page.fill("#new-members", bob);
  await a.page.click("#new-submit");
  await a.page.waitForSelector("#chat-title");
  assert.equal(await a.page.textContent("#chat-title"), bob);
  await a.page.fill("#composer-input", "hi bob");
  await a.page.press("#composer-input", "Enter");
  await waitForText(a.page, "hi bob");

  // Bob sees the conversation appear with an unread badge, opens it.
  await b.page.waitForSelector(".conv .badge");
  assert.equal(await b.page.textContent(".conv .badge"), "1");
  assert.equal(await b.page.textContent(".conv .name"), alice);
  await b.page.click(".conv");
  await waitForText(b.page, "hi bob");
  // It is a message request: bob is asked to accept it, and until he does
  // alice learns nothing of him (presence, reading).
  await b.page.waitForSelector("#consent-accept");
  assert.equal(await a.page.textContent(".conv .tag"), "not accepted yet");
  await b.page.waitForSelector("#chat-dot.online");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await a.page.$("#chat-dot.online"), null);
  assert.equal(await a.page.$(".msg.mine .seen"), null);
  await b.page.click("#consent-accept");
  await b.page.waitForSelector("#consent", { state: "hidden" });
  // Presence: both online, seen from each side.
  await a.page.waitForSelector("#chat-dot.online");
  // Bob had read it: accepting shares that, alice sees "seen".
  await a.page.waitForSelector(".msg.mine .seen");
  assert.equal(await a.page.$(".conv .tag"), null);

  // Bob types: alice sees the indicator. Then bob answers.
  await b.page.type("#composer-input", "hello al", { delay: 20 });
  await a.page.waitForFunction(() => document.querySelector("#typing")?.textContent === "bob is typing…");
  await b.page.type("#composer-input", "ice");
  await b.page.click("#composer-send");
  await waitForText(a.page, "hello alice");
  await a.page.waitForFunction(() => document.querySelector("#typing")?.textContent === "");

  // Alice edits and deletes her own messages; bob sees both.
  await a.page.fill("#composer-input", "typo hre");
  await a.page.press("#composer-input", "Enter");
  await waitForText(b.page, "typo hre");
  const typo = a.page.locator(".msg.mine", { hasText: "typo hre" });
  await typo.hover();
  await typo.locator(".edit").click();
  await a.page.fill("#composer-input", "typo here");
  await a.page.press("#composer-input", "Enter");
  await b.page.waitForSelector(".msg:has-text('typo here') .edited");
  await a.page.fill("#composer-input", "oops, wrong chat");
  await a.page.press("#composer-input", "Enter");
  await waitForText(b.page, "oops, wrong chat");
  const oops = a.page.locator(".msg.mine", { hasText: "oops, wrong chat" });
  await oops.hover();
  await oops.locator(".delete").click();
  await b.page.waitForSelector(".msg.deleted");
  assert.ok(!(await texts(b.page)).includes("oops, wrong chat"));

  // Bob goes offline: his dot turns off for alice.
  await b.ctx.close();
  await a.page.waitForSelector("#chat-dot.offline", { timeout: 10_000 });

  // Alice sends 20 messages while he is away.
  const twenty = Array.from({ length: 20 }, (_, i) => `while you were away ${i + 1}`);
  for (const t of twenty) {
    await a.page.fill("#composer-input", t);
    await a.page.press("#composer-input", "Enter");
  }
  await waitForText(a.page, twenty[19]);
  await a.page.waitForFunction(() => document.querySelectorAll("#messages .msg.pending").length === 0);

  // Bob comes back in a fresh context and sees all 20, in order, unread.
  b = await signIn(bob, { width: 390, height: 760 });
  await b.page.waitForFunction(() => document.querySelector(".conv .badge")?.textContent === "20");
  await b.page.click(".conv");
  await waitForText(b.page, twenty[19]);
  const got = await texts(b.page);
  assert.deepEqual(got.filter((t) => t.startsWith("while you were away")), twenty);
  assert.deepEqual(got.slice(0, 3), ["hi bob", "hello alice", "typo here"]);
  await a.page.waitForSelector("#chat-dot.online");
  await a.page.waitForSelector(".msg.mine .seen");

  await a.page.fill("#composer-input", "welcome back");
  await a.page.press("#composer-input", "Enter");
  await waitForText(b.page, "welcome back");
  await a.page.screenshot({ path: join(artifacts, "chat.png") });
  await b.page.screenshot({ path: join(artifacts, "chat-phone.png") });
  await b.page.click("#back");
  await b.page.screenshot({ path: join(artifacts, "list-phone.png") });
  await a.ctx.close();
  await b.ctx.close();
});

test("scroll-back loads history page by page", { timeout: 60_000 }, async () => {
  const [u, v] = ["carol", "dave"];
  // Seed 35 messages through the protocol, then read them with pages of 10.
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const c = new NatterClient({ url: srv.wsURL, token: srv.token(u), WebSocket });
  await c.connect();
  const conv = (await c.create("direct", [v])).conv;
  for (let i = 1; i <= 35; i++) await c.send(conv, { text: `old ${i}` });
  c.close();

  const ctx = await browser.newContext({ viewport: { width: 390, height: 600 } });
  const page = await ctx.newPage();
  await page.goto(srv.httpURL + "/?page=10");
  await page.fill("#login-user", v);
  await page.click("#login-submit");
  await page.click(".conv");
  await waitForText(page, "old 35");
  for (let i = 0; i < 10 && !(await texts(page)).includes("old 1"); i++) {
    await page.$eval("#messages", (el) => (el.scrollTop = 0));
    await page.waitForTimeout(300);
  }
  const got = await texts(page);
  assert.deepEqual(got, Array.from({ length: 35 }, (_, i) => `old ${i + 1}`));
  await ctx.close();
});

test("blocking from a direct conversation collapses the blocked user's messages", { timeout: 60_000 }, async () => {
  const [u, m] = ["erin", "mal"];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const cm = new NatterClient({ url: srv.wsURL, token: srv.token(m), WebSocket });
  await cm.connect();
  const conv = (await cm.create("direct", [u])).conv;
  await cm.send(conv, { text: "first, before the block" });

  const a = await signIn(u, { width: 1000, height: 700 });
  a.page.on("dialog", (d) => void d.accept());
  await a.page.click(".conv");
  await waitForText(a.page, "first, before the block");
  await a.page.click("#block-toggle");
  await a.page.waitForFunction(() => document.querySelector("#block-toggle")?.textContent === "Unblock");
  // The old message collapses; a new one is not pushed live, and mal is refused a new conversation.
  await a.page.waitForSelector(".msg.collapsed");
  assert.ok(!(await texts(a.page)).includes("first, before the block"));
  await cm.send(conv, { text: "are you there?" });
  await assert.rejects(cm.create("group", [u], "trap"), (e) => e.code === "forbidden");
  await a.page.waitForTimeout(500);
  assert.ok(!(await texts(a.page)).includes("are you there?"));
  // Shown on demand.
  await a.page.click(".msg.collapsed .reveal");
  await waitForText(a.page, "first, before the block");
  await a.page.screenshot({ path: join(artifacts, "blocked.png") });
  await a.page.click("#block-toggle");
  await a.page.waitForFunction(() => document.querySelector("#block-toggle")?.textContent === "Block");
  cm.close();
  await a.ctx.close();
});

test("search finds a message with its highlight and opens its conversation", { timeout: 60_000 }, async () => {
  const [u, o] = ["sid", "sol"];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const co = new NatterClient({ url: srv.wsURL, token: srv.token(o), WebSocket });
  await co.connect();
  const conv = (await co.create("direct", [u])).conv;
  await co.send(conv, { text: "meet at the <b>lighthouse</b> at noon" });
  await co.send(conv, { text: "something else" });

  const a = await signIn(u, { width: 1000, height: 700 });
  // The index is written just behind the stream: search until it is found.
  for (let i = 0; ; i++) {
    await a.page.fill("#search-input", "LIGHTHOUSE");
    await a.page.click("#search-submit");
    await a.page.waitForSelector("#search-results .hit");
    if ((await a.page.$$("#search-results .hit:not(.empty)")).length > 0) break;
    assert.ok(i < 50, "the message was never found");
    await a.page.waitForTimeout(200);
  }
  const hit = await a.page.$eval("#search-results .hit:not(.empty)", (li) => ({
    conv: li.dataset.conv,
    text: li.querySelector(".hit-text").textContent,
    marks: [...li.querySelectorAll(".hit-text mark")].map((m) => m.textContent),
    tags: [...li.querySelectorAll(".hit-text *")].map((e) => e.tagName),
  }));
  assert.equal(hit.conv, conv);
  assert.equal(hit.text, "meet at the <b>lighthouse</b> at noon");
  assert.deepEqual(hit.marks, ["lighthouse"]);
  assert.deepEqual(hit.tags, ["MARK"], "only <mark> elements from a highlight");
  await a.page.screenshot({ path: join(artifacts, "search.png") });
  await a.page.click("#search-results .hit");
  await waitForText(a.page, "meet at the <b>lighthouse</b> at noon");
  co.close();
  await a.ctx.close();
});

test("the app refreshes its dev token before it expires and stays connected", { timeout: 60_000 }, async () => {
  // Tokens live 3 s and the server allows no clock skew: without a refresh
  // the connection would be closed with 4003 after at most 3 s.
  const short = await startNatter(["--dev-token-ttl", "3s", "--jwt-leeway", "0s"]);
  try {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await ctx.newPage();
    const sockets = [];
    page.on("websocket", (ws) => {
      const frames = { sent: [], closed: false };
      sockets.push(frames);
      ws.on("framesent", (f) => frames.sent.push(String(f.payload)));
      ws.on("close", () => (frames.closed = true));
    });
    await page.goto(short.httpURL + "/");
    await page.fill("#login-user", "erin");
    await page.click("#login-submit");
    await page.waitForFunction(() => document.querySelector("#status")?.textContent === "");
    await page.waitForTimeout(7_000);
    assert.equal(sockets.length, 1, "the app reconnected instead of refreshing");
    assert.equal(sockets[0].closed, false);
    assert.ok(sockets[0].sent.filter((f) => f.includes('"reauth"')).length >= 2, "no reauth frames");
    assert.equal(await page.textContent("#status"), "");
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => /token/i.test(k))), []);
    await ctx.close();
  } finally {
    await short.stop();
  }
});

test("who may add me: an invitation is accepted in the app", { timeout: 60_000 }, async () => {
  const [u, v] = ["inviter" + Date.now().toString(36), "invitee" + Date.now().toString(36)];
  const p = await signIn(v, { width: 1000, height: 700 });
  await p.page.waitForFunction(() => document.querySelector("#add-policy")?.value === "everyone");
  await p.page.selectOption("#add-policy", "nobody");
  await p.page.waitForFunction(() => document.querySelector("#notice")?.textContent?.startsWith("Saved"));

  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const c = new NatterClient({ url: srv.wsURL, token: srv.token(u), WebSocket });
  await c.connect();
  const g = await c.create("group", [v], "Book club");
  assert.deepEqual(g.invited, [v]);
  await c.send(g.conv, { text: "before you joined" });

  // The invitation shows as such; nothing of the group until accepted.
  await p.page.waitForSelector(".conv .tag.invited");
  await p.page.click(".conv");
  await p.page.waitForSelector("#consent-accept");
  assert.ok(await p.page.$eval("#composer", (el) => el.classList.contains("hidden")));
  assert.deepEqual(await texts(p.page), []);
  await p.page.click("#consent-accept");
  await p.page.waitForSelector("#consent", { state: "hidden" });
  await waitForText(p.page, "before you joined");
  await c.send(g.conv, { text: "welcome" });
  await waitForText(p.page, "welcome");

  // Hidden, it leaves the list; a new message brings it back.
  await p.page.click("#hide-conv");
  await p.page.waitForFunction(() => document.querySelectorAll(".conv[data-conv]").length === 0);
  await c.send(g.conv, { text: "still there?" });
  await p.page.waitForSelector(".conv[data-conv]");
  c.close();
  await p.ctx.close();
});

test("the owner sees pending invitations and withdraws one in the app", { timeout: 60_000 }, async () => {
  const stamp = Date.now().toString(36);
  const [owner, member, invitee] = ["owner" + stamp, "member" + stamp, "guest" + stamp];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const guest = new NatterClient({ url: srv.wsURL, token: srv.token(invitee), WebSocket });
  await guest.connect();
  await guest.setAddPolicy("nobody");
  const guestEvents = [];
  guest.on("member", (e) => guestEvents.push(e));

  const p = await signIn(owner, { width: 1000, height: 700 });
  await p.page.click("#new-toggle");
  await p.page.selectOption("#new-kind", "group");
  await p.page.fill("#new-title", "Garden");
  await p.page.fill("#new-members", `${member} ${invitee}`);
  await p.page.click("#new-submit");
  await p.page.waitForSelector(`#invited .invitee[data-user="${invitee}"]`);

  // The invitee declines by leaving: the owner's list follows.
  const conv = (await guest.conversations()).find((c) => c.state === "invited").conv;
  await guest.leave(conv);
  await p.page.waitForSelector("#invited", { state: "detached" });

  // Invited again from the owner's other device: this page is told.
  const ownerApi = new NatterClient({ url: srv.wsURL, token: srv.token(owner), WebSocket });
  await ownerApi.connect();
  await ownerApi.addMembers(conv, [invitee]);
  await p.page.waitForSelector(`#invited .invitee[data-user="${invitee}"]`);
  await p.page.click("#invited .withdraw");
  await p.page.waitForSelector("#invited", { state: "detached" });
  await p.page.waitForFunction(() => document.querySelector("#notice")?.textContent?.startsWith("Withdrew"));
  // The invitee hears of it as of a removal, and the group is gone.
  const deadline = Date.now() + 10_000;
  while (!guestEvents.some((e) => e.conv === conv && e.action === "removed" && e.user === invitee && e.by === owner)) {
    assert.ok(Date.now() < deadline, `no removal pushed to the invitee: ${JSON.stringify(guestEvents)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await guest.conversations()).some((c) => c.conv === conv), false);
  guest.close();
  ownerApi.close();
  await p.ctx.close();
});

test("the inbox lists conversations by activity with previews and unread badges", { timeout: 60_000 }, async () => {
  const [me, x, y] = ["ivy", "xavier", "yuri"];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const cx = new NatterClient({ url: srv.wsURL, token: srv.token(x), WebSocket });
  const cy = new NatterClient({ url: srv.wsURL, token: srv.token(y), WebSocket });
  await Promise.all([cx.connect(), cy.connect()]);
  // Three groups with ivy, written to oldest first: "plans" gets the
  // newest message, "lunch" the oldest.
  const lunch = (await cx.create("group", [me], "lunch")).conv;
  const plans = (await cy.create("group", [me], "plans")).conv;
  const books = (await cx.create("group", [me, y], "books")).conv;
  await cx.send(lunch, { text: "pizza?" });
  await cy.send(books, { text: "reading   Dune\nagain" });
  await cy.send(plans, { text: "meet at 6" });
  await cy.send(plans, { text: "or 7" });

  const { ctx, page } = await signIn(me, { width: 1000, height: 700 });
  const rows = () =>
    page.$$eval("#convs .conv", (els) =>
      els.map((e) => [e.querySelector(".name")?.textContent, e.querySelector(".preview")?.textContent, e.querySelector(".badge:not(.mention)")?.textContent ?? ""]),
    );
  await page.waitForFunction(() => document.querySelectorAll("#convs .conv .preview").length === 3);
  assert.deepEqual(await rows(), [
    ["plans", "yuri: or 7", "2"],
    ["books", "yuri: reading Dune again", "1"],
    ["lunch", "xavier: pizza?", "1"],
  ]);

  // A new message moves lunch to the top live, with its preview.
  await cx.send(lunch, { text: "@ivy 12:30" });
  await page.waitForFunction(() => document.querySelector("#convs .conv .name")?.textContent === "lunch");
  await page.waitForFunction(() => document.querySelector("#convs .conv .preview")?.textContent === "xavier: @ivy 12:30");
  assert.deepEqual(
    (await rows()).map((r) => r[0]),
    ["lunch", "plans", "books"],
  );
  // Opening plans reads it: its badge goes, the order stays.
  await page.click("#convs .conv:nth-child(2)");
  await waitForText(page, "or 7");
  await page.waitForFunction(() => !document.querySelector("#convs .conv:nth-child(2) .badge"));
  // ivy answers in books: it moves to the top with her preview.
  await page.click("#convs .conv:nth-child(3)");
  await page.waitForFunction(() => document.querySelector("#chat-title")?.textContent === "books");
  await page.fill("#composer-input", "me too");
  await page.press("#composer-input", "Enter");
  await page.waitForFunction(() => document.querySelector("#convs .conv .preview")?.textContent === "You: me too");
  assert.deepEqual(
    (await rows()).map((r) => r[0]),
    ["books", "lunch", "plans"],
  );
  cx.close();
  cy.close();
  await ctx.close();
});

test("mentions: @ autocomplete among the members, highlighted for the one mentioned", { timeout: 60_000 }, async () => {
  const owner = "ment-olga", member = "ment-pavel", other = "ment-pia";
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const pia = new NatterClient({ url: srv.wsURL, token: srv.token(other), WebSocket });
  await pia.connect();
  const got = [];
  pia.on("message", (m) => got.push(m));

  const o = await signIn(owner, { width: 1000, height: 700 });
  const p = await signIn(member, { width: 1000, height: 700 });
  await o.page.click("#new-toggle");
  await o.page.selectOption("#new-kind", "group");
  await o.page.fill("#new-title", "Mentions");
  await o.page.fill("#new-members", `${member} ${other}`);
  await o.page.click("#new-submit");
  await o.page.waitForSelector("#chat-title");

  // "@p" offers the two members starting with p (not the owner herself);
  // "@all" is offered to her, the owner, once what she typed fits it.
  await o.page.type("#composer-input", "lunch @p");
  await o.page.waitForSelector("#mention-list li");
  assert.deepEqual(await o.page.$$eval("#mention-list li", (els) => els.map((e) => e.dataset.user)), [member, other]);
  await o.page.press("#composer-input", "ArrowDown");
  await o.page.press("#composer-input", "Enter"); // picks, does not send
  assert.equal(await o.page.inputValue("#composer-input"), `lunch @${other} `);
  assert.ok(await o.page.$eval("#mention-list", (e) => e.classList.contains("hidden")));
  await o.page.type("#composer-input", "and @a");
  await o.page.waitForSelector('#mention-list li[data-user="@all"]');
  await o.page.press("#composer-input", "Escape");
  await o.page.type("#composer-input", "ll?");
  await o.page.press("#composer-input", "Enter");
  const text = `lunch @${other} and @all?`;
  await waitForText(o.page, text);

  // The message carries the mentions; pia's app-less client sees them.
  const deadline = Date.now() + 10_000;
  while (!got.some((m) => m.body.text === text)) {
    assert.ok(Date.now() < deadline, "no mention pushed");
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(got.find((m) => m.body.text === text).mentions, [other, "@all"]);

  // Pavel is mentioned through @all: the message is highlighted for him,
  // @all stands out, and @ment-pia is a mention but not of him.
  await p.page.click(`.conv[data-conv]`);
  await waitForText(p.page, text);
  const msg = `#messages .msg[data-sender="${owner}"]`;
  assert.ok(await p.page.$eval(msg, (e) => e.classList.contains("mentions-me")));
  assert.deepEqual(
    await p.page.$$eval(`${msg} .mention`, (els) => els.map((e) => [e.textContent, e.classList.contains("me")])),
    [[`@${other}`, false], ["@all", true]],
  );
  // A message without a mention of him is not highlighted.
  await pia.send((await pia.conversations())[0].conv, { text: "no mentions here" });
  await waitForText(p.page, "no mentions here");
  assert.equal(await p.page.$eval(`#messages .msg[data-sender="${other}"]`, (e) => e.classList.contains("mentions-me")), false);

  // Pavel's notification control shows his mute level. He picks @mentions
  // only, then off for an hour: the server holds each (his conversations
  // reply says so) and his list marks the conversation. Unmuted from his
  // other device, the app follows the pushed mute field.
  const pavel = new NatterClient({ url: srv.wsURL, token: srv.token(member), WebSocket });
  await pavel.connect();
  const mine = async () => (await pavel.conversations())[0];
  const until = async (pred) => {
    const end = Date.now() + 10_000;
    for (;;) {
      const c = await mine();
      if (pred(c.mute)) return c;
      assert.ok(Date.now() < end, `mute stayed ${c.mute}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  assert.equal(await p.page.inputValue("#mute-level"), "none");
  assert.ok(await p.page.$eval("#mute-for", (e) => e.disabled));
  assert.equal(await p.page.$$eval(".conv .muted-mark", (els) => els.length), 0);
  await p.page.selectOption("#mute-level", "mentions");
  await p.page.waitForSelector('#mute[data-level="mentions"]');
  await until((m) => m === "mentions");
  await p.page.waitForSelector('.conv .muted-mark[data-level="mentions"]');
  await p.page.selectOption("#mute-level", "all");
  await p.page.waitForSelector('#mute[data-level="all"]');
  await until((m) => m === "all");
  assert.ok(!(await p.page.$eval("#mute-for", (e) => e.disabled)));
  await p.page.selectOption("#mute-for", "1");
  await p.page.waitForSelector('#mute[data-level="all"]');
  await until((m) => m === "all");
  await pavel.mute((await mine()).conv, "none");
  await p.page.waitForSelector('#mute[data-level="none"]');
  assert.equal(await p.page.inputValue("#mute-level"), "none");
  assert.equal(await p.page.$$eval(".conv .muted-mark", (els) => els.length), 0);
  pavel.close();
  pia.close();
  await o.ctx.close();
  await p.ctx.close();
});

test("group settings in the app: rename, read-only, roles, moderator delete, ban", { timeout: 90_000 }, async () => {
  const stamp = Date.now().toString(36);
  const [owner, member] = ["carol" + stamp, "dan" + stamp];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const dan = new NatterClient({ url: srv.wsURL, token: srv.token(member), WebSocket });
  await dan.connect();

  const p = await signIn(owner, { width: 1000, height: 700 });
  await p.page.click("#new-toggle");
  await p.page.selectOption("#new-kind", "group");
  await p.page.fill("#new-title", "Crew");
  await p.page.fill("#new-members", member);
  await p.page.click("#new-submit");
  await p.page.waitForSelector("#group-settings");
  const conv = (await dan.conversations()).find((c) => c.title === "Crew").conv;

  // The owner renames the group: the timeline says so, and so does the title.
  await p.page.click("#group-settings");
  await p.page.fill("#group-title", "Crew 2");
  await p.page.fill("#group-topic", "launch week");
  await p.page.click("#group-save");
  const line = (text) => p.page.waitForFunction((t) => [...document.querySelectorAll("#messages .event")].some((e) => e.textContent === t), text);
  await line(`${owner} renamed the group to Crew 2`);
  await line(`${owner} changed the topic to launch week`);
  assert.equal(await p.page.textContent("#chat-title"), "Crew 2");
  assert.equal(await p.page.textContent("#chat-topic"), "launch week");
  assert.equal((await dan.conversations()).find((c) => c.conv === conv).title, "Crew 2");

  // Read-only: dan is refused; a plain member's app hides its composer.
  await p.page.check("#group-readonly");
  await p.page.click("#group-save");
  await line(`${owner} made the group read-only`);
  await p.page.waitForSelector("#read-only");
  await assert.rejects(dan.send(conv, { text: "may I?" }), (e) => e.code === "forbidden");

  // Only admins add: the owner turns it on and adds a member from the
  // panel; dan, a plain member, is refused.
  const extra = "eve" + stamp;
  await p.page.check("#group-onlyadminsadd");
  await p.page.click("#group-save");
  await line(`${owner} let only admins add members`);
  await assert.rejects(dan.addMembers(conv, ["zoe" + stamp]), (e) => e.code === "forbidden");
  await p.page.fill("#group-add-users", extra);
  await p.page.click("#group-add-submit");
  await p.page.waitForSelector(`#group-members .member[data-user="${extra}"]`);

  // Roles: the owner makes dan an admin from the member list.
  await p.page.click(`#group-members .member[data-user="${member}"] .set-role`);
  await line(`${owner} made ${member} an admin`);
  await p.page.waitForSelector(`#group-members .member[data-user="${member}"][data-role="admin"]`);
  const sent = await dan.send(conv, { text: "admins may post" });
  await waitForText(p.page, "admins may post");
  await p.page.click(`#group-members .member[data-user="${member}"] .set-role`);
  await p.page.waitForSelector(`#group-members .member[data-user="${member}"][data-role="member"]`);

  // A moderator delete: the owner deletes dan's message, shown as removed.
  await p.page.click(`#messages .msg[data-seq="${sent.seq}"] .delete.moderate`);
  await waitForText(p.page, `removed by ${owner}`);

  // A ban: dan is gone from the members and listed as banned until unbanned.
  await p.page.click(`#group-members .member[data-user="${member}"] .ban`);
  await p.page.waitForSelector(`#group-banned .banned[data-user="${member}"]`);
  await line(`${owner} banned ${member}`);
  await p.page.click(`#group-banned .banned[data-user="${member}"] .unban`);
  await p.page.waitForSelector(`#group-banned .banned[data-user="${member}"]`, { state: "detached" });
  await p.page.screenshot({ path: join(artifacts, "group-settings.png") });
  dan.close();
  await p.ctx.close();
});

test("a reply quotes its message; a thread opens in the side panel", { timeout: 90_000 }, async () => {
  const a = await signIn("rita", { width: 1200, height: 760 });
  const b = await signIn("theo", { width: 1200, height: 760 });
  await a.page.click("#new-toggle");
  await a.page.selectOption("#new-kind", "group");
  await a.page.fill("#new-members", "theo");
  await a.page.fill("#new-title", "Threads");
  await a.page.click("#new-submit");
  await a.page.waitForSelector("#chat-title");
  await a.page.fill("#composer-input", "the   root message");
  await a.page.press("#composer-input", "Enter");
  await waitForText(a.page, "the   root message");

  // Theo replies to it: the reply shows the server's quote on both sides.
  await b.page.click(".conv");
  await waitForText(b.page, "the   root message");
  const rootB = b.page.locator("#messages .msg", { hasText: "the   root message" });
  await rootB.locator(".reply").click();
  await b.page.waitForSelector("#replying:not(.hidden)");
  assert.match(await b.page.textContent("#replying"), /Replying to rita: the root message/);
  await b.page.fill("#composer-input", "a quoted reply");
  await b.page.press("#composer-input", "Enter");
  await b.page.waitForSelector("#replying", { state: "hidden" });
  for (const p of [a.page, b.page]) {
    await waitForText(p, "a quoted reply");
    const reply = p.locator("#messages .msg", { hasText: "a quoted reply" });
    assert.equal(await reply.locator(".quote .quote-sender").textContent(), "rita");
    assert.equal(await reply.locator(".quote .quote-text").textContent(), "the root message");
  }

  // Rita starts a thread under the root: it opens in the side panel.
  await a.page.locator("#messages .msg", { hasText: "the   root message" }).first().locator(".thread").click();
  await a.page.waitForSelector("#thread-panel:not(.hidden)");
  await a.page.fill("#thread-input", "first in thread");
  await a.page.press("#thread-input", "Enter");
  await a.page.waitForFunction(() => [...document.querySelectorAll("#thread-messages .thread-reply .text")].some((e) => e.textContent === "first in thread"));

  // Theo sees "1 reply" under the root (counted from the push), not the
  // reply in his timeline; the link opens the thread, where he answers.
  await b.page.waitForFunction(() => document.querySelector("#messages .thread-link")?.textContent === "1 reply");
  assert.deepEqual(await b.page.$$eval("#messages .msg .text", (els) => els.map((e) => e.textContent).filter((t) => t.includes("in thread"))), []);
  await b.page.click("#messages .thread-link");
  await b.page.waitForSelector("#thread-panel:not(.hidden)");
  await b.page.waitForFunction(() => [...document.querySelectorAll("#thread-messages .thread-reply .text")].map((e) => e.textContent).join() === "first in thread");
  assert.equal(await b.page.textContent("#thread-messages .thread-root .text"), "the   root message");
  await b.page.fill("#thread-input", "second in thread");
  await b.page.press("#thread-input", "Enter");
  await a.page.waitForFunction(() => [...document.querySelectorAll("#thread-messages .thread-reply .text")].map((e) => e.textContent).join() === "first in thread,second in thread");
  await a.page.waitForFunction(() => document.querySelector("#messages .thread-link")?.textContent === "2 replies");

  // A fresh page load reads the counts from history and the replies with thread.
  const c = await signIn("theo", { width: 1200, height: 760 });
  await c.page.click(".conv");
  await c.page.waitForFunction(() => document.querySelector("#messages .thread-link")?.textContent === "2 replies");
  await c.page.click("#messages .thread-link");
  await c.page.waitForFunction(() => [...document.querySelectorAll("#thread-messages .thread-reply .text")].map((e) => e.textContent).join() === "first in thread,second in thread");
  await c.page.click("#thread-close");
  await c.page.waitForSelector("#thread-panel", { state: "hidden" });
  // Rita deletes the root: quotes of it the app can see now say so.
  await a.page.locator("#messages .msg.mine", { hasText: "the   root message" }).first().locator(".delete").click();
  await c.page.waitForFunction(() => document.querySelector("#messages .quote .quote-text")?.textContent === "message deleted");
  await c.page.screenshot({ path: join(artifacts, "threads.png") });
  for (const x of [a, b, c]) await x.ctx.close();
});

test("ticks under my messages: sent, delivered, seen", { timeout: 120_000 }, async () => {
  const owner = "tina", bob = "tbob", carol = "tcarol";
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  // bob's client reports deliveries on its own; carol's does not.
  const cb = new NatterClient({ url: srv.wsURL, token: srv.token(bob), WebSocket });
  const cc = new NatterClient({ url: srv.wsURL, token: srv.token(carol), WebSocket, deliveredDelayMs: 0 });
  await Promise.all([cb.connect(), cc.connect()]);
  const got = [];
  cc.on("message", (m) => got.push(m));

  const p = await signIn(owner, { width: 1000, height: 700 });
  await p.page.click("#new-toggle");
  await p.page.selectOption("#new-kind", "group");
  await p.page.fill("#new-title", "Ticks");
  await p.page.fill("#new-members", `${bob} ${carol}`);
  await p.page.click("#new-submit");
  await p.page.waitForSelector("#chat-title");
  await p.page.fill("#composer-input", "tick me");
  await p.page.press("#composer-input", "Enter");
  await waitForText(p.page, "tick me");
  const deadline = Date.now() + 10_000;
  while (!got.some((m) => m.body.text === "tick me")) {
    assert.ok(Date.now() < deadline, "carol got no message");
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = got.find((m) => m.body.text === "tick me");
  const tickOf = () => p.page.$eval(`.msg.mine[data-seq="${m.seq}"] .tick`, (e) => e.dataset.tick);
  // Sent: carol's device has not reported it, however long bob's took.
  await p.page.waitForSelector(`.msg.mine[data-seq="${m.seq}"] .tick[data-tick="sent"]`);
  await new Promise((r) => setTimeout(r, 3000)); // bob's report: ~1 s client + 1 s gateway
  assert.equal(await tickOf(), "sent");
  await cc.markDelivered(m.conv, m.seq);
  await p.page.waitForSelector(`.msg.mine[data-seq="${m.seq}"] .tick[data-tick="delivered"]`, { timeout: 10_000 });
  await cb.read(m.conv, m.seq);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await tickOf(), "delivered", "seen by one of two is not seen");
  await cc.read(m.conv, m.seq);
  await p.page.waitForSelector(`.msg.mine[data-seq="${m.seq}"] .tick[data-tick="seen"]`, { timeout: 10_000 });
  assert.equal(await p.page.getAttribute(`.msg.mine[data-seq="${m.seq}"] .tick`, "title"), "Seen by everyone");
  cb.close();
  cc.close();
  await p.ctx.close();
});

test("attach: a file goes up from the app, an image shows as its thumbnail", { timeout: 60_000 }, async () => {
  const [u, o] = ["gail", "hal"];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const co = new NatterClient({ url: srv.wsURL, token: srv.token(o), WebSocket });
  await co.connect();
  const conv = (await co.create("group", [u], "Photos")).conv;
  // A 640x480 PNG, made by Chromium itself, sent by hal from Node.
  const a = await signIn(u, { width: 1000, height: 700 });
  const png = Buffer.from(
    await a.page.evaluate(async () => {
      const c = new OffscreenCanvas(640, 480);
      const g = c.getContext("2d");
      g.fillStyle = "#3a7";
      g.fillRect(0, 0, 640, 480);
      const b = await c.convertToBlob({ type: "image/png" });
      return [...new Uint8Array(await b.arrayBuffer())];
    }),
  );
  const id = await co.uploadFile(png, "image/png", "green.png");
  await co.send(conv, { text: "a photo", attachments: [id] });
  await a.page.click(".conv");
  await waitForText(a.page, "a photo");
  // The preview is the thumbnail (320 px wide), loaded through its signed URL under the page's CSP.
  await a.page.waitForFunction(() => {
    const img = document.querySelector("#messages .files img.preview");
    return img && img.complete && img.naturalWidth === 320;
  });
  assert.match(await a.page.$eval("#messages .files a.file", (el) => el.href), /\/v1\/files\/att_[a-z0-9]+\?/);

  // gail attaches a text file with a caption; hal receives it with a URL that serves it.
  const got = new Promise((resolve) => co.on("message", (m) => m.conv === conv && m.sender === u && resolve(m)));
  await a.page.fill("#composer-input", "notes attached");
  await a.page.setInputFiles("#composer-file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("remember the milk") });
  const m = await got;
  assert.equal(m.body.text, "notes attached");
  assert.equal(m.files?.[0]?.name, "notes.txt");
  assert.equal(await (await fetch(co.fileURL(m.files[0].url))).text(), "remember the milk");
  await waitForText(a.page, "notes attached");
  await a.page.waitForSelector("#messages a.file:not(:has(img))");
  await a.page.screenshot({ path: join(artifacts, "attach.png") });
  co.close();
  await a.ctx.close();
});

test("a disappearing message vanishes from the open conversation on time", { timeout: 90_000 }, async () => {
  const stamp = Date.now().toString(36);
  const [user, other] = ["yan" + stamp, "zoe" + stamp];
  const { NatterClient } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const zoe = new NatterClient({ url: srv.wsURL, token: srv.token(other), WebSocket });
  await zoe.connect();
  const p = await signIn(user, { width: 1000, height: 700 });
  await p.page.click("#new-toggle");
  await p.page.selectOption("#new-kind", "direct");
  await p.page.fill("#new-members", other);
  await p.page.click("#new-submit");
  await p.page.waitForSelector("#chat-title");
  const conv = (await zoe.conversations()).find((c) => c.kind === "direct").conv;
  await zoe.send(conv, { text: "this stays" }); // accepts the request
  await waitForText(p.page, "this stays");

  // Either member of a direct conversation sets it: yan from the chat head.
  await p.page.selectOption("#chat-ttl-select", "3600");
  await p.page.waitForFunction(() => (document.querySelector("#chat-ttl-select")?.value ?? "") === "3600");
  assert.equal((await zoe.conversations()).find((c) => c.conv === conv).ttl, 3600);
  await zoe.setTTL(conv, 6);
  await p.page.waitForFunction(() => (document.querySelector("#chat-ttl-select")?.value ?? "") === "6");
  await p.page.waitForFunction(() => [...document.querySelectorAll("#messages .event")].some((e) => /turned on disappearing messages \(6 seconds\)/.test(e.textContent)));

  const ack = await zoe.send(conv, { text: "this vanishes" });
  assert.ok(ack.expires_at, "the ack carries expires_at");
  await waitForText(p.page, "this vanishes");
  await p.page.screenshot({ path: join(artifacts, "disappearing-before.png") });
  await p.page.waitForFunction(
    (t) => ![...document.querySelectorAll("#messages .msg .text")].some((e) => e.textContent === t),
    "this vanishes",
    { timeout: 30_000, polling: 100 },
  );
  const goneAt = Date.now();
  // On time: not before expires_at (same machine's clock), and the
  // sweep runs every second (the wait above allows for a loaded machine).
  assert.ok(goneAt >= Date.parse(ack.expires_at) - 50, `vanished ${Date.parse(ack.expires_at) - goneAt} ms early`);
  assert.ok((await texts(p.page)).includes("this stays"), "the lasting message went too");
  // Reloading finds it nowhere either: the server pages leave it out.
  await p.page.reload();
  await p.page.waitForSelector("#shell");
  await p.page.click(`.conv[data-conv="${conv}"]`);
  await waitForText(p.page, "this stays");
  assert.ok(!(await texts(p.page)).includes("this vanishes"));
  await p.page.screenshot({ path: join(artifacts, "disappearing-after.png") });
  zoe.close();
  await p.ctx.close();
});

test("account settings: export downloads my archive; delete asks to type my id, then erases", { timeout: 90_000 }, async () => {
  const [u, o] = ["acct", "acco"];
  const { NatterClient, NatterError } = await import("../client/dist/natter.js");
  const { default: WebSocket } = await import("ws");
  const co = new NatterClient({ url: srv.wsURL, token: srv.token(o), WebSocket });
  await co.connect();
  const conv = (await co.create("group", [u], "acct group")).conv;
  const direct = (await co.create("direct", [u])).conv;
  await co.send(direct, { text: "just us" });
  // The other member watches the direct conversation in the app.
  const ob = await signIn(o, { width: 1000, height: 700 });
  await ob.page.waitForSelector(`#convs [data-conv="${direct}"]`);
  await ob.page.click(`#convs [data-conv="${direct}"]`);
  await waitForText(ob.page, "just us");
  assert.equal(await ob.page.textContent("#chat-title"), u);
  const a = await signIn(u, { width: 1000, height: 700 });
  await a.page.waitForSelector(`#convs [data-conv="${conv}"]`);
  await a.page.click(`#convs [data-conv="${conv}"]`);
  await a.page.fill("#composer-input", "mine to export");
  await a.page.press("#composer-input", "Enter");
  await waitForText(a.page, "mine to export");

  await a.page.click("#export-data");
  await a.page.waitForSelector("#export-link:not(.hidden)");
  const href = await a.page.$eval("#export-link", (el) => el.href);
  const archive = await a.page.evaluate(async (u) => (await fetch(u)).text(), href);
  const lines = archive.trim().split("\n").map((l) => JSON.parse(l));
  // The group with my message and the direct conversation (none of mine in it).
  assert.deepEqual(lines.map((l) => l.type).sort(), ["conversation", "conversation", "end", "export", "message"]);
  assert.equal(lines[0].type, "export");
  assert.equal(lines.find((l) => l.type === "message").message.body.text, "mine to export");

  // The delete button stays disabled until the id is typed.
  await a.page.click("#delete-account");
  assert.equal(await a.page.$eval("#delete-account-confirm", (b) => b.disabled), true);
  await a.page.fill("#delete-confirm", "someone");
  assert.equal(await a.page.$eval("#delete-account-confirm", (b) => b.disabled), true);
  const left = new Promise((resolve) => co.on("member", (m) => m.user === u && m.action === "removed" && resolve()));
  await a.page.fill("#delete-confirm", u);
  await a.page.click("#delete-account-confirm");
  await a.page.waitForFunction(() => document.querySelector("#account-status")?.textContent === "Your account was deleted.");
  await a.page.screenshot({ path: join(artifacts, "account-deleted.png") });
  await left;
  const again = new NatterClient({ url: srv.wsURL, token: srv.token(u), WebSocket });
  await assert.rejects(again.connect(), (e) => e instanceof NatterError && e.code === "unauthorized");
  // The direct conversation stays for the other member, as a deleted
  // account nobody can write to: live, without a reload.
  await ob.page.waitForFunction(() => document.querySelector("#chat-title")?.textContent === "deleted account", null, { timeout: 20_000 });
  await ob.page.waitForFunction(() => [...document.querySelectorAll("#messages .event")].some((e) => /account was deleted/.test(e.textContent)), null, { timeout: 20_000 });
  assert.equal(await ob.page.isVisible("#erased-note"), true);
  assert.equal(await ob.page.isVisible("#composer"), false);
  assert.equal(await ob.page.textContent(`#convs [data-conv="${direct}"] .name`), "deleted account");
  assert.equal(await ob.page.isVisible("#block-toggle"), false);
  await waitForText(ob.page, "just us");
  await ob.page.screenshot({ path: join(artifacts, "deleted-account.png") });
  co.close();
  await ob.ctx.close();
  await a.ctx.close();
});
