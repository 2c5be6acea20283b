// Pure helpers: how times, names and sizes read. No DOM, no state.

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const timeFormat = new Intl.DateTimeFormat([], { hour: "numeric", minute: "2-digit" });
const weekdayFormat = new Intl.DateTimeFormat([], { weekday: "long" });
const shortWeekdayFormat = new Intl.DateTimeFormat([], { weekday: "short" });
const dateFormat = new Intl.DateTimeFormat([], { day: "numeric", month: "short" });
const longDateFormat = new Intl.DateTimeFormat([], { day: "numeric", month: "long", year: "numeric" });

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

// Whole calendar days between two instants, in local time.
function daysBetween(earlier, later) {
  return Math.round((startOfDay(later) - startOfDay(earlier)) / DAY);
}

export function timeOfDay(iso) {
  return timeFormat.format(new Date(iso));
}

export function dayKey(iso) {
  const date = new Date(iso);
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

// A day separator's label: "Today", "Yesterday", a weekday this week, else the date.
export function dayLabel(iso, now = new Date()) {
  const date = new Date(iso);
  const days = daysBetween(date, now);
  if (days <= 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days < 7) return weekdayFormat.format(date);
  return longDateFormat.format(date);
}

// The conversation list's time: "now", "5 min", a time today, "Yesterday", a weekday, a date.
export function relativeTime(iso, now = new Date()) {
  const date = new Date(iso);
  const elapsed = now - date;
  if (elapsed < MINUTE) return "now";
  if (elapsed < 60 * MINUTE) return `${Math.floor(elapsed / MINUTE)} min`;
  const days = daysBetween(date, now);
  if (days <= 0) return timeFormat.format(date);
  if (days === 1) return "Yesterday";
  if (days < 7) return shortWeekdayFormat.format(date);
  return dateFormat.format(date);
}

export function lastSeen(iso, now = new Date()) {
  if (!iso) return "offline";
  const elapsed = now - new Date(iso);
  if (elapsed < MINUTE) return "last seen just now";
  if (elapsed < 60 * MINUTE) return `last seen ${Math.floor(elapsed / MINUTE)} min ago`;
  const days = daysBetween(new Date(iso), now);
  if (days <= 0) return `last seen today at ${timeOfDay(iso)}`;
  if (days === 1) return `last seen yesterday at ${timeOfDay(iso)}`;
  return `last seen ${dateFormat.format(new Date(iso))}`;
}

// Consecutive messages of one sender within this many ms share one group.
export const GROUP_GAP_MS = 5 * MINUTE;

export function sameRun(previous, message) {
  return Boolean(previous) && previous.from === message.from && dayKey(previous.created_at) === dayKey(message.created_at)
    && new Date(message.created_at) - new Date(previous.created_at) < GROUP_GAP_MS;
}

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function initials(name) {
  const words = (name || "?").split(/[\s_.-]+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

// A stable hue per id, so a person's avatar keeps its colour everywhere.
export function hue(id) {
  let hash = 0;
  for (const char of String(id)) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % 360;
}

// What a conversation list preview says about a message.
export function preview(message) {
  if (!message) return "";
  if (message.deleted) return "Message deleted";
  const text = (message.content || "").replace(/\s+/g, " ").trim();
  if (text) return text;
  const files = message.attachments || [];
  if (!files.length) return "";
  const images = files.filter((file) => file.content_type.startsWith("image/")).length;
  if (images === files.length) return images === 1 ? "Photo" : `${images} photos`;
  return files.length === 1 ? files[0].name : `${files.length} files`;
}

export function isImage(file) {
  return Boolean(file.content_type && file.content_type.startsWith("image/") && file.width && file.height);
}
