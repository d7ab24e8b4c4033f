// Every UI string lives in i18n.json, keyed "de" and "en"; German is the default, the choice
// is kept in localStorage. The server renders the German texts into the page already.

const STRINGS = await fetch(new URL("./i18n.json", import.meta.url)).then((r) => r.json());
const LANG_KEY = "bauhof.lang";
const listeners = [];

function stored() {
  try {
    return localStorage.getItem(LANG_KEY) === "en" ? "en" : "de";
  } catch {
    return "de";
  }
}

let current = stored();

export const lang = () => current;
export const locale = () => (current === "en" ? "en-GB" : "de-DE");

export function t(key, vars) {
  let text = STRINGS[current]?.[key] ?? STRINGS.de[key];
  if (text === undefined) {
    console.warn("i18n: no text for", key);
    text = key;
  }
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return text;
}

export function setLang(value) {
  current = value === "en" ? "en" : "de";
  try {
    localStorage.setItem(LANG_KEY, current);
  } catch {
    // private mode: the choice lasts for this page only
  }
  applyI18n();
  for (const listener of listeners) listener(current);
}

export function onLangChange(listener) {
  listeners.push(listener);
}

export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [name, key] = pair.split(":").map((part) => part.trim());
      el.setAttribute(name, t(key));
    }
  }
  const title = document.querySelector("title[data-i18n-title]");
  if (title) document.title = `${t(title.dataset.i18nTitle)} · Bauhof`;
}

// --- formatting ---------------------------------------------------------------------------

export function num(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
}

export function pct(value) {
  return value === null || value === undefined ? "–" : `${num(value, 0)} %`;
}

// Times are shown in the Bauhof's zone (the planner's), whatever zone the phone is set to
// and whichever offset the API wrote (routes: local, alerts: UTC).
let zone = "Europe/Berlin";

export function setTimeZone(name) {
  if (name) zone = name;
}

export function hhmm(iso) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat("de-DE", {
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone,
  }).format(new Date(iso));
}

export function isoDay(iso) {
  if (!iso) return "";
  // en-CA writes dates as YYYY-MM-DD
  return new Intl.DateTimeFormat("en-CA", {
    year: "numeric", month: "2-digit", day: "2-digit", timeZone: zone,
  }).format(new Date(iso));
}

function utcNoon(day) {
  return new Date(`${day}T12:00:00Z`);
}

export function addDays(day, n) {
  const d = utcNoon(day);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function longDate(day) {
  return new Intl.DateTimeFormat(locale(), {
    weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC",
  }).format(utcNoon(day));
}

export function shortDate(day) {
  return new Intl.DateTimeFormat(locale(), {
    weekday: "short", day: "2-digit", month: "2-digit", timeZone: "UTC",
  }).format(utcNoon(day));
}

// "heute 16:40", "morgen 09:00", "Mi., 06.05. 11:20"
export function whenLabel(iso, today) {
  if (!iso) return "–";
  const day = isoDay(iso);
  let label;
  if (day === today) label = t("today");
  else if (day === addDays(today, 1)) label = t("tomorrow");
  else label = shortDate(day);
  return `${label} ${hhmm(iso)}`;
}

export function hoursMinutes(minutes) {
  if (minutes === null || minutes === undefined) return "–";
  const h = Math.floor(minutes / 60);
  const m = Math.round(minutes % 60);
  return `${h}:${String(m).padStart(2, "0")} h`;
}
