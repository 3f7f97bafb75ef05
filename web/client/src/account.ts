// Account requests (docs/protocol.md, "Account: delete and export"): the
// user's own erasure and export.
import type { Conversation, FileRef } from "./types.js";

/** The answer to delete_account: the erasure is recorded and goes on in the background. */
export interface AccountDeleted {
  type: "account_deleted";
  id?: string;
  user: string;
}

/** The answer to export: the archive (NDJSON) with a signed URL valid until file.expires. */
export interface ExportReady {
  type: "export_ready";
  id?: string;
  file: FileRef;
  conversations: number;
  messages: number;
  files: number;
}

/** The close reason of every connection of an erased account (code 4001). */
export const ACCOUNT_ERASED = "account erased";

/** One line of an export archive. */
export type ExportLine =
  | { type: "export"; version: number; user: string; created: string }
  | { type: "conversation"; conversation: Record<string, unknown> & { conv: string; members?: string[] } }
  | { type: "message"; message: Record<string, unknown> & { conv: string; seq: number; sender: string } }
  | { type: "end"; conversations: number; messages: number; files: number };

/** Parses an export archive (NDJSON) into its lines. */
export function parseExport(ndjson: string): ExportLine[] {
  return ndjson
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as ExportLine);
}

/**
 * The other member of direct conversation c when that account was erased
 * (c.erased), else undefined. Such a conversation stays with its history,
 * but nobody can send in it any more (`send` is forbidden).
 */
export function deletedPeer(c: Pick<Conversation, "kind" | "members" | "erased">, me: string): string | undefined {
  if (c.kind !== "direct") return undefined;
  return c.erased?.find((u) => u !== me);
}

/** Whether anyone may still send in c: not in a direct conversation with an erased account. */
export function erasedConversation(c: Pick<Conversation, "erased">): boolean {
  return (c.erased?.length ?? 0) > 0;
}
