"""``mldanet presets``: the shipped presets, one line each."""

from __future__ import annotations

import argparse

from mldanet.config import load_preset, preset_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show", metavar="NAME", help="print the full resolved config of one preset as YAML")


def run(args: argparse.Namespace) -> int:
    import yaml

    if args.show:
        print(yaml.safe_dump(load_preset(args.show).to_dict(), sort_keys=False), end="")
        return 0
    for name in preset_names():
        config = load_preset(name)
        print(f"{name:28s} {config.description}")
    return 0
