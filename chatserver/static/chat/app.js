// The browser client: plain DOM, no framework, no build step.
import { Api, ChatSocket, randomId } from "./api.js";
import { PendingFiles, attachmentList, download, imageUrl } from "./attachments.js";
import { $, avatar, closeOnBackdrop, confirmDialog, h, highlighted, paintAvatar, svgIcon, toast } from "./dom.js";
import { dayKey, dayLabel, hue, lastSeen, preview, relativeTime, sameRun, timeOfDay } from "./format.js";
import { setupGroups } from "./groups.js";
import { disablePush, forgetOthersSubscription, setupNotificationSettings } from "./push.js";

const api = new Api();

const state = {
  me: null,
  conversations: new Map(), // id -> conversation item from GET /conversations
  presence: new Map(), // user id -> {online, last_seen, version}
  names: new Map(), // user id -> username, learnt from conversations, members and frames
  typing: new Map(), // conversation id -> Map(user id -> timer): who is typing where
  open: null, // the open conversation
  messages: new Map(), // id -> message shown in the open conversation
  olderCursor: null,
  olderLoad: null, // the page being loaded, a promise
  generation: 0, // counts conversations opened: answers for an earlier one are dropped
  readTimer: null,
  editing: null,
  typingSentAt: 0, // when this device last said "typing" in the open conversation
  typingIdle: null,
  connection: null,
};

const socket = new ChatSocket(api, { onFrame, onState: showConnection, onResync: resync, onStart: loadConversations });
const pending = new PendingFiles(api, $("pending-files"), updateSendButton);
const groups = setupGroups({ api, me: () => state.me, onCreated: (conversation) => { upsertConversation(conversation); openConversation(conversation); } });
setupNotificationSettings({ api, me: () => state.me, onOpenConversation: openById });
window.chat = { socket, state }; // for the console and end-to-end tests

// ---- auth ---------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await login($("login-email").value, $("login-password").value);
});

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { username: $("register-username").value, email: $("register-email").value, password: $("register-password").value };
  try {
    await api.post("/auth/register", body);
    await login(body.email, body.password);
  } catch (error) {
    $("auth-error").textContent = error.message;
  }
});

$("logout").addEventListener("click", async () => {
  socket.stop();
  try {
    await disablePush(api, state.me.id); // the next person on this browser must not get these pushes
  } catch { /* the server forgets it when the push service says it is gone */ }
  api.setToken(null);
  location.reload();
});

async function login(email, password) {
  try {
    const { data } = await api.post("/auth/login", { email, password });
    api.setToken(data.token);
    await start();
  } catch (error) {
    $("auth-error").textContent = error.message;
  }
}

async function start() {
  try {
    ({ data: state.me } = await api.get("/users/me"));
  } catch (error) {
    if (error.status === 401) api.setToken(null); // a network blip or a 5xx keeps the session
    else $("auth-error").textContent = `Could not reach the server: ${error.message}. Reload to try again.`;
    return;
  }
  state.names.set(state.me.id, state.me.username);
  $("auth").hidden = true;
  $("app").hidden = false;
  $("whoami").textContent = state.me.username;
  $("whoami").setAttribute("aria-label", `Signed in as ${state.me.username}`);
  paintAvatar($("my-avatar"), state.me.id, state.me.username);
  forgetOthersSubscription(state.me.id).catch(() => {}); // best effort: the server drops it when told it is gone
  await loadConversations();
  socket.start();
  const asked = new URLSearchParams(location.search).get("conversation"); // a notification's link
  if (asked) {
    history.replaceState(null, "", "/");
    openById(asked);
  } else if (!touch()) $("search").focus();
  setInterval(() => { // relative times move on, and "Today" becomes "Yesterday" at midnight
    renderConversations();
    renderChatSubtitle();
    for (const day of $("messages").querySelectorAll("li.day")) day.firstChild.textContent = dayLabel(day.dataset.at);
  }, 30_000);
}

// ---- connection ---------------------------------------------------------------------

