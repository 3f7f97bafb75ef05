// Account requests (docs/protocol.md, "Account: delete and export"): the
// user's own erasure and export.
import type { FileRef } from "./types.js";

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
