// Attachments: files waiting in the composer (uploaded as soon as they are
// chosen, dropped or pasted), and files shown in messages.
import { fileSize, isImage } from "./format.js";
import { randomId } from "./api.js";
import { h, svgIcon } from "./dom.js";

const MAX_FILES = 10; // per message, as the server allows
const THUMB_MAX = 260; // px, the longer side of an image in the conversation

// Object URLs of images already fetched (or uploaded from this page), by
// attachment id; the oldest are let go past IMAGES_KEPT.
const images = new Map();
const IMAGES_KEPT = 200;

// The token goes only to this server's own download path, never to a URL a frame names.
function downloadPath(file) {
  return `/attachments/${encodeURIComponent(file.id)}`;
}

function remember(id, loading) {
  images.set(id, loading);
  while (images.size > IMAGES_KEPT) {
    const [oldest, url] = images.entries().next().value;
    images.delete(oldest);
    url.then((value) => URL.revokeObjectURL(value), () => {});
  }
}

export function imageUrl(api, file) {
  if (!images.has(file.id)) {
    const loading = api.blob(downloadPath(file)).then((blob) => URL.createObjectURL(blob));
    loading.catch(() => images.delete(file.id)); // try again next time it is shown
    remember(file.id, loading);
  }
  return images.get(file.id);
}

export async function download(api, file) {
  const cached = images.get(file.id);
  const url = cached ? await cached : URL.createObjectURL(await api.blob(downloadPath(file)));
  h("a", { href: url, download: file.name }).click();
  if (!cached) setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function thumbSize(file) {
  const scale = Math.min(1, THUMB_MAX / Math.max(file.width, file.height));
  return { width: Math.max(1, Math.round(file.width * scale)), height: Math.max(1, Math.round(file.height * scale)) };
}

// The files of one message: image thumbnails, then file chips.
export function attachmentList(api, files, { onOpenImage }) {
  const pictures = files.filter(isImage);
  const others = files.filter((file) => !isImage(file));
  const list = h("div", { class: "attachments" });
  for (const file of pictures) {
    const { width, height } = thumbSize(file);
    const img = h("img", { alt: file.name, width, height, class: "loading" });
    imageUrl(api, file).then((url) => { img.src = url; img.classList.remove("loading"); }, () => img.classList.add("broken"));
    list.append(h("button", {
      type: "button", class: "thumb", "aria-label": `Open image ${file.name}`, onclick: () => onOpenImage(file),
    }, img));
  }
  for (const file of others) list.append(fileChip(file, () => download(api, file)));
  return list;
}

function fileChip(file, onclick) {
  return h("button", { type: "button", class: "file-chip", "aria-label": `Download ${file.name}, ${fileSize(file.size)}`, onclick },
    svgIcon("M6 2h8l6 6v14H6zM14 2v6h6"),
    h("span", { class: "file-name" }, file.name),
    h("span", { class: "file-size" }, fileSize(file.size)));
}

// A preview nobody will show again (not sent, or not an image the cache keeps).
function forget(item) {
  if (item.preview && !(item.attachment && images.has(item.attachment.id))) URL.revokeObjectURL(item.preview);
}

// The composer's files: each is uploaded at once; a message can be sent when
// every file has finished (failed ones say why and can be removed).
export class PendingFiles {
  constructor(api, list, onChange) {
    this.api = api;
    this.list = list;
    this.onChange = onChange;
    this.items = [];
  }

  add(files) {
    const room = MAX_FILES - this.items.length;
    const chosen = [...files].slice(0, Math.max(0, room));
    const refused = files.length - chosen.length;
    for (const file of chosen) {
      const item = { key: randomId(), file, state: "uploading", attachment: null, error: null };
      if (file.type.startsWith("image/")) item.preview = URL.createObjectURL(file);
      this.items.push(item);
      this.api.upload(file).then(({ data }) => {
        item.attachment = data;
        item.state = "ready";
        if (item.preview && isImage(data)) remember(data.id, Promise.resolve(item.preview));
      }, (error) => {
        item.state = "failed";
        item.error = error.message;
      }).finally(() => this.render());
    }
    this.render();
    return refused > 0 ? `At most ${MAX_FILES} files per message.` : null;
  }

  remove(key) {
    for (const item of this.items) if (item.key === key) forget(item);
    this.items = this.items.filter((item) => item.key !== key);
    this.render();
  }

  get uploading() { return this.items.some((item) => item.state === "uploading"); }
  get failed() { return this.items.some((item) => item.state === "failed"); }
  get count() { return this.items.length; }

  // The uploaded files, handed to a message; the composer is emptied.
  take() {
    const attachments = this.items.filter((item) => item.state === "ready").map((item) => item.attachment);
    this.items = [];
    this.render();
    return attachments;
  }

  clear() {
    for (const item of this.items) forget(item);
    this.items = [];
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.items.map((item) => {
      const status = { uploading: "Uploading…", ready: fileSize(item.file.size), failed: item.error }[item.state];
      return h("li", { class: `pending-file ${item.state}` },
        item.preview ? h("img", { src: item.preview, alt: "" }) : svgIcon("M6 2h8l6 6v14H6zM14 2v6h6"),
        h("span", { class: "file-name" }, item.file.name),
        h("span", { class: "file-size", role: item.state === "failed" ? "alert" : null }, status),
        h("button", { type: "button", class: "icon small", "aria-label": `Remove ${item.file.name}`, onclick: () => this.remove(item.key) },
          svgIcon("M6 6l12 12M18 6L6 18")));
    }));
    this.list.hidden = this.items.length === 0;
    this.onChange();
  }
}