// The state shows beside my name; while the socket is down a banner across the
// page says when it retries (and offers to retry now), on a phone too.
let countdown;
function showConnection(kind, seconds, replayed = 0) {
  const previous = state.connection;
  state.connection = kind;
  clearInterval(countdown);
  const label = $("connection");
  const text = { connecting: "Connecting…", syncing: "Catching up…", online: "Online", offline: "Offline", "signed-out": "Signed out" };
  label.dataset.state = kind;
  if (kind === "reconnecting") {
    let left = seconds;
    label.textContent = `Connection lost, retrying in ${left}s`; // a live region: said once, not every second
    const tick = () => {
      $("banner-text").textContent = `Connection lost. Retrying in ${left}s; messages you write now are sent then.`;
      left = Math.max(0, left - 1);
    };
    tick();
    countdown = setInterval(tick, 1000);
  } else {
    label.textContent = text[kind];
    $("banner-text").textContent = kind === "syncing" ? "Reconnected, catching up on what you missed…" : "";
  }
  $("banner").hidden = !state.me || !(kind === "reconnecting" || (kind === "syncing" && previous === "reconnecting"));
  $("retry-now").hidden = kind !== "reconnecting";
  if (kind === "online" && (previous === "syncing" || previous === "reconnecting")) {
    toast(replayed ? `Back online · ${replayed} new message${replayed === 1 ? "" : "s"} while you were away` : "Back online");
  }
  if (kind === "signed-out" && state.me) { api.setToken(null); location.reload(); }
}
$("retry-now").addEventListener("click", () => socket.retryNow());
window.addEventListener("online", () => socket.retryNow());

// ---- conversations ------------------------------------------------------------------

let conversationsAsked = 0;
async function loadConversations() {
  const asked = ++conversationsAsked;
  let data;
  try {
    ({ data } = await api.get("/conversations?limit=100"));
  } catch (error) {
    return toast(error.message, { kind: "error" });
  }
  if (asked !== conversationsAsked) return; // a newer load has answered or will
  state.conversations = new Map();
  for (const c of data) upsertConversation(c, { render: false });
  if (state.open) {
    const fresh = state.conversations.get(state.open.id);
    if (fresh) state.open = { ...fresh, memberCount: state.open.memberCount };
    renderChatHeader();
  }
  renderConversations();
}

function upsertConversation(c, { render = true } = {}) {
  if (c.last_message) c.last_message = normalise(c.last_message);
  state.conversations.set(c.id, c);
  if (c.with) {
    state.names.set(c.with.id, c.with.username);
    mergePresence(c.with.id, c.with.presence);
  }
  if (render) renderConversations();
}

function conversationName(c) {
  return c.kind === "group" ? c.title : c.with ? c.with.username : "Conversation";
}

function author(id) {
  return id === state.me.id ? "You" : state.names.get(id) || "Former member";
}

function typingText(conversationId) {
  const who = [...(state.typing.get(conversationId) || new Map()).keys()].map((id) => state.names.get(id) || "Someone");
  if (!who.length) return "";
  const c = state.conversations.get(conversationId);
  if (c && c.kind === "direct") return `${who[0]} is typing…`;
  if (who.length === 1) return `${who[0]} is typing…`;
  if (who.length === 2) return `${who[0]} and ${who[1]} are typing…`;
  return `${who.length} people are typing…`;
}

function renderConversations() {
  const items = [...state.conversations.values()].sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at));
  $("no-conversations").hidden = items.length > 0;
  $("empty-title").textContent = items.length ? "Pick a conversation" : "Start your first conversation";
  const focused = document.activeElement?.closest?.("#conversations button")?.dataset.id;
  $("conversations").replaceChildren(...items.map(conversationItem));
  if (focused) $("conversations").querySelector(`button[data-id="${focused}"]`)?.focus();
  const unread = items.reduce((sum, c) => sum + (c.unread_count || 0), 0);
  document.title = unread ? `(${unread}) Chat` : "Chat";
}

function conversationItem(c) {
  const name = conversationName(c);
  const online = c.with && state.presence.get(c.with.id)?.online;
  const last = c.last_message;
  const typing = typingText(c.id);
  const lastText = last ? preview(last) : c.kind === "group" ? "New group" : "No messages yet";
  const known = last && (last.from === state.me.id || state.names.has(last.from));
  const who = known && (last.from === state.me.id || c.kind === "group") ? `${author(last.from)}: ` : "";
  const label = [name, online && "online", c.unread_count && `${c.unread_count} unread`,
    typing || (last && `${who}${lastText}`), last && relativeTime(last.created_at)];
  const face = avatar(c.with ? c.with.id : c.id, name, { group: c.kind === "group" });
  return h("li", {},
    h("button", {
      type: "button", class: `conversation${c.unread_count ? " unread" : ""}`, "aria-label": label.filter(Boolean).join(", "), dataset: { id: c.id },
      "aria-current": state.open && state.open.id === c.id ? "true" : null, onclick: () => openConversation(c),
    },
    h("span", { class: "avatar-wrap" }, face, online ? h("span", { class: "online-dot" }) : null),
    h("span", { class: "conversation-main" },
      h("span", { class: "conversation-top" },
        h("span", { class: "conversation-name" }, name),
        last ? h("time", { datetime: last.created_at }, relativeTime(last.created_at)) : null),
      h("span", { class: "conversation-bottom" },
        typing ? h("span", { class: "conversation-preview typing-text" }, typing)
          : h("span", { class: `conversation-preview${last && last.deleted ? " deleted" : ""}` }, who, lastText),
        c.unread_count ? h("span", { class: "badge" }, String(c.unread_count)) : null))));
}

