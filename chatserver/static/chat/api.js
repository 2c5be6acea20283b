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
export class ChatSocket {
  constructor(api, { onFrame, onState, onResync }) {
    this.api = api;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onResync = onResync;
    this.lastSeq = null;
    this.attempt = 0;
    this.queue = [];
    this.stopped = false;
  }

  async start() {
    this.stopped = false;
    this.onState("connecting");
    let ticket;
    try {
      ({ data: { ticket } } = await this.api.post("/ws/ticket"));
    } catch (error) {
      if (error.status === 401) return this.onState("signed-out");
      return this.retry();
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const since = this.lastSeq === null ? "" : `&since=${this.lastSeq}`;
    const ws = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}${since}`);
    this.ws = ws;
    this.ready = false;
    this.retryAfter = 0;
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (this.stopped || event.code === 4401) return this.onState(event.code === 4401 ? "signed-out" : "offline");
      this.retry(this.retryAfter);
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
    this.onState(resuming ? "syncing" : "online");
    for (const frame of this.queue.splice(0)) this.ws.send(JSON.stringify(frame));
  }

  // Reconnect now instead of waiting for the backoff (the "Retry now" button).
  retryNow() {
    if (this.ws || this.stopped) return;
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
    if (frame.type === "hello") {
      const resuming = this.lastSeq !== null;
      if (!resuming) this.lastSeq = frame.seq;
      this.opened(resuming);
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
    if (frame.type === "resync_required") {
      this.lastSeq = frame.seq;
      if (this.resuming) { this.resuming = false; this.onState("online"); }
      this.onResync();
      return;
    }
    if (typeof frame.seq === "number" && frame.type !== "synced") {
      if (this.lastSeq !== null && frame.seq <= this.lastSeq) return; // already applied
      this.lastSeq = frame.seq;
      if (this.resuming && (frame.type === "direct_message" || frame.type === "group_message")) this.replayed += 1;
    }
    this.onFrame(frame);
  }

  // Frames sent while disconnected wait for the next connection; sends carry a
  // client_id, so a retry after a lost acknowledgement stores nothing twice.
  // Ephemeral frames (typing) are dropped instead: sent late they would be wrong.
  send(frame, { queue = true } = {}) {
    if (this.ws && this.ready && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
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
