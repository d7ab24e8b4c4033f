// Übersicht: open alerts, the weather now, trees to water and the bins with their forecast
// "voll am", for all municipalities or one (/uebersicht?gemeinde=Bad%20Orb).

import { api } from "./api.js";
import { $, clear, h } from "./dom.js";
import { hhmm, num, onLangChange, pct, t, whenLabel } from "./i18n.js";
import { config, initShell } from "./shell.js";

const POLL_MS = 60000;
const DRY_SOON_H = 48;

const shell = initShell();
const state = {
  town: new URLSearchParams(location.search).get("gemeinde") || "",
  towns: [],
  alerts: null, weather: null, plants: null, bins: null, // data or an Error
  open: new Map(), // section key -> open, as the crew left it
  updated: null,
  acking: new Set(), // alert ids being acknowledged
  ackErrors: new Map(), // alert id -> message key
};

const el = {
  town: $("#f-town"),
  message: $("#overview-message"),
  updated: $("#updated"),
  alerts: $("#alerts-body"),
  weather: $("#weather-body"),
  trees: $("#trees-body"),
  bins: $("#bins-body"),
};

function townQuery(prefix = "?") {
  return state.town ? `${prefix}municipality=${encodeURIComponent(state.town)}` : "";
}

async function settle(promise) {
  try {
    return await promise;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

// The alerts endpoint may not be there (an older service): 404 means no alerts to show.
async function openAlerts() {
  try {
    return await api(`/api/v1/alerts?status=active${townQuery("&")}`);
  } catch (err) {
    if (err.status === 404) return [];
    throw err;
  }
}

async function load() {
  const [towns, alerts, weather, plants, bins] = await Promise.all([
    settle(api("/api/v1/municipalities")),
    settle(openAlerts()),
    settle(api(`/api/v1/weather/now${townQuery()}`)),
    settle(api(`/api/v1/plants/forecast${townQuery()}`)),
    settle(api(`/api/v1/bins/forecast${townQuery()}`)),
  ]);
  if (!(towns instanceof Error)) state.towns = towns;
  Object.assign(state, { alerts, weather, plants, bins, updated: new Date() });
  const unauthorised = [towns, alerts, weather, plants, bins].some((r) => r instanceof Error && r.status === 401);
  if (unauthorised) shell.askForToken("token_needed_read");
  render();
}

function render() {
  renderTowns();
  const failed = [state.alerts, state.weather, state.plants, state.bins].filter((r) => r instanceof Error);
  el.message.hidden = failed.length === 0;
  if (failed.length) {
    const err = failed[0];
    el.message.className = "message message-error";
    el.message.textContent = t(err.status === 401 ? "error_token_read" : err.status === 0 ? "error_offline" : "error_load_overview",
      { detail: err.detail || err.status || "" });
  }
  if (state.updated) {
    el.updated.textContent = t("updated_at", { time: hhmm(state.updated.toISOString()) });
  }
  renderAlerts();
  renderWeather();
  renderTrees();
  renderBins();
}

function renderTowns() {
  const keep = el.town.options[0];
  clear(el.town).append(keep);
  const names = state.towns.map((m) => m.name);
  if (state.town && !names.includes(state.town)) names.push(state.town);
  for (const name of names) {
    el.town.append(h("option", { value: name, selected: name === state.town }, name));
  }
  el.town.value = state.town;
}

function failedText(result) {
  return h("p", { class: "panel-error" }, t(result.status === 0 ? "error_offline" : "panel_failed"));
}

function empty(key) {
  return h("p", { class: "empty" }, t(key));
}

// Each cell also carries its column's name (data-label): phones show the rows as cards.
function table(captionKey, headers, rows) {
  for (const row of rows) {
    [...row.children].forEach((cell, i) => {
      if (headers[i]) cell.dataset.label = t(headers[i][0]);
    });
  }
  return h("div", { class: "table-wrap" },
    h("table", { class: "data" },
      h("caption", { class: "visually-hidden" }, t(captionKey)),
      h("thead", {}, h("tr", {}, headers.map(([key, cls]) => h("th", { scope: "col", class: cls || null }, t(key))))),
      h("tbody", {}, rows)));
}

function place(name, town) {
  return h("td", { class: "place" }, h("strong", {}, name), town ? h("span", { class: "place-town" }, town) : null);
}

const SEVERITY = { critical: "sev_critical", warning: "sev_warning", info: "sev_info" };

function renderAlerts() {
  const body = clear(el.alerts);
  const alerts = state.alerts;
  if (alerts === null) return;
  if (alerts instanceof Error) return body.append(failedText(alerts));
  if (alerts.length === 0) return body.append(empty("no_alerts"));
  const order = { critical: 0, warning: 1, info: 2 };
  const sorted = [...alerts].sort((a, b) => (order[a.severity] ?? 3) - (order[b.severity] ?? 3)
    || String(b.opened_at).localeCompare(String(a.opened_at)));
  body.append(h("p", { class: "panel-count" }, t(alerts.length === 1 ? "alerts_count_one" : "alerts_count", { n: alerts.length })));
  // One section per town, saying what is in it; open where a look costs little or matters:
  // few alerts, a critical one, or the one town chosen.
  const few = alerts.length <= 8 || Boolean(state.town);
  for (const [town, items] of byTown(sorted)) {
    const critical = items.filter((a) => a.severity === "critical").length;
    const kinds = new Map();
    for (const a of items) kinds.set(alertTitle(a), (kinds.get(alertTitle(a)) || 0) + 1);
    const what = [...kinds].sort((x, y) => y[1] - x[1]).slice(0, 2)
      .map(([title, n]) => (items.length > 1 ? `${n}× ${title}` : title)).join(", ");
    body.append(group(`alerts-${town}`, few || critical > 0 || items.length <= 3,
      [h("span", { class: "group-name" }, town || t("no_town")),
        h("span", { class: `group-facts${critical ? " has-full" : ""}` }, what)],
      h("ul", { class: "alerts" }, items.map(alertItem))));
  }
}

function alertTitle(a) {
  return (document.documentElement.lang === "en" ? a.title_en : a.title_de) || a.title_de || a.title_en || a.rule_id;
}

function alertItem(a) {
  const title = alertTitle(a);
  const where = a.device_name || a.device_id; // the town is the section's
  const busy = state.acking.has(a.id);
  const error = state.ackErrors.get(a.id);
  return h("li", { class: `alert sev-${a.severity}`, "data-alert": a.id, "data-status": a.status },
    h("span", { class: `badge badge-sev-${a.severity}` }, t(SEVERITY[a.severity] || "sev_info")),
    h("span", { class: "alert-text" },
      h("strong", {}, title),
      h("span", { class: "alert-where" }, where),
      a.opened_at ? h("span", { class: "alert-since" }, t("since", { when: whenLabel(a.opened_at, config.today) })) : null,
      a.status === "acknowledged"
        ? h("span", { class: "alert-acked" }, t("acked", { by: t(a.acknowledged_by === "admin" ? "by_admin" : "by_crew") }))
        : null,
      error ? h("span", { class: "row-error", role: "alert" }, t(error)) : null),
    a.status === "open"
      ? h("button", {
        type: "button",
        class: "button secondary small alert-ack",
        disabled: busy,
        "aria-label": t("ack_label", { word: t("ack"), title, where: [where, a.municipality].filter(Boolean).join(" · ") }),
        onclick: () => acknowledge(a),
      }, busy ? t("saving") : t("ack"))
      : null);
}

// Items by municipality, the towns in the order of their first item (the most urgent first).
function byTown(items) {
  const groups = new Map();
  for (const item of items) {
    const town = item.municipality || "";
    if (!groups.has(town)) groups.set(town, []);
    groups.get(town).push(item);
  }
  return groups;
}

// A town's section: a <details>, so that a long list is one tap away, not 10,000 px of page.
// Whether it is open is kept across the page's refreshes.
function group(key, openByDefault, summary, content) {
  const remembered = state.open.get(key);
  const details = h("details", { class: "group", "data-group": key }, h("summary", {}, summary), content);
  details.open = remembered === undefined ? openByDefault : remembered;
  details.addEventListener("toggle", () => state.open.set(key, details.open));
  return details;
}

// A crew token (or an admin's) marks the alert seen: reminders stop, it closes when clear.
async function acknowledge(alert) {
  state.acking.add(alert.id);
  state.ackErrors.delete(alert.id);
  renderAlerts();
  try {
    const updated = await api(`/api/v1/alerts/${encodeURIComponent(alert.id)}/acknowledge`, { method: "POST" });
    state.alerts = state.alerts.map((a) => (a.id === alert.id ? { ...a, ...updated } : a));
  } catch (err) {
    const key = err.status === 0 ? "error_save_offline" : err.status === 401 ? "error_token_crew"
      : err.status === 403 ? "error_forbidden_ack" : err.status === 409 ? "error_ack_closed" : "error_save";
    state.ackErrors.set(alert.id, key);
    if (err.status === 401) shell.askForToken("token_needed_crew");
  } finally {
    state.acking.delete(alert.id);
  }
  renderAlerts();
}

function kmh(ms) {
  return ms === null || ms === undefined ? "–" : num(ms * 3.6, 0);
}

function renderWeather() {
  const body = clear(el.weather);
  const stations = state.weather;
  if (stations === null) return;
  if (stations instanceof Error) return body.append(failedText(stations));
  if (stations.length === 0) return body.append(empty("no_weather"));
  body.append(table("weather_title", [["w_station"], ["w_temp", "num"], ["w_humidity", "num"], ["w_wind", "num"], ["w_rain", "num"]],
    stations.map((w) => h("tr", {},
      h("td", { class: "place" }, h("strong", {}, w.name),
        w.time ? h("span", { class: "place-town" }, t("as_of", { time: hhmm(w.time) })) : null),
      h("td", { class: "num" }, w.temperature_c === null ? "–" : `${num(w.temperature_c)} °C`),
      h("td", { class: "num" }, pct(w.relative_humidity_pct)),
      h("td", { class: "num" }, w.wind_speed_ms === null ? "–" : `${kmh(w.wind_speed_ms)} km/h`,
        w.wind_gust_ms === null ? null : h("span", { class: "sub" }, t("gusts", { v: kmh(w.wind_gust_ms) }))),
      h("td", { class: "num" }, w.rain_24h_mm === null ? "–" : `${num(w.rain_24h_mm)} mm`)))));
}

function hoursUntil(iso) {
  return (Date.parse(iso) - Date.now()) / 3600000;
}

function renderTrees() {
  const body = clear(el.trees);
  const plants = state.plants;
  if (plants === null) return;
  if (plants instanceof Error) return body.append(failedText(plants));
  const dry = plants.filter((p) => p.needs_water);
  const soon = plants.filter((p) => !p.needs_water && p.dry_at && hoursUntil(p.dry_at) <= DRY_SOON_H);
  body.append(h("p", { class: "panel-count" }, t("trees_count", { n: dry.length, total: plants.length })));
  if (dry.length + soon.length === 0) return body.append(empty(plants.length ? "no_trees" : "no_probes"));
  body.append(table("trees_title", [["col_place"], ["col_moisture", "num"], ["t_status"], ["w_rain", "num"]],
    [...dry, ...soon].map((p) => h("tr", { class: p.needs_water ? "needs-water" : null },
      place(p.name, p.municipality),
      h("td", { class: "num" }, h("strong", {}, pct(p.moisture_pct)), h("span", { class: "sub" }, t("threshold", { v: pct(p.dry_pct) }))),
      h("td", {}, p.needs_water && p.rain_skips
        ? h("span", { class: "badge badge-may" }, t("t_rained"))
        : p.needs_water
        ? h("span", { class: "badge badge-must" }, t("t_water_now"))
        : h("span", { class: "badge badge-may" }, t("t_dry_at", { when: whenLabel(p.dry_at, config.today) }))),
      h("td", { class: "num" }, `${num(p.rain_24h_mm)} mm`)))));
}

// Above 100 % a sensor sees litter above the rim (or the lid is open): no number means more.
function overfull(b) {
  return b.level_pct !== null && b.level_pct > 100;
}

function isFull(b) {
  return b.level_pct !== null && b.full_pct !== null && b.level_pct >= b.full_pct;
}

function binWhen(b) {
  if (overfull(b)) return h("span", { class: "badge badge-must" }, t("overfull"));
  if (isFull(b)) return h("span", { class: "badge badge-must" }, t("full_now"));
  if (!b.full_at) return h("span", { class: "muted" }, t("full_unknown"));
  return h("span", {}, whenLabel(b.full_at, config.today));
}

function binRow(b) {
  const level = b.level_pct ?? 0;
  const tone = level >= (b.full_pct ?? 90) ? "high" : level >= 70 ? "mid" : "low";
  return h("tr", { class: overfull(b) ? "overfull" : null },
    place(b.name, null),
    h("td", { class: "level-cell" },
      h("span", { class: "level" },
        h("span", { class: `bar bar-${tone}`, "aria-hidden": "true" },
          h("span", { class: "bar-fill", style: { width: `${Math.max(0, Math.min(100, level))}%` } })),
        // capped: "übervoll" is said once, as the bin's state in the next column
        h("strong", { class: "level-now" }, pct(overfull(b) ? 100 : b.level_pct)))),
    h("td", {}, binWhen(b)));
}

function renderBins() {
  const body = clear(el.bins);
  const bins = state.bins;
  if (bins === null) return;
  if (bins instanceof Error) return body.append(failedText(bins));
  if (bins.length === 0) return body.append(empty("no_bins"));
  const full = bins.filter(isFull).length;
  body.append(h("p", { class: "panel-count" }, t("bins_count", { n: bins.length, full })));
  // The answer comes soonest full first; each town keeps that order.
  for (const [town, items] of byTown(bins)) {
    const fullHere = items.filter(isFull).length;
    const next = items.find((b) => !isFull(b) && b.full_at);
    const facts = [t(items.length === 1 ? "bins_group_one" : "bins_group", { n: items.length, full: fullHere })];
    if (next) facts.push(t("bins_next_full", { when: whenLabel(next.full_at, config.today) }));
    body.append(group(`bins-${town}`, Boolean(state.town),
      [h("span", { class: "group-name" }, town || t("no_town")),
        h("span", { class: `group-facts${fullHere ? " has-full" : ""}` }, facts.join(" · "))],
      table("bins_title", [["col_place"], ["col_fill"], ["b_full_at"]], items.map(binRow))));
  }
}

el.town.addEventListener("change", () => {
  state.town = el.town.value;
  const q = state.town ? `?gemeinde=${encodeURIComponent(state.town)}` : "";
  history.replaceState(null, "", `${location.pathname}${q}`);
  load();
});
$("#overview-controls").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
onLangChange(() => render());
shell.onTokenChange(() => load());
setInterval(() => {
  if (document.visibilityState === "visible") load();
}, POLL_MS);
load();

// On paper every section is open: a printed overview with closed towns would hide the bins.
let closedForPrint = [];
window.addEventListener("beforeprint", () => {
  closedForPrint = [...document.querySelectorAll("details.group:not([open])")];
  closedForPrint.forEach((d) => { d.open = true; });
});
window.addEventListener("afterprint", () => {
  closedForPrint.forEach((d) => { d.open = false; });
  closedForPrint = [];
});