function openById(id) {
  const conversation = state.conversations.get(id);
  if (conversation) openConversation(conversation);
}

async function openDirect(user) {
  try {
    const { data } = await api.post("/conversations", { user_id: user.id });
    upsertConversation(data);
    closeSearch();
    openConversation(data);
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
}

// ---- search: people and messages ----------------------------------------------------

let searchTimer;
let searchAsked = 0;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, 250);
});
$("search").addEventListener("keydown", (event) => { if (event.key === "Escape") closeSearch(); });
$("search-form").addEventListener("submit", (event) => { event.preventDefault(); clearTimeout(searchTimer); search(); });

function closeSearch() {
  $("search").value = "";
  $("search-panel").hidden = true;
  $("conversations").hidden = false;
}

async function search() {
  const q = $("search").value.trim();
  const asked = ++searchAsked;
  if (!q) return closeSearch();
  $("search-panel").hidden = false;
  $("conversations").hidden = true;
  $("no-conversations").hidden = true;
  const people = /^[A-Za-z0-9_.-]{1,32}$/.test(q) ? api.get(`/users/search?q=${encodeURIComponent(q)}&limit=8`) : Promise.resolve({ data: [] });
  const messages = api.get(`/messages/search?q=${encodeURIComponent(q)}&limit=20`);
  const [found, hits] = await Promise.allSettled([people, messages]);
  if (asked !== searchAsked) return; // a newer search is on its way
  const users = found.status === "fulfilled" ? found.value.data.filter((user) => user.id !== state.me.id) : [];
  $("search-results").replaceChildren(...(users.length ? users.map((user) => h("li", {},
    h("button", { type: "button", class: "person", "aria-label": `Chat with ${user.username}`, onclick: () => openDirect(user) },
      avatar(user.id, user.username), h("span", {}, user.username)))) : [h("li", { class: "none" }, "No one by that name")]));
  const results = hits.status === "fulfilled" ? hits.value.data : [];
  $("message-results").replaceChildren(...(results.length ? results.map(messageResult)
    : [h("li", { class: "none" }, hits.status === "fulfilled" ? "No messages found" : hits.reason.message)]));
}

function messageResult(hit) {
  const c = state.conversations.get(hit.conversation);
  const where = c ? conversationName(c) : "Conversation";
  return h("li", {},
    h("button", { type: "button", class: "hit", onclick: () => { closeSearch(); if (c) openConversation(c, { reveal: hit.id }); } },
      h("span", { class: "conversation-top" },
        h("span", { class: "conversation-name" }, where),
        h("time", { datetime: hit.timestamp }, relativeTime(hit.timestamp))),
      h("span", { class: "hit-text" }, `${author(hit.from)}: `, highlighted(hit.content, hit.highlights || []))));
}

// ---- the open conversation ----------------------------------------------------------

async function openConversation(conversation, { reveal } = {}) {
  stopTyping();
  flushRead();
  state.open = conversation;
  state.generation += 1;
  const generation = state.generation;
  state.messages = new Map();
  state.olderCursor = null;
  state.olderLoad = null;
  cancelEdit();
  pending.clear();
  $("message-input").value = "";
  $("messages").replaceChildren();
  $("empty").hidden = true;
  $("chat").hidden = false;
  $("app").classList.add("chat-open");
  renderChatHeader();
  renderConversations();
  if (conversation.kind === "group") loadMemberNames(conversation.id);
  await loadOlder();
  if (generation !== state.generation) return; // another conversation was opened meanwhile
  if (reveal) await revealMessage(reveal, generation);
  if (generation !== state.generation) return;
  markRead();
  if (!touch()) $("message-input").focus();
}

// On touch screens the keyboard would cover half the page: nothing is focused unasked.
function touch() {
  return matchMedia("(pointer: coarse)").matches;
}

