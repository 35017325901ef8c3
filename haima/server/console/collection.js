// A collection's page: its facts, and the tabs Records (with filters), Search and Map;
// a record's detail with its vector's norm and nearest neighbours.

import { api } from "./api.js";
import { bytes, confirmDialog, h, int, metadataChips, num, parseJsonField, replace } from "./dom.js";
import { mapTab } from "./map.js";
import { searchTab } from "./search.js";
import {
  collectionHref,
  deleteCollection,
  embeddingLabel,
  indexBadge,
  showPage,
  sizeTitle,
  writable,
} from "./shared.js";

const TABS = [
  ["records", "Records"],
  ["search", "Search"],
  ["map", "Map"],
];

export async function collectionPage(ctx, main, { tenant, database, name, tab, rest }) {
  const model = await api.collectionByName(tenant, database, name);
  const c = await api.stats({ tenant, database, id: model.id });
  if (!ctx.alive()) return;
  document.title = `${c.name} · Haima`;
  const content = h("section", { id: "tab-content" });
  const activeTab = tab === "record" ? "records" : tab;
  replace(
    main,
    h(
      "div",
      { class: "coll-head" },
      h(
        "div",
        null,
        h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Overview"), " / ", c.tenant, " / ", c.database),
        h("h1", null, c.name),
        h(
          "div",
          { class: "facts", id: "collection-facts" },
          h("span", { class: "badge" }, `${int(c.count)} records`),
          h("span", { class: "badge" }, `dim ${c.dimension ?? "—"}`),
          h("span", { class: "badge" }, c.metric),
          h("span", { class: "badge" }, indexBadge(c.index)),
          h("span", { class: "badge" }, "embedding: ", embeddingLabel(c.embedding)),
          h("span", { class: "badge" }, `keyword ${c.keyword ? "on" : "off"}`),
          h("span", { class: "badge", title: sizeTitle(c.bytes) }, bytes(c.bytes.total)),
        ),
      ),
      writable()
        ? h(
            "button",
            { type: "button", class: "danger ghost", onclick: () => deleteCollection(c) },
            "Delete collection",
          )
        : null,
    ),
    h(
      "nav",
      { class: "tabs", "aria-label": "Collection views" },
      TABS.map(([key, label]) =>
        h("a", { href: collectionHref(c, key), "aria-current": key === activeTab ? "page" : null }, label),
      ),
    ),
    content,
  );
  if (tab === "search") await searchTab(ctx, content, c);
  else if (tab === "map") await mapTab(ctx, content, c);
  else if (tab === "record") await recordDetail(ctx, content, c, rest.join("/"));
  else await recordsTab(ctx, content, c);
}

// -- records ------------------------------------------------------------------------------

// Filters and page per collection, kept while the console is open (back from a record's
// detail returns to the same page).
const recordsState = new Map();
const PAGE_SIZES = [10, 25, 50, 100];

function stateFor(c) {
  if (!recordsState.has(c.id)) {
    recordsState.set(c.id, { where: "", whereDocument: "", offset: 0, size: 25 });
  }
  return recordsState.get(c.id);
}

