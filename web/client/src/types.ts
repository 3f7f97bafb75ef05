// Wire types of Natter protocol v1 (docs/protocol.md), as a client sees them.

/** A JSON object: what a message body must be. */
export type Body = { [key: string]: unknown };

/** Kinds of message that refer to another one by `ref`. Plain messages have none. */
export type MessageKind = "edit" | "delete" | "reaction";

/**
 * The kind of a message as stored: a client sends a MessageKind; "event"
 * items are the server's (a group's settings or roles changed, group.ts).
 */
export type StoredKind = MessageKind | "event";

/** A stored message, as pushed (`message`) or paged (`sync`, `history`). */
export interface Message {
  conv: string;
  seq: number;
  sender: string;
  client_id: string;
  ts: string;
  kind?: StoredKind;
  ref?: number;
  /** The seq of the message this one quotes, and what the server copied of it. */
  reply_to?: number;
  quote?: Quote;
  /** The root seq of the thread this message was posted in. */
  thread?: number;
  /** The user ids the message mentions, or "@all" (see mentions.ts). */
  mentions?: string[];
  /** When the item disappears (ttl.ts); absent when it does not. */
  expires_at?: string;
  body: Body;
  /** Pages only: the seq of the latest edit applied to body. */
  edit_seq?: number;
  /** Pages only: a tombstone (body is {}). */
  deleted?: true;
  /** Pages only: who deleted it, when not its sender (a moderator). */
  deleted_by?: string;
  /** Pages only, on a thread's root: how many replies, and the newest one's seq. */
  thread_count?: number;
  thread_last_seq?: number;
  /**
   * The seq of the item before this one in the conversation (0 for the
   * first), the same live and in pages: holding it means holding
   * everything up to this item.
   */
  prev: number;
  /** The attachments the body references, with short-lived URLs (docs/protocol.md, Attachments). */
  files?: FileRef[];
}

/**
 * An attachment as a member sees it: a presigned GET url valid until
 * expires, and for a JPEG or PNG a thumbnail's. URLs may be relative to the
 * server: resolve them with NatterClient.fileURL.
 */
export interface FileRef {
  id: string;
  url: string;
  thumb_url?: string;
  content_type: string;
  size: number;
  name?: string;
  expires: string;
}

/** The reply to upload: PUT the bytes to url before expires. */
export interface UploadURL {
  type: "upload_url";
  id?: string;
  attachment: string;
  url: string;
  method: "PUT";
  content_type: string;
  size: number;
  expires: string;
}

/** What a reply shows of the message it quotes, copied when it was sent. */
export interface Quote {
  seq: number;
  sender: string;
  kind?: string;
  /** The quoted text, white space folded, at most 140 characters; "" when deleted. */
  snippet: string;
  /** The quoted message is deleted: when the reply was sent, or (in pages) since. */
  deleted?: true;
}

/** A conversation object (`create`, `conversations`, `conversation` push). */
export interface Conversation {
  conv: string;
  kind: "direct" | "group";
  title: string;
  owner?: string;
  member_count: number;
  /** Present when member_count <= 100. */
  members?: string[];
  last_seq: number;
  read_seq: number;
  unread: number;
  /** Messages after read_seq that mention the user or @all (≤ 32); absent when 0. */
  mention_count?: number;
  /** Preview of the newest message or event; absent before any. */
  last?: Last;
  created?: string;
  /**
   * The user's consent state of it: absent when normal, "request" (an
   * incoming message request), "pending" (the user's request, not yet
   * accepted), "invited" (an invitation into a group: not a member yet).
   */
  state?: ConversationState;
  /**
   * Users invited to the group who have not accepted (≤ 100 listed).
   * Members get a `conversation` push with the new list whenever it
   * changes; a `member` push "added" takes that user off it.
   */
  invited?: string[];
  /** The user's mute level of it (`conversations` reply); absent when not muted. */
  mute?: "all" | "mentions";
  /** A group's topic and avatar (an https URL), absent when unset. */
  topic?: string;
  avatar?: string;
  /** A read-only group: only the owner and admins send. */
  read_only?: boolean;
  /** Only the owner and admins add members (`update`); absent when every member may. */
  only_admins_add?: boolean;
  /** The group's admins, sorted (the owner is `owner`). */
  admins?: string[];
  /**
   * A direct conversation's members whose accounts were erased: show
   * "deleted account" instead of the id. Nobody can send in it any more.
   */
  erased?: string[];
  /** The user's role; absent when not a member (an invitation). */
  role?: "owner" | "admin" | "member";
  /** Disappearing messages: the ttl in seconds (ttl.ts); absent when off. */
  ttl?: number;
  /** Retention: days messages sent now are kept (ttl.ts); absent when for ever. */
  retention_days?: number;
}

/** The preview of a conversation's newest message or event (docs/protocol.md "The inbox"). */
export interface Last {
  seq: number;
  sender: string;
  ts: string;
  /** "event" for an event; absent for a plain message. */
  kind?: "event";
  /** The body's text folded and cut to 140 characters, or the kind; "" when deleted. */
  snippet: string;
  deleted?: true;
  /** When the previewed message disappears: drop the preview then. */
  expires_at?: string;
}

/** Conversation.state values. */
export type ConversationState = "request" | "pending" | "invited";

