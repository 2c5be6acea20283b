// The browser client: plain DOM, no framework, no build step.
import { Api, ApiError, ChatSocket } from "./api.js";

const $ = (id) => document.getElementById(id);
const api = new Api();

const state = {
  me: null,
  conversations: new Map(), // id -> conversation item from GET /conversations
  presence: new Map(), // user id -> {online, last_seen, version}
  open: null, // the open conversation
  messages: new Map(), // id -> message shown in the open conversation
  olderCursor: null,
  loadingOlder: false,
  editing: null,
  typingSentAt: 0,
  typingTimer: null,
};

const socket = new ChatSocket(api, { onFrame, onState: showConnection, onResync: resync });
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

$("logout").addEventListener("click", () => {
  socket.stop();
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
    api.setToken(null);
    return;
  }
  $("auth").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("whoami").textContent = `Signed in as ${state.me.username}`;
  await loadConversations();
  socket.start();
  $("search").focus();
}

function showConnection(kind, seconds) {
  const text = { connecting: "Connecting…", online: "Online", offline: "Offline", "signed-out": "Signed out",
    reconnecting: `Connection lost, retrying in ${seconds}s` }[kind];
  $("connection").textContent = text;
  $("connection").dataset.state = kind;
  if (kind === "signed-out" && state.me) { api.setToken(null); location.reload(); }
}

// ---- conversations and search -------------------------------------------------------------

async function loadConversations() {
  const { data } = await api.get("/conversations?limit=100");
  state.conversations = new Map(data.map((c) => [c.id, c]));
  for (const c of data) if (c.with) mergePresence(c.with.id, c.with.presence);
  renderConversations();
}

function conversationName(c) {
  return c.kind === "group" ? c.title : c.with ? c.with.username : "Conversation";
}

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  const items = [...state.conversations.values()].sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at));
  for (const c of items) {
    const button = document.createElement("button");
    button.type = "button";
    const dot = document.createElement("span");
    const online = c.with && state.presence.get(c.with.id)?.online;
    dot.className = `dot${online ? " online" : ""}`;
    dot.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.textContent = conversationName(c);
    button.append(dot, name);
    const label = [conversationName(c), online ? "online" : ""];
    if (c.unread_count) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = c.unread_count;
      button.append(badge);
      label.push(`${c.unread_count} unread`);
    }
    button.setAttribute("aria-label", label.filter(Boolean).join(", "));
    if (state.open && state.open.id === c.id) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => openConversation(c));
    const li = document.createElement("li");
    li.append(button);
    list.append(li);
  }
}

let searchTimer;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchUsers, 250);
});
$("search-form").addEventListener("submit", (event) => { event.preventDefault(); searchUsers(); });

