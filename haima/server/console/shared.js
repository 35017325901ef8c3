// What the pages share: the session, links, labels, and deleting a collection.

import { api } from "./api.js";
import { bytes, confirmDialog, h, int, replace } from "./dom.js";

// What every page may read: the server's info (read-only console?) and the collections.
export const session = { info: null, collections: null };

export function writable() {
  return Boolean(session.info) && !session.info.read_only_console;
}

export function href(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
}

export function collectionHref(c, ...rest) {
  return href("c", c.tenant, c.database, c.name, ...rest);
}

export function indexBadge(index) {
  const kinds = index.ann ? `${index.type} → ${index.ann}` : index.type;
  const state = index.state;
  const cls = state === "ready" ? "badge ok" : state === "building" ? "badge warn" : "badge";
  const details = {
    building: `${int(index.pending)} vectors waiting for the ${index.ann || "ANN"} index; searches stay complete meanwhile`,
    ready: `${int(index.indexed)} in the ANN part, ${int(index.exact)} searched exactly`,
    empty: "no vectors yet",
  };
  const detail = details[state] || "this process has not opened the index yet; it loads on the first query";
  return [h("span", { class: "mono" }, kinds), " ", h("span", { class: cls, title: detail }, state)];
}

export function embeddingLabel(embedding) {
  if (!embedding) return h("span", { class: "muted" }, "none (vectors given)");
  return h("span", { title: embedding.provider || "" }, embedding.model || embedding.provider || "?");
}

export function sizeTitle(b) {
  const about = b.text_estimated ? " (estimated from a sample)" : "";
  return `index snapshot ${bytes(b.index)}, vectors ${bytes(b.vectors)}, ids, documents and metadata ${bytes(b.text)}${about}`;
}

export async function deleteCollection(c) {
  const confirmed = await confirmDialog({
    title: `Delete collection ${c.name}?`,
    message: `Its ${int(c.count)} records and their index are removed from the store. This cannot be undone.`,
    typeToConfirm: c.name,
    confirmLabel: "Delete collection",
  });
  if (!confirmed) return;
  await api.deleteCollection(c);
  showPage("#/");
}

// Navigate to `hash`, or show it again when it is the current page.
let rerender = () => {};

export function setRerender(fn) {
  rerender = fn;
}

export function showPage(hash) {
  if (location.hash === hash || (hash === "#/" && !location.hash)) rerender();
  else location.hash = hash;
}

export function showError(main, error) {
  if (error && error.status === 401) return; // the sign-in form is shown instead
  replace(
    main,
    h("h1", null, "Something went wrong"),
    h("p", { class: "error", role: "alert" }, error && error.message ? error.message : String(error)),
    h("p", null, h("a", { href: "#/" }, "Back to the overview")),
  );
}
