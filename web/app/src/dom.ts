// Tiny DOM helpers shared by the app's modules.

export type Attrs = Record<string, string | boolean | ((ev: any) => void) | undefined>;

/** Builds an element: attributes (on* are listeners; false and undefined are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...kids: (Node | string | null | false)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== false) el.append(k);
  return el;
}

export const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
