// The JSON API with the crew's token. The token comes from the small form in the header or
// from a link's fragment (#token=...), which browsers never send to the server, and is kept
// in localStorage on this device only.

const TOKEN_KEY = "bauhof.token";

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage blocked: nothing to keep
  }
}

// #token=... (also #a=b&token=...): keep it, then take it out of the address bar and history.
export function takeTokenFromFragment() {
  const parts = location.hash.replace(/^#/, "").split("&").filter(Boolean);
  const found = parts.find((p) => p.startsWith("token="));
  if (!found) return false;
  setToken(decodeURIComponent(found.slice("token=".length)));
  const rest = parts.filter((p) => !p.startsWith("token=")).join("&");
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return true;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status; // 0: no connection
    this.detail = detail;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Revalidate (If-None-Match, a cheap 304) instead of showing a cached plan after a change.
      cache: "no-cache",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, String(err));
  }
  if (!response.ok) {
    let detail = "";
    try {
      detail = (await response.json()).detail;
    } catch {
      // not JSON
    }
    throw new ApiError(response.status, typeof detail === "string" ? detail : "");
  }
  return response.json();
}
