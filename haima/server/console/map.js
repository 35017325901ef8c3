// The embedding map: a seeded sample of the collection's vectors projected to 2-D by the
// server (PCA), drawn on a canvas, coloured by a metadata key; hover shows a record, a
// click opens it, and a query dropped on the map lands among its nearest records.

import { api } from "./api.js";
import { h, int, ms, num, parseJsonField, replace } from "./dom.js";
import { collectionHref } from "./shared.js";

const SAMPLES = [1000, 2000, 5000, 10000, 20000];
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf"];
const OTHER = "#9aa0a6";
const NONE = "#c7ccd1";
// viridis, five stops, for numeric keys
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const MAX_CATEGORIES = PALETTE.length;
// Dot radius by sample size: small samples get larger dots.
const radiusFor = (n) => (n < 500 ? 4.5 : n < 2500 ? 3.4 : 2.6);
const HOVER_PX = 8;
const CELL = 12;

const mapState = new Map();

function stateFor(c) {
  if (!mapState.has(c.id)) {
    mapState.set(c.id, { sample: 5000, colorBy: null, query: "", kind: c.embedding ? "text" : "vector", k: 10 });
  }
  return mapState.get(c.id);
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function rampColour(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const rgb = RAMP[i].map((v, j) => Math.round(v + (RAMP[i + 1][j] - v) * f));
  return `rgb(${rgb.join(",")})`;
}

function metadataKeys(metadatas) {
  const counts = new Map();
  for (const md of metadatas) {
    if (!md) continue;
    for (const key of Object.keys(md)) counts.set(key, (counts.get(key) || 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

function valueKey(value) {
  return Array.isArray(value) ? JSON.stringify(value) : String(value);
}

// Each point's colour and the legend for colouring by `key`.
function colouring(metadatas, key) {
  const n = metadatas.length;
  if (!key) return { colours: new Array(n).fill(cssVar("--accent")), legend: [] };
  const values = metadatas.map((md) => (md && key in md ? md[key] : undefined));
  const present = values.filter((v) => v !== undefined);
  const numeric = present.length > 0 && present.every((v) => typeof v === "number");
  const distinct = new Set(present.map(valueKey));
  if (numeric && distinct.size > MAX_CATEGORIES) {
    const lo = Math.min(...present);
    const hi = Math.max(...present);
    const span = hi - lo || 1;
    return {
      colours: values.map((v) => (v === undefined ? NONE : rampColour((v - lo) / span))),
      legend: [{ ramp: true, lo, hi }],
    };
  }
  const counts = new Map();
  for (const v of present) counts.set(valueKey(v), (counts.get(valueKey(v)) || 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, MAX_CATEGORIES);
  const colourOf = new Map(top.map(([v], i) => [v, PALETTE[i]]));
  const legend = top.map(([v, count]) => ({ label: v, colour: colourOf.get(v), count }));
  const others = present.length - top.reduce((s, [, count]) => s + count, 0);
  if (others) legend.push({ label: "other values", colour: OTHER, count: others });
  if (present.length < n) legend.push({ label: `no ${key}`, colour: NONE, count: n - present.length });
  return {
    colours: values.map((v) => (v === undefined ? NONE : colourOf.get(valueKey(v)) || OTHER)),
    legend,
  };
}

export async function mapTab(ctx, box, c) {
  const st = stateFor(c);
  const sample = h(
    "select",
    { id: "map-sample", "aria-label": "Sample size" },
    SAMPLES.map((n) => h("option", { value: n, selected: n === st.sample }, `${int(n)} points`)),
  );
  const colourBy = h("select", { id: "map-colour", "aria-label": "Colour by" }, h("option", { value: "" }, "one colour"));
  const canvas = h("canvas", { class: "map", id: "map-canvas", role: "img", "aria-label": "Embedding map" });
  const legend = h("div", { class: "legend", id: "map-legend" });
  const info = h("p", { class: "muted", id: "map-info" }, "Loading the sample…");
  const problem = h("p", { class: "error", id: "map-error", role: "alert" });
  const query = h("input", { id: "map-query", type: "text", value: st.query, placeholder: c.embedding ? "A query to drop on the map" : "A vector, e.g. [0.1, 0.2, …]" });
  const kindSelect = h(
    "select",
    { id: "map-query-kind", "aria-label": "Query is" },
    h("option", { value: "text", selected: st.kind === "text" }, "text"),
    h("option", { value: "vector", selected: st.kind === "vector" }, "vector (JSON)"),
  );
  const dropForm = h(
    "form",
    { class: "row", id: "map-drop" },
    h("label", { for: "map-query" }, "Query"),
    query,
    kindSelect,
    h("button", { type: "submit", id: "map-drop-button" }, "Drop on map"),
  );
  const neighbours = h("section", { id: "map-neighbours", "aria-live": "polite" });
  replace(
    box,
    h(
      "div",
      { class: "panel" },
      h("div", { class: "row" }, h("label", { for: "map-sample" }, "Sample"), sample, h("label", { for: "map-colour" }, "Colour by"), colourBy),
      h("div", { class: "row", style: null }, dropForm),
      problem,
    ),
    h("div", { class: "map-wrap" }, canvas),
    legend,
    info,
    neighbours,
  );

  let data = null;
  let dropped = null;
  let layout = null; // screen positions of the drawn points
  let colours = null;

  function bounds() {
    const xs = data.points.map((p) => p[0]);
    const ys = data.points.map((p) => p[1]);
    if (dropped) {
      xs.push(dropped.point[0], ...dropped.neighbors.map((n) => n.point[0]));
      ys.push(dropped.point[1], ...dropped.neighbors.map((n) => n.point[1]));
    }
    if (!xs.length) return { x0: -1, x1: 1, y0: -1, y1: 1 };
    let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const padX = (x1 - x0 || 1) * 0.04;
    const padY = (y1 - y0 || 1) * 0.04;
    return { x0: x0 - padX, x1: x1 + padX, y0: y0 - padY, y1: y1 + padY };
  }

  function draw() {
    if (!data) return;
    const started = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = cssVar("--map-bg");
    g.fillRect(0, 0, width, height);
    const radius = radiusFor(data.points.length);
    const b = bounds();
    const sx = (width - 2 * radius) / (b.x1 - b.x0);
    const sy = (height - 2 * radius) / (b.y1 - b.y0);
    const toScreen = (p) => [radius + (p[0] - b.x0) * sx, height - radius - (p[1] - b.y0) * sy];
    // axes through the sample's mean (the projection's origin)
    g.strokeStyle = cssVar("--map-grid");
    g.lineWidth = 1;
    const [ox, oy] = toScreen([0, 0]);
    g.beginPath();
    g.moveTo(0, oy);
    g.lineTo(width, oy);
    g.moveTo(ox, 0);
    g.lineTo(ox, height);
    g.stroke();
    layout = data.points.map(toScreen);
    const byColour = new Map();
    layout.forEach((p, i) => {
      const colour = colours[i];
      if (!byColour.has(colour)) byColour.set(colour, []);
      byColour.get(colour).push(p);
    });
    g.globalAlpha = 0.85;
    let drawn = 0;
    for (const [colour, points] of byColour) {
      g.fillStyle = colour;
      g.beginPath();
      for (const [x, y] of points) {
        g.moveTo(x + radius, y);
        g.arc(x, y, radius, 0, 2 * Math.PI);
      }
      g.fill();
      drawn += points.length;
    }
    g.globalAlpha = 1;
    if (dropped) drawQuery(g, toScreen, radius);
    canvas.dataset.points = String(drawn);
    buildGrid();
    return performance.now() - started;
  }

  function drawQuery(g, toScreen, radius) {
    const [qx, qy] = toScreen(dropped.point);
    g.strokeStyle = cssVar("--text");
    g.lineWidth = 1;
    g.globalAlpha = 0.5;
    g.beginPath();
    for (const n of dropped.neighbors) {
      const [x, y] = toScreen(n.point);
      g.moveTo(qx, qy);
      g.lineTo(x, y);
    }
    g.stroke();
    g.globalAlpha = 1;
    g.lineWidth = 2;
    for (const n of dropped.neighbors) {
      const [x, y] = toScreen(n.point);
      g.beginPath();
      g.arc(x, y, radius + 3, 0, 2 * Math.PI);
      g.stroke();
    }
    g.fillStyle = cssVar("--danger");
    g.strokeStyle = cssVar("--panel");
    g.beginPath();
    g.moveTo(qx, qy - 9);
    g.lineTo(qx + 9, qy);
    g.lineTo(qx, qy + 9);
    g.lineTo(qx - 9, qy);
    g.closePath();
    g.fill();
    g.stroke();
  }

  // Points by grid cell, for finding the one under the pointer quickly.
  let grid = new Map();
  function buildGrid() {
    grid = new Map();
    layout.forEach(([x, y], i) => {
      const key = `${Math.floor(x / CELL)},${Math.floor(y / CELL)}`;
      if (!grid.has(key)) grid.set(key, []);
      grid.get(key).push(i);
    });
  }

  function pointAt(x, y) {
    let best = -1;
    let bestD = HOVER_PX * HOVER_PX;
    const cx = Math.floor(x / CELL);
    const cy = Math.floor(y / CELL);
    for (let dx = -1; dx <= 1; dx += 1) {
      for (let dy = -1; dy <= 1; dy += 1) {
        for (const i of grid.get(`${cx + dx},${cy + dy}`) || []) {
          const d = (layout[i][0] - x) ** 2 + (layout[i][1] - y) ** 2;
          if (d <= bestD) {
            bestD = d;
            best = i;
          }
        }
      }
    }
    return best;
  }

  function recolour() {
    const result = colouring(data.metadatas, st.colorBy);
    colours = result.colours;
    replace(
      legend,
      result.legend.map((item) =>
        item.ramp
          ? h("span", null, num(item.lo, 2), h("span", { class: "ramp" }), num(item.hi, 2))
          : h("span", { dataset: { value: item.label } }, h("span", { class: "swatch", dataset: { colour: item.colour } }), `${item.label} (${int(item.count)})`),
      ),
    );
    // Swatch colours are set through the CSSOM (the page's CSP allows no inline styles).
    legend.querySelectorAll(".swatch").forEach((el) => (el.style.background = el.dataset.colour));
  }

  const tooltip = document.getElementById("tooltip");
  canvas.addEventListener("mousemove", (event) => {
    if (!layout) return;
    const rect = canvas.getBoundingClientRect();
    const i = pointAt(event.clientX - rect.left, event.clientY - rect.top);
    if (i < 0) {
      tooltip.hidden = true;
      canvas.style.cursor = "crosshair";
      return;
    }
    canvas.style.cursor = "pointer";
    const md = data.metadatas[i];
    replace(
      tooltip,
      h("strong", { class: "mono" }, data.ids[i]),
      st.colorBy && md && st.colorBy in md ? h("div", { class: "muted" }, `${st.colorBy}: ${JSON.stringify(md[st.colorBy])}`) : null,
      h("div", null, data.documents[i] ?? "(no document)"),
    );
    tooltip.hidden = false;
    tooltip.style.left = `${Math.min(event.clientX + 14, window.innerWidth - 370)}px`;
    tooltip.style.top = `${event.clientY + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => (tooltip.hidden = true));
  canvas.addEventListener("click", (event) => {
    if (!layout) return;
    const rect = canvas.getBoundingClientRect();
    const i = pointAt(event.clientX - rect.left, event.clientY - rect.top);
    if (i >= 0) {
      tooltip.hidden = true;
      location.hash = collectionHref(c, "record", data.ids[i]);
    }
  });
  ctx.onLeave(() => (tooltip.hidden = true));

  const redraw = () => draw();
  window.addEventListener("resize", redraw);
  window.addEventListener("haima:theme", redraw);
  ctx.onLeave(() => {
    window.removeEventListener("resize", redraw);
    window.removeEventListener("haima:theme", redraw);
  });

  // For scripts and tests: where a record's point is on the screen (client coordinates).
  window.haimaConsole = window.haimaConsole || {};
  window.haimaConsole.mapPoint = (id) => {
    const i = data ? data.ids.indexOf(id) : -1;
    if (i < 0 || !layout) return null;
    const rect = canvas.getBoundingClientRect();
    return { x: rect.left + layout[i][0], y: rect.top + layout[i][1] };
  };

  let generation = 0; // a late answer to an earlier load is dropped
  async function load() {
    const mine = ++generation;
    problem.textContent = "";
    canvas.dataset.state = "loading";
    for (const name of ["haima:map-request", "haima:map-data", "haima:map-drawn", "haima:map-painted"]) {
      performance.clearMarks(name);
    }
    performance.clearMeasures("haima:map-draw");
    performance.clearMeasures("haima:map-load");
    performance.mark("haima:map-request");
    let fresh;
    try {
      fresh = await api.map(c, { sample: st.sample });
    } catch (error) {
      if (ctx.alive() && mine === generation) problem.textContent = error.message;
      return;
    }
    if (!ctx.alive() || mine !== generation) return;
    performance.mark("haima:map-data");
    data = fresh;
    dropped = null;
    replace(neighbours);
    const keys = metadataKeys(data.metadatas);
    if (st.colorBy === null || (st.colorBy && !keys.includes(st.colorBy))) st.colorBy = keys[0] || "";
    replace(
      colourBy,
      h("option", { value: "", selected: !st.colorBy }, "one colour"),
      keys.map((k) => h("option", { value: k, selected: k === st.colorBy }, k)),
    );
    recolour();
    const drawMs = draw();
    performance.mark("haima:map-drawn");
    performance.measure("haima:map-draw", "haima:map-data", "haima:map-drawn");
    // ... and until the frame with the points is on screen
    requestAnimationFrame(() =>
      setTimeout(() => {
        if (!ctx.alive() || mine !== generation) return;
        performance.mark("haima:map-painted");
        performance.measure("haima:map-load", "haima:map-request", "haima:map-painted");
        canvas.dataset.state = "ready";
      }, 0),
    );
    const [a, b] = data.explained_variance.map((v) => `${(v * 100).toFixed(1)}%`);
    info.textContent =
      `${int(data.ids.length)} of ${int(data.total)} records (a seeded uniform sample), ` +
      `PCA${data.normalised ? " of the directions (cosine)" : ""}: the axes explain ${a} and ${b} of the variance; drawn in ${ms(drawMs)}.`;
  }

  async function drop(event) {
    event.preventDefault();
    st.query = query.value;
    st.kind = kindSelect.value;
    problem.textContent = "";
    if (!data) return;
    const body = { sample: st.sample, n_results: st.k };
    if (st.kind === "vector") {
      const vector = parseJsonField(st.query, "query");
      if (vector instanceof Error || vector === null) {
        problem.textContent = vector ? vector.message : "query: give a vector";
        return;
      }
      body.query_embeddings = [vector];
    } else body.query_texts = [st.query];
    let answer;
    try {
      answer = await api.mapQuery(c, body);
    } catch (error) {
      if (ctx.alive()) problem.textContent = error.message;
      return;
    }
    if (!ctx.alive()) return;
    dropped = answer;
    draw();
    canvas.dataset.query = "shown";
    replace(
      neighbours,
      h("h2", null, `Nearest ${answer.neighbors.length} to the query`),
      h(
        "ol",
        { class: "results", id: "map-neighbour-list" },
        answer.neighbors.map((n) =>
          h(
            "li",
            { dataset: { id: n.id } },
            h("div", { class: "hit-head" }, h("a", { class: "mono", href: collectionHref(c, "record", n.id) }, n.id), h("span", { class: "muted score" }, `distance ${num(n.distance, 4)}`)),
            h("div", { class: "clamp" }, n.document ?? "—"),
          ),
        ),
      ),
    );
  }

  sample.addEventListener("change", () => {
    st.sample = Number(sample.value);
    load();
  });
  colourBy.addEventListener("change", () => {
    st.colorBy = colourBy.value;
    recolour();
    draw();
  });
  dropForm.addEventListener("submit", drop);
  await load();
}