async function loadMemberNames(id) {
  try {
    const names = await groups.memberNames(id);
    for (const [userId, username] of names) state.names.set(userId, username);
    if (state.open && state.open.id === id) {
      state.open.memberCount = names.size;
      $("messages").setAttribute("aria-busy", "true");
      for (const message of state.messages.values()) updateMessage(message.id, {});
      $("messages").removeAttribute("aria-busy");
      renderChatSubtitle();
    }
  } catch { /* a former member no longer sees the list */ }
}

function renderChatHeader() {
  const c = state.open;
  if (!c) return;
  $("chat-title").textContent = conversationName(c);
  paintAvatar($("chat-avatar"), c.with ? c.with.id : c.id, conversationName(c), { group: c.kind === "group" });
  $("group-info").hidden = c.kind !== "group" || !c.active;
  $("mute").hidden = c.active === false;
  $("mute").setAttribute("aria-pressed", String(Boolean(c.muted)));
  $("mute").title = c.muted ? "Unmute notifications" : "Mute notifications";
  $("mute").setAttribute("aria-label", $("mute").title);
  $("inactive").hidden = c.active !== false;
  for (const control of [$("message-input"), $("send"), $("attach")]) control.disabled = c.active === false;
  renderChatSubtitle();
}

function renderChatSubtitle() {
  const c = state.open;
  if (!c) return;
  const typing = typingText(c.id);
  if ($("typing").textContent !== typing) $("typing").textContent = typing; // a live region: only news
  let text = "";
  if (c.kind === "group") text = c.memberCount ? `${c.memberCount} members` : "Group";
  else {
    const presence = c.with && state.presence.get(c.with.id);
    text = !presence ? "" : presence.online ? "online" : lastSeen(presence.last_seen);
  }
  $("peer-presence").textContent = text;
}

