"""``mldanet export-onnx``: the depth network as ONNX, checked against PyTorch (see :mod:`mldanet.export`)."""

from __future__ import annotations

import argparse
import sys

from mldanet.export import TOLERANCE, ExportCheckError, export_onnx
from mldanet.paths import require_writable_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (or run folder)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--height", type=int, help="input height (default: the checkpoint's)")
    parser.add_argument("--width", type=int, help="input width (default: the checkpoint's)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    parser.add_argument("--all-scales", action="store_true", help="also output disp_1..disp_3")


def run(args: argparse.Namespace) -> int:
    require_writable_file(args.out, "output file --out")
    try:
        difference = export_onnx(args.checkpoint, args.out, args.height, args.width, args.opset, args.all_scales)
    except ExportCheckError as error:
        print(f"mldanet export-onnx: check FAILED: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}; onnxruntime vs PyTorch max |diff| = {difference:.3g} (tolerance {TOLERANCE:g})")
    return 0
