// Tagesroute: one vehicle's round of the day, on a phone in the cab or on paper.
//
// /tagesroute?datum=YYYY-MM-DD&fahrzeug=fzg-1&art=collection|watering
// /tagesroute/druck?...  the same in the print layout

import { api, ApiError } from "./api.js";
import { $, clear, h } from "./dom.js";
import { hhmm, hoursMinutes, longDate, num, onLangChange, pct, t, whenLabel } from "./i18n.js";
import { RouteMap } from "./map.js";
import { config, initShell } from "./shell.js";

const KINDS = ["collection", "watering"];
const POLL_MS = 60000;
const isPrint = config.page === "print";
const shell = initShell();

const state = {
  date: config.today,
  kind: "collection",
  vehicle: null,
  data: null, // the answer of GET /api/v1/routes
  error: null,
  busy: new Set(), // "plan/seq" being saved
  rowErrors: new Map(), // "plan/seq" -> message key
  saves: 0, // stops marked so far: a load that began before a save reads the route as it was
  dateGiven: false, // the address named a day; otherwise the next planned day is shown
};

const el = {
  date: $("#f-date"),
  kind: $("#f-kind"),
  tabs: $("#vehicle-tabs"),
  message: $("#route-message"),
  summaryBox: $("#summary-box"),
  summary: $("#summary"),
  daySentence: $("#day-sentence"),
  warning: $("#route-warning"),
  mapBox: $("#map-box"),
  stopsBox: $("#stops-box"),
  body: $("#stops-body"),
  levelHead: $("#th-level"),
  printLink: $("#print-link"),
  back: $("#back-to-route"),
  printHead: { date: $("#ph-date"), vehicle: $("#ph-vehicle"), facts: $("#ph-facts") },
};

const routeMap = new RouteMap({
  frame: $("#map-frame"),
  tilesEl: $("#map-tiles"),
  sketchEl: $("#map-sketch"),
  printEl: $("#print-sketch"),
  legendEl: $("#map-legend"),
  noteEl: $("#map-note"),
  toggle: $("#map-toggle"),
  tiles: isPrint ? null : config.tiles, // paper gets the sketch, never tiles
});

// --- the address: datum, art, fahrzeug ----------------------------------------------------

function readAddress() {
  const q = new URLSearchParams(location.search);
  const day = q.get("datum");
  state.dateGiven = Boolean(day && /^\d{4}-\d{2}-\d{2}$/.test(day));
  state.date = state.dateGiven ? day : config.today;
  state.vehicle = q.get("fahrzeug") || null;
  const kind = q.get("art");
  if (KINDS.includes(kind)) state.kind = kind;
  else if (state.vehicle && config.fleet.watering.some((v) => v.id === state.vehicle)
           && !config.fleet.collection.some((v) => v.id === state.vehicle)) state.kind = "watering";
  else state.kind = "collection";
}

function query() {
  const q = new URLSearchParams();
  q.set("datum", state.date);
  q.set("art", state.kind);
  if (state.vehicle) q.set("fahrzeug", state.vehicle);
  return q.toString();
}

