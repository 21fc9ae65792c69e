"""The ``mldanet`` command line: one sub-command per job, each in its own module of :mod:`mldanet.commands`.

A command module exposes ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their command runs, so ``mldanet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("mldanet.commands.train", "train MLDA-Net (M, S or MS; presets, YAML, overrides; torchrun DDP)"),
    "evaluate": ("mldanet.commands.evaluate", "the 7 depth metrics of a checkpoint (KITTI Eigen, or your folder's depth maps) or of disparities"),
    "predict": ("mldanet.commands.predict", "depth for images, folders and videos (.npy and colour-mapped .png)"),
    "export-gt": ("mldanet.commands.export_gt", "ground-truth depth from Velodyne scans into gt_depths.npz"),
    "hints": ("mldanet.commands.hints", "precompute fused-SGM depth hints (parallel, resumable)"),
    "splits": ("mldanet.commands.splits", "list or download the KITTI split files"),
    "check-data": ("mldanet.commands.check_data", "check a folder of your own sequences before training on it"),
    "frames": ("mldanet.commands.frames", "extract a video's frames into a sequence folder (--dataset folder)"),
    "synth": ("mldanet.commands.synth", "render synthetic drives (KITTI raw layout, or the folder layout of --dataset folder)"),
    "demo": ("mldanet.commands.demo", "synth -> hints -> train -> evaluate -> predict -> report, on a CPU in minutes"),
    "export-onnx": ("mldanet.commands.export_onnx", "export the depth network to ONNX, checked against PyTorch"),
    "presets": ("mldanet.commands.presets", "list the training presets (the paper's table rows and the demo's recipe)"),
    "view": ("mldanet.commands.view", "a local page to look at predictions: input, depth in metres, 3-D point cloud"),
}


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2, no traceback."""


# A path given on the command line that is missing, of the wrong kind or not ours to write: the
# user's input (exit code 2). Every other OSError is the machine's state (exit code 1).
USER_OS_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line.

    A DataLoader worker's failure reaches the main process as "Caught ValueError in DataLoader
    worker process 0. Original Traceback (...)" with the worker's traceback; its last line holds
    the original message.
    """
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        name, sep, message = last.partition(": ")
        text = message if sep and all(part.isidentifier() for part in name.split(".")) else last
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mldanet", description="MLDA-Net self-supervised monocular depth")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_line) in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=help_line)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_line, description=help_line)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def debugging(argv: list[str]) -> bool:
    """``--debug`` (anywhere before the command's own arguments end) or ``MLDANET_DEBUG=1``: tracebacks
    for every error, user mistakes included."""
    import os

    return "--debug" in argv or os.environ.get("MLDANET_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(argv)
    argv = [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        parser = argparse.ArgumentParser(prog="mldanet", description="MLDA-Net self-supervised monocular depth")
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        for name, (_, help_line) in COMMANDS.items():
            sub.add_parser(name, help=help_line)
        parser.parse_args(argv or ["--help"])
        return 2
    args = build_parser(command).parse_args(argv)
    if debug:
        return int(args._run(args) or 0)
    try:
        return int(args._run(args) or 0)
    except (UserError, ValueError, *USER_OS_ERRORS) as error:
        print(f"mldanet {command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        # The machine's state (a full disk, a read-only file system, a lost mount), not a bug: one
        # line naming the file, and no traceback to scroll past.
        print(f"mldanet {command}: error: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mldanet {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - anything else is ours, not the user's
        print(
            f"mldanet {command}: internal error, a bug in mldanet: {type(error).__name__}: {one_line(error)}\n"
            f"  rerun with --debug (or MLDANET_DEBUG=1) for the traceback, and report it with the command line",
            file=sys.stderr,
        )
        return 1

