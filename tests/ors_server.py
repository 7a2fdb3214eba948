"""A small local HTTP server that speaks openrouteservice's matrix and directions API (v2), for tests.

Answers are computed, not canned, so tests can check them by hand: road distance is the great-circle distance
x ``ROAD_FACTOR`` in metres, and duration is that distance at ``SPEED_KMH``, in seconds. A point north of
latitude 80 has no road to it (``null`` in the matrix, like the real service). ``mode`` makes it misbehave:
``"429"`` (rate limit), ``"500"``, ``"sleep"`` (answers after ``sleep_seconds``, past a client's timeout), and
``fail_first`` makes only the first N requests fail with ``mode``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROAD_FACTOR = 1.25
SPEED_KMH = 50.0


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2, dp, dl = map(math.radians, (lat1, lat2, lat2 - lat1, lon2 - lon1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def road_metres(a: list[float], b: list[float]) -> float:
    """The server's road distance between two [lon, lat] points."""
    return _km(a[0], a[1], b[0], b[1]) * 1000.0 * ROAD_FACTOR


def road_seconds(a: list[float], b: list[float]) -> float:
    """The server's driving time between two [lon, lat] points."""
    return road_metres(a, b) / (SPEED_KMH * 1000.0 / 3600.0)


class FakeOpenRouteService:
    """Start with ``start()``; ``url`` is the base URL to give the client; ``requests`` logs what arrived."""

    def __init__(self, max_elements: int = 2500) -> None:
        self.max_elements = max_elements
        self.mode = "ok"
        self.fail_first = 0
        self.sleep_seconds = 2.0
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeOpenRouteService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def count(self, kind: str | None = None) -> int:
        return sum(1 for r in self.requests if kind is None or r["kind"] == kind)

    # ------------------------------------------------------------------ answers

    def matrix(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        locs = body["locations"]
        sources = body.get("sources") or list(range(len(locs)))
        dests = body.get("destinations") or list(range(len(locs)))
        if len(sources) * len(dests) > self.max_elements:
            return 400, {"error": {"code": 6004, "message": "Request parameters exceed the server configuration "
                                                            f"limits. Only a total of {self.max_elements} routes "
                                                            "are allowed."}}
        metrics = body.get("metrics") or ["duration"]
        out: dict[str, Any] = {
            "sources": [{"location": locs[i], "snapped_distance": 0.0} for i in sources],
            "destinations": [{"location": locs[j], "snapped_distance": 0.0} for j in dests],
            "metadata": {"attribution": "fake openrouteservice", "service": "matrix",
                         "query": {"profile": body.get("profile")}},
        }

        def cell(i: int, j: int, f: Any) -> float | None:
            if locs[i][1] > 80 or locs[j][1] > 80:
                return None
            return round(f(locs[i], locs[j]), 2)

        if "duration" in metrics:
            out["durations"] = [[cell(i, j, road_seconds) for j in dests] for i in sources]
        if "distance" in metrics:
            out["distances"] = [[cell(i, j, road_metres) for j in dests] for i in sources]
        return 200, out

    def directions(self, body: dict[str, Any], fmt: str) -> tuple[int, dict[str, Any]]:
        coords = body["coordinates"]
        metres = sum(road_metres(a, b) for a, b in zip(coords, coords[1:], strict=False))
        seconds = sum(road_seconds(a, b) for a, b in zip(coords, coords[1:], strict=False))
        # A road that bends: a midpoint nudged east between each pair of waypoints.
        line: list[list[float]] = []
        for a, b in zip(coords, coords[1:], strict=False):
            line += [a, [(a[0] + b[0]) / 2 + 0.001, (a[1] + b[1]) / 2]]
        line.append(coords[-1])
        summary = {"distance": round(metres, 1), "duration": round(seconds, 1)}
        if fmt == "geojson":
            return 200, {"type": "FeatureCollection", "bbox": [],
                         "features": [{"type": "Feature", "properties": {"summary": summary, "segments": []},
                                       "geometry": {"type": "LineString", "coordinates": line}}],
                         "metadata": {"service": "routing"}}
        return 200, {"routes": [{"summary": summary, "segments": [], "geometry": line}],
                     "metadata": {"service": "routing"}}

    # ------------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                parts = self.path.split("?")[0].strip("/").split("/")
                kind = parts[1] if len(parts) > 1 and parts[0] == "v2" else "unknown"
                with server._lock:
                    server.requests.append({"kind": kind, "path": self.path, "body": body,
                                            "authorization": self.headers.get("Authorization")})
                    n = len(server.requests)
                misbehave = server.mode != "ok" and (server.fail_first == 0 or n <= server.fail_first)
                if misbehave and server.mode == "429":
                    self._send(429, {"error": {"code": 429, "message": "Rate Limit Exceeded"}})
                    return
                if misbehave and server.mode == "500":
                    self._send(500, {"error": {"code": 6099, "message": "Unknown internal error."}})
                    return
                if misbehave and server.mode == "sleep":
                    time.sleep(server.sleep_seconds)
                if kind == "matrix" and len(parts) >= 3:
                    self._send(*server.matrix(body | {"profile": parts[2]}))
                elif kind == "directions" and len(parts) >= 3:
                    self._send(*server.directions(body, parts[3] if len(parts) > 3 else "json"))
                else:
                    self._send(404, {"error": {"code": 404, "message": f"no endpoint {self.path}"}})

        return Handler
