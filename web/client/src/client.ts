// NatterClient: one user's connection to a Natter gateway, kept alive across
// drops: reconnect with backoff, resume (conversations, then sync), an
// outbox of unacknowledged sends retried with their client_id, heartbeats.

import type {
  Ack,
  AddPolicy,
  BlockedFrame,
  Device,
  PushPlatform,
  SearchOptions,
  SearchResults,
  Body,
  Conversation,
  ConversationPush,
  ConversationsPage,
  DeliveredPush,
  ErrorCode,
  ErrorFrame,
  MemberPush,
  MembersPage,
  Message,
  MessageKind,
  MessagesPage,
  PresencePush,
  PresenceState,
  ReadPush,
  Receipt,
  ReceiptsFrame,
  ResyncPush,
  ServerFrame,
  Settings,
  TypingPush,
  UploadURL,
  Welcome,
} from "./types.js";
import { dataSize, putUpload, resolveFileURL, type UploadData } from "./attach.js";
import type { MuteLevel } from "./mentions.js";
import type { BannedFrame, GroupUpdate } from "./group.js";
import { dropExpired, isExpired } from "./ttl.js";
import { ACCOUNT_ERASED, type AccountDeleted, type ExportReady } from "./account.js";

/** The part of the WebSocket API the client uses (browsers' and the `ws` package's both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/** A WebSocket constructor: globalThis.WebSocket in browsers, `ws` in Node. */
export type WebSocketCtor = new (url: string) => WebSocketLike;

/** Optional fields of send. */
export interface SendOptions {
  kind?: MessageKind;
  ref?: number;
  clientId?: string;
  /** Quote the message with this seq (plain messages only). */
  replyTo?: number;
  /** Post into the thread under this root seq (plain messages only). */
  thread?: number;
  /** Users the message mentions, or "@all". */
  mentions?: string[];
}

/**
 * Counts m, a message pushed live, on root, a message the app holds, when m
 * is a new reply in root's thread: thread_count + 1, thread_last_seq = m's
 * seq, what a page would now show. A reply at or below thread_last_seq is
 * counted already (a page read after it). Returns whether root changed.
 */
export function applyThreadReply(root: Message, m: Message): boolean {
  if (!m.thread || m.thread !== root.seq || m.conv !== root.conv || m.kind || m.seq <= (root.thread_last_seq ?? 0)) return false;
  root.thread_count = (root.thread_count ?? 0) + 1;
  root.thread_last_seq = m.seq;
  return true;
}

/** A send not yet acknowledged. */
export interface OutboxEntry {
  conv: string;
  client_id: string;
  body: Body;
  kind?: MessageKind;
  ref?: number;
  reply_to?: number;
  thread?: number;
  /** The members a plain message mentions, or "@all". */
  mentions?: string[];
  /** When the entry was first queued, ms since the epoch. */
  queued_at: number;
}

/** Where the outbox is kept between page loads. The client calls save after every change. */
export interface OutboxStorage {
  load(): OutboxEntry[] | Promise<OutboxEntry[]>;
  save(entries: OutboxEntry[]): void | Promise<void>;
}

/** Options for a NatterClient. */
export interface ClientOptions {
  /** ws:// or wss:// URL of the gateway, e.g. "wss://chat.example.com/v1/ws". */
  url: string;
  /**
   * The JWT, or a function returning a fresh one (called on every connect,
   * and before the token expires when there is no refreshToken).
   */
  token: string | (() => string | Promise<string>);
  /**
   * Token refresher hook: returns a fresh token for the same user. The client
   * calls it a quarter of the current token's remaining life before its exp
   * (at most a minute before) and sends the result in `reauth`, so the server
   * does not close the connection with 4003; reconnects use it too. Defaults
   * to `token` when that is a function. Without either, a connection ends
   * when its token expires and the client stops with an "unauthorized" error.
   */
  refreshToken?: () => string | Promise<string>;
  /** Device label sent in hello. */
  device?: string;
  /** WebSocket implementation; default globalThis.WebSocket. */
  WebSocket?: WebSocketCtor;
  /** How long a request waits for its reply; default 10 s. */
  requestTimeoutMs?: number;
  /** First reconnect delay cap; default 500 ms. Delays are uniform in [0, min(max, initial·2^attempt)]. */
  backoffInitialMs?: number;
  /** Largest reconnect delay cap; default 30 s. */
  backoffMaxMs?: number;
  /** Page size for sync during resume; default 500 (the server's maximum). */
  syncLimit?: number;
  /** Page size for conversations (resume and conversations()); default 0, the server's (100). */
  conversationsLimit?: number;
  /** Keeps the outbox across page loads; default in memory only. */
  storage?: OutboxStorage;
  /**
   * How long an outbox entry is retried before it fails with code "expired";
   * default 5 minutes. Keep it below the server's de-duplication window (10
   * minutes by default): a retry inside it is answered with the original seq,
   * one after it could store the message twice.
   */
  sendExpiryMs?: number;
  /** Source of randomness for jitter; default Math.random. */
  random?: () => number;
  /**
   * How long the client gathers the messages of others that reach it
   * (pushes, sync and history pages, resume) before it reports them with
   * one cumulative `delivered` frame per conversation, so their senders
   * see them delivered; default 1000 ms. 0 turns the reports off.
   */
  deliveredDelayMs?: number;
}

/** Connection state. */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A message event: a live push, or a message recovered by resume's sync. */
export interface MessageEvent extends Message {
  /** "push" for live deliveries, "sync" for messages recovered after a reconnect. */
  source: "push" | "sync";
}

