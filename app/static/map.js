// The route map: the schematic sketch at once, and Leaflet with map tiles over it as soon as
// a tile has really loaded. Tiles that fail (no internet, tile server away: tileerror) or do
// not arrive within TILE_TIMEOUT_MS leave the sketch in place with a note, never a blank
// area; offline the tiles are not even tried until the crew asks for them.
//
// The frame's data-view ("sketch" | "tiles") and data-tiles ("off" | "offline" | "loading" |
// "ok" | "failed") say what is shown and why.

import { drawSketch, routePoints } from "./sketch.js";
import { t } from "./i18n.js";

const TILE_TIMEOUT_MS = 6000;
const PRINT_SKETCH_PX = [703, 333]; // 186 mm x 88 mm: A4 between the margins of print.css

export class RouteMap {
  constructor({ frame, tilesEl, sketchEl, printEl, legendEl, noteEl, toggle, tiles }) {
    Object.assign(this, { frame, tilesEl, sketchEl, printEl, legendEl, noteEl, toggle, tiles });
    this.map = null;
    this.layer = null;
    this.tileLayer = null;
    this.data = null;
    this.userView = null; // the crew's own choice wins over the automatic one
    this.timer = null;
    this.setTiles(tiles && window.L ? (navigator.onLine === false ? "offline" : "idle") : "off");
    this.setView("sketch");
    toggle.addEventListener("click", () => this.onToggle());
    window.addEventListener("resize", () => this.redrawSoon());
    window.addEventListener("online", () => {
      if (this.tileState === "offline" || this.tileState === "failed") this.tryTiles();
    });
  }

  show(data) {
    this.data = data;
    this.drawSketchNow();
    if (this.tileState === "idle") this.tryTiles();
    else if (this.map) this.drawMarkers();
    this.describe();
  }

  drawSketchNow() {
    if (!this.data) return;
    drawSketch(this.sketchEl, { ...this.data, legendTarget: this.legendEl });
    // The sheet of paper gets its own drawing at its own size (print.css shows it there), so
    // that printing needs no redraw at the right moment.
    if (this.printEl) drawSketch(this.printEl, { ...this.data, size: PRINT_SKETCH_PX });
  }

  redrawSoon() {
    clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => {
      this.drawSketchNow();
      if (this.map) this.map.invalidateSize();
    }, 150);
  }

  setView(view) {
    this.view = view;
    this.frame.dataset.view = view;
    this.tilesEl.setAttribute("aria-hidden", String(view !== "tiles"));
    if (view === "tiles" && this.map) this.map.invalidateSize();
  }

  setTiles(state) {
    this.tileState = state;
    this.frame.dataset.tiles = state;
  }

  tryTiles() {
    if (!this.tiles || !window.L) return;
    const L = window.L;
    this.setTiles("loading");
    if (!this.map) {
      this.map = L.map(this.tilesEl, { zoomControl: true, attributionControl: true });
      this.map.attributionControl.setPrefix(false);
      this.tileLayer = L.tileLayer(this.tiles.url, {
        maxZoom: 19,
        attribution: this.tiles.attribution,
        crossOrigin: false,
      });
      this.tileLayer.on("tileload", () => this.tileLoaded());
      this.tileLayer.on("tileerror", () => this.tileFailed());
      this.tileLayer.addTo(this.map);
      this.drawMarkers();
    } else {
      this.tileLayer.redraw();
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.tileState === "loading") this.tileFailed();
    }, TILE_TIMEOUT_MS);
    this.describe();
  }

  tileLoaded() {
    if (this.tileState === "ok") return;
    clearTimeout(this.timer);
    this.setTiles("ok");
    if (this.userView !== "sketch") this.setView("tiles");
    this.describe();
  }

  tileFailed() {
    // One broken tile among loaded ones is no reason to leave the map.
    if (this.tileState !== "loading") return;
    clearTimeout(this.timer);
    this.setTiles("failed");
    this.setView("sketch");
    this.describe();
  }

  drawMarkers() {
    const L = window.L;
    if (!this.map || !this.data) return;
    if (this.layer) this.layer.remove();
    const { depot, stops } = this.data;
    const ll = (p) => [p.latitude, p.longitude];
    this.layer = L.layerGroup();
    L.polyline(routePoints(depot, stops).map(ll), { color: "#0b3d6b", weight: 4, opacity: 0.85 })
      .addTo(this.layer);
    L.marker(ll(depot), {
      icon: L.divIcon({ className: "pin pin-depot", html: "B", iconSize: [30, 30] }),
      title: depot.name,
      alt: depot.name,
      keyboard: false,
    }).addTo(this.layer);
    for (const stop of stops) {
      const kind = stop.status === "done" ? "done" : stop.reason;
      L.marker(ll(stop), {
        icon: L.divIcon({ className: `pin pin-${kind}`, html: String(Number(stop.seq)), iconSize: [32, 32] }),
        title: `${stop.seq} ${stop.name || stop.device_id}`,
        keyboard: false,
      }).addTo(this.layer);
    }
    this.layer.addTo(this.map);
    const bounds = L.latLngBounds([depot, ...stops].map(ll));
    this.map.fitBounds(bounds, { padding: [28, 28], maxZoom: 16 });
  }

  onToggle() {
    if (this.tileState === "ok") {
      this.userView = this.view === "tiles" ? "sketch" : "tiles";
      this.setView(this.userView);
      if (this.userView === "sketch") this.drawSketchNow();
    } else {
      this.userView = null;
      this.tryTiles();
    }
    this.describe();
  }

  describe() {
    const notes = {
      off: "",
      idle: "",
      offline: t("map_offline"),
      loading: t("map_loading"),
      failed: t("map_failed"),
      ok: "",
    };
    this.noteEl.textContent = notes[this.tileState] || "";
    this.noteEl.hidden = !this.noteEl.textContent;
    let label = null;
    if (this.tileState === "ok") label = this.view === "tiles" ? "map_show_sketch" : "map_show_tiles";
    else if (this.tileState === "offline" || this.tileState === "failed") label = "map_retry";
    this.toggle.hidden = label === null;
    if (label) this.toggle.textContent = t(label);
  }
}
