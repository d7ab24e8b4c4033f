// What every page shares: the page's configuration, the header (language switch, access
// code form) and the German/English texts.

import { applyI18n, lang, onLangChange, setLang, setTimeZone, t } from "./i18n.js";
import { setToken, takeTokenFromFragment, token } from "./api.js";
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
