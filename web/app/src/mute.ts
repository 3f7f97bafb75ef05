// The mute control of the chat head: the user's push notification level
// of the open conversation ("mute" request, docs/protocol.md "mute"),
// drawn from the conversation's `mute` field, and the muted mark of the
// conversation list.
import type { Conversation, MuteLevel } from "../../client/src/index.js";
import { h } from "./dom.js";

const LEVELS: [MuteLevel, string][] = [
  ["none", "Notify: all messages"],
  ["mentions", "Notify: @mentions only"],
  ["all", "Notify: off"],
];

/** How long a level set with the control holds: "" until changed, else hours. */
const DURATIONS: [string, string][] = [
  ["", "until I change it"],
  ["1", "for 1 hour"],
  ["8", "for 8 hours"],
  ["168", "for 1 week"],
];

/** The level c shows: its `mute` field, "none" when absent. */
export function muteLevel(c: Conversation): MuteLevel {
  return c.mute ?? "none";
}

/**
 * The chat head's notification control of c: a level select (#mute-level)
 * showing c.mute, and how long a level holds (#mute-for, for the levels
 * that mute). set stores a level, with its end when one was picked.
 */
export function muteControl(c: Conversation, set: (level: MuteLevel, until?: Date) => void): HTMLElement {
  const level = muteLevel(c);
  const store = () => {
    const l = levelSel.value as MuteLevel;
    const hours = Number(forSel.value);
    set(l, l !== "none" && hours > 0 ? new Date(Date.now() + hours * 3600_000) : undefined);
  };
  const levelSel = h("select", { id: "mute-level", class: "mute-level", title: "Push notifications of this conversation", onchange: store },
    ...LEVELS.map(([v, label]) => h("option", { value: v, selected: v === level }, label)));
  const forSel = h("select", { id: "mute-for", class: "mute-for", title: "How long", disabled: level === "none", onchange: () => {
    if (levelSel.value !== "none") store();
  } }, ...DURATIONS.map(([v, label]) => h("option", { value: v }, label)));
  levelSel.addEventListener("change", () => (forSel.disabled = levelSel.value === "none"));
  return h("span", { id: "mute", class: "mute", "data-level": level }, levelSel, forSel);
}

/** The conversation list's mark of a muted conversation, or null. */
export function mutedMark(c: Conversation): HTMLElement | null {
  if (!c.mute) return null;
  return h("span", { class: "muted-mark", "data-level": c.mute, title: c.mute === "all" ? "Muted" : "Only @mentions notify" }, c.mute === "all" ? "🔕" : "@");
}
