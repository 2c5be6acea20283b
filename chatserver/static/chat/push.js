// Web Push on this device: the service worker, the browser's permission, the
// subscription and its registration with the server (POST /push/targets).
import { $, closeOnBackdrop, toast } from "./dom.js";

// The server's id of this browser's subscription, per user: a browser shared
// by several people must never show one person's pushes to another.
const targetKey = (userId) => `chat.pushTarget.${userId}`;
const SUBSCRIBE_WITHIN_MS = 20_000;

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function applicationServerKey(base64url) {
  const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
}

function deviceName() {
  const agent = navigator.userAgent;
  const browser = /Edg\//.test(agent) ? "Edge" : /Chrome\//.test(agent) ? "Chrome" : /Firefox\//.test(agent) ? "Firefox" : /Safari\//.test(agent) ? "Safari" : "Browser";
  const system = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Mac OS/.test(agent) ? "macOS" : /Windows/.test(agent) ? "Windows" : /Linux/.test(agent) ? "Linux" : "";
  return system ? `${browser} on ${system}` : browser;
}

async function registration() {
  return navigator.serviceWorker.register("/sw.js");
}

async function currentSubscription() {
  if (!pushSupported()) return null;
  const current = await navigator.serviceWorker.getRegistration("/");
  return current ? current.pushManager.getSubscription() : null;
}

export async function pushEnabled(userId) {
  if (!pushSupported() || Notification.permission !== "granted") return false;
  return Boolean((await currentSubscription()) && localStorage.getItem(targetKey(userId)));
}

// At sign-in: a subscription this browser holds for someone else (who did
// not log out) is ended, so its pushes stop here; the push service then
// tells the server, which drops that target.
export async function forgetOthersSubscription(userId) {
  const subscription = await currentSubscription();
  if (subscription && !localStorage.getItem(targetKey(userId))) await subscription.unsubscribe();
}

// Ask the browser (its permission prompt), subscribe, and register the subscription.
export async function enablePush(api, userId) {
  if (!pushSupported()) throw new Error("This browser cannot receive push notifications.");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("Notifications are blocked for this site in the browser's settings.");
  const { data: { public_key: key } } = await api.get("/push/vapid-public-key");
  const worker = await registration();
  await navigator.serviceWorker.ready;
  // A subscription made with another server key (the key changed) cannot be used: start over.
  const existing = await worker.pushManager.getSubscription();
  if (existing && !sameKey(existing.options.applicationServerKey, applicationServerKey(key))) await existing.unsubscribe();
  let subscription;
  try {
    // A browser that cannot reach its push service may never answer: give up after a while.
    const gaveUp = new Promise((_, reject) => setTimeout(() => reject(new Error("no answer")), SUBSCRIBE_WITHIN_MS));
    subscription = await Promise.race([
      worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(key) }),
      gaveUp,
    ]);
  } catch (error) {
    throw new Error(`The browser could not reach its push service (${error.message}).`);
  }
  const { data } = await api.post("/push/targets", { kind: "webpush", name: deviceName(), subscription: subscription.toJSON() });
  localStorage.setItem(targetKey(userId), data.id);
}

function sameKey(buffer, expected) {
  if (!buffer) return false;
  const bytes = new Uint8Array(buffer);
  return bytes.length === expected.length && bytes.every((byte, index) => byte === expected[index]);
}

// Stop pushes to this device: unsubscribe, and tell the server (also on logout).
export async function disablePush(api, userId) {
  const target = localStorage.getItem(targetKey(userId));
  localStorage.removeItem(targetKey(userId));
  const subscription = await currentSubscription();
  if (subscription) await subscription.unsubscribe();
  if (target) {
    try {
      await api.delete(`/push/targets/${target}`);
    } catch (error) {
      if (error.status !== 404) throw error;
    }
  }
}

// The "Notifications" dialog: this device's pushes, and whether they show the text.
export function setupNotificationSettings({ api, me, onOpenConversation }) {
  const dialog = $("settings-dialog");
  closeOnBackdrop(dialog);
  const status = (text) => { $("push-status").textContent = text; };

  async function refresh() {
    $("push-content").checked = Boolean(me().push_show_content);
    if (!pushSupported()) {
      $("push-toggle").disabled = true;
      return status("This browser cannot receive push notifications; the other devices still can.");
    }
    $("push-toggle").checked = await pushEnabled(me().id);
    status($("push-toggle").checked ? "On: this device is told about messages while the app is closed." : "Off on this device.");
  }

  $("push-toggle").addEventListener("change", async () => {
    const on = $("push-toggle").checked;
    $("push-toggle").disabled = true;
    status(on ? "Asking the browser…" : "Turning off…");
    try {
      if (on) await enablePush(api, me().id);
      else await disablePush(api, me().id);
    } catch (error) {
      $("push-toggle").checked = false;
      $("push-toggle").disabled = false;
      return status(error.message);
    }
    $("push-toggle").disabled = false;
    await refresh();
  });

  $("push-content").addEventListener("change", async () => {
    try {
      const { data } = await api.put("/users/me/update", { push_show_content: $("push-content").checked });
      me().push_show_content = data.push_show_content;
    } catch (error) {
      $("push-content").checked = !$("push-content").checked;
      toast(error.message, { kind: "error" });
    }
  });

  $("settings-close").addEventListener("click", () => dialog.close());
  $("open-settings").addEventListener("click", async () => {
    await refresh();
    dialog.showModal();
  });

  // A click on a notification focuses this window and names the conversation.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "open" && event.data.conversation) onOpenConversation(event.data.conversation);
    });
  }
}
