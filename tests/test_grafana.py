"""The Grafana provisioning: valid files, and every query of the dashboard runs on our schema.

Grafana expands its macros and template variables before a query reaches PostgreSQL. The small
expander here does the same for what the dashboard uses (the PostgreSQL data source's macros as
Grafana documents them, and the ``sqlstring`` variable format), so that the dashboard's SQL is
run for real against a migrated test database holding a few readings.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import yaml
from conftest import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "bauhof-sense.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "bauhof.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "bauhof.yaml"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str) -> float:
    match = re.fullmatch(r"\s*'?(\d+(?:\.\d+)?)(ms|s|m|h|d|w)'?\s*", text)
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def sqlstring(values: list[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def expand(sql: str, *, start: datetime, end: datetime, interval: str,
           variables: dict[str, list[str]], timescaledb: bool) -> str:
    """Grafana's interpolation for a PostgreSQL data source, as far as the dashboard uses it.

    Template variables first (``$name``, ``${name}``, ``${name:sqlstring}``, ``${name:csv}``;
    multi-value variables become a list; plain ``$name`` is quoted like sqlstring, as Grafana
    does for SQL data sources), then ``$__interval``, then the macros.
    """
    def variable(match: re.Match) -> str:
        name = match["name"] or match["bare"]
        fmt = match["fmt"] or "sqlstring"
        values = variables[name]
        if fmt == "sqlstring":
            return sqlstring(values)
        if fmt == "csv":
            return ",".join(values)
        if fmt == "raw":
            return values[0]
        raise ValueError(f"variable format {fmt} not handled")

    sql = re.sub(r"\$\{(?P<name>[a-zA-Z]\w*)(?::(?P<fmt>\w+))?\}|\$(?P<bare>[a-zA-Z]\w*)",
                 lambda m: variable(m) if (m["name"] or m["bare"]) in variables else m[0], sql)
    interval_s = parse_interval(interval)
    sql = sql.replace("$__interval_ms", str(int(interval_s * 1000)))
    sql = sql.replace("$__interval", interval)

    def stamp(t: datetime) -> str:
        return "'" + t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"

    def group(column: str, every: str) -> str:
        seconds = int(parse_interval(every))
        if timescaledb:
            return f"time_bucket('{seconds}s',{column})"
        return f"floor(extract(epoch from {column})/{seconds})*{seconds}"

    def macro(match: re.Match) -> str:
        name, args = match[1], [a.strip() for a in match[2].split(",")] if match[2] else []
        if name == "timeFilter":
            return f"{args[0]} BETWEEN {stamp(start)} AND {stamp(end)}"
        if name == "timeFrom":
            return stamp(start)
        if name == "timeTo":
            return stamp(end)
        if name == "time":
            return f'{args[0]} AS "time"'
        if name == "timeGroup":
            return group(args[0], args[1])
        if name == "timeGroupAlias":
            return group(args[0], args[1]) + ' AS "time"'
        raise ValueError(f"macro $__{name} not handled")

    expanded = re.sub(r"\$__(\w+)\(([^()]*)\)", macro, sql)
    assert "$" not in expanded.replace("$$", ""), f"left unexpanded: {expanded}"
    return expanded


def test_expander_knows_grafanas_forms():
    start = datetime(2025, 6, 3, tzinfo=timezone.utc)
    sql = ("SELECT $__timeGroupAlias(time, $__interval), $__timeGroup(time, '5m') WHERE "
           "$__timeFilter(time) AND x IN ($town) AND y IN (${town:sqlstring}) AND z = ${n:raw}"
           " AND t > $__timeFrom() AND t < $__timeTo()")
    plain = expand(sql, start=start, end=start + timedelta(hours=1), interval="1h",
                   variables={"town": ["Bad Orb", "Jossgrund's"], "n": ["7"]},
                   timescaledb=False)
    assert plain == (
        "SELECT floor(extract(epoch from time)/3600)*3600 AS \"time\", "
        "floor(extract(epoch from time)/300)*300 WHERE time BETWEEN '2025-06-03T00:00:00Z' AND "
        "'2025-06-03T01:00:00Z' AND x IN ('Bad Orb','Jossgrund''s') AND "
        "y IN ('Bad Orb','Jossgrund''s') AND z = 7 AND t > '2025-06-03T00:00:00Z' AND "
        "t < '2025-06-03T01:00:00Z'")
    timescale = expand("$__timeGroupAlias(r.time, $__interval)", start=start, end=start,
                       interval="15m", variables={}, timescaledb=True)
    assert timescale == "time_bucket('900s',r.time) AS \"time\""


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def targets(dashboard: dict) -> list[tuple[dict, dict]]:
    return [(panel, target) for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def test_provisioning_files_fit_together():
    sources = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    assert sources["apiVersion"] == 1
    [source] = sources["datasources"]
    assert source["type"] == "grafana-postgresql-datasource"
    assert source["uid"] and source["access"] == "proxy"
    assert source["jsonData"]["timescaledb"] is True
    assert "set false on plain postgresql" in DATASOURCES.read_text(encoding="utf-8").lower()
    assert "password" in source["secureJsonData"] and "password" not in source

    providers = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    dashboards_path = provider["options"]["path"]

    dashboard = load_dashboard()
    assert dashboard["uid"] == "bauhof-sense" and dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert "id" not in dashboard or dashboard["id"] is None  # importable into any instance
    reference = {"type": source["type"], "uid": source["uid"]}

    # Every data source reference is by uid, to the provisioned one; never a numeric id.
    def walk(node):
        if isinstance(node, dict):
            if "datasource" in node and node["datasource"] is not None:
                ds = node["datasource"]
                assert isinstance(ds, dict), f"data source by name or id: {ds!r}"
                if ds.get("type") != "grafana":  # the built-in annotations
                    assert ds == reference, ds
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)

    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    types = {p["type"] for p in dashboard["panels"]}
    assert {"timeseries", "bargauge"} <= types
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for word in ("füllstand", "temperatur", "niederschlag", "wind", "bodenfeuchte"):
        assert word in titles, word
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] != "row":
            assert panel.get("targets"), panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
            for target in panel["targets"]:
                assert target["rawQuery"] is True and target["rawSql"].strip()
                assert target["format"] in ("time_series", "table")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"municipality", "device"}
    for variable in variables.values():
        assert variable["type"] == "query" and variable["multi"] and variable["includeAll"]

    # compose.yaml mounts these files where the providers expect them.
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    grafana = compose["services"].get("grafana")
    if grafana is not None:
        mounts = " ".join(str(v) for v in grafana["volumes"])
        assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
        assert f"./deploy/grafana/dashboards:{dashboards_path}" in mounts


def seed(conninfo: str, now: datetime) -> None:
    devices = [("bin-1", "bin", "Mülleimer Marktplatz", "Wächtersbach"),
               ("bin-2", "bin", "Mülleimer Bahnhof", "Bad Orb"),
               ("bin-3", "bin", "Papierkorb Kirchgasse", "Jossgrund's Ecke"),
               ("wx-1", "weather", "Wetterstation Bauhof", "Wächtersbach"),
               ("soil-1", "soil", "Straßenbaum Schloßpark", "Bad Orb"),
               ("soil-2", "soil", "Linde Rathaus", "Wächtersbach")]
    metrics = {"bin": ["fill_level_pct", "battery_v"],
               "weather": ["temperature_c", "precipitation_mm", "wind_speed_ms",
                           "wind_gust_ms"],
               "soil": ["soil_moisture_vwc_pct"]}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for device_id, kind, name, town in devices:
            conn.execute("INSERT INTO devices (device_id, kind, name, municipality, registered)"
                         " VALUES (%s, %s, %s, %s, true)", (device_id, kind, name, town))
            names = metrics[kind] + (["soil_moisture_vwc_pct_1", "soil_moisture_vwc_pct_2"]
                                     if device_id == "soil-2" else [])
            for metric in names:
                rows = [(now - timedelta(minutes=15 * i), device_id, metric, 10.0 + i % 7)
                        for i in range(96)]
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO readings (time, device_id, metric, value)"
                                    " VALUES (%s, %s, %s, %s)", rows)
                    cur.execute("INSERT INTO latest_readings (device_id, metric, time, value)"
                                " VALUES (%s, %s, %s, %s)", (device_id, metric, now, 42.0))


def run(conn: psycopg.Connection, sql: str) -> tuple[list[str], list[tuple]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return [c.name for c in cur.description], cur.fetchall()


@pytest.mark.parametrize("interval", ["15m", "1h"])
def test_every_dashboard_query_runs_on_our_schema(db, timescaledb, interval):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    seed(db, now)
    dashboard = load_dashboard()
    # As Grafana expands the macros with the data source's `timescaledb` switch set to match.
    window = {"start": now - timedelta(hours=24), "end": now, "interval": interval,
              "timescaledb": timescaledb}
    with psycopg.connect(db) as conn:
        # Template variables, in order, each seeing the ones before it; "All" selected.
        chosen: dict[str, list[str]] = {}
        options: dict[str, list[str]] = {}
        for variable in dashboard["templating"]["list"]:
            columns, rows = run(conn, expand(variable["query"], variables=chosen, **window))
            if "__value" in columns:
                assert "__text" in columns
                values = [str(r[columns.index("__value")]) for r in rows]
            else:
                assert len(columns) == 1
                values = [str(r[0]) for r in rows]
            assert values, variable["name"]
            options[variable["name"]] = chosen[variable["name"]] = values
        assert options["municipality"] == ["Bad Orb", "Jossgrund's Ecke", "Wächtersbach"]
        assert sorted(options["device"]) == ["bin-1", "bin-2", "bin-3", "soil-1", "soil-2",
                                             "wx-1"]

        for panel, target in targets(dashboard):
            sql = expand(target["rawSql"], variables=chosen, **window)
            columns, rows = run(conn, sql)
            where = f"{panel['title']}/{target['refId']}"
            assert rows, f"{where} returned nothing:\n{sql}"
            assert set(columns) == {"time", "metric", "value"}, (where, columns)
            values = [r[columns.index("value")] for r in rows]
            assert all(isinstance(v, float) for v in values), where
            if target["format"] == "time_series":
                # epoch seconds from floor(...) on PostgreSQL, timestamps from time_bucket()
                times = [t.timestamp() if isinstance(t, datetime) else float(t)
                         for t in (r[columns.index("time")] for r in rows)]
                assert times == sorted(times), where
                assert min(times) >= (now - timedelta(hours=24, seconds=3600)).timestamp()
                # one point per series and interval at most
                keys = [(r[columns.index("time")], r[columns.index("metric")]) for r in rows]
                assert len(keys) == len(set(keys)), where

        # Narrowed to one municipality, the panels show only its devices.
        only = dict(chosen, municipality=["Bad Orb"])
        columns, rows = run(conn, expand(dashboard["templating"]["list"][1]["query"],
                                         variables=only, **window))
        only["device"] = [str(r[columns.index("__value")]) for r in rows]
        assert sorted(only["device"]) == ["bin-2", "soil-1"]
        fill = next(t for p, t in targets(dashboard) if p["title"] == "Füllstand")
        columns, rows = run(conn, expand(fill["rawSql"], variables=only, **window))
        assert {r[columns.index("metric")] for r in rows} == {"Mülleimer Bahnhof"}
        soil = next(t for p, t in targets(dashboard) if p["title"] == "Bodenfeuchte")
        columns, rows = run(conn, expand(soil["rawSql"], variables=chosen, **window))
        assert {r[columns.index("metric")] for r in rows} == {
            "Straßenbaum Schloßpark", "Linde Rathaus", "Linde Rathaus (1)", "Linde Rathaus (2)"}


def test_the_device_choice_names_the_application_when_there_are_several(db, timescaledb):
    # Two TTS applications, each with a bin-001 named alike (issue 15): the keys differ, and
    # the text Grafana shows must too.
    with psycopg.connect(db, autocommit=True) as conn:
        for key, app in (("bin-001", "town-a"), ("bin-001@town-b", "town-b")):
            conn.execute("INSERT INTO devices (device_id, network_device_id, application_id,"
                         " network, name, municipality) VALUES (%s, 'bin-001', %s, 'tts',"
                         " 'Marktplatz', 'Birstein')", (key, app))
        variable = next(v for v in load_dashboard()["templating"]["list"]
                        if v["name"] == "device")
        now = datetime.now(timezone.utc)
        sql = expand(variable["query"], start=now - timedelta(hours=1), end=now, interval="1h",
                     variables={"municipality": ["Birstein"]}, timescaledb=timescaledb)
        columns, rows = run(conn, sql)
    shown = {r[columns.index("__value")]: r[columns.index("__text")] for r in rows}
    assert shown == {"bin-001": "Marktplatz (town-a)", "bin-001@town-b": "Marktplatz (town-b)"}