$("back").addEventListener("click", () => {
  stopTyping();
  $("app").classList.remove("chat-open");
  $("chat").hidden = true;
  $("empty").hidden = false;
  state.open = null;
  renderConversations();
});
$("group-info").addEventListener("click", () => groups.openMembers(state.open));
$("mute").addEventListener("click", async () => {
  const c = state.open;
  try {
    const { data } = await api.put(`/conversations/${c.id}/mute`, { muted: !c.muted });
    c.muted = data.muted;
    const listed = state.conversations.get(c.id);
    if (listed) listed.muted = data.muted;
    renderChatHeader();
    toast(data.muted ? "Muted: no push notifications from this conversation" : "Notifications on for this conversation");
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
});
$("new-group").addEventListener("click", () => groups.openNewGroup());
$("empty-group").addEventListener("click", () => groups.openNewGroup());
$("empty-find").addEventListener("click", () => $("search").focus());

// The next older page of the open conversation; while one loads, the same promise.
function loadOlder() {
  if (!state.open) return Promise.resolve();
  if (!state.olderLoad) {
    const generation = state.generation;
    state.olderLoad = fetchOlder(generation).finally(() => {
      if (generation === state.generation) state.olderLoad = null;
    });
  }
  return state.olderLoad;
}

async function fetchOlder(generation) {
  const list = $("messages");
  const cursor = state.olderCursor ? `&cursor=${encodeURIComponent(state.olderCursor)}` : "";
  try {
    const { data, nextCursor } = await api.get(`/conversations/${state.open.id}/messages?limit=30${cursor}`);
    if (generation !== state.generation) return;
    const previousHeight = list.scrollHeight;
    state.olderCursor = nextCursor;
    list.setAttribute("aria-busy", "true"); // a page of history is not news to announce
    for (const message of data) addMessage(normalise(message), { prepend: true, layout: false });
    layout();
    list.removeAttribute("aria-busy");
    if (cursor) list.scrollTop = list.scrollHeight - previousHeight;
    else list.scrollTop = list.scrollHeight;
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
}

// A search hit may be older than the first page: load pages until it is shown.
async function revealMessage(id, generation) {
  for (let page = 0; !state.messages.has(id) && state.olderCursor && page < 20; page++) {
    await loadOlder();
    if (generation !== state.generation) return;
  }
  const li = $(`m-${id}`);
  if (!li) return toast("That message is no longer in this conversation.");
  li.scrollIntoView({ block: "center" });
  li.classList.add("flash");
  setTimeout(() => li.classList.remove("flash"), 2000);
}

$("messages").addEventListener("scroll", () => {
  if ($("messages").scrollTop < 80 && state.olderCursor) loadOlder();
});

function normalise(message) {
  // History items carry `timestamp` (ISO) and read state; live frames carry created_at.
  const normalised = { ...message, created_at: message.created_at || message.timestamp };
  if (message.from && message.sender_username) state.names.set(message.from, message.sender_username);
  if (!normalised.status && normalised.from === state.me?.id && message.is_read !== undefined) {
    normalised.status = message.is_read ? "read" : "sent";
  }
  return normalised;
}

function addMessage(message, { prepend = false, layout: relayout = true } = {}) {
  if (state.messages.has(message.id)) return updateMessage(message.id, message);
  state.messages.set(message.id, message);
  const li = h("li", { id: `m-${message.id}`, class: "message", dataset: { id: message.id } });
  renderMessage(li, message);
  const list = $("messages");
  if (prepend) list.prepend(li);
  else {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.append(li);
    if (relayout) layout();
    if (atBottom || message.from === state.me.id) list.scrollTop = list.scrollHeight;
    return;
  }
  if (relayout) layout();
}

// Day separators before the first message of each day, and consecutive messages
// of one sender grouped (the CSS rounds and spaces runs by these classes).
function layout() {
  const list = $("messages");
  const separators = new Map([...list.querySelectorAll("li.day")].map((li) => [li.dataset.day, li]));
  const used = new Set();
  let previous = null;
  let previousLi = null;
  for (const li of [...list.querySelectorAll("li.message")]) {
    const message = state.messages.get(li.dataset.id);
    const day = dayKey(message.created_at);
    if (!previous || dayKey(previous.created_at) !== day) {
      const separator = separators.get(day) || h("li", { class: "day", dataset: { day, at: message.created_at } }, h("span", {}, dayLabel(message.created_at)));
      if (li.previousElementSibling !== separator) list.insertBefore(separator, li);
      used.add(day);
    }
    const continues = sameRun(previous, message);
    li.classList.toggle("first", !continues);
    if (previousLi) previousLi.classList.toggle("last", !continues);
    previous = message;
    previousLi = li;
  }
  if (previousLi) previousLi.classList.add("last");
  for (const [day, separator] of separators) if (!used.has(day)) separator.remove();
}

const STATUS = {
  sending: ["Sending", "M12 7v5l3 2"],
  sent: ["Sent", "M5 12l4 4 10-10"],
  delivered: ["Delivered", "M2 12l4 4 10-10M9 16l1 1 10-10"],
  read: ["Read", "M2 12l4 4 10-10M9 16l1 1 10-10"],
};

function renderMessage(li, message) {
  const focused = li.contains(document.activeElement) ? document.activeElement.getAttribute("title") : null;
  fillMessage(li, message);
  if (focused) li.querySelector(`button[title="${focused}"]`)?.focus();
}

function fillMessage(li, message) {
  const mine = message.from === state.me.id;
  const group = state.open && state.open.kind === "group";
  li.classList.toggle("mine", mine);
  li.classList.toggle("pending", Boolean(message.pending));
  li.classList.toggle("deleted", Boolean(message.deleted));
  const files = message.deleted ? [] : message.attachments || [];
  const bubble = h("div", { class: "bubble", onclick: mine ? () => li.classList.toggle("show-actions") : null },
    files.length ? attachmentList(api, files, { onOpenImage: openImage }) : null,
    message.deleted ? h("span", { class: "text" }, "Message deleted")
      : message.content ? h("span", { class: "text" }, message.content) : null,
    h("span", { class: "meta" },
      h("time", { datetime: message.created_at, title: new Date(message.created_at).toLocaleString() }, timeOfDay(message.created_at)),
      message.edited_at && !message.deleted ? h("span", {}, " · edited") : null,
      mine && !message.deleted ? statusMark(message) : null));
  const parts = [];
  if (group && !mine) {
    const name = h("span", { class: "author" }, author(message.from));
    name.style.setProperty("--hue", hue(message.from)); // the same colour as the person's avatar
    parts.push(name);
  }
  parts.push(bubble);
  if (mine && !message.deleted && !message.pending) {
    parts.push(h("span", { class: "actions" },
      message.content ? h("button", { type: "button", "aria-label": `Edit message: ${message.content}`, title: "Edit", onclick: () => startEdit(message.id) },
        svgIcon("M4 20h4L19 9l-4-4L4 16zM14 6l4 4")) : null,
      h("button", { type: "button", "aria-label": `Delete message: ${message.content || "attachment"}`, title: "Delete", onclick: () => deleteMessage(message.id) },
        svgIcon("M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13"))));
  }
  if (message.failed) {
    parts.push(h("span", { class: "failed", role: "alert" }, `Not sent: ${message.failed} `,
      message.frame ? h("button", { type: "button", class: "link", onclick: () => retrySend(message.id) }, "Retry") : null));
  }
  li.replaceChildren(...parts);
}

function statusMark(message) {
  if (message.failed) return null;
  const [label, path] = STATUS[message.pending ? "sending" : message.status || "sent"];
  return h("span", { class: `status ${label.toLowerCase()}`, title: label }, svgIcon(path), h("span", { class: "visually-hidden" }, ` ${label.toLowerCase()}`));
}

function updateMessage(id, changes) {
  const message = state.messages.get(id);
  if (!message) return;
  Object.assign(message, changes);
  const li = $(`m-${id}`);
  if (li) renderMessage(li, message);
}

function openImage(file) {
  const dialog = $("image-dialog");
  $("image-full").alt = file.name;
  $("image-full").removeAttribute("src");
  $("image-full").dataset.id = file.id;
  imageUrl(api, file).then((url) => { if ($("image-full").dataset.id === file.id) $("image-full").src = url; });
  $("image-download").onclick = () => download(api, file);
  dialog.showModal();
}
$("image-close").addEventListener("click", () => $("image-dialog").close());
closeOnBackdrop($("image-dialog"));

// ---- composing: text, files, typing -------------------------------------------------

function updateSendButton() {
  const empty = !$("message-input").value.trim() && pending.count === 0;
  $("send").classList.toggle("idle", empty || pending.uploading);
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message-input");
  const content = input.value;
  if (!state.open || state.open.active === false) return;
  if (state.editing) {
    if (!content.trim()) return;
    const id = state.editing;
    cancelEdit();
    input.value = "";
    try { await api.patch(`/messages/${id}`, { content }); } catch (error) { toast(error.message, { kind: "error" }); }
    return;
  }
  if (pending.uploading) return toast("Wait for the files to finish uploading.");
  if (pending.failed) return toast("Remove the files that could not be uploaded first.", { kind: "error" });
  if (!content.trim() && pending.count === 0) return;
  const attachments = pending.take();
  input.value = "";
  autosize();
  stopTyping({ tell: false }); // the server ends "typing" when the message arrives
  const clientId = randomId();
  const frame = state.open.kind === "group"
    ? { type: "group_message", conversation: state.open.id, content: content.trim() ? content : "", client_id: clientId }
    : { type: "direct_message", to: state.open.with.id, content: content.trim() ? content : "", client_id: clientId };
  if (attachments.length) frame.attachments = attachments.map((file) => file.id);
  addMessage({ id: clientId, from: state.me.id, content: frame.content, attachments, created_at: new Date().toISOString(), pending: true, frame });
  socket.send(frame);
  updateSendButton();
});

function retrySend(id) {
  const message = state.messages.get(id);
  updateMessage(id, { failed: null, pending: true });
  socket.send(message.frame);
}

$("message-input").addEventListener("keydown", (event) => {
  // isComposing (and Safari's keyCode 229): Enter that ends an input method's composition, not a send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    $("composer").requestSubmit();
  } else if (event.key === "Escape" && state.editing) {
    cancelEdit();
    $("message-input").value = "";
  } else if (event.key === "ArrowUp" && !$("message-input").value) {
    const mine = [...state.messages.values()].filter((m) => m.from === state.me.id && !m.deleted && !m.pending && m.content);
    if (mine.length) { event.preventDefault(); startEdit(mine[mine.length - 1].id); }
  }
});