async function searchUsers() {
  const q = $("search").value.trim();
  const results = $("search-results");
  results.replaceChildren();
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(q)) return;
  const { data } = await api.get(`/users/search?q=${encodeURIComponent(q)}&limit=10`);
  for (const user of data) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Chat with ${user.username}`;
    button.addEventListener("click", async () => {
      const { data: conversation } = await api.post("/conversations", { user_id: user.id });
      state.conversations.set(conversation.id, conversation);
      mergePresence(conversation.with.id, conversation.with.presence);
      results.replaceChildren();
      $("search").value = "";
      renderConversations();
      openConversation(conversation);
    });
    const li = document.createElement("li");
    li.append(button);
    results.append(li);
  }
}

// ---- the open conversation ------------------------------------------------------------

async function openConversation(conversation) {
  state.open = conversation;
  state.messages = new Map();
  state.olderCursor = null;
  cancelEdit();
  $("messages").replaceChildren();
  $("typing").textContent = "";
  $("chat").hidden = false;
  $("app").classList.add("chat-open");
  $("chat-title").textContent = conversationName(conversation);
  renderPeerPresence();
  renderConversations();
  await loadOlder();
  markRead();
  $("message-input").focus();
}

$("back").addEventListener("click", () => {
  $("app").classList.remove("chat-open");
  state.open = null;
  renderConversations();
});

async function loadOlder() {
  if (!state.open || state.loadingOlder) return;
  state.loadingOlder = true;
  const list = $("messages");
  const previousHeight = list.scrollHeight;
  const cursor = state.olderCursor ? `&cursor=${encodeURIComponent(state.olderCursor)}` : "";
  try {
    const { data, nextCursor } = await api.get(`/conversations/${state.open.id}/messages?limit=30${cursor}`);
    state.olderCursor = nextCursor;
    for (const message of data) addMessage(normalise(message), { prepend: true });
    if (cursor) list.scrollTop = list.scrollHeight - previousHeight;
    else list.scrollTop = list.scrollHeight;
  } finally {
    state.loadingOlder = false;
  }
}

$("messages").addEventListener("scroll", () => {
  if ($("messages").scrollTop < 40 && state.olderCursor) loadOlder();
});

function normalise(message) {
  // History items use ISO timestamps; live frames carry created_at.
  return { ...message, created_at: message.created_at || message.timestamp };
}

function addMessage(message, { prepend = false } = {}) {
  if (state.messages.has(message.id)) return updateMessage(message.id, message);
  state.messages.set(message.id, message);
  const li = document.createElement("li");
  li.id = `m-${message.id}`;
  li.className = `message${message.from === state.me.id ? " mine" : ""}${message.pending ? " pending" : ""}`;
  renderMessage(li, message);
  const list = $("messages");
  if (prepend) list.prepend(li);
  else {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    list.append(li);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }
}

function renderMessage(li, message) {
  li.replaceChildren();
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.deleted ? "Message deleted" : message.content;
  li.classList.toggle("deleted", Boolean(message.deleted));
  li.append(text);
  for (const file of message.deleted ? [] : message.attachments || []) {
    const link = document.createElement("button");
    link.type = "button";
    link.textContent = ` 📎 ${file.name}`;
    link.addEventListener("click", () => download(file));
    li.append(link);
  }
  const meta = document.createElement("span");
  meta.className = "meta";
  const time = new Date(message.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const author = message.from === state.me.id ? "You" : state.open && state.open.kind === "group" ? "" : conversationName(state.open);
  meta.textContent = [author, time, message.edited_at && !message.deleted ? "edited" : "", message.status || ""].filter(Boolean).join(" · ");
  li.append(meta);
  if (message.from === state.me.id && !message.deleted && !message.pending) {
    const actions = document.createElement("span");
    actions.className = "actions";
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit";
    edit.setAttribute("aria-label", `Edit message: ${message.content}`);
    edit.addEventListener("click", () => startEdit(message.id));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete message: ${message.content}`);
    remove.addEventListener("click", () => deleteMessage(message.id));
    actions.append(edit, remove);
    li.append(actions);
  }
}

function updateMessage(id, changes) {
  const message = state.messages.get(id);
  if (!message) return;
  Object.assign(message, changes);
  const li = $(`m-${id}`);
  if (li) {
    li.classList.toggle("pending", Boolean(message.pending));
    renderMessage(li, message);
  }
}

async function download(file) {
  const response = await fetch(file.url, { headers: { Authorization: `Bearer ${api.token}` } });
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = file.name;
  a.click();
  URL.revokeObjectURL(url);
}

// ---- sending, editing, deleting --------------------------------------------------------

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message-input");
  const content = input.value;
  if (!content.trim() || !state.open) return;
  input.value = "";
  if (state.editing) {
    const id = state.editing;
    cancelEdit();
    try { await api.patch(`/messages/${id}`, { content }); } catch (error) { alert(error.message); }
    return;
  }
  state.typingSentAt = 0; // the server ends "typing" on send; the next keystroke starts it again
  const clientId = crypto.randomUUID();
  const frame = state.open.kind === "group"
    ? { type: "group_message", conversation: state.open.id, content, client_id: clientId }
    : { type: "direct_message", to: state.open.with.id, content, client_id: clientId };
  addMessage({ id: clientId, from: state.me.id, content, created_at: new Date().toISOString(), pending: true });
  socket.send(frame);
});

$("message-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  } else if (event.key === "Escape" && state.editing) {
    cancelEdit();
  }
});

$("message-input").addEventListener("input", () => {
  if (!state.open || state.open.kind !== "direct" || state.editing) return;
  if (Date.now() - state.typingSentAt > 3000) {
    state.typingSentAt = Date.now();
    socket.send({ type: "typing", to: state.open.with.id });
  }
});

function startEdit(id) {
  state.editing = id;
  $("editing").hidden = false;
  $("message-input").value = state.messages.get(id).content;
  $("message-input").focus();
}

function cancelEdit() {
  state.editing = null;
  $("editing").hidden = true;
}
$("cancel-edit").addEventListener("click", () => { cancelEdit(); $("message-input").value = ""; });

