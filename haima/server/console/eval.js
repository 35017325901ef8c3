// The evaluation view: a result file of `haima eval --json`, read in the browser (it is
// never uploaded), shown as the comparison table, recall@k curves and quality against
// latency.

import { bytes, h, int, num, replace, svg } from "./dom.js";

const COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#17becf"];
let loaded = null; // { name, report }: kept while the console is open

export async function evalPage(ctx, main) {
  document.title = "Evaluation · Haima";
  const input = h("input", { type: "file", id: "eval-file", accept: ".json,application/json" });
  const problem = h("p", { class: "error", id: "eval-error", role: "alert" });
  const out = h("div", { id: "eval-report" });
  const drop = h(
    "div",
    { class: "drop panel" },
    h("p", null, "Open a result file of ", h("code", null, "haima eval … --json run.json"), ", or drop it here. It is read in this browser and sent nowhere."),
    h("label", { for: "eval-file" }, "Result file "),
    input,
    problem,
  );
  replace(main, h("h1", null, "Evaluation"), drop, out);

  async function show(file) {
    problem.textContent = "";
    let report;
    try {
      report = checked(JSON.parse(await file.text()));
    } catch (error) {
      problem.textContent = `${file.name}: ${error.message}`;
      return;
    }
    loaded = { name: file.name, report };
    if (ctx.alive()) render(out, loaded);
  }

  input.addEventListener("change", () => input.files[0] && show(input.files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) show(file);
  });
  if (loaded) render(out, loaded);
}

function checked(report) {
  const ok =
    report &&
    Array.isArray(report.results) &&
    Array.isArray(report.ks) &&
    report.ks.length &&
    typeof report.primary_k === "number" &&
    report.results.every((r) => r && typeof r.name === "string" && typeof r.metrics === "object");
  if (!ok) throw new Error("not a result file of `haima eval --json` (it needs ks, primary_k and results)");
  return report;
}

function columns(report) {
  const k = report.primary_k;
  const minK = Math.min(...report.ks);
  const metric = (name) => (r) => r.metrics[name];
  return [
    { header: `nDCG@${k}`, value: metric(`ndcg@${k}`), higher: true, fmt: (v) => num(v, 3) },
    ...report.ks.map((j) => ({ header: `R@${j}`, value: metric(`recall@${j}`), higher: true, fmt: (v) => num(v, 3) })),
    { header: `MRR@${k}`, value: metric(`mrr@${k}`), higher: true, fmt: (v) => num(v, 3) },
    { header: `MAP@${k}`, value: metric(`map@${k}`), higher: true, fmt: (v) => num(v, 3) },
    { header: `Hit@${minK}`, value: metric(`hit@${minK}`), higher: true, fmt: (v) => num(v, 3) },
    { header: "p50 ms", value: (r) => r.latency_ms && r.latency_ms.p50, higher: false, fmt: (v) => num(v, 2) },
    { header: "p95 ms", value: (r) => r.latency_ms && r.latency_ms.p95, higher: false, fmt: (v) => num(v, 2) },
    { header: "docs/s", value: (r) => r.ingest_docs_per_s, higher: true, fmt: (v) => int(v) },
    { header: "size", value: (r) => r.index_bytes, higher: false, fmt: (v) => bytes(v) },
  ];
}

function finite(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function render(out, { name, report }) {
  const ds = report.dataset || {};
  const cols = columns(report);
  const ok = report.results.filter((r) => !r.error);
  const bests = cols.map((col) => {
    const values = ok.map((r) => finite(col.value(r))).filter((v) => v !== null);
    if (values.length < 2) return null;
    return col.higher ? Math.max(...values) : Math.min(...values);
  });
  const rows = report.results.map((r) =>
    h(
      "tr",
      { dataset: { config: r.name } },
      h("th", { scope: "row", class: r.best && ok.length > 1 ? "best" : null }, r.name, r.error ? h("div", { class: "error small" }, r.error) : null),
      h("td", { class: "hide-narrow" }, r.mode || "vector"),
      cols.map((col, i) => {
        const value = r.error ? null : finite(col.value(r));
        const best = value !== null && bests[i] !== null && value === bests[i];
        return h("td", { class: best ? "num best" : "num", title: best ? "best in its column" : null }, value === null ? "—" : col.fmt(value), best ? " ★" : "");
      }),
      h("td", { class: "num" }, r.p_value === null || r.p_value === undefined ? (r.best ? "best" : "—") : `${num(r.p_value, 3)}${r.significant ? " *" : ""}`),
    ),
  );
  replace(
    out,
    h(
      "p",
      { id: "eval-summary" },
      h("strong", null, name),
      `: ${ds.name || "dataset"} (${ds.split || "?"}), ${int(ds.documents)} documents, ${int(ds.evaluated_queries)} queries evaluated; k = ${report.ks.join(", ")}.`,
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "eval-table" },
        h(
          "thead",
          null,
          h("tr", null, h("th", { scope: "col" }, "configuration"), h("th", { scope: "col", class: "hide-narrow" }, "mode"), cols.map((c) => h("th", { scope: "col", class: "num" }, c.header)), h("th", { scope: "col", class: "num" }, "p")),
        ),
        h("tbody", null, rows),
      ),
    ),
    h(
      "p",
      { class: "muted small" },
      `★ best in its column. p: paired bootstrap on per-query nDCG@${report.primary_k} against the best configuration; * significant at ${report.significance ? report.significance.alpha : 0.05}. Latency: one query at a time, search only.`,
    ),
    h("div", { class: "charts" }, h("section", { class: "panel" }, h("h3", null, "Recall@k"), recallChart(report, ok)), h("section", { class: "panel" }, h("h3", null, `nDCG@${report.primary_k} against p50 latency`), tradeoffChart(report, ok))),
  );
}

