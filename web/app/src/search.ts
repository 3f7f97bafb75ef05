// The web app's search box: a form in the sidebar and a list of hits
// under it. A hit opens its conversation. Highlights are the server's
// HTML (matches in <mark>, the rest escaped); they are still rebuilt as
// text nodes and <mark> elements only, so nothing else can get into the
// page from them.

import type { SearchHit, SearchOptions, SearchResults } from "../../client/src/index.js";
import { h } from "./dom.js";

/** What the search panel needs of the app. */
export interface SearchDeps {
  search(query: string, opts: SearchOptions): Promise<SearchResults>;
  /** The title to show for a conversation. */
  title(conv: string): string;
  open(conv: string): void;
  time(ts: string): string;
}

/** highlight turns one highlight fragment into text and <mark> nodes. */
export function highlight(html: string): DocumentFragment {
  const t = document.createElement("template");
  t.innerHTML = html; // inert: a template's content runs nothing
  const out = document.createDocumentFragment();
  for (const n of Array.from(t.content.childNodes)) {
    if (n.nodeName === "MARK") out.append(h("mark", {}, n.textContent ?? ""));
    else out.append(document.createTextNode(n.textContent ?? ""));
  }
  return out;
}

/** searchPanel returns the search form and its results list. */
export function searchPanel(deps: SearchDeps): HTMLElement {
  const input = h("input", { id: "search-input", type: "search", placeholder: "Search messages", autocomplete: "off" });
  const results = h("ul", { id: "search-results", class: "search-results hidden" });
  const more = h("button", { id: "search-more", type: "button", class: "link hidden" }, "More results");
  let query = "";
  let cursor = "";

  const row = (hit: SearchHit): HTMLElement => {
    const text = h("div", { class: "hit-text" });
    for (const f of hit.highlights) text.append(highlight(f));
    return h(
      "li",
      { class: "hit", "data-conv": hit.conv, "data-seq": String(hit.seq), onclick: () => deps.open(hit.conv) },
      h("div", { class: "hit-head" }, h("strong", {}, deps.title(hit.conv)), " · ", hit.sender, " · ", deps.time(hit.ts)),
      text,
    );
  };

  const run = async (next: boolean): Promise<void> => {
    if (!next) {
      query = input.value.trim();
      cursor = "";
      results.replaceChildren();
    }
    if (!query) {
      results.classList.add("hidden");
      more.classList.add("hidden");
      return;
    }
    results.classList.remove("hidden");
    try {
      const res = await deps.search(query, next ? { cursor } : {});
      if (!next && res.hits.length === 0) results.append(h("li", { class: "hit empty" }, "No messages found"));
      for (const hit of res.hits) results.append(row(hit));
      cursor = res.cursor ?? "";
    } catch (e) {
      results.append(h("li", { class: "hit empty" }, `Search failed: ${(e as Error).message}`));
      cursor = "";
    }
    more.classList.toggle("hidden", cursor === "");
  };

  const form = h(
    "form",
    { id: "search-form", class: "search-form", onsubmit: (ev: Event) => {
      ev.preventDefault();
      void run(false);
    } },
    input,
    h("button", { id: "search-submit", type: "submit" }, "Search"),
  );
  input.addEventListener("search", () => void run(false)); // the clear button
  more.addEventListener("click", () => void run(true));
  return h("div", { id: "search", class: "search" }, form, results, more);
}