function autosize() {
  const input = $("message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

$("message-input").addEventListener("input", () => {
  autosize();
  updateSendButton();
  if (!state.open || state.editing || state.open.active === false) return;
  if (!$("message-input").value.trim()) return stopTyping(); // cleared: the indicator ends at once
  if (Date.now() - state.typingSentAt > 3000) {
    state.typingSentAt = Date.now();
    socket.send({ ...typingTarget(state.open), type: "typing", typing: true }, { queue: false });
  }
  clearTimeout(state.typingIdle);
  state.typingIdle = setTimeout(stopTyping, 4000); // stopped typing: it ends soon after
});

$("message-input").addEventListener("paste", (event) => {
  const files = [...event.clipboardData.files];
  if (files.length) { event.preventDefault(); addFiles(files); }
});

function typingTarget(c) {
  return c.kind === "group" ? { conversation: c.id } : { to: c.with.id };
}

function stopTyping({ tell = true } = {}) {
  clearTimeout(state.typingIdle);
  if (state.typingSentAt && tell && state.open) socket.send({ ...typingTarget(state.open), type: "typing", typing: false }, { queue: false });
  state.typingSentAt = 0;
}

function addFiles(files) {
  if (!state.open || state.open.active === false) return;
  const problem = pending.add(files);
  if (problem) toast(problem, { kind: "error" });
}

$("attach").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", () => {
  addFiles([...$("file-input").files]);
  $("file-input").value = "";
  $("message-input").focus();
});

