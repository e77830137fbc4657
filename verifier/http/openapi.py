"""The API description (OpenAPI 3.1), made from the code's own constants, and a docs page.

The operations are described here per route; `document()` takes the app's route table,
so a route without a description fails loudly (the tests build the document from the
real app), and the schemas come from the same constants the code uses: the reason codes
(`verifier.reasons.Reason` and `verifier.i18n`), the error catalogue
(`_request.ERRORS`) and the caps (`Limits`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from verifier import i18n
from verifier.http._request import ERRORS
from verifier.reasons import Reason

# Routes that are not part of the API (pages and assets).
UNDOCUMENTED = frozenset({"/", "/docs", "/favicon.ico", "/static/{name}"})


def reason_codes() -> list[str]:
    codes = {r.value for r in Reason} | {c for c in i18n.DETAILS_RU if c}
    return sorted(codes)


def _schemas(limits: Any) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "Verdict": {
            "type": "object",
            "required": ["status", "reason", "detail"],
            "properties": {
                "status": {"type": "string", "enum": ["valid", "invalid"]},
                "reason": {
                    "oneOf": [{"type": "null"}, {"type": "string", "enum": reason_codes()}],
                    "description": "null when valid; codes never change with the language",
                },
                "detail": {
                    "type": "string",
                    "description": "a sentence for people: Russian when "
                    "Accept-Language prefers ru, else English",
                },
                "holder": {
                    "type": "object",
                    "properties": {"name": text, "name_latin": text, "dob": text, "document": text},
                },
                "certificate": {
                    "type": "object",
                    "properties": {"type": text, "issuer": text, "valid_until": text},
                },
            },
        },
        "BatchResults": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {"type": "array", "items": {"$ref": "#/components/schemas/Verdict"}}
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": sorted(ERRORS)},
                        "message": text,
                    },
                }
            },
        },
        "TokenRequest": {
            "type": "object",
            "required": ["token"],
            "properties": {
                "token": {"type": "string", "description": "HC1:... or a register link"}
            },
        },
        "BatchRequest": {
            "type": "object",
            "required": ["tokens"],
            "properties": {
                "tokens": {
                    "type": "array",
                    "maxItems": limits.max_batch,
                    "items": {"type": "string"},
                }
            },
        },
    }


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        codes = sorted(c for c, (s, _) in ERRORS.items() if s == status)
        out[str(status)] = {"description": "error: " + ", ".join(codes), "content": _json("Error")}
    return out


def _operations(limits: Any, keys: bool) -> dict[str, dict[str, Any]]:
    verify_errors = (400, 401, 408, 413, 415) if keys else (400, 408, 413, 415)
    security: dict[str, Any] = {"security": [{"apiKey": []}]} if keys else {}
    verdict = {
        "200": {"description": "the verdict (invalid tokens too)", "content": _json("Verdict")}
    }
    return {
        "/v1/verify": {
            "post": {
                "summary": "Verify one token",
                "description": f"Body at most {limits.max_body} bytes.",
                "requestBody": {
                    "required": True,
                    "content": {
                        **_json("TokenRequest"),
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
                "responses": {**verdict, **_errors(*verify_errors)},
                **security,
            }
        },
        "/v1/verify/batch": {
            "post": {
                "summary": f"Verify up to {limits.max_batch} tokens, results in order",
                "description": f"Body at most {limits.max_batch_body} bytes.",
                "requestBody": {"required": True, "content": _json("BatchRequest")},
                "responses": {
                    "200": {
                        "description": "one verdict per token",
                        "content": _json("BatchResults"),
                    },
                    **_errors(*verify_errors),
                },
                **security,
            }
        },
        "/v1/verify/image": {
            "post": {
                "summary": "Verify the QR code in a PNG or JPEG photo",
                "description": (
                    f"Body at most {limits.max_image_bytes} bytes; JPEG at most "
                    f"{limits.max_image_pixels} pixels."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"image": {"type": "string", "format": "binary"}},
                            }
                        },
                    },
                },
                "responses": {**verdict, **_errors(*verify_errors)},
                **security,
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness and version",
                "responses": {
                    "200": {
                        "description": "running",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "status": {"type": "string"},
                                        "version": {"type": "string"},
                                    },
                                }
                            }
                        },
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: keys loaded and the store fresh",
                "responses": {
                    "200": {"description": "ready"},
                    "503": {"description": "not ready, with reason"},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text format 0.0.4",
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def document(
    routes: Iterable[tuple[str, str]], limits: Any, version: str, keys: bool
) -> dict[str, Any]:
    """The OpenAPI document of the routes `(path, method)` (KeyError: a route has no
    description here)."""
    operations = _operations(limits, keys)
    paths: dict[str, dict[str, Any]] = {}
    for path, method in routes:
        if path in UNDOCUMENTED:
            continue
        paths.setdefault(path, {})[method.lower()] = operations[path][method.lower()]
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "qrverify",
            "version": version,
            "description": "Verification of signed health-certificate QR codes.",
        },
        "paths": paths,
        "components": {"schemas": _schemas(limits)},
    }
    if keys:
        doc["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        }
    return doc


def docs_html(doc: dict[str, Any]) -> bytes:
    """A page for people, rendered on the server from the same document (no script)."""
    esc = html.escape
    rows = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            answers = ", ".join(f"{s}" for s in op.get("responses", {}))
            detail = esc(op.get("description", ""))
            rows.append(
                f"<tr><td><code>{esc(method.upper())} {esc(path)}</code></td>"
                f"<td>{esc(op.get('summary', ''))}<br><small>{detail}</small></td>"
                f"<td>{esc(answers)}</td></tr>"
            )
    errors = "".join(
        f"<tr><td><code>{esc(code)}</code></td><td>{status}</td><td>{esc(message)}</td></tr>"
        for code, (status, message) in sorted(ERRORS.items())
    )
    reasons = "".join(f"<li><code>{esc(c)}</code></li>" for c in reason_codes())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qrverify API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>qrverify API {esc(doc["info"]["version"])}</h1>
<p>The machine-readable description: <a href="/openapi.json">/openapi.json</a>.</p>
<table border="1" cellpadding="4"><tr><th>route</th><th>what</th><th>answers</th></tr>
{"".join(rows)}</table>
<h2>Errors</h2><p>Every error is <code>{{"error": {{"code": ..., "message": ...}}}}</code>.</p>
<table border="1" cellpadding="4"><tr><th>code</th><th>status</th><th>meaning</th></tr>
{errors}</table>
<h2>Reason codes</h2><ul>{reasons}</ul></body></html>
"""
    return page.encode("utf-8")