function writeAddress(push) {
  const url = `${location.pathname}?${query()}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
  el.printLink.href = `/tagesroute/druck?${query()}`;
  el.back.href = `/tagesroute?${query()}`;
}

// --- loading ------------------------------------------------------------------------------

async function load({ quiet = false } = {}) {
  if (!quiet) showMessage("loading");
  const requested = `${state.date}/${state.kind}`;
  const saves = state.saves;
  try {
    const data = await api(`/api/v1/routes?date=${encodeURIComponent(state.date)}&kind=${state.kind}`);
    if (requested !== `${state.date}/${state.kind}`) return; // the crew moved on meanwhile
    // A stop was marked while this was on its way (say, right after the access code was
    // entered): the answer predates it and would take the tick back. Ask again.
    if (saves !== state.saves || state.busy.size > 0) {
      if (state.busy.size === 0) load({ quiet: true });
      return;
    }
    // No day asked for and nothing to drive today (a Sunday, say): the next planned day.
    if (!state.dateGiven && data.next_day && !data.plans.some((p) => p.stops.length > 0)) {
      state.date = data.next_day;
      state.dateGiven = true;
      writeAddress(false);
      return load({ quiet });
    }
    state.data = data;
    state.error = null;
  } catch (err) {
    if (quiet && err.status === 0) return; // a dead spot on the round: keep what is shown
    state.error = err;
    if (err.status === 401) shell.askForToken("token_needed_read");
  }
  render();
}

function plans() {
  return state.data ? state.data.plans : [];
}

function currentPlan() {
  const all = withStops();
  return all.find((p) => p.vehicle_id === state.vehicle)
    || all.find((p) => p.stops.length > 0)
    || all[0]
    || null;
}

// --- rendering ----------------------------------------------------------------------------

function showMessage(key, vars, kind = "info") {
  el.message.hidden = !key;
  el.message.className = `message message-${kind}`;
  el.message.textContent = key ? t(key, vars) : "";
}

function render() {
  el.date.value = state.date;
  el.kind.value = state.kind;
  el.levelHead.textContent = t(state.kind === "watering" ? "col_moisture" : "col_fill");
  if (state.error) {
    const key = state.error.status === 401 ? "error_token_read"
      : state.error.status === 0 ? "error_offline" : "error_load";
    showMessage(key, { detail: state.error.detail || state.error.status }, "error");
    if (!state.data) return hideAll();
  }
  const plan = currentPlan();
  renderTabs(plan);
  if (!plan) {
    hideAll();
    if (state.data) showNoPlan();
    return;
  }
  if (!state.error) {
    if (plan.stops.length === 0) showMessage("no_stops", { vehicle: plan.vehicle_name });
    else showMessage(null);
  }
  renderSummary(plan);
  renderPrintHead(plan);
  el.mapBox.hidden = false;
  routeMap.show({
    depot: config.depot,
    stops: plan.stops,
    title: t("sketch_title", { n: plan.stops.length, vehicle: plan.vehicle_name }),
  });
  el.stopsBox.hidden = plan.stops.length === 0;
  renderStops(plan);
}

// Never a bare "no plan": where the next plan is, or when it will be made. Printed too, so
// that printing such a day gives a sheet that says so rather than a blank one.
function showNoPlan() {
  const data = state.data;
  showMessage("no_plan", { date: longDate(state.date), kind: t(`kind_${state.kind}`) });
  el.message.classList.add("keep-in-print");
  if (data.next_day) {
    const q = new URLSearchParams({ datum: data.next_day, art: state.kind });
    el.message.append(" ", h("a", {
      href: `${location.pathname}?${q}`,
      id: "next-plan-link",
      onclick: (event) => {
        event.preventDefault();
        state.date = data.next_day;
        state.vehicle = null;
        writeAddress(true);
        load();
      },
    }, t("next_plan_link", { date: longDate(data.next_day) })));
  } else if (data.next_planning_at) {
    el.message.append(" ", t("next_planning", {
      date: longDate(data.next_planning_at.slice(0, 10)), time: hhmm(data.next_planning_at),
    }));
  }
}

function hideAll() {
  clear(el.tabs);
  el.summaryBox.hidden = true;
  el.mapBox.hidden = true;
  el.stopsBox.hidden = true;
}

// A vehicle without stops that day gets no tab: there is nothing to drive.
function withStops() {
  const all = plans();
  const busy = all.filter((p) => p.stops.length > 0);
  return busy.length ? busy : all;
}

function renderTabs(current) {
  clear(el.tabs);
  for (const plan of plans().filter((p) => p.stops.length > 0)) {
    const done = plan.counts.done;
    const total = plan.stops.length;
    const q = new URLSearchParams({ datum: state.date, art: state.kind, fahrzeug: plan.vehicle_id });
    el.tabs.append(h("a", {
      class: "tab",
      href: `${location.pathname}?${q}`,
      "aria-current": plan === current ? "page" : null,
      "data-vehicle": plan.vehicle_id,
      onclick: (event) => {
        event.preventDefault();
        state.vehicle = plan.vehicle_id;
        writeAddress(true);
        render();
      },
    }, h("span", { class: "tab-name" }, plan.vehicle_name),
    h("span", { class: "tab-count" }, t("tab_count", { done, total }))));
  }
}

function fact(key, value, extra) {
  return [h("div", { class: "fact" }, h("dt", {}, t(key)), h("dd", {}, value, extra || null))];
}

function renderSummary(plan) {
  el.summaryBox.hidden = false;
  clear(el.summary);
  const endText = plan.start_at && plan.duration_min
    ? addMinutesLocal(plan.start_at, plan.duration_min) : "–";
  const allKm = plans().reduce((sum, p) => sum + p.distance_km, 0);
  const must = plan.stops.filter((s) => s.reason === "must").length;
  el.summary.append(
    ...fact("sum_distance", `${num(plan.distance_km)} km`),
    ...fact("sum_duration", hoursMinutes(plan.duration_min),
      h("span", { class: "sub" }, ` ${t("sum_time_span", { start: hhmm(plan.start_at), end: endText })}`)),
    ...fact("sum_stops", t("sum_stops_value", { done: plan.counts.done, total: plan.stops.length }),
      h("span", { class: "sub" }, ` ${t("sum_must_may", { must, may: plan.stops.length - must })}`)),
    ...(plan.trips > 1 ? fact("sum_trips", String(plan.trips)) : []),
    ...(plan.baseline_distance_km !== null && plan.baseline_distance_km !== undefined
      ? fact("sum_baseline", `${num(plan.baseline_distance_km)} km`,
        h("span", { class: "sub" }, ` ${t("sum_baseline_note", { km: num(allKm) })}`))
      : []),
  );
  renderDaySentence(plan);
  const warnings = [];
  if (!plan.feasible) warnings.push(t("warn_infeasible"));
  if (plan.unserved_must.length) warnings.push(t("warn_unserved", { n: plan.unserved_must.length }));
  el.warning.hidden = warnings.length === 0;
  el.warning.textContent = warnings.join(" ");
}

// The day against the fixed round, in a sentence; when the plan drives more, what for.
function renderDaySentence(plan) {
  const base = plan.baseline_distance_km;
  const day = plans();
  el.daySentence.hidden = base === null || base === undefined || state.kind !== "collection";
  if (el.daySentence.hidden) return;
  const km = day.reduce((sum, p) => sum + p.distance_km, 0);
  const bins = day.reduce((sum, p) => sum + p.stops.length, 0);
  const must = day.reduce((sum, p) => sum + p.stops.filter((s) => s.reason === "must").length, 0);
  const vars = { km: num(km), bins, base: num(base), baseBins: plan.baseline_stops ?? "–",
    diff: num(Math.abs(km - base)), must };
  el.daySentence.textContent = t(km <= base ? "day_less" : "day_more", vars);
}

// HH:MM of start + minutes, in the Bauhof's zone.
function addMinutesLocal(iso, minutes) {
  return hhmm(new Date(Date.parse(iso) + Math.round(minutes) * 60000).toISOString());
}

function renderPrintHead(plan) {
  el.printHead.date.textContent = longDate(state.date);
  el.printHead.vehicle.textContent = `${plan.vehicle_name} (${plan.vehicle_id}) · ${t(`kind_${state.kind}`)}`;
  el.printHead.facts.textContent = t("print_facts", {
    km: num(plan.distance_km),
    duration: hoursMinutes(plan.duration_min),
    stops: plan.stops.length,
    start: hhmm(plan.start_at),
  });
}

function geoLink(stop) {
  const lat = stop.latitude.toFixed(6);
  const lon = stop.longitude.toFixed(6);
  const label = encodeURIComponent(stop.name || stop.device_id);
  const apple = /iPad|iPhone|iPod/.test(navigator.userAgent)
    || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  // Apple's phones do not open geo: links; their maps app takes this one.
  if (apple) return `https://maps.apple.com/?daddr=${lat},${lon}&q=${label}`;
  return `geo:${lat},${lon}?q=${lat},${lon}(${label})`;
}

