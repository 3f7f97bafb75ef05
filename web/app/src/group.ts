// Group settings, roles and moderation in the app: the settings panel
// (title, topic, avatar, read-only; members with their roles and the
// owner's and admins' actions; the banned list) and event items drawn as
// timeline lines ("carol renamed the group to Launch").
import { describeGroupEvent, groupEvent } from "../../client/src/index.js";
import type { Conversation, GroupUpdate, Message, NatterClient } from "../../client/src/index.js";
import { $, h } from "./dom.js";

/** What the panel needs of the app. */
export interface GroupDeps {
  client: NatterClient;
  me: string;
  notify(text: string): void;
  render(): void;
}

/** Whether the user is the group's owner or an admin. */
export function isAdmin(c: Conversation): boolean {
  return c.role === "owner" || c.role === "admin";
}

/** Whether the user may send: anyone but in a read-only group, where only the owner and admins do. */
export function mayPost(c: Conversation): boolean {
  return !c.read_only || isAdmin(c);
}

/** Whether the user may add members: any member, or only the owner and admins when the group says so. */
export function mayAdd(c: Conversation): boolean {
  return !c.only_admins_add || isAdmin(c);
}

/** The timeline line of an event item, or null when m is not one. */
export function eventLine(m: Message): HTMLElement | null {
  const ev = groupEvent(m);
  if (!ev) return null;
  return h("div", { class: "event", "data-seq": String(m.seq), "data-event": ev.event }, describeGroupEvent(ev));
}

/** The chat head's button that opens the panel. */
export function settingsButton(onclick: () => void): HTMLElement {
  return h("button", { id: "group-settings", class: "link", type: "button", onclick }, "Group");
}

let banned: { conv: string; users: string[] } | null = null;
let current: Conversation | undefined; // the group as last drawn

/**
 * Fills #group-panel for group c. The form is built when the panel opens
 * for a group (built inputs keep their text across redraws); the member
 * and banned lists are redrawn every time.
 */
export function groupPanel(c: Conversation | undefined, open: boolean, deps: GroupDeps): void {
  current = c;
  const panel = $("#group-panel");
  panel.classList.toggle("hidden", !open || !c);
  if (!open || !c) {
    panel.replaceChildren();
    panel.removeAttribute("data-conv");
    banned = null;
    return;
  }
  if (panel.getAttribute("data-conv") !== c.conv) {
    panel.setAttribute("data-conv", c.conv);
    panel.replaceChildren(settingsForm(c, deps), addForm(c.conv, deps), h("ul", { id: "group-members", class: "group-members" }), h("div", { id: "group-banned" }));
    banned = null;
    if (isAdmin(c)) void loadBanned(c.conv, deps);
  }
  $<HTMLElement>("#group-form-note").textContent = isAdmin(c) ? "" : "Only the owner and admins change the settings.";
  for (const el of panel.querySelectorAll<HTMLInputElement>("#group-form input, #group-form button")) el.disabled = !isAdmin(c);
  for (const el of panel.querySelectorAll<HTMLInputElement>("#group-add input, #group-add button")) el.disabled = !mayAdd(c);
  $<HTMLElement>("#group-add-note").textContent = mayAdd(c) ? "" : "Only the owner and admins add members to this group.";
  $("#group-members").replaceChildren(...(c.members ?? []).map((u) => memberRow(c, u, deps)));
  const list = banned?.conv === c.conv ? banned.users : [];
  $("#group-banned").replaceChildren(
    ...(isAdmin(c) && list.length
      ? [
          h("div", { class: "muted" }, "Banned"),
          h("ul", { class: "group-members" }, ...list.map((u) =>
            h("li", { class: "banned", "data-user": u }, h("span", { class: "name" }, u), " ",
              h("button", { class: "link unban", type: "button", onclick: () => void act(deps, `unbanned ${u}`, async () => {
                await deps.client.unban(c.conv, u);
                await loadBanned(c.conv, deps);
              }) }, "unban")),
          )),
        ]
      : []),
  );
}

