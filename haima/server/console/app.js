// The console's shell: sign-in, theme, navigation and the overview page.

import { api, auth, onUnauthorized } from "./api.js";
import { collectionPage } from "./collection.js";
import { bytes, duration, h, int, ms, replace } from "./dom.js";
import { evalPage } from "./eval.js";
import {
  collectionHref,
  deleteCollection,
  embeddingLabel,
  indexBadge,
  session,
  setRerender,
  showError,
  sizeTitle,
  writable,
} from "./shared.js";

const main = document.getElementById("main");

// -- navigation -------------------------------------------------------------------------

// One per page shown: pages check `alive()` after each await, so that an answer arriving
// after the user moved on is dropped, and register timers to stop in `onLeave`.
class PageContext {
  constructor() {
    this.left = false;
    this.cleanups = [];
  }
  alive() {
    return !this.left;
  }
  onLeave(fn) {
    this.cleanups.push(fn);
  }
  leave() {
    this.left = true;
    this.cleanups.forEach((fn) => fn());
  }
}

let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  return raw ? raw.split("/").map((p) => decodeURIComponent(p)) : [];
}

async function route() {
  if (current) current.leave();
  const ctx = new PageContext();
  current = ctx;
  const parts = parseHash();
  markSection(parts[0] === "eval" ? "eval" : "overview");
  try {
    if (parts[0] === "eval") await evalPage(ctx, main);
    else if (parts[0] === "c" && parts.length >= 4) {
      const [, tenant, database, name, tab = "records", ...rest] = parts;
      await collectionPage(ctx, main, { tenant, database, name, tab, rest });
    } else await overviewPage(ctx);
  } catch (error) {
    if (ctx.alive()) showError(main, error);
  }
}

function markSection(section) {
  for (const link of document.querySelectorAll("#nav a[data-section]")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// -- sign-in ----------------------------------------------------------------------------

function showSignIn(message) {
  if (current) current.leave();
  current = null;
  document.getElementById("sign-out").hidden = true;
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "current-password",
    required: true,
    spellcheck: "false",
  });
  const problem = h("p", { class: "error", role: "alert", id: "sign-in-error" }, message || "");
  const form = h(
    "form",
    { "aria-labelledby": "sign-in-title" },
    h("label", { for: "api-key" }, "API key"),
    input,
    problem,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    auth.set(input.value);
    try {
      session.info = await api.info();
    } catch (error) {
      auth.clear();
      problem.textContent = error.message;
      input.select();
      return;
    }
    started();
  });
  replace(
    main,
    h(
      "section",
      { class: "signin panel" },
      h("h1", { id: "sign-in-title" }, "Sign in"),
      h(
        "p",
        { class: "muted" },
        "This server asks for an API key (",
        h("code", null, "haima run --api-key"),
        "). It is kept in this tab only and sent in a header, never in a URL.",
      ),
      form,
    ),
  );
  input.focus();
}

onUnauthorized((error) => {
  auth.clear();
  showSignIn(error.message);
});

// -- theme ------------------------------------------------------------------------------

const THEMES = ["auto", "light", "dark"];

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  document.getElementById("theme").textContent = `Theme: ${theme}`;
  window.dispatchEvent(new Event("haima:theme"));
}

