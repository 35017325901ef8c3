// The console's only way to the server: Haima's public HTTP API (Chroma's API v2 and
// /api/v2/haima), with the key the user signed in with in a header, never in a URL.

const KEY_STORAGE = "haima.apiKey";
export const CHROMA = "/api/v2";
export const HAIMA = "/api/v2/haima";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.kind = (body && (body.haima_error || body.error)) || null;
  }
}

// The key lives in this tab's sessionStorage: gone when the tab closes, never in a URL.
export const auth = {
  get key() {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  set(key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  clear() {
    sessionStorage.removeItem(KEY_STORAGE);
  },
};

const listeners = { unauthorized: [] };

export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = auth.key;
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) listeners.unauthorized.forEach((fn) => fn(error));
    throw error;
  }
  return data;
}

const seg = encodeURIComponent;

function chromaDb(tenant, database) {
  return `${CHROMA}/tenants/${seg(tenant)}/databases/${seg(database)}`;
}

function chromaCollection(c) {
  return `${chromaDb(c.tenant, c.database)}/collections/${seg(c.id)}`;
}

function haimaCollection(c) {
  return `${HAIMA}/tenants/${seg(c.tenant)}/databases/${seg(c.database)}/collections/${seg(c.id)}`;
}

export const api = {
  info: () => call("GET", `${HAIMA}/info`),
  server: () => call("GET", `${HAIMA}/server`),
  collections: () => call("GET", `${HAIMA}/collections`),
  collectionByName: (tenant, database, name) =>
    call("GET", `${chromaDb(tenant, database)}/collections/${seg(name)}`),
  stats: (c) => call("GET", `${haimaCollection(c)}/stats`),
  count: (c) => call("GET", `${chromaCollection(c)}/count`),
  get: (c, body) => call("POST", `${chromaCollection(c)}/get`, body),
  query: (c, body) => call("POST", `${chromaCollection(c)}/query`, body),
  deleteRecords: (c, body) => call("POST", `${chromaCollection(c)}/delete`, body),
  deleteCollection: (c) => call("DELETE", `${chromaDb(c.tenant, c.database)}/collections/${seg(c.name)}`),
  map: (c, body) => call("POST", `${haimaCollection(c)}/map`, body),
  mapQuery: (c, body) => call("POST", `${haimaCollection(c)}/map/query`, body),
  neighbors: (c, body) => call("POST", `${haimaCollection(c)}/neighbors`, body),
  terms: (text) => call("POST", `${HAIMA}/terms`, { text }),
};
