// The schematic map: depot and stops projected from latitude/longitude (equirectangular, to
// scale), numbered, joined in route order. Drawn without any network, so the map area is
// never blank; it is also the overview sketch of the printed sheet.

import { s, h, clear } from "./dom.js";
import { num, t } from "./i18n.js";

const KM_PER_DEG_LAT = 110.574;
const KM_PER_DEG_LON_EQUATOR = 111.32;
const NICE_KM = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100];

function project(points) {
  const lat0 = points.reduce((sum, p) => sum + p.latitude, 0) / points.length;
  const kx = KM_PER_DEG_LON_EQUATOR * Math.cos((lat0 * Math.PI) / 180);
  return (p) => [p.longitude * kx, -p.latitude * KM_PER_DEG_LAT];
}

// The route in driving order: depot, the stops, back to the depot to unload between trips,
// and home at the end.
export function routePoints(depot, stops) {
  const out = [depot];
  let trip = null;
  for (const stop of stops) {
    if (trip !== null && stop.trip !== null && stop.trip !== undefined && stop.trip !== trip) {
      out.push(depot);
    }
    if (stop.trip !== null && stop.trip !== undefined) trip = stop.trip;
    out.push(stop);
  }
  out.push(depot);
  return out;
}

// size: [width, height] in px; default: the container's size.
export function drawSketch(container, { depot, stops, title, legendTarget, size }) {
  clear(container);
  const width = size ? size[0] : Math.max(container.clientWidth || 0, 240);
  const height = size ? size[1] : Math.max(container.clientHeight || 0, 180);
  const all = [depot, ...stops];
  const xy = project(all);
  const coords = all.map(xy);
  const xs = coords.map((c) => c[0]);
  const ys = coords.map((c) => c[1]);
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const minY = Math.min(...ys);
  const maxY = Math.max(...ys);
  const radius = stops.length > 40 ? 11 : 14;
  const pad = radius + 12;
  const spanX = Math.max(maxX - minX, 0.2); // km; one stop next to the depot is no zoom-in
  const spanY = Math.max(maxY - minY, 0.2);
  const bottom = 24; // room for the scale bar
  const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad - bottom) / spanY);
  const offX = width / 2 - ((minX + maxX) / 2) * scale;
  const offY = (height - bottom) / 2 - ((minY + maxY) / 2) * scale;
  const at = (p) => {
    const [x, y] = xy(p);
    return [x * scale + offX, y * scale + offY];
  };

  const titleId = `sketch-title-${Math.random().toString(36).slice(2, 8)}`;
  const svg = s("svg", {
    class: "sketch",
    viewBox: `0 0 ${width} ${height}`,
    width: "100%",
    height: "100%",
    preserveAspectRatio: "xMidYMid meet",
    role: "img",
    "aria-labelledby": titleId,
  });
  svg.append(s("title", { id: titleId }, title || t("sketch_title", { n: stops.length })));
  svg.append(s("rect", { x: 0, y: 0, width, height, class: "sketch-bg" }));

  const line = routePoints(depot, stops).map((p) => at(p).map((v) => v.toFixed(1)).join(","));
  svg.append(s("polyline", { points: line.join(" "), class: "sketch-route" }));

  // Stops close together (the bins of one street) would hide each other's numbers: their
  // circles are pushed apart, each tied by a thin line to a dot at its true place.
  const places = stops.map(at);
  const depotAt = at(depot);
  const labels = declutter(places, depotAt, radius, width, height);
  for (let i = stops.length - 1; i >= 0; i -= 1) { // the first stops on top
    const stop = stops[i];
    const [px, py] = places[i];
    const [x, y] = labels[i];
    const kind = stop.status === "done" ? "done" : stop.reason === "must" ? "must" : "may";
    const g = s("g", { class: `sketch-stop sketch-${kind}`, "data-seq": stop.seq });
    if (Math.hypot(x - px, y - py) > radius * 0.6) {
      g.append(s("line", { class: "sketch-leader", x1: px.toFixed(1), y1: py.toFixed(1), x2: x.toFixed(1), y2: y.toFixed(1) }));
      g.append(s("circle", { class: "sketch-dot", cx: px.toFixed(1), cy: py.toFixed(1), r: 3 }));
    }
    g.append(s("circle", { class: "sketch-mark", cx: x.toFixed(1), cy: y.toFixed(1), r: radius }));
    g.append(s("text", {
      x: x.toFixed(1), y: (y + radius * 0.38).toFixed(1), "text-anchor": "middle",
      "font-size": Math.round(radius * (stop.seq > 99 ? 0.8 : 1.05)),
    }, String(stop.seq)));
    svg.append(g);
  }

  const [dx, dy] = at(depot);
  const side = radius * 1.7;
  svg.append(s("g", { class: "sketch-depot" },
    s("rect", { x: (dx - side / 2).toFixed(1), y: (dy - side / 2).toFixed(1), width: side, height: side, rx: 3 }),
    s("text", { x: dx.toFixed(1), y: (dy + side * 0.22).toFixed(1), "text-anchor": "middle", "font-size": Math.round(side * 0.62) }, "B")));

  // Scale bar (bottom left) and north (top right).
  const target = (width * 0.22) / scale;
  const km = NICE_KM.reduce((best, v) => (Math.abs(v - target) < Math.abs(best - target) ? v : best), NICE_KM[0]);
  const barPx = km * scale;
  const y0 = height - 12;
  svg.append(s("g", { class: "sketch-scale" },
    s("path", { d: `M10 ${y0 - 6} V${y0} H${(10 + barPx).toFixed(1)} V${y0 - 6}` }),
    s("text", { x: (14 + barPx).toFixed(1), y: y0, "font-size": 13 }, `${num(km, 2)} km`)));
  svg.append(s("g", { class: "sketch-north" },
    s("path", { d: `M${width - 20} 8 L${width - 27} 26 L${width - 20} 22 L${width - 13} 26 Z` }),
    s("text", { x: width - 20, y: 42, "text-anchor": "middle", "font-size": 13 }, "N")));

  container.append(svg);
  if (legendTarget) clear(legendTarget).append(legend());
  return svg;
}