function setUpTheme() {
  const saved = localStorage.getItem("haima.theme");
  applyTheme(THEMES.includes(saved) ? saved : "auto");
  document.getElementById("theme").addEventListener("click", () => {
    const next = THEMES[(THEMES.indexOf(document.documentElement.dataset.theme) + 1) % THEMES.length];
    localStorage.setItem("haima.theme", next);
    applyTheme(next);
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () =>
    window.dispatchEvent(new Event("haima:theme")),
  );
}

// -- overview ---------------------------------------------------------------------------

const STATS_REFRESH_MS = 5000;

async function overviewPage(ctx) {
  document.title = "Overview · Haima";
  const serverBox = h("section", { class: "panel", "aria-labelledby": "server-title" });
  const listBox = h("section", { "aria-label": "Collections" });
  const [server, listing] = await Promise.all([api.server(), api.collections()]);
  if (!ctx.alive()) return;
  const first = !performance.getEntriesByName("haima:overview-rendered").length;
  if (first) performance.mark("haima:overview-data");
  session.collections = listing.databases;
  replace(main, h("h1", { id: "server-title" }, "Overview"), serverBox, listBox);
  renderServer(serverBox, server);
  renderCollections(ctx, listBox, listing.databases);
  if (first) performance.mark("haima:overview-rendered");
  const timer = setInterval(async () => {
    try {
      const fresh = await api.server();
      if (ctx.alive()) renderServer(serverBox, fresh);
    } catch {
      // a failed refresh keeps the last figures; a lost key shows the sign-in form
    }
  }, STATS_REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}

function stat(label, value, title) {
  return h("div", { class: "stat", title }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
}

function renderServer(box, s) {
  const span = `over the last ${Math.round(s.window_s)} s (this process; the console's own requests left out)`;
  replace(
    box,
    h(
      "div",
      { class: "stats", id: "server-stats" },
      stat("Version", s.version),
      stat("Uptime", duration(s.uptime_s), `process ${s.pid}`),
      stat("Requests/s", s.requests_per_s.toFixed(2), `${int(s.requests)} requests ${span}`),
      stat("Latency p50", ms(s.latency_ms.p50), `median ${span}`),
      stat("Latency p99", ms(s.latency_ms.p99), `99th percentile ${span}`),
      stat("Collections", int(s.collections)),
      stat("Records", int(s.records)),
    ),
  );
}

function renderCollections(ctx, box, databases) {
  const total = databases.reduce((n, db) => n + db.collections.length, 0);
  if (!total) {
    replace(
      box,
      h("h2", null, "Collections"),
      h(
        "p",
        { class: "panel" },
        "No collections yet. Add some with ",
        h("code", null, "haima ingest docs/ -c docs --url " + location.origin),
        " or any Chroma client.",
      ),
    );
    return;
  }
  const sections = databases
    .filter((db) => db.collections.length)
    .map((db) =>
      h(
        "div",
        { class: "database" },
        h(
          "h2",
          { class: "db-title" },
          h("span", null, db.tenant, " / ", db.database),
          h("span", { class: "muted small" }, `${db.collections.length} collection${db.collections.length === 1 ? "" : "s"}`),
        ),
        h("div", { class: "table-wrap" }, collectionsTable(ctx, db.collections)),
      ),
    );
  replace(box, sections);
}

function collectionsTable(ctx, collections) {
  const head = h(
    "tr",
    null,
    h("th", { scope: "col" }, "Collection"),
    h("th", { scope: "col", class: "num" }, "Records"),
    h("th", { scope: "col", class: "num hide-narrow" }, "Dim"),
    h("th", { scope: "col", class: "hide-narrow" }, "Metric"),
    h("th", { scope: "col" }, "Index"),
    h("th", { scope: "col", class: "hide-narrow" }, "Embedding"),
    h("th", { scope: "col", class: "hide-narrow" }, "Keyword"),
    h("th", { scope: "col", class: "num" }, "Size"),
    writable() ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")) : null,
  );
  const rows = collections.map((c) =>
    h(
      "tr",
      { dataset: { collection: c.name } },
      h("td", null, h("a", { href: collectionHref(c) }, c.name)),
      h("td", { class: "num" }, int(c.count)),
      h("td", { class: "num hide-narrow" }, c.dimension ?? "—"),
      h("td", { class: "hide-narrow" }, c.metric),
      h("td", null, indexBadge(c.index)),
      h("td", { class: "hide-narrow" }, embeddingLabel(c.embedding)),
      h("td", { class: "hide-narrow" }, h("span", { class: c.keyword ? "badge ok" : "badge off" }, c.keyword ? "on" : "off")),
      h("td", { class: "num", title: sizeTitle(c.bytes) }, bytes(c.bytes.total)),
      writable()
        ? h(
            "td",
            null,
            h(
              "button",
              {
                type: "button",
                class: "danger ghost",
                "aria-label": `Delete collection ${c.name}`,
                onclick: () => deleteCollection(c),
              },
              "Delete",
            ),
          )
        : null,
    ),
  );
  return h("table", { class: "collections" }, h("thead", null, head), h("tbody", null, rows));
}

// -- start ------------------------------------------------------------------------------

function started() {
  const info = session.info;
  document.getElementById("read-only").hidden = !info.read_only_console;
  document.body.classList.toggle("read-only", Boolean(info.read_only_console));
  const signOut = document.getElementById("sign-out");
  signOut.hidden = !auth.key;
  route();
}

async function boot() {
  setUpTheme();
  setRerender(route);
  window.addEventListener("hashchange", () => {
    if (session.info) route().then(() => main.focus({ preventScroll: true }));
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    auth.clear();
    session.info = null;
    showSignIn("");
  });
  const needsKey = document.querySelector('meta[name="haima-auth"]').content === "key";
  if (needsKey && !auth.key) {
    showSignIn("");
    return;
  }
  try {
    session.info = await api.info();
  } catch (error) {
    if (error.status !== 401) showError(main, error);
    return;
  }
  started();
}

boot();
