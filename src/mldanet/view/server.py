"""The viewer's HTTP server: the standard library's ``ThreadingHTTPServer``, one page, a small API.

Routes (``ID`` is an item's integer id from ``/api/items``):

* ``GET /``: the page (:mod:`mldanet.view.page`),
* ``GET /api/items``: JSON: the checkpoint, camera, unit, upload limit and the items,
* ``GET /api/items/ID``: JSON: name, size, fx, fy, cx, cy (pixels of the depth map), near/far, points,
* ``GET /api/items/ID/depth``: h×w float32 little-endian, row-major,
* ``GET /api/items/ID/cloud``: N×3 float32 little-endian points (x right, y down, z forward) then N×3 uint8 RGB,
* ``GET /api/items/ID/image``: the input at the depth map's size (JPEG),
* ``POST /api/predict``: the body is an image file (header ``X-File-Name``: its name, URL-encoded);
  the depth network runs on it and the answer is the new item's JSON.

Errors answer JSON ``{"error": "..."}`` with a 4xx status (the user's input) or 500, never a
traceback; the page shows the message. Uploads stay in memory (the last :data:`KEPT_UPLOADS`).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
import torch
from torch import nn

from mldanet.config import Config
from mldanet.view.page import page_html
from mldanet.view.predictions import (
    Prediction, decode_upload, depth_range, folder_names, load_folder_prediction, predict_image,
)

KEPT_UPLOADS = 8
CACHED_FOLDER_ITEMS = 4
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class RequestError(Exception):
    """A request the server refuses: its HTTP status and the message the page shows."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Viewer:
    """What the server serves: the network (for uploads), the camera and the items.

    Item ids: a folder's frames are 0..F-1 in name order; uploads continue from F.
    """

    net: nn.Module
    config: Config
    device: torch.device
    normalised_K: np.ndarray  # 3×3
    camera: str  # where the camera came from
    checkpoint: str
    folder: Path | None = None
    image_folders: list[Path] = field(default_factory=list)
    max_upload_bytes: int = 25 * 2**20
    names: list[str] = field(default_factory=list)
    uploads: "OrderedDict[int, Prediction]" = field(default_factory=OrderedDict)
    _cache: "OrderedDict[int, Prediction]" = field(default_factory=OrderedDict)
    _next_upload: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _net_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.folder is not None:
            self.names = folder_names(self.folder)
        self._next_upload = len(self.names)

    @property
    def unit(self) -> str:
        return "m" if self.config.train.metric else "relative"

    def summary(self) -> dict[str, Any]:
        """The page's header and item list."""
        with self._lock:
            uploads = [(index, p.name) for index, p in self.uploads.items()]
        items = [{"id": i, "name": name, "source": "folder"} for i, name in enumerate(self.names)]
        items += [{"id": i, "name": name, "source": "upload"} for i, name in uploads]
        return {
            "checkpoint": self.checkpoint, "camera": self.camera, "unit": self.unit, "metric": self.config.train.metric,
            "network": f"{self.config.model.variant} {self.config.model.backbone} at "
                       f"{self.config.data.width}×{self.config.data.height} on {self.device}",
            "folder": str(self.folder) if self.folder else None, "max_upload_bytes": self.max_upload_bytes,
            "items": items,
        }

    def item(self, index: int) -> Prediction:
        """The prediction with id ``index`` (a folder frame is read on first use and cached)."""
        with self._lock:
            if index in self.uploads:
                return self.uploads[index]
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
        if not 0 <= index < len(self.names):
            kept = f" (only the last {KEPT_UPLOADS} uploads are kept)" if len(self.names) <= index < self._next_upload else ""
            raise RequestError(HTTPStatus.NOT_FOUND, f"no item {index}{kept}")
        assert self.folder is not None
        prediction = load_folder_prediction(self.folder, self.names[index], self.image_folders, self.normalised_K)
        with self._lock:
            self._cache[index] = prediction
            while len(self._cache) > CACHED_FOLDER_ITEMS:
                self._cache.popitem(last=False)
        return prediction

    def predict_upload(self, data: bytes, name: str) -> int:
        """Run the network on an uploaded image; its new item id."""
        rgb = decode_upload(data, name)
        with self._net_lock:  # one forward pass at a time: they would only compete for the cores
            prediction = predict_image(self.net, self.config, rgb, self.device, self.normalised_K, name)
        with self._lock:
            index = self._next_upload
            self._next_upload += 1
            self.uploads[index] = prediction
            while len(self.uploads) > KEPT_UPLOADS:
                self.uploads.popitem(last=False)
        return index


def item_meta(index: int, prediction: Prediction, unit: str) -> dict[str, Any]:
    """The JSON the page reads before an item's binaries."""
    near, far = depth_range(prediction.depth)
    xyz, _, stride = prediction.cloud()
    height, width = prediction.depth.shape
    K = prediction.K
    return {
        "id": index, "name": prediction.name, "source": prediction.source, "note": prediction.note,
        "width": width, "height": height, "fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
        "near": near, "far": far, "max": float(np.nanmax(prediction.depth)) if prediction.depth.size else 0.0,
        "unit": unit, "points": int(len(xyz)), "stride": stride, "has_image": prediction.image is not None,
    }


_ITEM = re.compile(r"^/api/items/(\d+)(?:/(depth|cloud|image))?$")


