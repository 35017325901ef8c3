// The search playground: a text or a vector, mode vector / keyword / hybrid, k and
// filters; results with their distance or score, the query's words highlighted, and the
// time they took. "Compare" runs the same query a second way (another mode or another
// collection) side by side.

import { api } from "./api.js";
import { h, highlighted, metadataChips, ms, num, parseJsonField, replace } from "./dom.js";
import { collectionHref, session } from "./shared.js";

const MODES = ["vector", "keyword", "hybrid"];
const searchState = new Map();

function stateFor(c) {
  if (!searchState.has(c.id)) {
    searchState.set(c.id, {
      query: "",
      kind: "text",
      mode: c.keyword ? "hybrid" : "vector",
      k: 10,
      where: "",
      whereDocument: "",
      compare: false,
      modeB: c.keyword ? "keyword" : "vector",
      collectionB: c.id,
    });
  }
  return searchState.get(c.id);
}

function segmented(name, options, selected, disabled = () => false) {
  return h(
    "div",
    { class: "segmented", role: "radiogroup", "aria-label": name },
    options.map(([value, label]) =>
      h(
        "label",
        null,
        h("input", {
          type: "radio",
          name,
          value,
          checked: value === selected,
          disabled: disabled(value),
        }),
        label,
      ),
    ),
  );
}

function checkedValue(form, name) {
  const input = form.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
}

async function allCollections() {
  if (!session.collections) session.collections = (await api.collections()).databases;
  return session.collections.flatMap((db) => db.collections);
}

export async function searchTab(ctx, box, c) {
  const st = stateFor(c);
  const others = await allCollections();
  if (!ctx.alive()) return;
  const noKeyword = (mode) => mode !== "vector" && !c.keyword;
  const query = h("textarea", {
    id: "query",
    rows: 3,
    placeholder: "A question, words, or a vector such as [0.1, 0.2, …]",
    value: st.query,
  });
  const k = h("input", { id: "k", type: "number", min: 1, max: 100, value: st.k });
  const where = h("textarea", { id: "search-where", class: "json", spellcheck: "false", value: st.where, placeholder: '{"lang": "en"}' });
  const whereDocument = h("textarea", {
    id: "search-where-document",
    class: "json",
    spellcheck: "false",
    value: st.whereDocument,
    placeholder: '{"$contains": "index"}',
  });
  const compare = h("input", { id: "compare", type: "checkbox", checked: st.compare });
  const collectionB = h(
    "select",
    { id: "compare-collection", "aria-label": "Collection to compare with" },
    others.map((o) =>
      h("option", { value: o.id, selected: o.id === st.collectionB }, `${o.name} (${o.tenant}/${o.database})`),
    ),
  );
  const compareBox = h(
    "div",
    { class: "row", id: "compare-options", hidden: !st.compare },
    h("span", null, "Right side:"),
    collectionB,
    segmented("mode-b", MODES.map((m) => [m, m]), st.modeB),
  );
  const problem = h("p", { class: "error", id: "search-error", role: "alert" });
  const form = h(
    "form",
    { class: "panel search-form", id: "search-form" },
    h("label", { for: "query" }, "Query"),
    query,
    h(
      "div",
      { class: "row" },
      segmented("kind", [["text", "text"], ["vector", "vector (JSON)"]], st.kind),
      h("span", { class: "muted" }, "mode"),
      segmented("mode", MODES.map((m) => [m, m]), st.mode, noKeyword),
      h("label", { for: "k" }, "k"),
      k,
      h("label", null, compare, " Compare"),
      h("span", { class: "spacer" }),
      h("button", { type: "submit", id: "run-search" }, "Search"),
    ),
    c.keyword ? null : h("p", { class: "muted small" }, "Keyword and hybrid modes need the collection's keyword index (configuration keyword.enabled)."),
    compareBox,
    h(
      "details",
      { open: Boolean(st.where || st.whereDocument) },
      h("summary", null, "Filters"),
      h(
        "div",
        { class: "filters" },
        h("div", { class: "field" }, h("label", { for: "search-where" }, "where"), where),
        h("div", { class: "field" }, h("label", { for: "search-where-document" }, "where_document"), whereDocument),
      ),
    ),
    problem,
  );
  const results = h("div", { class: "results-cols", id: "search-results" });
  replace(box, form, results);

  compare.addEventListener("change", () => (compareBox.hidden = !compare.checked));
  let generation = 0; // a late answer to an earlier search is dropped
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const mine = ++generation;
    Object.assign(st, {
      query: query.value,
      kind: checkedValue(form, "kind"),
      mode: checkedValue(form, "mode"),
      k: Number(k.value) || 10,
      where: where.value,
      whereDocument: whereDocument.value,
      compare: compare.checked,
      modeB: checkedValue(form, "mode-b"),
      collectionB: collectionB.value,
    });
    problem.textContent = "";
    const body = requestBody(st);
    if (body instanceof Error) {
      problem.textContent = body.message;
      return;
    }
    const sides = [{ collection: c, mode: st.mode }];
    if (st.compare) {
      sides.push({ collection: others.find((o) => o.id === st.collectionB) || c, mode: st.modeB });
    }
    results.classList.toggle("compare", sides.length > 1);
    results.setAttribute("aria-busy", "true");
    replace(results);
    const terms = st.kind === "text" ? api.terms(st.query).then((t) => t.terms, () => []) : Promise.resolve([]);
    const answers = await Promise.all(sides.map((side) => timedQuery(side, body)));
    const words = await terms;
    if (!ctx.alive() || mine !== generation) return;
    results.removeAttribute("aria-busy");
    const idSets = answers.map((a) => (a.result ? a.result.ids[0] : []));
    replace(
      results,
      answers.map((answer, i) => resultColumn(answer, words, i, sides.length > 1 ? idSets[1 - i] : null)),
    );
  });
}

