// Attachments: upload URLs and the HTTP PUT of a file's bytes.
import type { UploadURL } from "./types.js";

/** The http[s]://host of a ws[s]:// URL: what relative file URLs are resolved against. */
export function httpOrigin(wsURL: string): string {
  const u = new URL(wsURL);
  return (u.protocol === "wss:" || u.protocol === "https:" ? "https://" : "http://") + u.host;
}

/** Makes a URL of an upload or file absolute: natter's own store gives them relative to itself. */
export function resolveFileURL(wsURL: string, url: string): string {
  return new URL(url, httpOrigin(wsURL)).toString();
}

/** Anything the PUT can send: a File (a Blob) in browsers, bytes in Node. */
export type UploadData = Blob | ArrayBuffer | Uint8Array;

/** The byte length of data. */
export function dataSize(data: UploadData): number {
  return data instanceof Blob ? data.size : data.byteLength;
}

/**
 * PUTs data to an upload URL with the declared Content-Type (the length is
 * the body's). Rejects with the storage's answer on anything but 2xx.
 */
export async function putUpload(wsURL: string, up: UploadURL, data: UploadData, fetchImpl: typeof fetch = globalThis.fetch): Promise<void> {
  const resp = await fetchImpl(resolveFileURL(wsURL, up.url), {
    method: up.method,
    headers: { "Content-Type": up.content_type },
    body: data as BodyInit,
  });
  if (!resp.ok) {
    const text = (await resp.text()).slice(0, 300).trim();
    throw new Error(`natter: upload ${up.attachment}: HTTP ${resp.status}: ${text}`);
  }
}