async function recordsTab(ctx, box, c) {
  const st = stateFor(c);
  const whereInput = h("textarea", {
    id: "where",
    class: "json",
    spellcheck: "false",
    placeholder: '{"lang": "zh", "year": {"$gte": 2023}}',
    "aria-describedby": "where-error",
    value: st.where,
  });
  const docInput = h("textarea", {
    id: "where-document",
    class: "json",
    spellcheck: "false",
    placeholder: '{"$contains": "北京"}',
    "aria-describedby": "where-document-error",
    value: st.whereDocument,
  });
  const whereError = h("p", { class: "error", id: "where-error", role: "alert" });
  const docError = h("p", { class: "error", id: "where-document-error", role: "alert" });
  const otherError = h("p", { class: "error", id: "records-error", role: "alert" });
  const sizeSelect = h(
    "select",
    { id: "page-size" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === st.size }, n)),
  );
  const tableBox = h("div", { class: "table-wrap" });
  const position = h("span", { id: "page-position", class: "muted" });
  const prev = h("button", { type: "button", class: "ghost", id: "prev-page" }, "← Previous");
  const next = h("button", { type: "button", class: "ghost", id: "next-page" }, "Next →");
  const form = h(
    "form",
    { class: "panel", id: "filters" },
    h(
      "div",
      { class: "filters" },
      h("div", { class: "field" }, h("label", { for: "where" }, "where (metadata)"), whereInput, whereError),
      h(
        "div",
        { class: "field" },
        h("label", { for: "where-document" }, "where_document"),
        docInput,
        docError,
      ),
    ),
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit", id: "apply-filters" }, "Apply"),
      h("button", { type: "button", class: "ghost", id: "clear-filters" }, "Clear"),
      h("span", { class: "spacer" }),
      h("label", { for: "page-size" }, "Per page"),
      sizeSelect,
    ),
    otherError,
  );
  replace(box, form, tableBox, h("div", { class: "pager" }, prev, position, next));

  // Each load has a number: an answer to an earlier load that arrives late is dropped.
  let generation = 0;
  async function load() {
    const mine = ++generation;
    const current = () => ctx.alive() && mine === generation;
    whereError.textContent = docError.textContent = otherError.textContent = "";
    const where = parseJsonField(st.where, "where");
    const whereDocument = parseJsonField(st.whereDocument, "where_document");
    if (where instanceof Error || whereDocument instanceof Error) {
      if (where instanceof Error) whereError.textContent = where.message;
      if (whereDocument instanceof Error) docError.textContent = whereDocument.message;
      return;
    }
    const body = { limit: st.size + 1, offset: st.offset, include: ["documents", "metadatas"] };
    if (where !== null) body.where = where;
    if (whereDocument !== null) body.where_document = whereDocument;
    const filtered = where !== null || whereDocument !== null;
    tableBox.setAttribute("aria-busy", "true");
    let page;
    let total = null;
    try {
      [page, total] = await Promise.all([api.get(c, body), filtered ? null : api.count(c)]);
    } catch (error) {
      if (!current()) return;
      tableBox.removeAttribute("aria-busy");
      // Haima names the field a message is about: show it under that editor.
      const target = /^where_document\b/.test(error.message)
        ? docError
        : /^where\b/.test(error.message)
          ? whereError
          : otherError;
      target.textContent = error.message;
      return;
    }
    if (!current()) return;
    tableBox.removeAttribute("aria-busy");
    const more = page.ids.length > st.size;
    const count = Math.min(page.ids.length, st.size);
    replace(tableBox, recordsTable(c, page, count));
    prev.disabled = st.offset === 0;
    next.disabled = !more;
    const first = count ? st.offset + 1 : 0;
    const range = count ? `${int(first)}–${int(st.offset + count)}` : "none";
    position.textContent = filtered
      ? `Matching records ${range}`
      : `Records ${range} of ${int(total)}`;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    st.where = whereInput.value;
    st.whereDocument = docInput.value;
    st.offset = 0;
    load();
  });
  document.getElementById("clear-filters").addEventListener("click", () => {
    whereInput.value = docInput.value = st.where = st.whereDocument = "";
    st.offset = 0;
    load();
  });
  sizeSelect.addEventListener("change", () => {
    st.size = Number(sizeSelect.value);
    st.offset = 0;
    load();
  });
  prev.addEventListener("click", () => {
    st.offset = Math.max(0, st.offset - st.size);
    load();
  });
  next.addEventListener("click", () => {
    st.offset += st.size;
    load();
  });
  await load();
}

