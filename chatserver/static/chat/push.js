// Web Push on this device: the service worker, the browser's permission, the
// subscription and its registration with the server (POST /push/targets).
import { $, closeOnBackdrop, toast } from "./dom.js";

const TARGET_KEY = "chat.pushTarget"; // the server's id of this browser's subscription
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

export async function pushEnabled() {
  if (!pushSupported() || Notification.permission !== "granted") return false;
  const current = await navigator.serviceWorker.getRegistration("/");
  return Boolean(current && (await current.pushManager.getSubscription()) && localStorage.getItem(TARGET_KEY));
}

// Ask the browser (its permission prompt), subscribe, and register the subscription.
export async function enablePush(api) {
  if (!pushSupported()) throw new Error("This browser cannot receive push notifications.");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("Notifications are blocked for this site in the browser's settings.");
  const { data: { public_key: key } } = await api.get("/push/vapid-public-key");
  const worker = await registration();
  await navigator.serviceWorker.ready;
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
  localStorage.setItem(TARGET_KEY, data.id);
}

// Stop pushes to this device: unsubscribe, and tell the server (also on logout).
export async function disablePush(api) {
  const target = localStorage.getItem(TARGET_KEY);
  localStorage.removeItem(TARGET_KEY);
  if (pushSupported()) {
    const current = await navigator.serviceWorker.getRegistration("/");
    const subscription = current && (await current.pushManager.getSubscription());
    if (subscription) await subscription.unsubscribe();
  }
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
    $("push-toggle").checked = await pushEnabled();
    status($("push-toggle").checked ? "On: this device is told about messages while the app is closed." : "Off on this device.");
  }

  $("push-toggle").addEventListener("change", async () => {
    const on = $("push-toggle").checked;
    $("push-toggle").disabled = true;
    status(on ? "Asking the browser…" : "Turning off…");
    try {
      if (on) await enablePush(api);
      else await disablePush(api);
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