class Handler(BaseHTTPRequestHandler):
    server: "ViewerServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the terminal shows the URL and errors, not every request

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _answer(self, route: Any) -> None:
        try:
            self._check_host()
            status, content_type, body = route(urlsplit(self.path).path)
        except RequestError as error:
            status, content_type, body = error.status, "application/json", _json({"error": str(error)})
        except ValueError as error:  # the user's input: an upload or a file of the folder
            status, content_type, body = HTTPStatus.BAD_REQUEST, "application/json", _json({"error": str(error)})
        except Exception as error:  # noqa: BLE001 - one line on the page and the terminal, not a traceback
            message = f"{type(error).__name__}: {error}"
            print(f"mldanet view: error on {self.command} {self.path}: {message}", file=sys.stderr)
            status, content_type, body = HTTPStatus.INTERNAL_SERVER_ERROR, "application/json", _json({"error": message})
        if self.command == "POST" and status != HTTPStatus.OK:
            self.close_connection = True  # an unread body would be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _check_host(self) -> None:
        """On a loopback address, answer only requests for that address: a web page elsewhere
        cannot then reach the viewer through a DNS name that resolves to 127.0.0.1."""
        if self.server.bound_host not in LOOPBACK_HOSTS:
            return
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in LOOPBACK_HOSTS:
            raise RequestError(HTTPStatus.FORBIDDEN, f"host {host!r} is not this viewer's address")

    def _get(self, path: str) -> tuple[HTTPStatus, str, bytes]:
        viewer = self.server.viewer
        if path in ("/", "/index.html"):
            return HTTPStatus.OK, "text/html; charset=utf-8", page_html().encode()
        if path == "/api/items":
            return HTTPStatus.OK, "application/json", _json(viewer.summary())
        match = _ITEM.match(path)
        if not match:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no page {path}")
        index, part = int(match.group(1)), match.group(2)
        prediction = viewer.item(index)
        if part is None:
            return HTTPStatus.OK, "application/json", _json(item_meta(index, prediction, viewer.unit))
        if part == "depth":
            return HTTPStatus.OK, "application/octet-stream", prediction.depth.astype("<f4").tobytes()
        if part == "cloud":
            xyz, rgb, _ = prediction.cloud()
            return HTTPStatus.OK, "application/octet-stream", xyz.astype("<f4").tobytes() + rgb.tobytes()
        if prediction.image is None:
            raise RequestError(HTTPStatus.NOT_FOUND, prediction.note or f"item {index} has no input image")
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(prediction.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise RuntimeError(f"cannot encode item {index}'s image as JPEG")
        return HTTPStatus.OK, "image/jpeg", jpeg.tobytes()

    def _post(self, path: str) -> tuple[HTTPStatus, str, bytes]:
        if path != "/api/predict":
            raise RequestError(HTTPStatus.NOT_FOUND, f"no page {path} to post to")
        viewer = self.server.viewer
        name = Path(unquote(self.headers.get("X-File-Name") or "upload")).name[:200] or "upload"
        data = self._read_body(viewer.max_upload_bytes, name)
        index = viewer.predict_upload(data, name)
        return HTTPStatus.OK, "application/json", _json(item_meta(index, viewer.item(index), viewer.unit))

    def _read_body(self, limit: int, name: str) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, f"upload {name}: the request has no Content-Length") from None
        if length > limit:
            # Read what was sent (within reason), so the browser sees the answer instead of a reset connection.
            if length <= 64 * limit:
                for start in range(0, length, 2**20):
                    self.rfile.read(min(2**20, length - start))
            else:
                self.close_connection = True
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"upload {name} is {length / 2**20:.1f} MB, over this viewer's {limit / 2**20:g} MB (--max-upload-mb)",
            )
        data = self.rfile.read(length)
        if len(data) < length:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"upload {name} was cut short ({len(data)} of {length} bytes)")
        return data


def _json(value: Any) -> bytes:
    return json.dumps(value, default=float).encode()


class ViewerServer(ThreadingHTTPServer):
    """The server of one :class:`Viewer`; :meth:`server_close` ends its request threads and waits for them.

    Not daemon threads: a process that exits while one is still alive can abort in a native thread's
    destructor (``terminate called without an active exception``, seen after Ctrl-C). Closing shuts
    the open connections down first, so a browser's idle keep-alive connection does not hold it up.
    """

    daemon_threads = False

    def __init__(self, viewer: Viewer, host: str = "127.0.0.1", port: int = 0):
        self.viewer = viewer
        self.bound_host = host
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        if ":" in host:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        import socket

        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the other side
                pass
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return  # the browser went away mid-answer (a reload, a closed tab)
        print(f"mldanet view: error answering {client_address[0]}: {type(error).__name__}: {error}", file=sys.stderr)


def start_server(viewer: Viewer, host: str = "127.0.0.1", port: int = 0) -> ViewerServer:
    """Bind the viewer to ``host:port`` (port 0: a free one); a port in use or a host that is not
    this machine's is a ValueError naming it. Serve with ``serve_forever()``."""
    import errno
    import socket

    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a port number (0 to 65535; 0 picks a free one)")
    try:
        return ViewerServer(viewer, host, port)
    except socket.gaierror as error:
        raise ValueError(f"--host {host} is not an address of this machine ({error.strerror})") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} on {host} is in use: give another --port, or --port 0 for a free one") from None
        if error.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise ValueError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        raise
