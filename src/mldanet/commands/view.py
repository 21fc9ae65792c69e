"""``mldanet view``: a local page to look at predictions: input, depth, 3-D point cloud (see :mod:`mldanet.view`)."""

from __future__ import annotations

import argparse
import signal
import typing

from mldanet.config import DeviceChoice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (or run folder): runs on uploads, gives the camera")
    parser.add_argument("--folder", help="a `mldanet predict --out` folder to browse (its NAME_depth.npy files)")
    parser.add_argument("--images", action="append", default=[], metavar="DIR",
                        help="where the folder's input images are (NAME.jpg, ...; default: the folder itself); repeatable")
    parser.add_argument("--camera", help="camera file (YAML/JSON: K in pixels and image_size) for the point cloud "
                                         "(default: the checkpoint's training camera)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument("--device", choices=typing.get_args(DeviceChoice), default="auto",
                        help="where uploads run: auto takes CUDA when available (default)")
    parser.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default: 25)")


def run(args: argparse.Namespace) -> int:
    from mldanet.device import resolve_device
    from mldanet.models.checkpoint import load_depth_net
    from mldanet.paths import require_dir
    from mldanet.view.predictions import checkpoint_camera
    from mldanet.view.server import Viewer, start_server

    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb {args.max_upload_mb:g} must be positive")
    folder = require_dir(args.folder, "predictions folder --folder") if args.folder else None
    images = [require_dir(path, "input images folder --images") for path in args.images]
    device = resolve_device(args.device)
    net, config = load_depth_net(args.checkpoint, device)
    normalised_K, camera = checkpoint_camera(config, args.camera)
    viewer = Viewer(
        net, config, device, normalised_K, camera, str(args.checkpoint), folder=folder,
        image_folders=images + ([folder] if folder is not None else []),
        max_upload_bytes=int(args.max_upload_mb * 2**20),
    )
    if folder is not None and not viewer.names:
        raise FileNotFoundError(f"predictions folder --folder {folder} holds no NAME_depth.npy (write some with `mldanet predict --out`)")
    # A process started with SIGINT ignored (inherited from a parent that ignores it) would never
    # stop on Ctrl-C or `kill -INT`: the server stops on it whatever it inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server = start_server(viewer, args.host, args.port)
    found = f", {len(viewer.names)} predictions from {folder}" if folder is not None else ""
    print(f"mldanet view: {server.url}  ({camera}{found}; Ctrl-C stops)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {args.host}: anyone who can reach this machine can upload images", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("mldanet view: stopped", flush=True)
    finally:
        server.server_close()
    return 0