function recordsTable(c, page, count) {
  if (!count) return h("p", { class: "muted", id: "records-table" }, "\u00a0No records match.");
  const rows = [];
  for (let i = 0; i < count; i += 1) {
    const id = page.ids[i];
    rows.push(
      h(
        "tr",
        { dataset: { id } },
        h("td", { class: "mono" }, h("a", { href: collectionHref(c, "record", id) }, id)),
        h("td", { class: "doc" }, h("div", { class: "clamp" }, page.documents[i] ?? h("span", { class: "muted" }, "—"))),
        h("td", null, metadataChips(page.metadatas[i])),
      ),
    );
  }
  return h(
    "table",
    { class: "records", id: "records-table" },
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "id"), h("th", { scope: "col" }, "document"), h("th", { scope: "col" }, "metadata"))),
    h("tbody", null, rows),
  );
}

// -- a record -----------------------------------------------------------------------------

async function recordDetail(ctx, box, c, id) {
  document.title = `${id} · ${c.name} · Haima`;
  const found = await api.neighbors(c, { id, n_results: 10 });
  if (!ctx.alive()) return;
  const metadata = found.metadata
    ? h(
        "dl",
        { class: "kv" },
        Object.entries(found.metadata).map(([key, value]) => [h("dt", null, key), h("dd", null, JSON.stringify(value))]),
      )
    : h("p", { class: "muted" }, "No metadata.");
  const neighbours = found.neighbors.length
    ? h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "neighbours-table" },
          h(
            "thead",
            null,
            h("tr", null, h("th", { class: "num" }, "#"), h("th", null, "id"), h("th", { class: "num" }, "distance"), h("th", null, "document")),
          ),
          h(
            "tbody",
            null,
            found.neighbors.map((n, i) =>
              h(
                "tr",
                { dataset: { id: n.id } },
                h("td", { class: "num" }, i + 1),
                h("td", { class: "mono" }, h("a", { href: collectionHref(c, "record", n.id) }, n.id)),
                h("td", { class: "num" }, num(n.distance, 4)),
                h("td", { class: "doc" }, h("div", { class: "clamp" }, n.document ?? "—")),
              ),
            ),
          ),
        ),
      )
    : h("p", { class: "muted" }, "No other records.");
  replace(
    box,
    h(
      "div",
      { class: "row" },
      h("a", { href: collectionHref(c, "records") }, "← Records"),
      h("span", { class: "spacer" }),
      writable()
        ? h("button", { type: "button", class: "danger ghost", id: "delete-record", onclick: () => deleteRecord(c, id) }, "Delete record")
        : null,
    ),
    h("h2", { class: "mono", id: "record-id" }, id),
    h(
      "div",
      { class: "grid2" },
      h(
        "section",
        { class: "panel" },
        h("h3", null, "Document"),
        h("p", { class: "document", id: "record-document" }, found.document ?? h("span", { class: "muted" }, "No document.")),
      ),
      h(
        "section",
        { class: "panel" },
        h("h3", null, "Metadata"),
        metadata,
        h("h3", null, "Vector"),
        h(
          "dl",
          { class: "kv", id: "vector-facts" },
          h("dt", null, "dimension"),
          h("dd", null, found.dimension),
          h("dt", null, "norm"),
          h("dd", { id: "vector-norm" }, num(found.norm, 4)),
          h("dt", null, "first values"),
          h("dd", { class: "mono" }, found.head.map((v) => v.toFixed(4)).join(", "), found.dimension > found.head.length ? ", …" : ""),
        ),
      ),
    ),
    h("h2", null, "Nearest neighbours"),
    neighbours,
  );
}

async function deleteRecord(c, id) {
  const confirmed = await confirmDialog({
    title: "Delete this record?",
    message: `Record ${id} is removed from ${c.name}. This cannot be undone.`,
    confirmLabel: "Delete record",
  });
  if (!confirmed) return;
  await api.deleteRecords(c, { ids: [id] });
  showPage(collectionHref(c, "records"));
}
