// The web app's account settings: download an export of the user's data,
// and delete the account after typing the user id to confirm
// (docs/protocol.md, "Account: delete and export").

import type { ExportReady } from "../../client/src/index.js";
import { h } from "./dom.js";

/** What the account panel needs of the app. */
export interface AccountDeps {
  me: string;
  exportData(): Promise<ExportReady>;
  /** Resolves a file URL of the server to an absolute one. */
  fileURL(url: string): string;
  deleteAccount(): Promise<unknown>;
  /** After the account is deleted: leave the app (forget the token). */
  deleted(): void;
}

/** accountPanel returns the account section of the sidebar. */
export function accountPanel(deps: AccountDeps): HTMLElement {
  const status = h("p", { id: "account-status", class: "account-status" });
  const link = h("a", { id: "export-link", class: "hidden", download: `natter-export-${deps.me}.ndjson` }, "Download my archive");
  const exportBtn = h("button", { id: "export-data", class: "link", type: "button" }, "Export my data");
  exportBtn.addEventListener("click", async () => {
    exportBtn.setAttribute("disabled", "");
    status.textContent = "Preparing your archive…";
    try {
      const r = await deps.exportData();
      link.setAttribute("href", deps.fileURL(r.file.url));
      link.classList.remove("hidden");
      status.textContent = `${r.conversations} conversations, ${r.messages} messages, ${r.files} files. The link works until ${new Date(r.file.expires).toLocaleTimeString()}.`;
    } catch (e) {
      status.textContent = `Export failed: ${(e as Error).message}`;
    } finally {
      exportBtn.removeAttribute("disabled");
    }
  });

  const confirmInput = h("input", { id: "delete-confirm", placeholder: `type ${deps.me} to confirm`, autocomplete: "off" });
  const deleteBtn = h("button", { id: "delete-account-confirm", class: "danger", type: "submit", disabled: true }, "Delete my account for good");
  confirmInput.addEventListener("input", () => {
    if (confirmInput.value === deps.me) deleteBtn.removeAttribute("disabled");
    else deleteBtn.setAttribute("disabled", "");
  });
  const form = h(
    "form",
    { id: "delete-form", class: "delete-form hidden" },
    h("p", {}, "This removes you from every conversation and erases every message you sent. It cannot be undone."),
    confirmInput,
    deleteBtn,
  );
  form.addEventListener("submit", async (ev: Event) => {
    ev.preventDefault();
    if (confirmInput.value !== deps.me) return;
    deleteBtn.setAttribute("disabled", "");
    status.textContent = "Deleting your account…";
    try {
      await deps.deleteAccount();
      status.textContent = "Your account was deleted.";
      deps.deleted();
    } catch (e) {
      status.textContent = `Deletion failed: ${(e as Error).message}`;
      deleteBtn.removeAttribute("disabled");
    }
  });
  const deleteToggle = h("button", { id: "delete-account", class: "link danger", type: "button", onclick: () => form.classList.toggle("hidden") }, "Delete my account…");
  return h("section", { id: "account", class: "account" }, h("h3", {}, "Account"), exportBtn, link, deleteToggle, form, status);
}
