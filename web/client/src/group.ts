// Group settings, roles and moderation (docs/protocol.md, "Group settings,
// roles and moderation"): wire types and how to show event items.
import type { Message } from "./types.js";
import { describeTTL } from "./ttl.js";

/** A member's role in a group; both members of a direct conversation are "member". */
export type Role = "owner" | "admin" | "member";

/** What `update` changes; absent fields stay as they are, "" clears topic or avatar. */
export interface GroupUpdate {
  title?: string;
  topic?: string;
  /** An https URL, or "" to clear it. */
  avatar?: string;
  read_only?: boolean;
  /** true: only the owner and admins add members; false: every member again. */
  only_admins_add?: boolean;
  /** Disappearing messages in seconds, 0 for off (ttl.ts); either member of a direct conversation may set it. */
  ttl?: number;
  /** Days messages sent from now on are kept, 0 for ever. */
  retention_days?: number;
}

/** The answer to `banned`. */
export interface BannedFrame {
  type: "banned";
  id?: string;
  conv: string;
  users: string[];
}

/**
 * The body of a message of kind "event": one change of a group's settings
 * or roles, made by `by` (the message's sender). Only the fields of its
 * kind of event are set.
 */
export interface GroupEvent {
  event: "renamed" | "topic_changed" | "avatar_changed" | "read_only" | "only_admins_add" | "role_changed" | "transferred" | "banned" | "unbanned" | "ttl_changed" | "retention_changed" | "account_deleted" | string;
  by: string;
  title?: string;
  topic?: string;
  avatar?: string;
  read_only?: boolean;
  /** only_admins_add: the new setting. */
  only_admins_add?: boolean;
  user?: string;
  role?: Role;
  /** ttl_changed: the new ttl in seconds, 0 for off. */
  ttl?: number;
  /** retention_changed: the new retention in days, 0 for ever. */
  retention_days?: number;
}

/** The group event a message carries, or undefined when it is not an event item. */
export function groupEvent(m: Pick<Message, "kind" | "body">): GroupEvent | undefined {
  if ((m.kind as string) !== "event") return undefined;
  const b = m.body as Partial<GroupEvent>;
  return typeof b.event === "string" && typeof b.by === "string" ? (b as GroupEvent) : undefined;
}

/**
 * One line for an event item, as a timeline shows it: "carol renamed the
 * group to Launch". `name` maps a user id to a display name.
 */
export function describeGroupEvent(ev: GroupEvent, name: (uid: string) => string = (u) => u): string {
  const by = name(ev.by);
  const user = ev.user ? name(ev.user) : "";
  switch (ev.event) {
    case "renamed":
      return `${by} renamed the group to ${ev.title ?? ""}`;
    case "topic_changed":
      return ev.topic ? `${by} changed the topic to ${ev.topic}` : `${by} cleared the topic`;
    case "avatar_changed":
      return ev.avatar ? `${by} changed the group's picture` : `${by} removed the group's picture`;
    case "read_only":
      return ev.read_only ? `${by} made the group read-only` : `${by} let everyone post again`;
    case "only_admins_add":
      return ev.only_admins_add ? `${by} let only admins add members` : `${by} let every member add members`;
    case "role_changed":
      return ev.role === "admin" ? `${by} made ${user} an admin` : `${by} made ${user} a member`;
    case "transferred":
      return `${by} made ${user} the owner`;
    case "banned":
      return `${by} banned ${user}`;
    case "unbanned":
      return `${by} lifted ${user}'s ban`;
    case "ttl_changed":
      return ev.ttl ? `${by} turned on disappearing messages (${describeTTL(ev.ttl)})` : `${by} turned off disappearing messages`;
    case "account_deleted":
      return `${user || by}'s account was deleted`;
    case "retention_changed":
      return ev.retention_days ? `${by} keeps messages ${ev.retention_days} day${ev.retention_days === 1 ? "" : "s"}` : `${by} keeps messages for ever`;
  }
  return `${by} changed the group`;
}

/**
 * Whether a delete is a moderator's: its sender is not the deleted
 * message's. `target` is the deleted message.
 */
export function isModeratorDelete(del: Pick<Message, "kind" | "sender">, target: Pick<Message, "sender">): boolean {
  return del.kind === "delete" && del.sender !== target.sender;
}
