"""Links through every interface: `qrverify issue --link`, `qrverify verify --records`,
a QR picture of a link read back from a photo-like PNG, and the HTTP API."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import zxingcpp
from links.link_support import AT, LINK, UNRZ
from PIL import Image, ImageFilter
from starlette.testclient import TestClient

from keys.link_records import mask, sample_record
from verifier import Verifier, cli
from verifier.records import load_table


def run(
    argv: list[str], capsys: Any, monkeypatch: Any, stdin: str | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_mask() -> None:
    assert mask("Иванов Иван Иванович") == "И***** И*** И*******"
    rec = sample_record("test", name="Петрова Анна")
    assert rec["name"] == "П****** А***" and rec["name_latin"] == "P****** A***"
    assert len(rec["id"]) == 16 and len(rec["ck"]) == 32


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_issue_link_then_verify(tmp_path: Path, capsys: Any, monkeypatch: Any, suffix: str) -> None:
    records = tmp_path / f"register{suffix}"
    links = []
    for kind in ("vaccination", "recovery", "test", "temporary"):
        code, out, err = run(
            ["issue", "--link", "--records", str(records), "--type", kind], capsys, monkeypatch
        )
        assert code == 0, err
        links.append(out.strip())
        assert links[-1].startswith("https://www.gosuslugi.ru/covid-cert/verify/")
    table = load_table(records)
    assert len(table) == 4
    code, out, err = run(["verify", "--records", str(records), *links], capsys, monkeypatch)
    assert code == 0, err
    verdicts = [json.loads(line) for line in out.splitlines()]
    assert [v["certificate"]["type"] for v in verdicts] == [
        "vaccination",
        "recovery",
        "test",
        "temporary",
    ]
    assert all(v["holder"]["name"] == "И***** И*** И*******" for v in verdicts)
    assert all(v["holder"]["document"] for v in verdicts)
    # stdin, with a wrong ck: exit 1, not_found
    wrong = links[0][:-4] + ("0000" if not links[0].endswith("0000") else "1111")
    code, out, _ = run(
        ["verify", "--records", str(records)], capsys, monkeypatch, stdin=f"{links[1]}\n{wrong}\n"
    )
    assert code == 1
    assert [json.loads(x)["reason"] for x in out.splitlines()] == [None, "not_found"]


def test_issue_link_usage_errors(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    code, _, err = run(["issue", "--link"], capsys, monkeypatch)
    assert code == 2 and "--records" in err
    code, _, err = run(["issue", "--type", "vaccination"], capsys, monkeypatch)
    assert code == 2 and "--key" in err
    code, _, err = run(
        ["verify", "--records", str(tmp_path / "none.jsonl"), LINK], capsys, monkeypatch
    )
    assert code == 2 and "cannot read" in err


def test_verify_link_origin_option(
    tmp_path: Path, capsys: Any, monkeypatch: Any, records_file: Path
) -> None:
    regional = LINK.replace("https://www.gosuslugi.ru", "https://reg.example.ru")
    args = ["verify", "--records", str(records_file), "--at", "2022-01-15T12:00:00Z"]
    code, out, _ = run([*args, regional], capsys, monkeypatch)
    assert code == 1 and "foreign site" in json.loads(out)["detail"]
    code, out, _ = run(
        [*args, "--link-origin", "https://reg.example.ru", regional], capsys, monkeypatch
    )
    assert code == 0 and json.loads(out)["status"] == "valid"
    code, _, err = run([*args, "--link-origin", "reg.example.ru", regional], capsys, monkeypatch)
    assert code == 2 and "origin" in err


def _photo(png: bytes) -> bytes:
    """The QR as a phone might photograph it: scaled, rotated a little, blurred, on grey,
    saved as JPEG."""
    qr = Image.open(io.BytesIO(png)).convert("L")
    qr = qr.resize((qr.width * 3 // 2, qr.height * 3 // 2))
    canvas = Image.new("L", (qr.width + 300, qr.height + 200), 170)
    canvas.paste(qr, (140, 90))
    canvas = canvas.rotate(7, fillcolor=170, expand=True).filter(ImageFilter.GaussianBlur(1.2))
    out = io.BytesIO()
    canvas.convert("RGB").save(out, format="JPEG", quality=80)
    return out.getvalue()


def test_link_qr_scanned_from_a_photo(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    records = tmp_path / "register.jsonl"
    png_path = tmp_path / "link.png"
    code, out, err = run(
        ["issue", "--link", "--records", str(records), "--qr", str(png_path)], capsys, monkeypatch
    )
    assert code == 0, err
    link = out.strip()
    photo = _photo(png_path.read_bytes())
    found = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(photo)))]
    assert found == [link]
    # and through the HTTP API's image route, and the JSON / batch routes
    from verifier.http import create_app

    v = Verifier.from_files(None, records=records)
    with TestClient(create_app(v)) as client:
        r = client.post("/v1/verify/image", content=photo, headers={"content-type": "image/jpeg"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "valid" and body["holder"]["document"]
        r = client.post("/v1/verify", json={"token": link})
        assert r.status_code == 200 and r.json()["status"] == "valid"
        r = client.post("/v1/verify", content=link, headers={"content-type": "text/plain"})
        assert r.json()["status"] == "valid"
        r = client.post("/v1/verify/batch", json={"tokens": [link, link[:-1] + "x", "nope"]})
        assert [x["reason"] for x in r.json()["results"]] == [None, "bad_link", "bad_prefix"]
        metrics = client.get("/metrics").text
        for secret in (link, link.rsplit("ck=", 1)[1], link.split("/")[-1][:16]):
            assert secret not in metrics


def test_http_no_identifiers_in_logs(records_file: Path, caplog: Any) -> None:
    from verifier.http import create_app

    v = Verifier.from_files(None, records=records_file)
    with caplog.at_level("DEBUG"), TestClient(create_app(v)) as client:
        for text in (LINK, LINK[:-2] + "00", LINK.replace(UNRZ, "9160000099999999")):
            assert client.post("/v1/verify", json={"token": text}).status_code == 200
    logged = caplog.text
    assert UNRZ not in logged and "9160000099999999" not in logged and "4d3c2b1a" not in logged


def test_store_status_counts_records(records_file: Path) -> None:
    v = Verifier.from_files(None, records=records_file)
    assert len(v.store.replica.records) == len(load_table(records_file))
    assert v.verify(LINK, AT).valid


def test_demo_records(tmp_path: Path) -> None:
    from keys.link_records import demo_links, make_demo_records

    links = make_demo_records(tmp_path)
    assert demo_links(tmp_path) == links
    v = Verifier.from_files(None, records=tmp_path / "records.jsonl")
    want = {
        "vaccination": None,
        "recovery": None,
        "test": None,
        "revoked": "revoked",
        "expired": "token_expired",
        "not_found": "not_found",
    }
    assert {k: v.verify(link).to_dict()["reason"] for k, link in links.items()} == want
    assert orjson.loads((tmp_path / "links.json").read_bytes()) == links


def test_serve_demo_prints_links(tmp_path: Path, capsys: Any) -> None:
    from verifier.commands.serve import _prepare_demo, _print_demo
    from verifier.http.config import ServeConfig

    cfg, demo, created = _prepare_demo(ServeConfig(demo=True, demo_dir=str(tmp_path)))
    assert created is None and cfg.records == str(tmp_path / "records.jsonl")
    _print_demo(cfg, demo)
    out = capsys.readouterr().out
    links = [
        line.split(": ", 1)[1]
        for line in out.splitlines()
        if line.startswith("    ") and "gosuslugi.ru" in line
    ]
    assert len(links) == 6
    v = Verifier.from_files(cfg.trust, records=cfg.records)
    assert v.verify(links[0]).valid
    assert (tmp_path / "qr-link-vaccination.png").exists()
