"""`qrverify serve`: the HTTP service (options in verifier/http/config.py, the server in
verifier/http/serve.py).

Everything (options, files, rules, API keys, the store) is validated in this process
before anything listens; a problem is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from verifier.commands._common import EXIT_USAGE, CommandError, fail
from verifier.http import config as _config
from verifier.http.config import ServeConfig

PROG = "qrverify serve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _config.add_arguments(parser)


def _prepare_demo(cfg: ServeConfig) -> tuple[ServeConfig, Any, str | None]:
    """Create the demo issuer; returns the config pointing at its trust file."""
    from keys.demo import make_demo
    from keys.link_records import make_demo_records
    from keys.qr import write_png

    created: str | None = None
    if cfg.demo_dir:
        directory = cfg.demo_dir
    else:
        directory = created = tempfile.mkdtemp(prefix="qrverify-demo-")
    try:
        demo = make_demo(directory)
        for kind, token in demo.tokens.items():
            write_png(token, Path(directory) / f"qr-{kind}.png")
        links = make_demo_records(directory) if not cfg.records else {}
        for kind, link in links.items():
            write_png(link, Path(directory) / f"qr-link-{kind}.png")
    except Exception as exc:
        if created:
            shutil.rmtree(created, ignore_errors=True)
        raise CommandError(f"--demo: {exc}") from None
    records = cfg.records or str(Path(directory) / "records.jsonl")
    new = ServeConfig.from_json_dict(
        {**cfg.to_json_dict(), "trust": str(demo.trust_path), "records": records}
    )
    return new, demo, created


def _print_demo(cfg: ServeConfig, demo: Any) -> None:
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{cfg.port}/"
    directory = Path(demo.trust_path).parent
    lines = [
        "qrverify demo: a DEVELOPMENT issuer (country RU), not for production.",
        f"  trust file:   {demo.trust_path}",
        f"  scanner page: {url}  (camera needs https or localhost)",
        f"  QR pictures:  {directory}/qr-<type>.png",
        "  sample tokens:",
    ]
    for kind, token in demo.tokens.items():
        lines.append(f"    {kind}: {token}")
    from keys.link_records import demo_links

    links = demo_links(directory)
    if links and cfg.records == str(directory / "records.jsonl"):
        lines.append(f"  register records: {directory}/records.jsonl")
        lines.append("  sample register links (QR pictures: qr-link-<kind>.png):")
        lines.extend(f"    {kind}: {link}" for kind, link in links.items())
    first = next(iter(demo.tokens.values()))
    lines.append(
        f"  try: curl -s -H 'content-type: text/plain' --data-binary '{first}' {url}v1/verify"
    )
    print("\n".join(lines), flush=True)


def run(args: argparse.Namespace) -> int:
    from verifier.commands._common import build_verifier
    from verifier.http.serve import build_app, serve

    demo_tmp: str | None = None
    try:
        try:
            cfg = _config.resolve(args)
            demo = None
            if cfg.demo:
                cfg, demo, demo_tmp = _prepare_demo(cfg)
            # Validate everything (files, rules, keys, store) in this process first.
            verifier = build_verifier(cfg, prog=PROG)
            try:
                app = build_app(cfg, verifier)
            except BaseException:
                verifier.close()
                raise
        except CommandError as exc:
            return fail(PROG, str(exc), EXIT_USAGE)
        if demo is not None:
            _print_demo(cfg, demo)
        return serve(cfg, app, verifier)
    finally:
        if demo_tmp:
            shutil.rmtree(demo_tmp, ignore_errors=True)
