"""Reading a request's JSON body and parameters; anything wrong is an HTTP 400 with a JSON detail."""
from __future__ import annotations

import json
import math

from aiohttp import web


def bad_request(detail: str, **extra) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"status": "invalid", "detail": detail, **extra}),
                              content_type="application/json")


async def read_json(request: web.Request) -> dict:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:  # includes bad UTF-8
        raise bad_request("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body


def finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{what} must be a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise bad_request(f"{what} must be a finite number")
    return number


def param(params: dict, key: str, default: float, low: float, high: float) -> float:
    value = params.get(key)
    value = default if value is None else finite(value, key)
    if not low <= value <= high:
        raise bad_request(f"{key} must be between {low:g} and {high:g}")
    return value


def parse_positions(body: dict) -> list[tuple[str, float, float]]:
    raw = body.get("positions", [])
    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        raise bad_request("positions must be a list of objects")
    return [(str(p.get("symbol", "?")), finite(p.get("quantity", 0), "quantity"), finite(p.get("price", 0), "price"))
            for p in raw]