function settingsForm(c: Conversation, deps: GroupDeps): HTMLElement {
  const save = async (ev: Event) => {
    ev.preventDefault();
    const u: GroupUpdate = {};
    const title = $<HTMLInputElement>("#group-title").value.trim();
    const topic = $<HTMLInputElement>("#group-topic").value.trim();
    const avatar = $<HTMLInputElement>("#group-avatar").value.trim();
    const ro = $<HTMLInputElement>("#group-readonly").checked;
    const oaa = $<HTMLInputElement>("#group-onlyadminsadd").checked;
    c = current?.conv === c.conv ? current : c;
    if (title && title !== c.title) u.title = title;
    if (topic !== (c.topic ?? "")) u.topic = topic;
    if (avatar !== (c.avatar ?? "")) u.avatar = avatar;
    if (ro !== !!c.read_only) u.read_only = ro;
    if (oaa !== !!c.only_admins_add) u.only_admins_add = oaa;
    if (Object.keys(u).length === 0) return;
    try {
      c = await deps.client.update(c.conv, u);
      deps.notify("Group settings saved.");
    } catch (err) {
      deps.notify(`Could not save: ${(err as Error).message}`);
    }
  };
  return h(
    "form",
    { id: "group-form", class: "group-form", onsubmit: (ev: Event) => void save(ev) },
    h("label", {}, "Title ", h("input", { id: "group-title", value: c.title, maxlength: "256" })),
    h("label", {}, "Topic ", h("input", { id: "group-topic", value: c.topic ?? "", maxlength: "1024" })),
    h("label", {}, "Avatar URL ", h("input", { id: "group-avatar", value: c.avatar ?? "", placeholder: "https://…", type: "url" })),
    h("label", {}, h("input", { id: "group-readonly", type: "checkbox", checked: !!c.read_only }), " Read-only: only admins post"),
    h("label", {}, h("input", { id: "group-onlyadminsadd", type: "checkbox", checked: !!c.only_admins_add }), " Only admins add members"),
    h("button", { id: "group-save", type: "submit" }, "Save"),
    h("span", { id: "group-form-note", class: "muted" }),
  );
}

/** The panel's "add members" form: user ids separated by commas or spaces; those whose add_policy asks for it are invited. */
function addForm(conv: string, deps: GroupDeps): HTMLElement {
  const add = async (ev: Event) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("#group-add-users");
    const users = input.value.split(/[\s,]+/).filter((u) => u !== "");
    if (users.length === 0) return;
    try {
      const invited = await deps.client.addOrInvite(conv, users);
      input.value = "";
      const added = users.filter((u) => !invited.includes(u));
      deps.notify([added.length ? `Added ${added.join(", ")}.` : "", invited.length ? `Invited ${invited.join(", ")}: they join once they accept.` : ""].join(" ").trim());
    } catch (err) {
      deps.notify(`Could not add: ${(err as Error).message}`);
    }
  };
  return h(
    "form",
    { id: "group-add", class: "group-form", onsubmit: (ev: Event) => void add(ev) },
    h("label", {}, "Add members ", h("input", { id: "group-add-users", placeholder: "user ids" })),
    h("button", { id: "group-add-submit", type: "submit" }, "Add"),
    h("span", { id: "group-add-note", class: "muted" }),
  );
}

function roleOf(c: Conversation, u: string): "owner" | "admin" | "member" {
  if (c.owner === u) return "owner";
  return c.admins?.includes(u) ? "admin" : "member";
}

function memberRow(c: Conversation, u: string, deps: GroupDeps): HTMLElement {
  const role = roleOf(c, u);
  const owner = c.role === "owner";
  // The owner removes anyone, an admin plain members (docs/protocol.md).
  const removable = u !== deps.me && (owner || (c.role === "admin" && role === "member"));
  const btn = (cls: string, label: string, done: string, fn: () => Promise<void>) =>
    h("button", { class: `link ${cls}`, type: "button", onclick: () => void act(deps, done, fn) }, label);
  return h(
    "li",
    { class: "member", "data-user": u, "data-role": role },
    h("span", { class: "name" }, u),
    role !== "member" ? h("span", { class: "tag role" }, role) : null,
    ...(owner && u !== deps.me
      ? [
          role === "admin"
            ? btn("set-role", "make member", `${u} is a member`, () => deps.client.setRole(c.conv, u, "member"))
            : btn("set-role", "make admin", `${u} is an admin`, () => deps.client.setRole(c.conv, u, "admin")),
          btn("transfer", "make owner", `${u} owns the group`, () => deps.client.transfer(c.conv, u)),
        ]
      : []),
    ...(removable
      ? [
          btn("remove", "remove", `removed ${u}`, () => deps.client.removeMember(c.conv, u)),
          btn("ban", "ban", `banned ${u}`, async () => {
            await deps.client.ban(c.conv, u);
            await loadBanned(c.conv, deps);
          }),
        ]
      : []),
  );
}

async function loadBanned(conv: string, deps: GroupDeps): Promise<void> {
  try {
    banned = { conv, users: await deps.client.banned(conv) };
    deps.render();
  } catch {
    // Not an admin (any more): nothing to list.
  }
}

async function act(deps: GroupDeps, done: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    deps.notify(`Done: ${done}.`);
  } catch (err) {
    deps.notify(`Could not do it: ${(err as Error).message}`);
  }
}