const W = 480;
const H = 300;
const PAD = { left: 44, right: 16, top: 12, bottom: 36 };

function legend(results, y0) {
  return results.map((r, i) =>
    svg(
      "g",
      { transform: `translate(${PAD.left + (i % 3) * 140}, ${y0 + Math.floor(i / 3) * 16})` },
      svg("rect", { width: 10, height: 10, y: -9, rx: 2, fill: COLOURS[i % COLOURS.length] }),
      svg("text", { x: 14, class: "label" }, r.name.length > 20 ? r.name.slice(0, 19) + "…" : r.name),
    ),
  );
}

function recallChart(report, results) {
  const ks = report.ks;
  const extra = Math.ceil(results.length / 3) * 16 + 8;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (ks.length === 1 ? 0.5 : i / (ks.length - 1)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - v) * plotH;
  const grid = [0, 0.25, 0.5, 0.75, 1].map((v) => [
    svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
    svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(2)),
  ]);
  const ticks = ks.map((k, i) => svg("text", { x: x(i), y: H - PAD.bottom + 16, "text-anchor": "middle" }, `k=${k}`));
  const lines = results.map((r, i) => {
    const pts = ks.map((k, j) => [x(j), y(finite(r.metrics[`recall@${k}`]) ?? 0)]);
    const colour = COLOURS[i % COLOURS.length];
    return svg(
      "g",
      { class: "series", "data-config": r.name },
      svg("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }),
      pts.map(([px, py]) => svg("circle", { cx: px, cy: py, r: 3.5, fill: colour })),
    );
  });
  return svg(
    "svg",
    { class: "chart", id: "recall-chart", viewBox: `0 0 ${W} ${H + extra}`, role: "img", "aria-label": "Recall at each k, one line per configuration" },
    grid,
    svg("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }),
    ticks,
    lines,
    legend(results, H + 4),
  );
}

function tradeoffChart(report, results) {
  const k = report.primary_k;
  const points = results
    .map((r, i) => ({ r, i, lat: finite(r.latency_ms && r.latency_ms.p50), q: finite(r.metrics[`ndcg@${k}`]) }))
    .filter((p) => p.lat !== null && p.q !== null && p.lat > 0);
  const extra = Math.ceil(results.length / 3) * 16 + 8;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const lats = points.map((p) => p.lat);
  const lo = Math.min(...lats, 1e9);
  const hi = Math.max(...lats, 0);
  const log = hi / lo > 20;
  const f = (v) => (log ? Math.log10(v) : v);
  const [a, b] = lats.length ? [f(lo) - (f(hi) - f(lo) || 1) * 0.1, f(hi) + (f(hi) - f(lo) || 1) * 0.1] : [0, 1];
  const x = (v) => PAD.left + ((f(v) - a) / (b - a)) * plotW;
  const qs = points.map((p) => p.q);
  const qTop = Math.min(1, Math.max(0.1, ...qs) * 1.1);
  const y = (v) => PAD.top + (1 - v / qTop) * plotH;
  const grid = [0, 0.5, 1].map((t) => [
    svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(t * qTop), y2: y(t * qTop) }),
    svg("text", { x: PAD.left - 6, y: y(t * qTop) + 4, "text-anchor": "end" }, (t * qTop).toFixed(2)),
  ]);
  const xTicks = lats.length
    ? [lo, hi].map((v) => svg("text", { x: x(v), y: H - PAD.bottom + 16, "text-anchor": "middle" }, `${num(v, 2)} ms`))
    : [];
  const dots = points.map((p) =>
    svg("circle", { class: "point", "data-config": p.r.name, cx: x(p.lat), cy: y(p.q), r: 6, fill: COLOURS[p.i % COLOURS.length], "fill-opacity": 0.85 }),
  );
  return svg(
    "svg",
    { class: "chart", id: "tradeoff-chart", viewBox: `0 0 ${W} ${H + extra}`, role: "img", "aria-label": "Quality against latency, one point per configuration" },
    grid,
    svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }),
    xTicks,
    svg("text", { x: (PAD.left + W - PAD.right) / 2, y: H - 4, "text-anchor": "middle" }, log ? "p50 latency (log scale)" : "p50 latency"),
    dots,
    legend(results, H + 4),
  );
}