function requestBody(st) {
  const body = { n_results: st.k, include: ["documents", "metadatas", "distances"] };
  const where = parseJsonField(st.where, "where");
  const whereDocument = parseJsonField(st.whereDocument, "where_document");
  if (where instanceof Error) return where;
  if (whereDocument instanceof Error) return whereDocument;
  if (where !== null) body.where = where;
  if (whereDocument !== null) body.where_document = whereDocument;
  if (st.kind === "vector") {
    const vector = parseJsonField(st.query, "query");
    if (vector instanceof Error) return vector;
    body.query_embeddings = [vector];
  } else {
    body.query_texts = [st.query];
  }
  return body;
}

async function timedQuery(side, body) {
  const started = performance.now();
  try {
    const result = await api.query(side.collection, { ...body, mode: side.mode });
    return { ...side, result, ms: performance.now() - started };
  } catch (error) {
    return { ...side, error, ms: performance.now() - started };
  }
}

function scoreLabel(mode, distance) {
  if (mode === "keyword") return `BM25 ${num(-distance, 3)}`;
  if (mode === "hybrid") return `fused distance ${num(distance, 4)}`;
  return `distance ${num(distance, 4)}`;
}

function resultColumn(answer, words, index, otherIds) {
  const c = answer.collection;
  const title = h(
    "div",
    { class: "hit-head" },
    h("strong", null, c.name),
    h("span", { class: "badge" }, answer.mode),
    answer.result ? h("span", { class: "muted" }, `${answer.result.ids[0].length} results`) : null,
    h("span", { class: "muted took" }, `took ${ms(answer.ms)}`),
  );
  if (answer.error) {
    return h("section", { class: "result-column", dataset: { side: index } }, title, h("p", { class: "error", role: "alert" }, answer.error.message));
  }
  const r = answer.result;
  const ids = r.ids[0];
  const items = ids.map((id, i) => {
    const elsewhere = otherIds ? otherIds.indexOf(id) : -1;
    return h(
      "li",
      { class: elsewhere >= 0 ? "shared" : null, dataset: { id } },
      h(
        "div",
        { class: "hit-head" },
        h("span", { class: "rank" }, i + 1),
        h("a", { class: "mono", href: collectionHref(c, "record", id) }, id),
        h("span", { class: "score muted" }, scoreLabel(answer.mode, r.distances[0][i])),
        elsewhere >= 0 ? h("span", { class: "badge ok", title: "found by both sides" }, `#${elsewhere + 1} on the other side`) : null,
      ),
      h("div", { class: "clamp doc-text" }, highlighted(r.documents[0][i], words)),
      metadataChips(r.metadatas[0][i]),
    );
  });
  return h(
    "section",
    { class: "result-column", dataset: { side: index }, "aria-label": `${c.name} ${answer.mode} results` },
    title,
    ids.length ? h("ol", { class: "results" }, items) : h("p", { class: "muted" }, "No results."),
  );
}