// Push overlapping circles apart (and off the depot), a little at a time, keeping them in the
// frame and near their places.
function declutter(places, depotAt, radius, width, height) {
  const out = places.map(([x, y]) => [x, y]);
  const gap = 2 * radius + 2;
  for (let round = 0; round < 80; round += 1) {
    let moved = false;
    for (let i = 0; i < out.length; i += 1) {
      for (let j = i + 1; j < out.length; j += 1) {
        let dx = out[j][0] - out[i][0];
        let dy = out[j][1] - out[i][1];
        let d = Math.hypot(dx, dy);
        if (d >= gap) continue;
        if (d < 0.01) { // the same place: fan out by index
          dx = Math.cos(j * 2.39996);
          dy = Math.sin(j * 2.39996);
          d = 1;
        }
        const push = (gap - d) / 2 / d;
        out[i][0] -= dx * push; out[i][1] -= dy * push;
        out[j][0] += dx * push; out[j][1] += dy * push;
        moved = true;
      }
      const ddx = out[i][0] - depotAt[0];
      const ddy = out[i][1] - depotAt[1];
      const dd = Math.hypot(ddx, ddy) || 1;
      const keep = radius * 2.2;
      if (dd < keep) {
        out[i][0] = depotAt[0] + (ddx / dd) * keep;
        out[i][1] = depotAt[1] + (ddy / dd) * keep;
        moved = true;
      }
      out[i][0] = Math.min(Math.max(out[i][0], radius + 2), width - radius - 2);
      out[i][1] = Math.min(Math.max(out[i][1], radius + 2), height - radius - 26);
    }
    // a weak pull back towards the true place keeps clusters compact
    for (let i = 0; i < out.length; i += 1) {
      out[i][0] += (places[i][0] - out[i][0]) * 0.02;
      out[i][1] += (places[i][1] - out[i][1]) * 0.02;
    }
    if (!moved) break;
  }
  return out;
}

function legend() {
  const item = (cls, key) => h("li", {}, h("span", { class: `key ${cls}`, "aria-hidden": "true" }), t(key));
  return h("ul", { class: "sketch-legend" },
    item("key-depot", "legend_depot"),
    item("key-must", "legend_must"),
    item("key-may", "legend_may"),
    item("key-done", "legend_done"));
}