/** Events and their payloads. */
export interface ClientEvents {
  message: MessageEvent;
  typing: TypingPush;
  read: ReadPush;
  /** A member's delivered marker moved (conversations of at most 100 members). */
  delivered: DeliveredPush;
  presence: PresencePush;
  member: MemberPush;
  conversation: ConversationPush;
  /** Every welcome, the first and each after a reconnect. */
  welcome: Welcome;
  /** The connection state changed. */
  state: ConnectionState;
  /** Resume finished after a (re)connect: the conversation list, every missed message emitted. */
  resumed: { conversations: Conversation[] };
  /** An outbox entry was acknowledged (also for entries restored from storage). */
  sent: { entry: OutboxEntry; ack: Ack };
  /**
   * An outbox entry failed for good: refused (bad_request, forbidden, not_found,
   * too_large), or "expired" when it was not acknowledged within sendExpiryMs
   * (it may or may not have been stored: let the user check and send again).
   */
  send_failed: { entry: OutboxEntry; error: NatterError };
  /** The outbox changed. */
  outbox: OutboxEntry[];
  /** The gateway may have lost pushes: the client re-syncs (resume) on its own; "resumed" follows. */
  resync: ResyncPush;
  /** The user's block list changed (on this device or another): the users now blocked. */
  blocked: string[];
  /** An error frame that answers no pending request. */
  error: ErrorFrame;
  /** The socket closed (a reconnect follows unless the state is "closed"). */
  close: { code: number; reason: string };
}

type Listener<T> = (ev: T) => void;

/** An error answered by the server (code from the contract) or raised by the client. */
export class NatterError extends Error {
  /** A contract error code, or "timeout", "disconnected", "closed", "expired", "unauthorized". */
  readonly code: ErrorCode | "timeout" | "disconnected" | "closed" | "expired";
  constructor(code: NatterError["code"], message: string) {
    super(`${code}: ${message}`);
    this.name = "NatterError";
    this.code = code;
  }
}

/** Codes after which a send is worth retrying with the same client_id. */
const RETRYABLE = new Set(["unavailable", "internal", "rate_limited", "conflict", "timeout", "disconnected"]);

