"""The CSV export opened by a real spreadsheet application with German settings (LibreOffice).

A German spreadsheet splits on ';' and reads '3,6' as a number; a UTF-8 BOM makes it read
umlauts right. We let LibreOffice Calc import our CSV as a German user would (semicolon, UTF-8,
language de-DE) and save it as .xlsx, then look into the workbook: the values must be numeric
cells with the right numbers, the names text with their umlauts.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.helpers import running_service
from tests.test_dashboard_api import FILL_A, seed

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}

if os.environ.get("BAUHOF_TEST_REQUIRE_SPREADSHEET") == "1" and SOFFICE is None:
    raise RuntimeError("BAUHOF_TEST_REQUIRE_SPREADSHEET=1 but LibreOffice is missing")

pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed "
                                "(apt-get install libreoffice-calc-nogui; .ci/run installs it)")


def _cells(xlsx: Path) -> list[list[tuple[str, str]]]:
    """Rows of (type, value): 'n' for a number, 's' for text."""
    with zipfile.ZipFile(xlsx) as z:
        shared = [("".join(t.text or "" for t in si.iter(f"{{{NS['x']}}}t")))
                  for si in ElementTree.fromstring(z.read("xl/sharedStrings.xml"))]
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{{{NS['x']}}}row"):
        cells = []
        for c in row.iter(f"{{{NS['x']}}}c"):
            v = c.find("x:v", NS)
            if c.get("t") == "s":
                cells.append(("s", shared[int(v.text)]))
            elif c.get("t") in ("str", "inlineStr"):
                cells.append(("s", "".join(t.text or "" for t in c.iter(f"{{{NS['x']}}}t"))))
            else:
                cells.append(("n", v.text if v is not None else ""))
        rows.append(cells)
    return rows


def test_a_german_spreadsheet_reads_numbers_and_umlauts(db, tmp_path):
    seed(db)
    with running_service(db) as (service, client):
        answer = client.get("/api/v1/devices/bin-a/readings.csv", params={
            "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z",
            "delimiter": ";", "decimal": "comma"})
    assert answer.status_code == 200
    source = tmp_path / "messwerte.csv"
    source.write_bytes(answer.content)
    # CSV import options: separator 59 (';'), quote 34 ('"'), charset 76 (UTF-8), from row 1,
    # default column types, language 1031 (German): what Calc does for a German user.
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation=file://{tmp_path / 'profile'}", "--headless",
         "--infilter=CSV:59,34,76,1,,1031", "--convert-to", "xlsx", "--outdir", str(tmp_path),
         str(source)], check=True, timeout=120, capture_output=True)
    rows = _cells(tmp_path / "messwerte.xlsx")
    assert [v for _, v in rows[0]] == ["time", "device_id", "name", "municipality", "kind",
                                       "metric", "value"]
    body = rows[1:]
    assert len(body) == 9 and all(len(r) == 7 for r in body)
    assert body[0][2] == ("s", "Mülleimer Schloßstraße") and body[0][3] == ("s", "Wächtersbach")
    fills = [r[6] for r in body if r[5][1] == "fill_level_pct"]
    assert all(kind == "n" for kind, _ in fills), fills  # numbers, not text
    assert [float(v) for _, v in fills] == [v for _, v in FILL_A]
    battery = body[0][6]
    assert battery[0] == "n" and float(battery[1]) == pytest.approx(3.6)
    assert re.match(r"2025-06-03T12:00:00\+02:00", body[0][0][1])