// Drag and drop anywhere on the open conversation.
let dragDepth = 0;
const dragsFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
$("chat").addEventListener("dragenter", (event) => {
  if (!dragsFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  $("drop-zone").hidden = false;
});
$("chat").addEventListener("dragover", (event) => { if (dragsFiles(event)) event.preventDefault(); });
$("chat").addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) $("drop-zone").hidden = true;
});
$("chat").addEventListener("drop", (event) => {
  if (!dragsFiles(event)) return; // text dragged into the composer drops as usual
  event.preventDefault();
  dragDepth = 0;
  $("drop-zone").hidden = true;
  addFiles([...event.dataTransfer.files]);
});

function startEdit(id) {
  state.editing = id;
  $("editing").hidden = false;
  $("message-input").value = state.messages.get(id).content;
  autosize();
  $("message-input").focus();
}

function cancelEdit() {
  state.editing = null;
  $("editing").hidden = true;
}
$("cancel-edit").addEventListener("click", () => { cancelEdit(); $("message-input").value = ""; });

async function deleteMessage(id) {
  const sure = await confirmDialog({
    title: "Delete this message?",
    body: "It is removed for everyone in the conversation, on every device.",
    confirm: "Delete for everyone",
  });
  $("message-input").focus(); // its buttons are about to go
  if (!sure) return;
  try { await api.delete(`/messages/${id}/delete`); } catch (error) { toast(error.message, { kind: "error" }); }
}

function markRead() {
  if (!state.open || document.hidden) return;
  const conversation = state.conversations.get(state.open.id);
  if (conversation && conversation.unread_count) scheduleRead(state.open.id, null);
}

// Reads of one conversation within READ_DELAY_MS go as one frame (up to the
// newest): a burst of messages must not spend the socket's frame budget.
const READ_DELAY_MS = 300;
function scheduleRead(conversationId, upTo) {
  const known = state.readPending;
  if (known && known.conversation !== conversationId) flushRead();
  const everything = upTo === null || (state.readPending && state.readPending.upTo === null);
  state.readPending = { conversation: conversationId, upTo: everything ? null : upTo };
  clearTimeout(state.readTimer);
  state.readTimer = setTimeout(flushRead, READ_DELAY_MS);
}

function flushRead() {
  clearTimeout(state.readTimer);
  const read = state.readPending;
  state.readPending = null;
  if (!read) return;
  socket.send(read.upTo ? { type: "read", conversation: read.conversation, up_to: read.upTo } : { type: "read", conversation: read.conversation });
}
document.addEventListener("visibilitychange", markRead);

// ---- frames from the server ---------------------------------------------------------

function onFrame(frame) {
  const handler = {
    direct_message: onMessage,
    group_message: onMessage,
    ack: onAck,
    message_edited: (f) => changeMessage(f, { content: f.content, edited_at: f.edited_at }),
    message_deleted: (f) => changeMessage(f, { deleted: true }),
    message_delivered: (f) => setStatus(f.ids, "delivered"),
    message_read: (f) => setStatusUpTo(f.id, "read"),
    unread: (f) => { const c = state.conversations.get(f.conversation); if (c) { c.unread_count = f.count; renderConversations(); } },
    presence: (f) => { mergePresence(f.user_id, f); renderConversations(); renderChatSubtitle(); },
    online_users: onOnlineUsers,
    typing: onTyping,
    conversation_created: () => loadConversations(),
    conversation_renamed: () => loadConversations(),
    member_joined: (f) => { for (const m of f.members || []) state.names.set(m.id, m.username); membersChanged(f); },
    member_left: membersChanged,
    error: onError,
  }[frame.type];
  if (handler) handler(frame);
}

