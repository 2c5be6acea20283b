// Groups: the "New group" dialog and the members dialog (rename, add, remove, leave).
import { $, avatar, closeOnBackdrop, confirmDialog, h, toast } from "./dom.js";

const USERNAME_PREFIX = /^[A-Za-z0-9_.-]{1,32}$/;

// A search box that lists users to pick; `exclude()` names ids not to offer.
export function peoplePicker(api, input, results, { exclude, onPick, label = "Add" }) {
  let timer;
  let asked = 0;
  const search = async () => {
    const q = input.value.trim();
    const mine = ++asked;
    if (!USERNAME_PREFIX.test(q)) return results.replaceChildren();
    try {
      const { data } = await api.get(`/users/search?q=${encodeURIComponent(q)}&limit=8`);
      if (mine !== asked) return; // a newer search has answered or will
      const skip = exclude();
      const users = data.filter((user) => !skip.has(user.id));
      results.replaceChildren(...(users.length ? users.map((user) => h("li", {},
        h("button", { type: "button", class: "person", "aria-label": `${label} ${user.username}`, onclick: () => { onPick(user); input.value = ""; results.replaceChildren(); input.focus(); } },
          avatar(user.id, user.username), h("span", {}, user.username)))) : [h("li", { class: "none" }, "No one found")]));
    } catch (error) {
      results.replaceChildren(h("li", { class: "none" }, error.message));
    }
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); search(); }
  });
  return { reset() { input.value = ""; results.replaceChildren(); } };
}

export function setupGroups({ api, me, onCreated }) {
  // ---- New group ----
  const dialog = $("group-dialog");
  const chosen = new Map(); // id -> user
  const renderChosen = () => {
    $("group-chosen").replaceChildren(...[...chosen.values()].map((user) => h("li", { class: "chip" },
      avatar(user.id, user.username), h("span", {}, user.username),
      h("button", { type: "button", class: "icon small", "aria-label": `Remove ${user.username}`, onclick: () => { chosen.delete(user.id); renderChosen(); } }, "×"))));
  };
  const picker = peoplePicker(api, $("group-people"), $("group-people-results"), {
    exclude: () => new Set([me().id, ...chosen.keys()]),
    onPick: (user) => { chosen.set(user.id, user); renderChosen(); },
  });
  closeOnBackdrop(dialog);
  $("group-cancel").addEventListener("click", () => dialog.close());
  $("group-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("group-error").textContent = "";
    try {
      const { data } = await api.post("/conversations", { title: $("group-title").value.trim(), members: [...chosen.keys()] });
      dialog.close();
      onCreated(data);
    } catch (error) {
      $("group-error").textContent = error.message;
    }
  });

  function openNewGroup() {
    chosen.clear();
    renderChosen();
    picker.reset();
    $("group-title").value = "";
    $("group-error").textContent = "";
    dialog.showModal();
    $("group-title").focus();
  }

  // ---- Members of a group ----
  const members = $("members-dialog");
  let current = null; // the conversation shown
  let memberIds = new Set();
  closeOnBackdrop(members);
  $("members-close").addEventListener("click", () => members.close());
  const adder = peoplePicker(api, $("add-people-input"), $("add-people-results"), {
    exclude: () => memberIds,
    onPick: (user) => act(() => api.post(`/conversations/${current.id}/members`, { user_ids: [user.id] }), `${user.username} added`),
  });

  async function act(call, done) {
    $("members-error").textContent = "";
    try {
      await call();
      if (done) toast(done);
      await renderMembers();
    } catch (error) {
      $("members-error").textContent = error.message;
    }
  }

  async function renderMembers() {
    const { data } = await api.get(`/conversations/${current.id}/members`);
    memberIds = new Set(data.map((member) => member.id));
    const admin = data.some((member) => member.id === me().id && member.role === "admin");
    $("members-title").textContent = current.title;
    $("rename-input").value = current.title;
    $("rename-form").classList.toggle("editable", admin);
    $("add-people").hidden = !admin;
    $("members-list").replaceChildren(...data.map((member) => h("li", { class: "member" },
      avatar(member.id, member.username),
      h("span", { class: "member-name" }, member.id === me().id ? `${member.username} (you)` : member.username),
      member.role === "admin" ? h("span", { class: "role" }, "admin") : null,
      admin && member.id !== me().id ? h("button", {
        type: "button", class: "link danger-text", "aria-label": `Remove ${member.username}`,
        onclick: () => act(() => api.delete(`/conversations/${current.id}/members/${member.id}`), `${member.username} removed`),
      }, "Remove") : null)));
    return data;
  }

  $("rename-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const title = $("rename-input").value.trim();
    act(async () => { const { data } = await api.patch(`/conversations/${current.id}`, { title }); current = data; }, "Group renamed");
  });

  $("leave-group").addEventListener("click", async () => {
    const sure = await confirmDialog({
      title: `Leave ${current.title}?`,
      body: "You keep the messages sent until now, and get no new ones.",
      confirm: "Leave group",
    });
    if (!sure) return;
    try {
      await api.post(`/conversations/${current.id}/leave`);
      members.close();
    } catch (error) {
      $("members-error").textContent = error.message;
    }
  });

  async function openMembers(conversation) {
    current = conversation;
    adder.reset();
    $("members-error").textContent = "";
    try {
      await renderMembers();
    } catch (error) {
      return toast(error.message, { kind: "error" });
    }
    members.showModal();
  }

  return { openNewGroup, openMembers, memberNames: async (id) => {
    const { data } = await api.get(`/conversations/${id}/members`);
    return new Map(data.map((member) => [member.id, member.username]));
  } };
}