/** Who may add the user to groups (`settings`). */
export type AddPolicy = "everyone" | "contacts" | "nobody";

export interface Settings {
  type: "settings";
  id?: string;
  add_policy: AddPolicy;
}

export interface Welcome {
  type: "welcome";
  id?: string;
  user: string;
  session: string;
  heartbeat_s: number;
  device?: string;
  server_time?: string;
}

export interface Ack {
  type: "ack";
  id?: string;
  conv: string;
  seq: number;
  ts: string;
  duplicate?: boolean;
  /** The sent message's attachments. */
  files?: FileRef[];
  /** When the sent message disappears (ttl.ts). */
  expires_at?: string;
}

export interface MessagesPage {
  type: "messages";
  id?: string;
  conv: string;
  /** Set on the answer to `thread`: the root seq of the thread paged. */
  thread?: number;
  /**
   * Set on the answer to `thread`: the thread's root as it reads now (edits,
   * a deletion, thread_count and thread_last_seq applied).
   */
  root?: Message;
  messages: Message[];
  more: boolean;
}

/**
 * One page of `conversations`, newest activity first (last.seq, then id). While
 * `more` is true, `next` is the opaque cursor to send as `after` for the
 * following page; the last page has no `next`.
 */
export interface ConversationsPage {
  type: "conversations";
  id?: string;
  conversations: Conversation[];
  more?: boolean;
  next?: string;
}

export interface MembersPage {
  type: "members";
  id?: string;
  conv: string;
  members: string[];
  more: boolean;
}

export interface PresenceState {
  online: boolean;
  devices?: number;
  last_seen?: string;
}

// Pushes: frames the server sends without an id.

export interface MessagePush extends Message {
  type: "message";
}
export interface TypingPush {
  type: "typing";
  conv: string;
  user: string;
}
export interface ReadPush {
  type: "read";
  conv: string;
  user: string;
  seq: number;
}
/** A member's delivered marker moved: every message up to seq reached one of their devices. */
export interface DeliveredPush {
  type: "delivered";
  conv: string;
  user: string;
  seq: number;
}
/** One member's markers; delivered is never below read. */
export interface Receipt {
  user: string;
  delivered: number;
  read: number;
}
/** The answer to receipts: every member's markers, by user id. */
export interface ReceiptsFrame {
  type: "receipts";
  id?: string;
  conv: string;
  receipts: Receipt[];
}
export interface PresencePush extends PresenceState {
  type: "presence";
  user: string;
}
export interface MemberPush {
  type: "member";
  conv: string;
  user: string;
  action: "added" | "removed";
  by?: string;
}
export interface ConversationPush {
  type: "conversation";
  /** The user's inbox item (counts and last are the user's): replace it. */
  inbox?: true;
  conversation: Conversation;
}
/**
 * The user's block list: the answer to `block`, `unblock` and `blocked`,
 * and a push (no id) when it changed on another of the user's devices.
 */
export interface BlockedFrame {
  type: "blocked";
  id?: string;
  users: string[];
}
/** One message a search found. */
export interface SearchHit {
  conv: string;
  seq: number;
  sender: string;
  ts: string;
  /**
   * Fragments of the message's text as HTML: the matched words in
   * <mark>…</mark>, everything else escaped. Safe to insert as HTML.
   */
  highlights: string[];
}
/** The answer to `search`: hits newest first; `cursor` fetches the next page. */
export interface SearchResults {
  type: "search_results";
  id?: string;
  hits: SearchHit[];
  cursor?: string;
}
/** Narrows a search. */
export interface SearchOptions {
  /** Only this conversation (the user must be a member). */
  conv?: string;
  /** The `cursor` of a previous page. */
  cursor?: string;
  /** The most hits (the server caps it at 100, default 20). */
  limit?: number;
}
/**
 * The gateway may have lost pushes for this user (its NATS connection
 * reconnected, or it fell behind): sync every conversation, or conv only.
 */
export interface ResyncPush {
  type: "resync";
  reason: "reconnect" | "dropped";
  conv?: string;
}

/** Error codes fixed by the contract. */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "too_large"
  | "rate_limited"
  | "conflict"
  | "unavailable"
  | "internal";

export interface ErrorFrame {
  type: "error";
  id?: string;
  code: ErrorCode;
  message: string;
}

/** Any frame the server sends. */
export type ServerFrame =
  | Welcome
  | { type: "pong"; id?: string }
  | { type: "ok"; id?: string; invited?: string[] }
  | Settings
  | Ack
  | UploadURL
  | MessagesPage
  | MembersPage
  | ConversationsPage
  | { type: "conversation"; id?: string; conversation: Conversation }
  | { type: "presence"; id: string; users: Record<string, PresenceState> }
  | MessagePush
  | TypingPush
  | ReadPush
  | DeliveredPush
  | PresencePush
  | MemberPush
  | ResyncPush
  | BlockedFrame
  | { type: "banned"; id?: string; conv: string; users: string[] }
  | SearchResults
  | ErrorFrame;

/** A push platform a device registers for. */
export type PushPlatform = "apns" | "fcm" | "webpush";

/** A registered push device as its owner sees it: never the token. */
export interface Device {
  /** The first 16 hex digits of SHA-256(platform, 0x00, token). */
  device_id: string;
  platform: PushPlatform;
  /** When it was first registered, RFC 3339. */
  added: string;
}
