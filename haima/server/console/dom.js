// Small DOM and formatting helpers. Text always enters the page as text nodes (never as
// HTML), so documents and metadata cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

// -- numbers --------------------------------------------------------------------------

export function int(n) {
  return n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US");
}

export function num(n, digits = 3) {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : n.toFixed(digits);
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

export function ms(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 100) return `${n.toFixed(1)} ms`;
  return `${Math.round(n)} ms`;
}

export function duration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${s % 60} s`;
  return `${s} s`;
}

// -- text -----------------------------------------------------------------------------

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// `text` with every occurrence of `terms` (case-insensitive) wrapped in <mark>.
export function highlighted(text, terms) {
  const frag = document.createDocumentFragment();
  if (text === null || text === undefined) {
    frag.append(h("span", { class: "muted" }, "(no document)"));
    return frag;
  }
  const words = (terms || []).filter((t) => t && t.trim()).sort((a, b) => b.length - a.length);
  if (!words.length) {
    frag.append(text);
    return frag;
  }
  const pattern = new RegExp(words.map(escapeRegExp).join("|"), "giu");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (!match[0]) continue;
    frag.append(text.slice(last, match.index), h("mark", null, match[0]));
    last = match.index + match[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

export function metadataChips(metadata) {
  if (!metadata) return h("span", { class: "muted" }, "—");
  return h(
    "div",
    { class: "chips" },
    Object.entries(metadata).map(([key, value]) =>
      h("span", { class: "chip", title: `${key}: ${JSON.stringify(value)}` }, h("b", null, key, ": "), formatValue(value)),
    ),
  );
}

export function formatValue(value) {
  if (Array.isArray(value)) return `[${value.map(formatValue).join(", ")}]`;
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

// A modal confirmation. With `typeToConfirm`, the confirm button stays disabled until
// that text is typed. Resolves to true when confirmed.
export function confirmDialog({ title, message, confirmLabel = "Delete", typeToConfirm = null }) {
  return new Promise((resolve) => {
    const input = typeToConfirm
      ? h("input", { type: "text", autocomplete: "off", "aria-label": `Type ${typeToConfirm} to confirm` })
      : null;
    const ok = h("button", { type: "submit", class: "danger", disabled: Boolean(typeToConfirm) }, confirmLabel);
    const cancel = h("button", { type: "button", class: "ghost" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", null, title),
      h("p", null, message),
      typeToConfirm ? h("p", null, "Type ", h("code", null, typeToConfirm), " to confirm:") : null,
      input,
      h("div", { class: "actions" }, cancel, ok),
    );
    const dialog = h("dialog", { "aria-label": title }, form);
    let confirmed = false;
    if (input) input.addEventListener("input", () => (ok.disabled = input.value !== typeToConfirm));
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (ok.disabled) return;
      confirmed = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(confirmed);
    });
    document.body.append(dialog);
    dialog.showModal();
    (input || cancel).focus();
  });
}

// A JSON editor's value: null when empty, else the parsed object, or an Error naming the
// field when the text is not JSON (Haima's own messages come from the API).
export function parseJsonField(text, field) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  try {
    return JSON.parse(trimmed);
  } catch (error) {
    return new Error(`${field}: not valid JSON (${error.message})`);
  }
}
