// DOM helpers: an element builder (text only ever goes in as text, never as
// markup), in-page dialogs and toasts.
import { hue, initials } from "./format.js";

export const $ = (id) => document.getElementById(id);

// h("button", {type: "button", class: "x", onclick: f, "aria-label": "…"}, "text", child)
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

export function svgIcon(path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const shape = document.createElementNS("http://www.w3.org/2000/svg", "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

// A round avatar with initials, coloured by the id (the CSS reads --hue).
export function paintAvatar(element, id, name, { group = false } = {}) {
  element.textContent = initials(name);
  element.style.setProperty("--hue", hue(id));
  element.classList.toggle("group", group);
  return element;
}

export function avatar(id, name, options) {
  return paintAvatar(h("span", { class: "avatar", "aria-hidden": "true" }), id, name, options);
}

// Text with [start, end) ranges marked, built from text nodes only. The
// server counts characters as code points; JavaScript strings count UTF-16
// units, so an emoji before a match would shift it: slice by code points.
export function highlighted(text, ranges) {
  const chars = Array.from(text);
  const parts = [];
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start < at) continue;
    parts.push(chars.slice(at, start).join(""), h("mark", {}, chars.slice(start, end).join("")));
    at = end;
  }
  parts.push(chars.slice(at).join(""));
  return parts.filter((part) => part !== "");
}

// An in-page confirmation (the browser's own confirm() blocks the page and cannot be styled).
export function confirmDialog({ title, body, confirm }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-body").textContent = body;
  $("confirm-ok").textContent = confirm;
  dialog.returnValue = "cancel";
  dialog.showModal();
  dialog.querySelector('button[value="cancel"]').focus(); // a stray Enter must not destroy anything
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function toast(text, { kind = "info", seconds = 4 } = {}) {
  const item = h("p", { class: `toast ${kind}` }, text);
  $("toasts").append(item);
  setTimeout(() => item.remove(), seconds * 1000);
}

// Close a dialog when its backdrop is clicked (outside its box: a click on its
// own padding also targets the dialog element).
export function closeOnBackdrop(dialog) {
  dialog.addEventListener("click", (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });
}