function levelCell(stop) {
  const watering = state.kind === "watering";
  const shown = stop.value_expected ?? stop.value_now;
  const width = shown === null || shown === undefined ? 0 : Math.max(0, Math.min(100, shown));
  let tone = "low";
  if (watering) tone = "water";
  else if (shown >= 90) tone = "high";
  else if (shown >= 70) tone = "mid";
  const bar = h("span", { class: `bar bar-${tone}`, "aria-hidden": "true" },
    h("span", { class: "bar-fill", style: { width: `${width}%` } }));
  return h("td", { class: "col-level" },
    h("span", { class: "cell-label" }, t(watering ? "col_moisture" : "col_fill")),
    h("span", { class: "level" }, bar, h("strong", { class: "level-now" }, pct(stop.value_now))),
    // "at arrival" only where it differs from now (a plan made before the shift)
    stop.value_expected !== null && stop.value_expected !== undefined
      && Math.round(stop.value_expected) !== Math.round(stop.value_now ?? Number.NaN)
      ? h("span", { class: "level-eta" }, t("level_at_eta", { value: pct(stop.value_expected) }))
      : null);
}

function actionCell(plan, stop) {
  const key = `${plan.id}/${stop.seq}`;
  const busy = state.busy.has(key);
  const error = state.rowErrors.get(key);
  const place = stop.name || stop.device_id;
  const doneWord = t(state.kind === "watering" ? "btn_watered" : "btn_emptied");
  const cell = h("td", { class: "col-action" });
  if (stop.status === "done") {
    cell.append(
      h("p", { class: "done-note" },
        h("span", { class: "done-mark", "aria-hidden": "true" }, "✓ "),
        // Where only the day is recorded (BAUHOF_RECORD_DONE_TIMES=day) there is no time to show.
        state.data && state.data.done_times === "day" ? doneWord : `${doneWord} ${hhmm(stop.done_at)}`,
        h("span", { class: "done-by" }, ` · ${t(stop.done_by === "sensor" ? "by_sensor" : "by_crew")}`)),
      h("button", {
        type: "button",
        class: "btn-undo",
        id: `act-${plan.id}-${stop.seq}`,
        "data-action": "planned",
        "data-seq": stop.seq,
        disabled: busy,
        "aria-label": t("btn_undo_label", { word: t("btn_undo"), seq: stop.seq, place }),
      }, busy ? t("saving") : t("btn_undo")));
  } else {
    cell.append(h("button", {
      type: "button",
      class: "btn-done",
      id: `act-${plan.id}-${stop.seq}`,
      "data-action": "done",
      "data-seq": stop.seq,
      disabled: busy,
      "aria-label": t("btn_done_label", { word: doneWord, seq: stop.seq, place }),
    }, busy ? t("saving") : doneWord));
  }
  if (error) cell.append(h("p", { class: "row-error", role: "alert" }, t(error)));
  return cell;
}

