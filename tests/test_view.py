"""``mldanet view``: the predictions it shows, its HTTP API, Ctrl-C, and the page in headless Chromium."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mldanet.cli import main
from mldanet.config import Config
from mldanet.data.kitti import NORMALISED_K
from mldanet.geometry import backproject, scale_intrinsics
from mldanet.models.checkpoint import load_depth_net
from mldanet.predict import MANIFEST, predict_paths
from mldanet.view.page import magma_lut, page_html
from mldanet.view.predictions import (
    checkpoint_camera, cloud_points, decode_upload, depth_range, display_size, find_input_image, fit_to_display,
    folder_names, load_folder_prediction, pixel_intrinsics, predict_image,
)
from mldanet.view.server import KEPT_UPLOADS, Viewer, item_meta, start_server
from tests.checkpoints import write_checkpoint

HEIGHT, WIDTH = 64, 96
REPO = Path(__file__).resolve().parents[1]


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def street(height: int = 90, width: int = 150) -> np.ndarray:
    """A picture with structure (gradients and a box), H×W×3 uint8 RGB."""
    y, x = np.mgrid[:height, :width]
    rgb = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    rgb[height // 3 : height // 2, width // 4 : width // 2] = (230, 40, 40)
    return rgb


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "baseline.pt", "baseline", HEIGHT, WIDTH)[0]


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, checkpoint) -> dict[str, Path]:
    """Two images and what ``mldanet predict`` wrote for them (into another folder)."""
    root = tmp_path_factory.mktemp("predicted")
    images = root / "images"
    (images / "sub").mkdir(parents=True)
    cv2.imwrite(str(images / "a.png"), cv2.cvtColor(street(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(images / "sub" / "b.jpg"), cv2.cvtColor(street(60, 80), cv2.COLOR_RGB2BGR))
    out = root / "out"
    summary = predict_paths(checkpoint, [images], out, device="cpu", progress=False)
    assert sorted(summary.names) == ["a", "sub/b"]
    return {"images": images, "out": out}


@pytest.fixture(scope="module")
def viewer(checkpoint, predicted) -> Viewer:
    net, config = load_depth_net(checkpoint, "cpu")
    K, camera = checkpoint_camera(config)
    return Viewer(net, config, torch.device("cpu"), K, camera, str(checkpoint), folder=predicted["out"],
                  image_folders=[predicted["images"], predicted["out"]], max_upload_bytes=200_000)


@pytest.fixture(scope="module")
def server(viewer):
    server = start_server(viewer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), data


# -- predictions ---------------------------------------------------------------------------------


def test_pixel_intrinsics_match_scale_intrinsics():
    expected = scale_intrinsics(torch.from_numpy(NORMALISED_K), 375, 1242)[:3, :3].numpy()
    np.testing.assert_allclose(pixel_intrinsics(NORMALISED_K, 375, 1242), expected)
    np.testing.assert_allclose(pixel_intrinsics(NORMALISED_K[:3, :3], 375, 1242), expected)


def test_cloud_points_match_geometry_backproject():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 50, (7, 11)).astype(np.float32)
    depth[2, 3], depth[4, 5], depth[0, 0] = 0.0, np.nan, -1.0  # no depth: left out
    K = pixel_intrinsics(NORMALISED_K, 7, 11)
    K4 = np.eye(4)
    K4[:3, :3] = K
    reference = backproject(torch.from_numpy(depth[None, None].astype(np.float64)), torch.linalg.inv(torch.from_numpy(K4))[None])
    reference = reference[0, :3].T.numpy().reshape(7, 11, 3)
    image = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)

    xyz, rgb, stride = cloud_points(depth, K, image)
    valid = np.isfinite(depth) & (depth > 0)
    assert stride == 1 and len(xyz) == valid.sum() == 7 * 11 - 3
    np.testing.assert_allclose(xyz, reference[valid], rtol=1e-6)
    np.testing.assert_array_equal(rgb, image[valid])

    xyz, rgb, stride = cloud_points(depth, K, None, max_points=20)
    assert stride == 3  # 2 (ceil(sqrt(77 / 20))) would keep 4 × 6 = 24 pixels
    sub = valid[::3, ::3]
    assert len(xyz) == sub.sum() <= 20
    np.testing.assert_allclose(xyz, reference[::3, ::3][sub], rtol=1e-6)
    assert (rgb == 200).all()

    with pytest.raises(ValueError, match="H×W map"):
        cloud_points(depth[None], K)


def test_display_size_and_fit():
    assert display_size(375, 1242) == (375, 1242)
    assert display_size(3000, 4000) == (960, 1280)
    assert display_size(4000, 10, max_side=100) == (100, 1)
    with pytest.raises(ValueError, match="0×5"):
        display_size(5, 0)
    depth = np.arange(3000 * 2000, dtype=np.float32).reshape(2000, 3000)
    small, image = fit_to_display(depth, np.zeros((1000, 1500, 3), np.uint8), max_side=300)
    assert small.shape == (200, 300) and image.shape == (200, 300, 3) and small.dtype == np.float32
    # area averaging: each display pixel is the mean of its 10×10 block
    assert small[0, 0] == pytest.approx(depth[:10, :10].mean(), rel=1e-5)


def test_depth_range_is_the_1st_and_95th_percentile_of_valid_depth():
    depth = np.linspace(1, 100, 100, dtype=np.float32).reshape(10, 10)
    depth[0, :5] = 0
    valid = depth[depth > 0]
    near, far = depth_range(depth)
    assert (near, far) == pytest.approx((np.percentile(valid, 1), np.percentile(valid, 95)))
    assert depth_range(np.zeros((3, 3))) == (1.0, 2.0)
    assert depth_range(np.full((3, 3), 4.0))[1] > 4.0  # a flat map still has a colour range


def test_decode_upload_reads_images_and_names_bad_ones():
    rgb = street()
    np.testing.assert_array_equal(decode_upload(png_bytes(rgb), "street.png"), rgb)
    with pytest.raises(ValueError, match="upload notes.txt is not an image"):
        decode_upload(b"hello, world\n" * 10, "notes.txt")
    with pytest.raises(ValueError, match="upload empty.jpg is empty"):
        decode_upload(b"", "empty.jpg")
    ok, jpeg = cv2.imencode(".jpg", rgb)
    with pytest.raises(ValueError, match="upload cut.jpg is a truncated JPEG"):
        decode_upload(jpeg.tobytes()[: len(jpeg) // 2], "cut.jpg")
    with pytest.raises(ValueError, match=r"upload big.png is 150×90, over the 0.01 MP"):
        decode_upload(png_bytes(rgb), "big.png", max_pixels=10_000)


def test_checkpoint_camera(tmp_path):
    config = Config()
    K, source = checkpoint_camera(config)
    np.testing.assert_array_equal(K, NORMALISED_K[:3, :3])
    assert "KITTI" in source
    camera = tmp_path / "camera.yaml"
    camera.write_text("K: [[500, 0, 320], [0, 400, 120], [0, 0, 1]]\nimage_size: [640, 240]\n")
    config.data.dataset, config.data.data_path = "folder", str(tmp_path)
    K, source = checkpoint_camera(config)
    np.testing.assert_allclose(K, [[500 / 640, 0, 0.5], [0, 400 / 240, 0.5], [0, 0, 1]])
    assert str(camera) in source
    config.data.data_path = str(tmp_path / "gone")
    K, source = checkpoint_camera(config)
    np.testing.assert_array_equal(K, NORMALISED_K[:3, :3])
    assert "gone" in source and "--camera" in source
    K, source = checkpoint_camera(config, camera)  # --camera wins
    assert K[0, 0] == pytest.approx(500 / 640) and str(camera) in source
    (tmp_path / "bad.yaml").write_text("K: [[1, 2]]\nimage_size: [10, 10]\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        checkpoint_camera(config, tmp_path / "bad.yaml")


def test_folder_names_from_the_manifest_or_the_files(tmp_path):
    (tmp_path / "x").mkdir()
    for name in ("a", "x/b", "c"):
        np.save(tmp_path / f"{name}_depth.npy", np.ones((2, 2), np.float32))
    (tmp_path / MANIFEST).write_text("a_disp.npy\na_depth.npy\na_depth.npy\nx/b_depth.npy\ngone_depth.npy\nx/b_depth.png\n")
    assert folder_names(tmp_path) == ["a", "x/b"]  # c is not predict's, gone is gone
    (tmp_path / MANIFEST).unlink()
    assert folder_names(tmp_path) == ["a", "c", "x/b"]
    (tmp_path / MANIFEST).write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / MANIFEST))):
        folder_names(tmp_path)


def test_a_manifest_cannot_name_files_outside_its_folder(tmp_path):
    folder, outside = tmp_path / "pred", tmp_path / "private"
    folder.mkdir()
    outside.mkdir()
    np.save(outside / "secret_depth.npy", np.ones((2, 2), np.float32))
    np.save(folder / "a_depth.npy", np.ones((2, 2), np.float32))
    (folder / MANIFEST).write_text(f"a_depth.npy\n../private/secret_depth.npy\n{outside / 'secret_depth.npy'}\n")
    assert folder_names(folder) == ["a"]


def test_find_input_image(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    (second / "s").mkdir(parents=True)
    first.mkdir()
    (second / "s" / "f[1].JPG").write_bytes(b"x")  # glob characters in the name, upper-case extension
    (first / "s_depth.png").write_bytes(b"x")
    (first / "notes.txt").write_bytes(b"x")
    assert find_input_image("s/f[1]", [first, second]) == second / "s" / "f[1].JPG"
    (first / "notes.png").write_bytes(b"x")
    assert find_input_image("notes", [first, second]) == first / "notes.png"
    assert find_input_image("s", [first, second]) is None


def test_load_folder_prediction(predicted, tmp_path):
    out, images = predicted["out"], predicted["images"]
    prediction = load_folder_prediction(out, "sub/b", [images], NORMALISED_K)
    np.testing.assert_array_equal(prediction.depth, np.load(out / "sub" / "b_depth.npy"))
    assert prediction.image.shape == (60, 80, 3) and prediction.note == ""
    np.testing.assert_allclose(prediction.K, pixel_intrinsics(NORMALISED_K, 60, 80))
    alone = load_folder_prediction(out, "a", [tmp_path], NORMALISED_K)
    assert alone.image is None and "no input image a.*" in alone.note and "--images" in alone.note
    np.save(tmp_path / "bad_depth.npy", np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "bad_depth.npy"))):
        load_folder_prediction(tmp_path, "bad", [], NORMALISED_K)
    np.save(tmp_path / "obj_depth.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="refused unread"):
        load_folder_prediction(tmp_path, "obj", [], NORMALISED_K)
    cv2.imwrite(str(tmp_path / "other.png"), np.zeros((10, 50, 3), np.uint8))  # not the depth map's picture
    shutil.copy(out / "a_depth.npy", tmp_path / "other_depth.npy")
    other = load_folder_prediction(tmp_path, "other", [tmp_path], NORMALISED_K)
    assert other.image is None and "50×10" in other.note


def test_predict_image_matches_mldanet_predict(viewer, predicted):
    rgb = cv2.cvtColor(cv2.imread(str(predicted["images"] / "a.png")), cv2.COLOR_BGR2RGB)
    prediction = predict_image(viewer.net, viewer.config, rgb, viewer.device, viewer.normalised_K, "a.png")
    np.testing.assert_allclose(prediction.depth, np.load(predicted["out"] / "a_depth.npy"), rtol=1e-5)
    np.testing.assert_array_equal(prediction.image, rgb)
    shrunk = predict_image(viewer.net, viewer.config, rgb, viewer.device, viewer.normalised_K, "a.png", max_side=75)
    assert shrunk.depth.shape == (45, 75)
    np.testing.assert_allclose(shrunk.K, pixel_intrinsics(viewer.normalised_K, 45, 75))


# -- the server ------------------------------------------------------------------------------------


def test_items_and_their_binaries(server, viewer):
    status, _, body = request(server, "GET", "/api/items")
    summary = json.loads(body)
    assert status == 200 and summary["unit"] == "m" and summary["metric"] is True
    assert [(i["id"], i["name"]) for i in summary["items"][:2]] == [(0, "a"), (1, "sub/b")]
    status, _, body = request(server, "GET", "/api/items/1")
    meta = json.loads(body)
    prediction = viewer.item(1)
    assert meta == json.loads(json.dumps(item_meta(1, prediction, "m")))
    assert (meta["width"], meta["height"], meta["has_image"]) == (80, 60, True)
    assert meta["fx"] == pytest.approx(NORMALISED_K[0, 0] * 80) and meta["cy"] == pytest.approx(30)
    _, kind, body = request(server, "GET", "/api/items/1/depth")
    assert kind == "application/octet-stream"
    np.testing.assert_array_equal(np.frombuffer(body, "<f4").reshape(60, 80), prediction.depth)
    _, _, body = request(server, "GET", "/api/items/1/cloud")
    xyz, rgb, _ = cloud_points(prediction.depth, prediction.K, prediction.image)
    n = meta["points"]
    assert len(body) == 15 * n == 15 * len(xyz)
    np.testing.assert_array_equal(np.frombuffer(body[: 12 * n], "<f4").reshape(n, 3), xyz)
    np.testing.assert_array_equal(np.frombuffer(body[12 * n :], np.uint8).reshape(n, 3), rgb)
    _, kind, body = request(server, "GET", "/api/items/1/image")
    decoded = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert kind == "image/jpeg" and decoded.shape == (60, 80, 3)
    status, kind, body = request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html") and body.decode() == page_html()


def test_page_is_self_contained():
    page = page_html()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not fetch from elsewhere"
    assert "__MAGMA__" not in page and len(magma_lut()) == 768
    assert magma_lut()[:3] == [0, 0, 3] and magma_lut()[-3:] == [251, 252, 191]  # magma's ends, (0.001, 0.000, 0.014) and (0.987, 0.991, 0.750)


def test_upload_runs_the_network(server, viewer):
    data = png_bytes(street(40, 70))
    status, _, body = request(server, "POST", "/api/predict", data, {"X-File-Name": "my%20street.png"})
    meta = json.loads(body)
    assert status == 200 and meta["name"] == "my street.png" and meta["source"] == "upload"
    assert (meta["width"], meta["height"]) == (70, 40) and meta["points"] == 70 * 40
    expected = predict_image(viewer.net, viewer.config, street(40, 70), viewer.device, viewer.normalised_K, "x")
    np.testing.assert_allclose(viewer.item(meta["id"]).depth, expected.depth, rtol=1e-5)
    _, _, body = request(server, "GET", "/api/items")
    assert {"id": meta["id"], "name": "my street.png", "source": "upload"} in json.loads(body)["items"]


@pytest.mark.parametrize("body, name, status, message", [
    (b"not an image at all", "notes.txt", 400, "upload notes.txt is not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000, "huge.png", 413, "upload huge.png is 0.3 MB, over this viewer's"),
    (b"", "none.png", 400, "upload none.png is empty"),
])
def test_bad_uploads_get_a_message(server, body, name, status, message):
    got, kind, answer = request(server, "POST", "/api/predict", body, {"X-File-Name": name})
    assert (got, kind) == (status, "application/json")
    assert json.loads(answer)["error"].startswith(message)


def test_unknown_paths_and_foreign_hosts(server, viewer):
    status, _, body = request(server, "GET", "/api/items/999")
    assert status == 404 and json.loads(body)["error"] == "no item 999"
    status, _, body = request(server, "GET", "/etc/passwd")
    assert status == 404 and "no page /etc/passwd" in json.loads(body)["error"]
    status, _, body = request(server, "GET", "/api/items", headers={"Host": "attacker.example:80"})
    assert status == 403 and "attacker.example" in json.loads(body)["error"]


def test_only_the_last_uploads_are_kept(viewer):
    data = png_bytes(street(32, 32))
    ids = [viewer.predict_upload(data, f"u{i}.png") for i in range(KEPT_UPLOADS + 1)]
    assert list(viewer.uploads) == ids[1:]
    with pytest.raises(Exception, match=f"only the last {KEPT_UPLOADS} uploads are kept"):
        viewer.item(ids[0])


def test_start_server_names_a_busy_port(viewer, server):
    port = server.server_address[1]
    with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is in use: .*--port 0"):
        start_server(viewer, "127.0.0.1", port)
    with pytest.raises(ValueError, match="--port 70000"):
        start_server(viewer, "127.0.0.1", 70000)
    with pytest.raises(ValueError, match="--host no-such-host.invalid"):
        start_server(viewer, "no-such-host.invalid", 0)


# -- the command -----------------------------------------------------------------------------------


def test_command_refuses_bad_folders(checkpoint, tmp_path, capsys):
    assert main(["view", "--checkpoint", str(checkpoint), "--folder", str(tmp_path / "gone")]) == 2
    assert f"predictions folder --folder not found: {tmp_path / 'gone'}" in capsys.readouterr().err
    assert main(["view", "--checkpoint", str(checkpoint), "--folder", str(tmp_path)]) == 2
    assert f"{tmp_path} holds no NAME_depth.npy" in capsys.readouterr().err
    assert main(["view", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_command_serves_until_ctrl_c(checkpoint, predicted):
    command = [sys.executable, "-m", "mldanet", "view", "--checkpoint", str(checkpoint), "--folder", str(predicted["out"]),
               "--port", "0", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    # started with SIGINT ignored, as under a parent that ignores it (a test runner's worker, `cmd &`):
    # Ctrl-C still stops the server
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url and "2 predictions" in line, line + process.stderr.read()
        connection = http.client.HTTPConnection("127.0.0.1", int(url.group(1)), timeout=30)
        connection.request("GET", "/api/items")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and out.strip() == "mldanet view: stopped", err[-3000:]
    assert "Traceback" not in err, err


# -- the page in a browser -------------------------------------------------------------------------

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


def chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={profile}", "--window-size=1280,800", "--virtual-time-budget=15000", *args],
            capture_output=True, text=True, timeout=90,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def status_of(dom: str) -> dict[str, str]:
    match = re.search(r'<div id="status"([^>]*)>([^<]*)<', dom)
    assert match, dom[-2000:]
    attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', match.group(1)))
    return {**attributes, "text": match.group(2)}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium, chromium-browser or google-chrome binary (.ci/run installs chromium)")
def test_page_draws_depth_and_cloud_in_chromium(server, viewer, tmp_path):
    url = server.url
    status = status_of(chromium("--dump-dom", f"{url}?item=1"))
    assert status["state"] == "ready", status
    assert status["item"] == "1" and int(status["depth-pixels"]) == 60 * 80
    assert 0 < int(status["points"]) <= viewer.item(1).cloud()[0].shape[0]

    _, _, body = request(server, "POST", "/api/predict", png_bytes(street(50, 90)), {"X-File-Name": "up.png"})
    uploaded = json.loads(body)["id"]
    status = status_of(chromium("--dump-dom", f"{url}?item={uploaded}"))
    assert status["state"] == "ready" and int(status["depth-pixels"]) == 50 * 90 and int(status["points"]) > 0

    status = status_of(chromium("--dump-dom", f"{url}?item=999"))
    assert status["state"] == "error" and status["text"] == "no item 999"

    shot = tmp_path / "view.png"
    chromium("--hide-scrollbars", f"--screenshot={shot}", f"{url}?item=0")
    picture = cv2.imread(str(shot))
    assert picture.shape == (800, 1280, 3)
    # the point-cloud panel (lower right) is not just its background
    cloud = picture[450:750, 300:1240].reshape(-1, 3)
    assert len(np.unique(cloud, axis=0)) > 50