function onMessage(frame) {
  const conversation = state.conversations.get(frame.conversation);
  if (!conversation) return loadConversations();
  const message = normalise(frame);
  const counted = conversation.last_message && conversation.last_message.id === frame.id; // in the REST answer already
  conversation.last_activity_at = message.created_at;
  conversation.last_message = message;
  typingEnded(frame.conversation, frame.from);
  const open = state.open && state.open.id === frame.conversation;
  if (frame.from !== state.me.id && !counted && !(open && !document.hidden)) conversation.unread_count += 1;
  if (open) {
    if (frame.client_id && state.messages.has(frame.client_id)) replacePending(frame.client_id, message);
    addMessage(message);
    if (frame.from !== state.me.id && !document.hidden) scheduleRead(frame.conversation, frame.id);
  }
  renderConversations();
}

function changeMessage(frame, changes) {
  const c = state.conversations.get(frame.conversation);
  if (c && c.last_message && c.last_message.id === frame.id) {
    Object.assign(c.last_message, changes);
    renderConversations();
  }
  updateMessage(frame.id, changes);
}

function onAck(frame) {
  if (state.messages.has(frame.client_id)) {
    replacePending(frame.client_id, { ...state.messages.get(frame.client_id), id: frame.id, created_at: frame.created_at });
  }
}

function onError(frame) {
  if (frame.client_id && state.messages.has(frame.client_id)) {
    updateMessage(frame.client_id, { pending: false, failed: frame.detail });
  } else if (frame.code !== "invalid_token" && frame.code !== "rate_limited") {
    toast(frame.detail, { kind: "error" }); // a limited read or typing frame is not worth a word
  }
}

function replacePending(clientId, message) {
  const pendingMessage = state.messages.get(clientId);
  const li = $(`m-${clientId}`);
  state.messages.delete(clientId);
  if (state.messages.has(message.id)) { if (li) li.remove(); layout(); return; }
  const real = { ...pendingMessage, ...message, pending: false, failed: null, frame: null, status: "sent" };
  state.messages.set(real.id, real);
  if (li) { li.id = `m-${real.id}`; li.dataset.id = real.id; renderMessage(li, real); }
  layout(); // the server's time may start a new day or end a run
}

function setStatus(ids, status) {
  for (const id of ids) {
    const message = state.messages.get(id);
    if (message && message.status !== "read") updateMessage(id, { status });
  }
}

function setStatusUpTo(id, status) {
  // Everything of mine up to and including ``id``, in the order shown.
  for (const li of $("messages").querySelectorAll("li.message")) {
    const message = state.messages.get(li.dataset.id);
    if (message && message.from === state.me.id && !message.pending) updateMessage(message.id, { status });
    if (li.dataset.id === id) break;
  }
}

// Live presence frames carry a version (keep the highest); REST's state has
// none and only fills in users not heard of live.
function mergePresence(userId, presence) {
  const known = state.presence.get(userId);
  if (known && known.version !== undefined && presence.version === undefined) return;
  if (!known || presence.version === undefined || presence.version >= known.version) {
    state.presence.set(userId, { online: presence.online, last_seen: presence.last_seen, version: presence.version });
  }
}

// After every (re)connect: who of my contacts is online now, whatever was missed meanwhile.
function onOnlineUsers(frame) {
  const online = new Set(frame.user_ids);
  for (const c of state.conversations.values()) {
    if (!c.with) continue;
    const known = state.presence.get(c.with.id) || {};
    state.presence.set(c.with.id, { ...known, online: online.has(c.with.id) });
  }
  renderConversations();
  renderChatSubtitle();
}

function membersChanged(frame) {
  loadConversations();
  if (state.open && state.open.id === frame.conversation) loadMemberNames(frame.conversation);
}

// Who is typing where. Direct conversations' frames name only the sender.
function onTyping(frame) {
  const c = frame.conversation ? state.conversations.get(frame.conversation)
    : [...state.conversations.values()].find((item) => item.with && item.with.id === frame.from);
  if (!c) return;
  if (!frame.typing) return typingEnded(c.id, frame.from);
  const who = state.typing.get(c.id) || new Map();
  clearTimeout(who.get(frame.from));
  // The server ends it within seconds; this only covers a frame lost with a socket.
  who.set(frame.from, setTimeout(() => typingEnded(c.id, frame.from), 8000));
  state.typing.set(c.id, who);
  renderTyping();
}

function typingEnded(conversationId, userId) {
  const who = state.typing.get(conversationId);
  if (!who || !who.has(userId)) return;
  clearTimeout(who.get(userId));
  who.delete(userId);
  renderTyping();
}

function renderTyping() {
  renderConversations();
  renderChatSubtitle();
}

async function resync() {
  await loadConversations();
  if (state.open) openConversation(state.conversations.get(state.open.id) || state.open);
}

if (api.token) start();
