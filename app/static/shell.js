// What every page shares: the page's configuration, the header (language switch, access
// code form) and the German/English texts.

import { applyI18n, lang, onLangChange, setLang, setTimeZone, t } from "./i18n.js";
import { api, setToken, takeTokenFromFragment, token } from "./api.js";
import { $ } from "./dom.js";

export const config = JSON.parse(document.getElementById("page-config").textContent);

export function initShell() {
  setTimeZone(config.timezone);
  takeTokenFromFragment();
  applyI18n();

  const section = config.page === "overview" ? "overview" : "route";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
  }

  const langButton = $("#lang-toggle");
  const showLang = () => {
    const other = lang() === "de" ? "en" : "de";
    langButton.textContent = other.toUpperCase();
    langButton.lang = other;
    langButton.setAttribute("aria-label", t(other === "en" ? "switch_to_en" : "switch_to_de"));
  };
  langButton.addEventListener("click", () => setLang(lang() === "de" ? "en" : "de"));

  const panel = $("#token-panel");
  const toggle = $("#token-toggle");
  const form = $("#token-form");
  const input = $("#token-input");
  const status = $("#token-status");
  const tokenListeners = [];
  let statusKey = null;
  const showStatus = (key) => {
    statusKey = key || (token() ? "token_saved" : "token_none");
    status.textContent = t(statusKey);
  };
  const open = (show) => {
    panel.hidden = !show;
    toggle.setAttribute("aria-expanded", String(show));
    if (show) input.focus();
  };
  toggle.addEventListener("click", () => open(panel.hidden));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value.length < 16) {
      showStatus("token_too_short");
      return;
    }
    setToken(value);
    input.value = "";
    showStatus("token_saved");
    tokenListeners.forEach((listener) => listener());
  });
  $("#token-clear").addEventListener("click", () => {
    setToken("");
    input.value = "";
    showStatus("token_removed");
    tokenListeners.forEach((listener) => listener());
  });

  onLangChange(() => {
    showLang();
    if (statusKey) status.textContent = t(statusKey);
  });
  showLang();
  showStatus();
  watchDemo();

  return {
    // Open the access form with a reason (a 401 from the API, say).
    askForToken(key) {
      showStatus(key);
      open(true);
    },
    onTokenChange(listener) {
      tokenListeners.push(listener);
    },
  };
}

// `bauhof demo` loads a week of history first: say so, with how far it got, instead of
// empty pages. Any answer but a demo that is loading (404: no demo) ends the watch.
async function watchDemo() {
  const banner = $("#demo-banner");
  let shown = null;
  const render = () => {
    if (!shown) return;
    if (shown.loading) {
      const eta = shown.eta_s == null ? "" : t("demo_eta", { s: shown.eta_s });
      banner.textContent = t(shown.resumed ? "demo_catching_up" : "demo_loading",
        { pct: shown.progress_pct, eta });
    } else {
      banner.textContent = t("demo_loaded");
    }
    banner.hidden = false;
  };
  onLangChange(render);
  for (;;) {
    let answer;
    try {
      answer = await api("/api/v1/demo");
    } catch {
      return;
    }
    if (!answer.loading && !shown) return; // loaded before this page opened
    shown = answer;
    render();
    if (!answer.loading) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
