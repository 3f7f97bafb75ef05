// Attachments in the web app: the composer's attach button (upload, then
// send a message referencing it) and the files of a message, images shown
// as their thumbnail linking to the full file.

import type { FileRef, Message, NatterClient } from "../../client/src/index.js";

/** Uploads file and sends a message referencing it, with text (may be empty). */
export async function sendFile(client: NatterClient, conv: string, file: File, text: string, clientId: string): Promise<void> {
  const type = file.type || "application/octet-stream";
  const id = await client.uploadFile(file, type, file.name.slice(0, 255));
  await client.send(conv, { text, attachments: [id] }, { clientId });
}

/** The file input and button of the composer; onPick gets the chosen file. */
export function attachButton(onPick: (file: File) => void): HTMLElement[] {
  const input = document.createElement("input");
  input.type = "file";
  input.id = "composer-file";
  input.className = "hidden";
  input.addEventListener("change", () => {
    const f = input.files?.[0];
    input.value = "";
    if (f) onPick(f);
  });
  const button = document.createElement("button");
  button.type = "button";
  button.id = "composer-attach";
  button.className = "attach";
  button.title = "Attach a file";
  button.textContent = "📎";
  button.addEventListener("click", () => input.click());
  return [input, button];
}

function humanSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** The files of m as DOM nodes: an image preview for images, a link otherwise. */
export function drawFiles(client: NatterClient, m: Message): HTMLElement | null {
  if (!m.files?.length) return null;
  const box = document.createElement("div");
  box.className = "files";
  for (const f of m.files) box.append(drawFile(client, f));
  return box;
}

function drawFile(client: NatterClient, f: FileRef): HTMLElement {
  const a = document.createElement("a");
  a.href = client.fileURL(f.url);
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.className = "file";
  a.dataset.attachment = f.id;
  if (f.content_type.startsWith("image/")) {
    const img = document.createElement("img");
    img.className = "preview";
    img.alt = f.name || "image";
    img.loading = "lazy";
    img.src = client.fileURL(f.thumb_url ?? f.url);
    a.append(img);
    return a;
  }
  a.textContent = `📄 ${f.name || f.id} (${humanSize(f.size)})`;
  return a;
}