// Why the stop is on the route, in the crew's words: "voll heute 14:00", "auf dem Weg, 78 %".
function why(stop) {
  const watering = state.kind === "watering";
  if (stop.reason === "must") {
    // Without a forecast time the planner had another reason (a village due as a whole,
    // say): say nothing rather than something untrue.
    return stop.due_at
      ? t(watering ? "why_dry_at" : "why_full_at", { when: whenLabel(stop.due_at, config.today) })
      : null;
  }
  const level = stop.value_expected ?? stop.value_now;
  return level === null || level === undefined ? t("why_on_way_plain") : t("why_on_way", { pct: pct(level) });
}

function stopRow(plan, stop) {
  const done = stop.status === "done";
  const must = stop.reason === "must";
  return h("tr", {
    class: `stop reason-${stop.reason}${done ? " is-done" : ""}`,
    id: `stop-${stop.seq}`,
    "data-seq": stop.seq,
    "data-status": stop.status,
  },
  h("td", { class: "col-nr" }, h("span", { class: "nr" }, String(stop.seq))),
  h("td", { class: "col-tick" }, h("span", { class: "tickbox" }, done ? "✓" : "")),
  h("td", { class: "col-place" },
    h("strong", { class: "place-name" }, stop.name || stop.device_id),
    h("span", { class: "place-town" }, stop.municipality || "")),
  levelCell(stop),
  h("td", { class: "col-reason" },
    h("span", { class: `badge badge-${must ? "must" : "may"}` }, t(must ? "reason_must" : "reason_may")),
    why(stop) ? h("span", { class: "why" }, why(stop)) : null),
  h("td", { class: "col-eta" },
    h("span", { class: "cell-label" }, t("col_eta")),
    h("strong", {}, hhmm(stop.eta))),
  h("td", { class: "col-nav" },
    h("a", {
      class: "nav-link",
      href: geoLink(stop),
      "aria-label": t("nav_label_stop", { word: t("nav_go"), seq: stop.seq, place: stop.name || stop.device_id }),
    }, h("span", { class: "nav-arrow", "aria-hidden": "true" }, "➜ "), t("nav_go"))),
  actionCell(plan, stop));
}