interface Pending {
  resolve: (frame: any) => void;
  reject: (err: NatterError) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Outgoing {
  entry: OutboxEntry;
  waiters: { resolve: (ack: Ack) => void; reject: (err: NatterError) => void }[];
  inFlight: boolean;
  attempt: number;
  /**
   * Whether the send may have gone out before: transmitted once already,
   * or restored from storage. Such a send carries "resend": true, which the
   * server looks up over the whole de-dup window (10 minutes by default);
   * an unmarked repeat is caught only within its short window (2 minutes).
   */
  sent: boolean;
  retryTimer?: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

/**
 * backoffDelay is the reconnect delay before attempt n (0-based): "full
 * jitter", uniform in [0, min(max, initial·2^n)), so that clients cut off
 * together do not come back together.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/** Returns a fresh client_id: a random UUID. */
export function newClientId(): string {
  const c = (globalThis as any).crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  // Fallback for old runtimes: RFC 4122 v4 from getRandomValues or Math.random.
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An OutboxStorage over a Web Storage object (localStorage by default). */
export function webStorageOutbox(key = "natter.outbox", storage: Storage = (globalThis as any).localStorage): OutboxStorage {
  return {
    load() {
      try {
        const v = JSON.parse(storage.getItem(key) ?? "[]");
        return Array.isArray(v) ? v : [];
      } catch {
        return [];
      }
    },
    save(entries) {
      storage.setItem(key, JSON.stringify(entries));
    },
  };
}

/**
 * NatterClient keeps one user's connection to a gateway.
 *
 * connect() resolves with the first welcome. After every welcome the client
 * resumes: it asks for the conversations and syncs each one it holds
 * messages of from the highest seq it saw, page by page until more is false,
 * emitting "message" events (source "sync"), then resends the outbox.
 */
export class NatterClient {
  private readonly opts: Required<Omit<ClientOptions, "storage" | "device" | "refreshToken">> & Pick<ClientOptions, "storage" | "device" | "refreshToken">;
  private ws: WebSocketLike | null = null;
  private _state: ConnectionState = "idle";
  private listeners = new Map<keyof ClientEvents, Set<Listener<any>>>();
  private pending = new Map<string, Pending>();
  private nextId = 1;
  private attempt = 0;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private heartbeatTimer?: ReturnType<typeof setInterval>;
  private lastReceived = 0;
  private heartbeatMs = 20_000;
  private welcome: Welcome | null = null;
  private readyWaiters: { resolve: () => void; reject: (e: NatterError) => void }[] = [];
  private firstWelcome?: { resolve: (w: Welcome) => void; reject: (e: NatterError) => void };
  // Per conversation seen: held is the seq up to which every item is
  // here (the contiguous point), above the items past it (seq -> prev),
  // last the highest seq seen. Syncs ask after held.
  private seqs = new Map<string, ConvSeqs>();
  private filling = new Map<string, boolean>(); // conv -> a gap sync runs; true: run again
  private outgoing = new Map<string, Outgoing>(); // key: conv + "\n" + client_id, insertion order = send order
  private resuming = false;
  private resyncAgain = false; // a resync push came during a resume
  private loaded: Promise<void> | null = null;
  private tokenExp = 0; // exp (ms) of the connection's token, 0 if unknown
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private deliveredDue = new Map<string, number>(); // conv -> seq to report
  private deliveredSent = new Map<string, number>(); // conv -> seq last reported
  private deliveredTimer?: ReturnType<typeof setTimeout>;

  constructor(options: ClientOptions) {
    const WS = options.WebSocket ?? (globalThis as any).WebSocket;
    if (!WS) throw new Error("natter: no WebSocket implementation: pass options.WebSocket");
    this.opts = {
      requestTimeoutMs: 10_000,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      syncLimit: 500,
      conversationsLimit: 0,
      sendExpiryMs: 5 * 60_000,
      random: Math.random,
      deliveredDelayMs: 1000,
      ...options,
      WebSocket: WS,
    };
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this._state;
  }

  /** The user id of the last welcome, or null before one. */
  get user(): string | null {
    return this.welcome?.user ?? null;
  }

  /** The last welcome, or null before one. */
  get session(): Welcome | null {
    return this.welcome;
  }

  /** Unacknowledged sends, oldest first. */
  get outbox(): OutboxEntry[] {
    return [...this.outgoing.values()].map((o) => o.entry);
  }

  /** The highest seq seen in conv (pushes, acks, pages), 0 if none. */
  lastSeq(conv: string): number {
    return this.seqs.get(conv)?.last ?? 0;
  }

  /**
   * The seq up to which the client holds every item of conv (pushes and
   * pages chained by prev), 0 if none. Resume and gap syncs ask after it.
   */
  heldSeq(conv: string): number {
    return this.seqs.get(conv)?.held ?? 0;
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends keyof ClientEvents>(event: K, fn: Listener<ClientEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        fn(payload);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  /** Opens the connection; resolves with the first welcome, rejects if the token is refused. */
  connect(): Promise<Welcome> {
    if (this._state !== "idle" && this._state !== "closed") {
      return this.welcome ? Promise.resolve(this.welcome) : new Promise((resolve, reject) => (this.firstWelcome = { resolve, reject }));
    }
    const p = new Promise<Welcome>((resolve, reject) => (this.firstWelcome = { resolve, reject }));
    this.attempt = 0;
    this.loaded ??= this.loadOutbox();
    this.open();
    return p;
  }

  /** Closes the connection for good: no reconnect; pending requests reject with "closed". The outbox is kept. */
  close(): void {
    this.setState("closed");
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.deliveredTimer);
    this.deliveredTimer = undefined;
    this.stopHeartbeat();
    for (const o of this.outgoing.values()) clearTimeout(o.retryTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    const closed = new NatterError("closed", "client closed");
    this.failPending(closed, true);
    for (const o of this.outgoing.values()) {
      o.inFlight = false;
      for (const w of o.waiters.splice(0)) w.reject(closed);
    }
    this.firstWelcome?.reject(new NatterError("closed", "client closed"));
    this.firstWelcome = undefined;
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit("state", s);
  }

  private async loadOutbox(): Promise<void> {
    if (!this.opts.storage) return;
    const entries = await this.opts.storage.load();
    for (const e of entries) {
      const key = e.conv + "\n" + e.client_id;
      if (!this.outgoing.has(key)) this.outgoing.set(key, { entry: e, waiters: [], inFlight: false, attempt: 0, sent: true });
    }
  }

  private saveOutbox(): void {
    const entries = this.outbox;
    this.emit("outbox", entries);
    if (this.opts.storage) void Promise.resolve(this.opts.storage.save(entries)).catch(() => {});
  }

  private async open(): Promise<void> {
    if (this._state === "closed" && this.firstWelcome === undefined) return;
    this.setState(this.attempt === 0 && !this.welcome ? "connecting" : "reconnecting");
    let token: string;
    try {
      const t = this.opts.refreshToken ?? this.opts.token;
      token = typeof t === "function" ? await t() : t;
      this.tokenExp = tokenExpiry(token);
      await this.loaded;
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    if (this._state === "closed") return;
    let ws: WebSocketLike;
    try {
      ws = new this.opts.WebSocket(this.opts.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    const helloId = this.id();
    ws.onopen = () => {
      this.lastReceived = Date.now();
      const hello: Record<string, unknown> = { type: "hello", id: helloId, token };
      if (this.opts.device) hello.device = this.opts.device;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastReceived = Date.now();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data));
      } catch {
        return;
      }
      this.handle(frame);
    };
    ws.onerror = () => {
      // onclose follows and does the work.
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onSocketClosed(ev.code, ev.reason);
    };
  }

  private onSocketClosed(code: number, reason: string): void {
    this.stopHeartbeat();
    clearTimeout(this.refreshTimer);
    this.emit("close", { code, reason });
    this.failPending(new NatterError("disconnected", `connection closed (${code}${reason ? " " + reason : ""})`), false);
    for (const o of this.outgoing.values()) o.inFlight = false;
    if (this._state === "closed") return;
    if (((code === 4001 || code === 4003) && !this.tokenSource()) || (code === 4001 && reason === ACCOUNT_ERASED)) {
      // The same token would be refused again: stop instead of looping.
      const err = new NatterError("unauthorized", reason || "token refused");
      this.setState("closed");
      this.failPending(err, true);
      this.firstWelcome?.reject(err);
      this.firstWelcome = undefined;
      return;
    }
    this.scheduleReconnect();
  }

  // tokenSource is the function that gives fresh tokens, if any.
  private tokenSource(): (() => string | Promise<string>) | undefined {
    const t = this.opts.refreshToken ?? this.opts.token;
    return typeof t === "function" ? t : undefined;
  }

  // scheduleRefresh arms the timer that hands the open connection a fresh
  // token before its current one expires; a failed refresh retries every
  // second until the connection ends.
  private scheduleRefresh(delayMs?: number): void {
    clearTimeout(this.refreshTimer);
    const source = this.tokenSource();
    if (!source || !this.tokenExp) return;
    const ws = this.ws;
    const wait = delayMs ?? Math.max(0, refreshAt(Date.now(), this.tokenExp) - Date.now());
    this.refreshTimer = setTimeout(async () => {
      if (this.ws !== ws || this._state !== "open") return;
      try {
        const token = await source();
        await this.reauth(token);
        if (this.ws !== ws) return;
        this.tokenExp = tokenExpiry(token);
        this.scheduleRefresh();
      } catch {
        if (this.ws === ws) this.scheduleRefresh(1000);
      }
    }, wait);
  }

  private scheduleReconnect(): void {
    if (this._state === "closed") return;
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempt, this.opts.backoffInitialMs, this.opts.backoffMaxMs, this.opts.random);
    this.attempt++;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  private handle(frame: ServerFrame): void {
    if (frame.type === "welcome") {
      this.onWelcome(frame);
      return;
    }
    const id = (frame as { id?: string }).id;
    if (id !== undefined) {
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        if (frame.type === "error") p.reject(new NatterError(frame.code, frame.message));
        else p.resolve(frame);
        return;
      }
      if (frame.type === "error") this.emit("error", frame);
      return;
    }
    switch (frame.type) {
      case "message": {
        const gap = this.noteItem(frame);
        this.reconcile(frame);
        // Expired on the way (ttl.ts): held, for prev, but not shown.
        if (!isExpired(frame)) this.emit("message", { ...frame, source: "push" });
        // A push whose prev is not held: one was lost. Fetch it now.
        if (gap) this.fillGap(frame.conv);
        break;
      }
      case "typing":
        this.emit("typing", frame);
        break;
      case "read":
        this.emit("read", frame);
        break;
      case "delivered":
        this.emit("delivered", frame);
        break;
      case "presence":
        this.emit("presence", frame as PresencePush);
        break;
      case "member":
        if (frame.action === "removed" && frame.user === this.user) this.seqs.delete(frame.conv);
        this.emit("member", frame);
        break;
      case "conversation":
        this.emit("conversation", frame as ConversationPush);
        break;
      case "resync":
        this.emit("resync", frame);
        this.resync();
        break;
      case "blocked":
        this.emit("blocked", frame.users);
        break;
      case "error":
        this.emit("error", frame);
        break;
    }
  }

  private onWelcome(w: Welcome): void {
    this.welcome = w;
    this.attempt = 0;
    this.heartbeatMs = Math.max(1, w.heartbeat_s || 20) * 1000;
    this.startHeartbeat();
    this.setState("open");
    const first = this.firstWelcome;
    this.firstWelcome = undefined;
    for (const r of this.readyWaiters.splice(0)) r.resolve();
    this.emit("welcome", w);
    this.scheduleRefresh();
    first?.resolve(w);
    void this.resume();
  }

  // resync answers a resync push: the same recovery as after a reconnect,
  // on the open connection. One that comes during a resume runs after it,
  // since that resume may have passed the conversation already.
  private resync(): void {
    if (this.resuming) {
      this.resyncAgain = true;
      return;
    }
    void this.resume();
  }

  // resume recovers what a drop lost: conversations, then sync per held
  // conversation until more is false, then the outbox, in send order.
  private async resume(): Promise<void> {
    const ws = this.ws;
    this.resuming = true;
    try {
      const conversations = await this.conversations();
      const listed = new Set(conversations.map((c) => c.conv));
      for (const conv of [...this.seqs.keys()]) if (!listed.has(conv)) this.seqs.delete(conv);
      for (const c of conversations) {
        const st = this.seqs.get(c.conv);
        if (st === undefined) continue;
        if (st.unstarted) {
          // Only acks seen: start after the highest of them.
          st.held = st.last;
          st.unstarted = false;
        }
        if (c.last_seq <= st.held) continue;
        await this.syncHeld(c.conv);
      }
      if (this.ws !== ws) return;
      this.resuming = false;
      this.emit("resumed", { conversations });
    } catch (err) {
      // A drop during resume: the next welcome resumes again. Anything else
      // (a timeout) forces a reconnect so nothing is silently skipped.
      if (this.ws === ws && ws && this._state === "open") ws.close(4000, "resume failed");
      return;
    } finally {
      if (this.ws === ws) this.resuming = false;
    }
    this.flushOutbox();
    if (this.resyncAgain) {
      this.resyncAgain = false;
      void this.resume();
    }
  }

  // syncHeld syncs conv after the seq up to which everything is held,
  // until more is false, and emits the items not already emitted.
  private async syncHeld(conv: string): Promise<void> {
    for (;;) {
      const after = this.seqs.get(conv)?.held ?? 0;
      const page: MessagesPage = await this.request<MessagesPage>({ type: "sync", conv, after, limit: this.opts.syncLimit });
      for (const m of page.messages) {
        if (this.holds(m)) continue;
        this.noteItem(m);
        this.reconcile(m);
        if (!isExpired(m)) this.emit("message", { ...m, source: "sync" });
      }
      const n = page.messages.length;
      if (n > 0) this.noteHeld(conv, page.messages[n - 1].seq);
      if (!page.more || n === 0) return;
    }
  }

  // fillGap syncs conv at once after a push revealed a gap; a gap found
  // while one runs makes it run again. A failure is left to the next
  // push, resync or reconnect.
  private fillGap(conv: string): void {
    if (this.filling.has(conv)) {
      this.filling.set(conv, true);
      return;
    }
    this.filling.set(conv, false);
    void (async () => {
      try {
        do {
          this.filling.set(conv, false);
          await this.syncHeld(conv);
        } while (this.filling.get(conv));
      } catch {
        // Not connected, or a timeout: resume syncs after held anyway.
      } finally {
        this.filling.delete(conv);
      }
    })();
  }

  // holds reports whether item m was taken before.
  private holds(m: Message): boolean {
    const st = this.seqs.get(m.conv);
    return st !== undefined && (m.seq <= st.held || st.above.has(m.seq));
  }

  // noteItem takes an item (a push or a page's) and reports a gap: the
  // client does not hold everything up to it. The first item seen of a
  // conversation starts it at its prev: what came before is history().
  private noteItem(m: Message): boolean {
    if (m.sender !== this.user) this.noteDelivered(m.conv, m.seq);
    let st = this.seqs.get(m.conv);
    if (!st) this.seqs.set(m.conv, (st = { held: m.prev ?? 0, above: new Map(), last: 0 }));
    else if (st.unstarted) {
      st.held = Math.min(m.prev ?? 0, st.last);
      st.unstarted = false;
    }
    st.last = Math.max(st.last, m.seq);
    if (m.seq <= st.held) return false;
    st.above.set(m.seq, m.prev ?? 0);
    advance(st);
    return st.held < m.seq;
  }

  // noteDelivered raises conv's delivered report to seq; the reports
  // gathered within deliveredDelayMs go out together, one frame per
  // conversation, without an id (no reply).
  private noteDelivered(conv: string, seq: number): void {
    if (this.opts.deliveredDelayMs <= 0) return;
    if (seq <= (this.deliveredSent.get(conv) ?? 0) || seq <= (this.deliveredDue.get(conv) ?? 0)) return;
    this.deliveredDue.set(conv, seq);
    if (this.deliveredTimer === undefined) this.deliveredTimer = setTimeout(() => this.flushDelivered(), this.opts.deliveredDelayMs);
  }

  // flushDelivered sends the gathered reports. Reports made while
  // disconnected wait for the connection: cumulative, they lose nothing.
  private flushDelivered(): void {
    this.deliveredTimer = undefined;
    const ws = this.ws;
    if (this._state !== "open" || !ws) {
      if (this._state !== "closed" && this.deliveredDue.size > 0) this.deliveredTimer = setTimeout(() => this.flushDelivered(), this.opts.deliveredDelayMs);
      return;
    }
    for (const [conv, seq] of this.deliveredDue) {
      ws.send(JSON.stringify({ type: "delivered", conv, seq }));
      this.deliveredSent.set(conv, seq);
    }
    this.deliveredDue.clear();
  }

  // noteHeld records that a sync returned everything of conv up to seq.
  private noteHeld(conv: string, seq: number): void {
    const st = this.seqs.get(conv);
    if (!st) return;
    st.held = Math.max(st.held, seq);
    advance(st);
  }

  // noteSeq records a seq seen outside items (an ack): it does not move held.
  private noteSeq(conv: string, seq: number): void {
    const st = this.seqs.get(conv);
    if (st) st.last = Math.max(st.last, seq);
    else this.seqs.set(conv, { held: 0, above: new Map(), last: seq, unstarted: true });
  }

  // reconcile treats a message of ours that is still in the outbox (stored,
  // but its ack was lost) as acknowledged.
  private reconcile(m: Message): void {
    if (m.sender !== this.user) return;
    const o = this.outgoing.get(m.conv + "\n" + m.client_id);
    if (o) this.settle(o, { type: "ack", conv: m.conv, seq: m.seq, ts: m.ts, duplicate: true });
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== OPEN) return;
      if (Date.now() - this.lastReceived > 2 * this.heartbeatMs + 5000) {
        // The server went silent (a network cut): drop and reconnect.
        ws.close(4000, "heartbeat timeout");
        this.ws = null;
        this.onSocketClosed(4000, "heartbeat timeout");
        return;
      }
      ws.send('{"type":"ping"}');
    }, this.heartbeatMs);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private id(): string {
    return "r" + this.nextId++;
  }

  private failPending(err: NatterError, all: boolean): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
    if (all) for (const r of this.readyWaiters.splice(0)) r.reject(err);
  }

  private waitOpen(deadline: number): Promise<void> {
    if (this._state === "open" && this.ws) return Promise.resolve();
    if (this._state === "closed" || this._state === "idle") return Promise.reject(new NatterError("closed", "not connected: call connect()"));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e: NatterError) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((x) => x !== w);
        reject(new NatterError("timeout", "not connected in time"));
      }, Math.max(0, deadline - Date.now()));
      this.readyWaiters.push(w);
    });
  }

  /**
   * Sends a request frame with a fresh id and resolves with its reply, or
   * rejects with a NatterError (the server's code, "timeout" after
   * timeoutMs, "disconnected" if the connection dropped first). While the
   * client reconnects, the request waits for the connection within its timeout.
   */
  async request<T = ServerFrame>(frame: Record<string, unknown> & { type: string }, timeoutMs = this.opts.requestTimeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    await this.waitOpen(deadline);
    const ws = this.ws!;
    const id = this.id();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new NatterError("timeout", `no reply to ${frame.type} in ${timeoutMs} ms`));
      }, Math.max(0, deadline - Date.now()));
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  // Requests of the contract.

  /**
   * Every conversation of the user, asked for page by page: no number or size
   * of conversations can make one reply too large for the connection.
   */
  async conversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.conversationsPage(after, this.opts.conversationsLimit || undefined);
      all.push(...page.conversations);
      if (!page.more || !page.next) return all;
      if (page.next === after) throw new NatterError("internal", "conversations answered the cursor it was given as next");
      after = page.next;
    }
  }

  /**
   * One page of the user's conversations: the first without `after`, else the
   * page that the previous page's `next` names. `limit` defaults to the
   * server's (100, at most 500).
   */
  async conversationsPage(after?: string, limit?: number): Promise<ConversationsPage> {
    const f: Record<string, unknown> & { type: string } = { type: "conversations" };
    if (after) f.after = after;
    if (limit) f.limit = limit;
    return this.request<ConversationsPage>(f);
  }

  /** Creates (or, for direct, finds) a conversation. */
  async create(kind: "direct" | "group", members: string[], title?: string): Promise<Conversation> {
    const f: Record<string, unknown> & { type: string } = { type: "create", kind, members };
    if (title !== undefined) f.title = title;
    return (await this.request<{ conversation: Conversation }>(f)).conversation;
  }

  /**
   * Hands the connection a fresh token for the same user before the current
   * one expires (the server closes an expired connection with 4003). Rejects
   * with "unauthorized" for a token that does not verify and "forbidden" for
   * another user's; the connection then keeps its current token. The
   * refreshToken option does this on its own.
   */
  async reauth(token: string): Promise<void> {
    await this.request({ type: "reauth", token });
  }

  /** Adds users to a group. */
  async addMembers(conv: string, users: string[]): Promise<void> {
    await this.request({ type: "add_member", conv, users });
  }

  /**
   * Removes a user from a group (owner only, or yourself). The owner
   * removing an invited user withdraws the invitation.
   */
  async removeMember(conv: string, user: string): Promise<void> {
    await this.request({ type: "remove_member", conv, user });
  }

  /**
   * Leaves a group; a direct conversation is hidden instead (see hide), an
   * invitation declined.
   */
  async leave(conv: string): Promise<void> {
    await this.request({ type: "leave", conv });
  }

  // Consent: message requests, invitations, hiding, who may add the user.

  /**
   * Adds users to a group and resolves with those who were invited rather
   * than added (their add_policy is "nobody"). A user who accepts adds
   * only from contacts rejects the whole request with "forbidden".
   */
  async addOrInvite(conv: string, users: string[]): Promise<string[]> {
    const f = await this.request<{ invited?: string[] }>({ type: "add_member", conv, users });
    return f.invited ?? [];
  }

  /** Accepts a message request or an invitation; resolves with the conversation as the user now sees it. */
  async accept(conv: string): Promise<Conversation> {
    return (await this.request<{ conversation: Conversation }>({ type: "accept", conv })).conversation;
  }

  /**
   * Declines a message request or an invitation: it disappears for the
   * user, and the requester's later messages do not bring it back.
   */
  async decline(conv: string): Promise<void> {
    await this.request({ type: "decline", conv });
  }

  /** Hides a conversation from the user's list until a new message arrives in it. */
  async hide(conv: string): Promise<void> {
    await this.request({ type: "hide", conv });
  }

  /** The user's settings. */
  async settings(): Promise<Settings> {
    return this.request<Settings>({ type: "settings" });
  }

  /** Sets who may add the user to groups. */
  async setAddPolicy(policy: AddPolicy): Promise<Settings> {
    return this.request<Settings>({ type: "settings", add_policy: policy });
  }

  /** One page of members, ordered by user id, after `after`. */
  async members(conv: string, after?: string, limit?: number): Promise<MembersPage> {
    return this.request<MembersPage>({ type: "members", conv, after, limit });
  }

  /** The oldest `limit` messages with seq > after, ascending. */
  async sync(conv: string, after = 0, limit?: number): Promise<MessagesPage> {
    const page = await this.request<MessagesPage>({ type: "sync", conv, after, limit });
    for (const m of page.messages) this.noteItem(m);
    return { ...page, messages: dropExpired(page.messages) };
  }

  /** The newest `limit` messages with seq < before (0: from the newest), ascending. */
  async history(conv: string, before = 0, limit?: number): Promise<MessagesPage> {
    const page = await this.request<MessagesPage>({ type: "history", conv, before, limit });
    for (const m of page.messages) this.noteItem(m);
    return { ...page, messages: dropExpired(page.messages) };
  }

  /** Tells the other members that the user is typing. Best effort: never rejects. */
  typing(conv: string): void {
    if (this._state === "open" && this.ws) this.ws.send(JSON.stringify({ type: "typing", conv }));
  }

  /** Moves the user's read marker in conv to seq. */
  async read(conv: string, seq: number): Promise<void> {
    await this.request({ type: "read", conv, seq });
  }

  /**
   * Moves the user's delivered marker in conv to seq. The client reports
   * what reaches it on its own (deliveredDelayMs); this is for clients that
   * turned that off.
   */
  async markDelivered(conv: string, seq: number): Promise<void> {
    await this.request({ type: "delivered", conv, seq });
  }

  /** Every member's delivered and read markers in conv (at most 100 members, else "too_large"). */
  async receipts(conv: string): Promise<Receipt[]> {
    return (await this.request<ReceiptsFrame>({ type: "receipts", conv })).receipts;
  }

  /**
   * Blocks a user: they can no longer open a direct conversation with this
   * user or add them to a group, nor see their presence, typing or reads,
   * and their messages are no longer pushed live (they stay in history).
   * Resolves with the block list after the change.
   */
  async block(user: string): Promise<string[]> {
    return (await this.request<BlockedFrame>({ type: "block", user })).users;
  }

  /** Lifts a block; resolves with the block list after the change. */
  async unblock(user: string): Promise<string[]> {
    return (await this.request<BlockedFrame>({ type: "unblock", user })).users;
  }

  /** The users this user blocked, sorted. */
  async blocked(): Promise<string[]> {
    return (await this.request<BlockedFrame>({ type: "blocked" })).users;
  }

  // Push devices (docs/protocol.md, register_device, unregister_device, devices).

  /**
   * Registers a push device: `apns` (the device token, hex), `fcm` (the
   * registration token) or `webpush` (`JSON.stringify(subscription.toJSON())`).
   * Resolves with its device_id, the same for the same token.
   */
  async registerDevice(platform: PushPlatform, token: string): Promise<string> {
    return (await this.request<{ device_id: string }>({ type: "register_device", platform, token })).device_id;
  }

  /** Removes the user's device named by its device_id or its token; one not registered is fine too. */
  async unregisterDevice(which: { device_id?: string; token?: string }): Promise<void> {
    await this.request({ type: "unregister_device", ...which });
  }

  /** The user's push devices, oldest first (tokens are never sent back). */
  async devices(): Promise<Device[]> {
    return (await this.request<{ devices: Device[] }>({ type: "devices" })).devices;
  }

  /**
   * Full-text search of the user's messages: every word of `query` must
   * match (case folded), newest first, only in conversations the user is a
   * member of now. Hits carry HTML highlights; pass `cursor` back in
   * `opts` for the next page.
   */
  async search(query: string, opts: SearchOptions = {}): Promise<SearchResults> {
    const frame: Record<string, unknown> & { type: string } = { type: "search", query };
    if (opts.conv) frame.conv = opts.conv;
    if (opts.cursor) frame.cursor = opts.cursor;
    if (opts.limit) frame.limit = opts.limit;
    return this.request<SearchResults>(frame);
  }

  /**
   * Erases the user's account (delete_account, naming the user as the
   * confirmation): removes them from every conversation and makes every
   * message they sent a tombstone. It cannot be undone. Resolves once the
   * erasure is recorded; the server then closes the connection (4001
   * "account erased") and this client closes for good.
   */
  async deleteAccount(): Promise<AccountDeleted> {
    const user = this.user;
    if (!user) throw new NatterError("disconnected", "not connected");
    const res = await this.request<AccountDeleted>({ type: "delete_account", user });
    this.close();
    return res;
  }

  /**
   * Asks for the user's archive (export): their conversations, their own
   * messages and their attachments' URLs, as NDJSON behind a short-lived
   * signed URL (resolve it with fileURL; parseExport reads the text).
   */
  async exportData(): Promise<ExportReady> {
    return this.request<ExportReady>({ type: "export" });
  }

  /** Presence of users the user shares a conversation with. */
  async presence(users: string[]): Promise<Record<string, PresenceState>> {
    return (await this.request<{ users: Record<string, PresenceState> }>({ type: "presence", users })).users;
  }

  /**
   * Sends a message and resolves with its ack. The message goes through the
   * outbox with a fresh client_id: it is resent with the same client_id
   * after a reconnect or a retryable error (the server de-duplicates), and
   * rejects only for a permanent error or close().
   */
  send(conv: string, body: Body, opts: SendOptions = {}): Promise<Ack> {
    const entry: OutboxEntry = { conv, client_id: opts.clientId ?? newClientId(), body, queued_at: Date.now() };
    if (opts.kind) entry.kind = opts.kind;
    if (opts.ref !== undefined) entry.ref = opts.ref;
    if (opts.replyTo) entry.reply_to = opts.replyTo;
    if (opts.thread) entry.thread = opts.thread;
    if (opts.mentions?.length) entry.mentions = opts.mentions;
    const key = conv + "\n" + entry.client_id;
    return new Promise<Ack>((resolve, reject) => {
      let o = this.outgoing.get(key);
      if (!o) {
        o = { entry, waiters: [], inFlight: false, attempt: 0, sent: false };
        this.outgoing.set(key, o);
        this.saveOutbox();
      }
      if (this._state === "closed") {
        // Kept (and stored) for the next connect, which sends it and emits "sent".
        reject(new NatterError("closed", "client closed; the message stays in the outbox"));
        return;
      }
      o.waiters.push({ resolve, reject });
      if (!this.resuming) this.transmit(o);
    });
  }

  /**
   * Asks for an upload URL for a file of size bytes of contentType; name
   * (optional) is shown to the other members. See uploadFile.
   */
  upload(contentType: string, size: number, name?: string): Promise<UploadURL> {
    const frame: Record<string, unknown> & { type: string } = { type: "upload", content_type: contentType, size };
    if (name) frame.name = name;
    return this.request<UploadURL>(frame);
  }

  /**
   * Uploads a file (a File or Blob in browsers, bytes in Node) and resolves
   * with its attachment id, to put in a message body's "attachments".
   */
  async uploadFile(data: UploadData, contentType: string, name?: string): Promise<string> {
    const up = await this.upload(contentType, dataSize(data), name);
    await putUpload(this.opts.url, up, data);
    return up.attachment;
  }

  /** Resolves the url or thumb_url of a FileRef (relative to the server) to an absolute URL. */
  fileURL(url: string): string {
    return resolveFileURL(this.opts.url, url);
  }

  /**
   * Sets the user's mute level of conv's push notifications: "all" (none),
   * "mentions" (only messages mentioning the user or "@all") or "none"
   * (unmuted); until (a Date) ends it then, without it the level holds
   * until changed.
   */
  async mute(conv: string, level: MuteLevel, until?: Date): Promise<void> {
    const f: Record<string, unknown> & { type: string } = { type: "mute", conv, level };
    if (until) f.until = until.toISOString();
    await this.request({ ...f });
  }

  /** Edits one of the user's messages: a send of kind "edit". */
  edit(conv: string, ref: number, body: Body): Promise<Ack> {
    return this.send(conv, body, { kind: "edit", ref });
  }

  /**
   * Deletes one of the user's messages, or, for a group's owner or an
   * admin, anyone's (a moderator delete): a send of kind "delete".
   */
  delete(conv: string, ref: number): Promise<Ack> {
    return this.send(conv, {}, { kind: "delete", ref });
  }

  // Group settings, roles and moderation (group.ts).

  /**
   * Changes a group's settings (owner and admins) and resolves with the
   * group as the user now sees it. Each change becomes an event item.
   */
  async update(conv: string, u: GroupUpdate): Promise<Conversation> {
    return (await this.request<{ conversation: Conversation }>({ type: "update", conv, ...u })).conversation;
  }

  /**
   * Sets the conversation's disappearing-messages ttl in seconds (0: off;
   * see TTLS): a group's owner and admins, either member of a direct
   * conversation. Resolves with the conversation as the user now sees it.
   */
  async setTTL(conv: string, seconds: number): Promise<Conversation> {
    return this.update(conv, { ttl: seconds });
  }

  /** Makes a member an admin or a plain member again (owner only). */
  async setRole(conv: string, user: string, role: "admin" | "member"): Promise<void> {
    await this.request({ type: "set_role", conv, user, role });
  }

  /** Hands the group to another member (owner only); the owner becomes an admin. */
  async transfer(conv: string, user: string): Promise<void> {
    await this.request({ type: "transfer", conv, user });
  }

  /** Removes a user and bans them until unban (owner; admins ban plain members). */
  async ban(conv: string, user: string): Promise<void> {
    await this.request({ type: "remove_member", conv, user, ban: true });
  }

  /** Lifts a ban (owner and admins). */
  async unban(conv: string, user: string): Promise<void> {
    await this.request({ type: "unban", conv, user });
  }

  /** The users banned from a group, sorted (owner and admins). */
  async banned(conv: string): Promise<string[]> {
    return (await this.request<BannedFrame>({ type: "banned", conv })).users;
  }

  /** Reacts to a message: a send of kind "reaction". */
  react(conv: string, ref: number, body: Body): Promise<Ack> {
    return this.send(conv, body, { kind: "reaction", ref });
  }

  /** Sends a message quoting replyTo; the server fills the quote. */
  reply(conv: string, replyTo: number, body: Body): Promise<Ack> {
    return this.send(conv, body, { replyTo });
  }

  /** Sends a message into the thread under root (a message that is not itself a thread reply). */
  sendInThread(conv: string, root: number, body: Body): Promise<Ack> {
    return this.send(conv, body, { thread: root });
  }

  /** The oldest `limit` replies of the thread under root with seq > after, ascending. */
  async threadAfter(conv: string, root: number, after = 0, limit?: number): Promise<MessagesPage> {
    const page = await this.request<MessagesPage>({ type: "thread", conv, thread: root, after, limit });
    return { ...page, messages: dropExpired(page.messages) };
  }

  /** The newest `limit` replies of the thread under root with seq < before (0: from the newest), ascending. */
  async threadBefore(conv: string, root: number, before = 0, limit?: number): Promise<MessagesPage> {
    const page = await this.request<MessagesPage>({ type: "thread", conv, thread: root, before, limit });
    return { ...page, messages: dropExpired(page.messages) };
  }

  private flushOutbox(): void {
    for (const o of this.outgoing.values()) this.transmit(o);
  }

  private transmit(o: Outgoing): void {
    if (o.inFlight || this._state !== "open" || !this.ws) return;
    clearTimeout(o.retryTimer);
    if (Date.now() - o.entry.queued_at > this.opts.sendExpiryMs) {
      const secs = Math.round(this.opts.sendExpiryMs / 1000);
      this.fail(o, new NatterError("expired", `not acknowledged within ${secs} s; it may or may not have been stored`));
      return;
    }
    o.inFlight = true;
    const e = o.entry;
    const f: Record<string, unknown> & { type: string } = { type: "send", conv: e.conv, client_id: e.client_id, body: e.body };
    if (e.kind) f.kind = e.kind;
    if (e.ref !== undefined) f.ref = e.ref;
    if (e.reply_to) f.reply_to = e.reply_to;
    if (e.thread) f.thread = e.thread;
    if (e.mentions?.length) f.mentions = e.mentions;
    if (o.sent) f.resend = true;
    o.sent = true;
    this.request<Ack>(f).then(
      (ack) => this.settle(o, ack),
      (err: NatterError) => {
        o.inFlight = false;
        if (!this.outgoing.has(e.conv + "\n" + e.client_id)) return;
        if (err.code === "closed") return; // kept in the outbox for the next connect
        if (err.code === "disconnected") return; // resume resends
        if (RETRYABLE.has(err.code)) {
          const delay = backoffDelay(o.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs, this.opts.random);
          o.retryTimer = setTimeout(() => this.transmit(o), delay);
          return;
        }
        this.fail(o, err);
      },
    );
  }

  // fail drops an outbox entry for good and tells whoever waits on it.
  private fail(o: Outgoing, err: NatterError): void {
    const e = o.entry;
    this.outgoing.delete(e.conv + "\n" + e.client_id);
    this.saveOutbox();
    for (const w of o.waiters) w.reject(err);
    this.emit("send_failed", { entry: e, error: err });
  }

  private settle(o: Outgoing, ack: Ack): void {
    const key = o.entry.conv + "\n" + o.entry.client_id;
    if (this.outgoing.get(key) !== o) return;
    clearTimeout(o.retryTimer);
    this.outgoing.delete(key);
    this.noteSeq(ack.conv, ack.seq);
    this.saveOutbox();
    for (const w of o.waiters) w.resolve(ack);
    this.emit("sent", { entry: o.entry, ack });
  }
}

export type { ErrorFrame };

/** What a Client holds of one conversation (see Client.heldSeq). */
interface ConvSeqs {
  held: number;
  above: Map<number, number>;
  last: number;
  /** Only acks seen yet: the first item sets held. */
  unstarted?: boolean;
}

// advance moves held over every item above it whose prev it reaches:
// holding everything up to prev and the item is holding everything up to
// the item. above holds items only while a gap is open.
function advance(st: ConvSeqs): void {
  for (let moved = true; moved; ) {
    moved = false;
    for (const [seq, prev] of st.above) {
      if (seq <= st.held) st.above.delete(seq);
      else if (prev <= st.held) {
        st.held = seq;
        st.above.delete(seq);
        moved = true;
      }
    }
  }
}

/**
 * The exp of a JWT in milliseconds, read without verifying it (the server
 * does that), or 0 when it has none.
 */
export function tokenExpiry(token: string): number {
  try {
    const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(b64 + "===".slice((b64.length + 3) % 4))).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/**
 * When to refresh a token that expires at exp (ms), obtained at now: a quarter
 * of its remaining life before exp, but never more than a minute before.
 */
export function refreshAt(now: number, exp: number): number {
  return exp - Math.max(0, Math.min((exp - now) / 4, 60_000));
}
