// The chat server's public API: REST calls and a resuming WebSocket.
// This client is also the reference for the protocol in docs/protocol.md.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

export class Api {
  constructor() {
    this.token = sessionStorage.getItem("chat.token");
  }

  setToken(token) {
    this.token = token;
    if (token) sessionStorage.setItem("chat.token", token);
    else sessionStorage.removeItem("chat.token");
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  async request(method, path, body) {
    const json = body !== undefined && !(body instanceof FormData);
    const response = await fetch(path, {
      method,
      headers: this.headers(json ? { "Content-Type": "application/json" } : {}),
      body: json ? JSON.stringify(body) : body,
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { detail: `HTTP ${response.status}` }; }
    if (!response.ok) throw new ApiError(response.status, data);
    return { data, nextCursor: response.headers.get("X-Next-Cursor") };
  }

  // A file for a message: POST /attachments answers its id, type and size.
  upload(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    return this.request("POST", "/attachments", form);
  }

  // An attachment's bytes (downloads need the Authorization header, so no plain <img src>).
  async blob(url) {
    const response = await fetch(url, { headers: this.headers({ Accept: "*/*" }) });
    if (!response.ok) throw new ApiError(response.status, null);
    return response.blob();
  }

  get(path) { return this.request("GET", path); }
  post(path, body = {}) { return this.request("POST", path, body); }
  put(path, body) { return this.request("PUT", path, body); }
  patch(path, body) { return this.request("PATCH", path, body); }
  delete(path) { return this.request("DELETE", path); }
}

// A socket that reconnects with backoff and resumes from the last seq it saw,
// so nothing is lost or repeated. It authenticates with a single-use ticket:
// the long-lived JWT never appears in a URL.
//
// Messages are kept until the server acknowledges them and sent again on every
// new connection (they carry a client_id, so the server stores each once): a
// send that went out on a socket that died is not lost. A ping every
// PING_EVERY_MS finds a connection that died without a close (a laptop lid, a
// network change), so the state never says "online" over a dead socket.
const MESSAGE_FRAMES = new Set(["direct_message", "group_message"]);
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const ACK_WITHIN_MS = 15_000;

export class ChatSocket {
  constructor(api, { onFrame, onState, onResync, onStart }) {
    this.api = api;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onResync = onResync;
    this.onStart = onStart; // the first hello: the device's state can be read now
    this.lastSeq = null;
    this.attempt = 0;
    this.queue = []; // other frames written while disconnected
    this.unacked = new Map(); // client_id -> {frame, sentAt}
    this.stopped = false;
    this.connecting = false;
    setInterval(() => this.watch(), 5000);
  }

  async start() {
    if (this.connecting || this.ws) return; // one socket at a time
    this.connecting = true;
    this.stopped = false;
    this.onState("connecting");
    let ticket;
    try {
      ({ data: { ticket } } = await this.api.post("/ws/ticket"));
    } catch (error) {
      this.connecting = false;
      if (error.status === 401) return this.onState("signed-out");
      return this.retry();
    }
    this.connecting = false;
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const since = this.lastSeq === null ? "" : `&since=${this.lastSeq}`;
    const ws = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}${since}`);
    this.ws = ws;
    this.ready = false;
    this.retryAfter = 0;
    ws.onmessage = (event) => { if (this.ws === ws) this.receive(JSON.parse(event.data)); };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (this.stopped || event.code === 4401) return this.onState(event.code === 4401 ? "signed-out" : "offline");
      // Flooding (4429) and a busy server (1013) ask for a pause before coming back.
      const pause = event.code === 4429 ? Math.max(this.retryAfter, 5) : this.retryAfter;
      this.retry(pause);
    };
  }

  // A socket is usable once the server says hello: a refused one is accepted
  // only to carry an error frame (with retry_after when it says when) and a close.
  // A resumed socket replays what it missed, then says "synced": until then the
  // state reads "catching up", and the count of replayed messages is reported.
  opened(resuming) {
    this.ready = true;
    this.attempt = 0;
    this.resuming = resuming;
    this.replayed = 0;
    this.pingSentAt = 0;
    this.onState(resuming ? "syncing" : "online");
    for (const entry of this.unacked.values()) this.transmit(entry);
    for (const frame of this.queue.splice(0)) this.ws.send(JSON.stringify(frame));
  }

  transmit(entry) {
    entry.sentAt = Date.now();
    this.ws.send(JSON.stringify(entry.frame));
  }

  get open() {
    return Boolean(this.ws && this.ready && this.ws.readyState === WebSocket.OPEN);
  }

  // Every few seconds: a ping when one is due, a dead connection closed, and
  // messages the server never answered reported as failed (with Retry).
  watch() {
    if (!this.open) return;
    const now = Date.now();
    if (this.pingSentAt && now - this.pingSentAt > PONG_WITHIN_MS) {
      this.ws.close(4000, "no pong");
      return;
    }
    if (!this.pingSentAt && now - (this.lastFrameAt || 0) > PING_EVERY_MS) {
      this.pingSentAt = now;
      this.ws.send('{"type":"ping"}');
    }
    for (const [clientId, entry] of this.unacked) {
      if (now - entry.sentAt > ACK_WITHIN_MS) {
        this.unacked.delete(clientId);
        this.onFrame({ type: "error", code: "no_answer", client_id: clientId, detail: "The server did not answer." });
      }
    }
  }

  // Reconnect now instead of waiting for the backoff (the "Retry now" button).
  retryNow() {
    if (this.ws || this.connecting || this.stopped) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.start();
  }

  retry(atLeastSeconds = 0) {
    const backoff = Math.min(10000, 500 * 2 ** this.attempt) * (0.7 + Math.random() * 0.6);
    const delay = Math.max(backoff, atLeastSeconds * 1000 * (1 + Math.random() * 0.5));
    this.attempt += 1;
    this.onState("reconnecting", Math.round(delay / 1000));
    this.timer = setTimeout(() => this.start(), delay);
  }

  receive(frame) {
    this.lastFrameAt = Date.now();
    if (frame.type === "pong") {
      this.pingSentAt = 0;
      return;
    }
    if (frame.type === "hello") {
      const resuming = this.lastSeq !== null;
      // A first connection reads the state over REST (onStart): the log up to
      // `head` is in it already, so only what follows is applied.
      if (!resuming) this.lastSeq = frame.head;
      this.opened(resuming);
      if (!resuming && this.onStart) this.onStart();
      return;
    }
    if (frame.type === "synced" && this.resuming) {
      this.resuming = false;
      this.onState("online", 0, this.replayed);
    }
    if (frame.type === "error" && !this.ready) {
      this.retryAfter = frame.retry_after || 0;
      return;
    }
    if (frame.type === "error" && frame.code === "rate_limited") this.retryAfter = frame.retry_after || 0;
    if ((frame.type === "ack" || frame.type === "error") && frame.client_id) this.unacked.delete(frame.client_id);
    if (frame.type === "resync_required") {
      this.lastSeq = frame.seq;
      if (this.resuming) { this.resuming = false; this.onState("online"); }
      this.onResync();
      return;
    }
    if (typeof frame.seq === "number" && frame.type !== "synced") {
      if (this.lastSeq !== null && frame.seq <= this.lastSeq) return; // already applied
      this.lastSeq = frame.seq;
      if (this.resuming && MESSAGE_FRAMES.has(frame.type)) this.replayed += 1;
    }
    this.onFrame(frame);
  }

  // Messages wait for their acknowledgement (sent again on each new connection);
  // other frames written while disconnected wait for the next connection, and
  // ephemeral ones (typing) are dropped instead: sent late they would be wrong.
  send(frame, { queue = true } = {}) {
    if (MESSAGE_FRAMES.has(frame.type) && frame.client_id) {
      const entry = { frame, sentAt: Date.now() };
      this.unacked.set(frame.client_id, entry);
      if (this.open) this.transmit(entry);
      return;
    }
    if (this.open) this.ws.send(JSON.stringify(frame));
    else if (queue) this.queue.push(frame);
  }

  // Drop the connection as a network failure would (used by tests and the console).
  cut() {
    if (this.ws) this.ws.close(4000, "cut");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}

// A random id for client_id: crypto.randomUUID exists only on secure origins
// (https, localhost), and a LAN address over http is not one.
export function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