function renderStops(plan) {
  clear(el.body);
  let trip = null;
  for (const stop of plan.stops) {
    if (trip !== null && stop.trip !== null && stop.trip !== trip) {
      el.body.append(h("tr", { class: "trip-break" },
        h("td", { colspan: 8 }, t("trip_break", { n: stop.trip + 1 }))));
    }
    if (stop.trip !== null) trip = stop.trip;
    el.body.append(stopRow(plan, stop));
  }
}

// --- marking stops ------------------------------------------------------------------------

async function mark(plan, seq, status) {
  const key = `${plan.id}/${seq}`;
  if (state.busy.has(key)) return;
  state.busy.add(key);
  state.saves += 1;
  state.rowErrors.delete(key);
  render();
  try {
    const stop = await api(`/api/v1/routes/${plan.id}/stops/${seq}`, { method: "PATCH", body: { status } });
    // The plan as shown now, which a load may have replaced while the save was on its way.
    const shown = plans().find((p) => p.id === plan.id) || plan;
    const index = shown.stops.findIndex((s) => s.seq === seq);
    if (index >= 0) shown.stops[index] = stop;
    const done = shown.stops.filter((s) => s.status === "done").length;
    shown.counts = { planned: shown.stops.length - done, done };
  } catch (err) {
    state.rowErrors.set(key, errorKey(err));
    if (err.status === 401) shell.askForToken("token_needed_crew");
  } finally {
    state.busy.delete(key);
  }
  render();
  const next = document.getElementById(`act-${plan.id}-${seq}`);
  if (next) next.focus();
}

function errorKey(err) {
  if (!(err instanceof ApiError)) return "error_save";
  if (err.status === 0) return "error_save_offline";
  if (err.status === 401) return "error_token_crew";
  if (err.status === 403) return "error_forbidden";
  if (err.status === 404) return "error_stop_gone";
  return "error_save";
}

el.body.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const plan = currentPlan();
  if (plan) mark(plan, Number(button.dataset.seq), button.dataset.action);
});

// --- controls -----------------------------------------------------------------------------

el.date.addEventListener("change", () => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(el.date.value)) return;
  state.date = el.date.value;
  writeAddress(true);
  load();
});
el.kind.addEventListener("change", () => {
  state.kind = el.kind.value;
  state.vehicle = null;
  writeAddress(true);
  load();
});
$("#route-controls").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("#print-now").addEventListener("click", () => window.print());
window.addEventListener("popstate", () => {
  const before = `${state.date}/${state.kind}`;
  readAddress();
  if (before === `${state.date}/${state.kind}`) render();
  else load();
});
onLangChange(() => render());
shell.onTokenChange(() => load());

readAddress();
writeAddress(false);
if (!isPrint) {
  setInterval(() => {
    if (document.visibilityState === "visible" && state.busy.size === 0) load({ quiet: true });
  }, POLL_MS);
}
load();