async function deleteMessage(id) {
  if (!confirm("Delete this message for everyone?")) return;
  try { await api.delete(`/messages/${id}/delete`); } catch (error) { alert(error.message); }
}

function markRead() {
  if (!state.open || document.hidden) return;
  const conversation = state.conversations.get(state.open.id);
  if (conversation && conversation.unread_count) {
    socket.send({ type: "read", conversation: state.open.id });
  }
}
document.addEventListener("visibilitychange", markRead);

// ---- frames from the server ---------------------------------------------------------------

function onFrame(frame) {
  const handler = {
    direct_message: onMessage,
    group_message: onMessage,
    ack: onAck,
    message_edited: (f) => updateMessage(f.id, { content: f.content, edited_at: f.edited_at }),
    message_deleted: (f) => updateMessage(f.id, { deleted: true }),
    message_delivered: (f) => setStatus(f.ids, "delivered"),
    message_read: (f) => setStatusUpTo(f.id, "read"),
    unread: (f) => { const c = state.conversations.get(f.conversation); if (c) { c.unread_count = f.count; renderConversations(); } },
    presence: (f) => { mergePresence(f.user_id, f); renderConversations(); renderPeerPresence(); },
    typing: onTyping,
    conversation_created: () => loadConversations(),
    conversation_renamed: () => loadConversations(),
    member_joined: () => loadConversations(),
    member_left: () => loadConversations(),
    error: (f) => { if (f.client_id) updateMessage(f.client_id, { status: `not sent: ${f.detail}` }); },
  }[frame.type];
  if (handler) handler(frame);
}

function onMessage(frame) {
  let conversation = state.conversations.get(frame.conversation);
  if (!conversation) return loadConversations();
  conversation.last_activity_at = frame.created_at;
  conversation.last_message = frame;
  const open = state.open && state.open.id === frame.conversation;
  if (frame.from !== state.me.id && !(open && !document.hidden)) conversation.unread_count += 1;
  if (open) {
    if (frame.client_id && state.messages.has(frame.client_id)) replacePending(frame.client_id, frame);
    addMessage(normalise(frame));
    if (frame.from !== state.me.id) {
      typingStopped();
      socket.send({ type: "read", conversation: frame.conversation, up_to: frame.id });
    }
  }
  renderConversations();
}

function onAck(frame) {
  if (state.messages.has(frame.client_id)) {
    replacePending(frame.client_id, { ...state.messages.get(frame.client_id), id: frame.id, created_at: frame.created_at });
  }
}

function replacePending(clientId, message) {
  const pending = state.messages.get(clientId);
  const li = $(`m-${clientId}`);
  state.messages.delete(clientId);
  if (state.messages.has(message.id)) { if (li) li.remove(); return; }
  const real = { ...pending, ...normalise(message), pending: false, status: "sent" };
  state.messages.set(real.id, real);
  if (li) { li.id = `m-${real.id}`; li.classList.remove("pending"); renderMessage(li, real); }
}

function setStatus(ids, status) {
  for (const id of ids) {
    const message = state.messages.get(id);
    if (message && message.status !== "read") updateMessage(id, { status });
  }
}

function setStatusUpTo(id, status) {
  // Everything of mine up to and including ``id``, in the order shown.
  for (const li of $("messages").children) {
    const message = state.messages.get(li.id.slice(2));
    if (message && message.from === state.me.id) updateMessage(message.id, { status });
    if (li.id === `m-${id}`) break;
  }
}

function mergePresence(userId, presence) {
  const known = state.presence.get(userId);
  if (!known || presence.version === undefined || (presence.version || 0) >= (known.version || 0)) {
    state.presence.set(userId, { online: presence.online, last_seen: presence.last_seen, version: presence.version });
  }
}

function renderPeerPresence() {
  const peer = state.open && state.open.with;
  const presence = peer && state.presence.get(peer.id);
  $("peer-presence").textContent = !presence ? "" : presence.online ? "online"
    : presence.last_seen ? `last seen ${new Date(presence.last_seen).toLocaleString()}` : "offline";
}

function onTyping(frame) {
  if (!state.open || !state.open.with || state.open.with.id !== frame.from) return;
  if (frame.typing) {
    $("typing").textContent = `${state.open.with.username} is typing…`;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(typingStopped, 8000);
  } else {
    typingStopped();
  }
}

function typingStopped() {
  $("typing").textContent = "";
}

async function resync() {
  await loadConversations();
  if (state.open) openConversation(state.conversations.get(state.open.id) || state.open);
}

if (api.token) start();
