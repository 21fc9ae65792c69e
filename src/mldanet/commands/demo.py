"""``mldanet demo``: synth → hints → train → evaluate → predict → report (see :mod:`mldanet.demo`)."""

from __future__ import annotations

import argparse

import torch

from mldanet.demo import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    parser.add_argument("--tiny", action="store_true", help="a one-minute run for CI: tiny drive, few steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="training steps (default: 200, or 24 with --tiny)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run_demo(args.out, tiny=args.tiny, seed=args.seed, steps=args.steps)
    return 0
