// The service worker: shows push notifications while no window of the app is
// open, and opens the conversation when one is clicked. Served at /sw.js so
// its scope is the whole app.
//
// A push says which conversation has new messages, from whom and how many; it
// carries the text only when the user allowed it (push_show_content).

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function notificationFor(push) {
  const conversation = push.conversation || {};
  const sender = (push.sender && push.sender.username) || "Someone";
  const group = conversation.kind === "group";
  const count = push.count || 1;
  let body;
  if (push.excerpt) body = group ? `${sender}: ${push.excerpt}` : push.excerpt;
  else if (group) body = count === 1 ? `New message from ${sender}` : `${count} new messages`;
  else body = count === 1 ? "New message" : `${count} new messages`;
  if (push.excerpt && count > 1) body += ` (+${count - 1} more)`;
  return {
    title: conversation.title || sender,
    options: {
      body,
      // A newer push of the conversation replaces the older one (renotify needs a tag).
      tag: conversation.id || "chat",
      renotify: true,
      icon: "/static/chat/icon.svg",
      badge: "/static/chat/icon.svg",
      timestamp: push.created_at ? Date.parse(push.created_at) : Date.now(),
      data: { conversation: conversation.id, message: push.message_id, push: push.id },
    },
  };
}

self.addEventListener("push", (event) => {
  let push = {};
  try {
    push = event.data ? event.data.json() : {};
  } catch {
    push = {};
  }
  const { title, options } = notificationFor(push);
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const conversation = event.notification.data && event.notification.data.conversation;
  const url = conversation ? `/?conversation=${encodeURIComponent(conversation)}` : "/";
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin === self.location.origin) {
        client.postMessage({ type: "open", conversation });
        return client.focus();
      }
    }
    return self.clients.openWindow(url);
  })());
});
