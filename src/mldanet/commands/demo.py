"""``mldanet demo``: synth → hints → train → evaluate → predict → report (see :mod:`mldanet.demo`)."""

from __future__ import annotations

import argparse

import torch

from mldanet.demo import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    parser.add_argument("--tiny", action="store_true", help="a one-minute run for CI: tiny drive, few steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rendered drives and of training (default: 0)")
    parser.add_argument("--steps", type=int,
                        help="training steps (default: 200 on a CPU, 3000 on a GPU, 24 with --tiny; ignored with --minutes)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto (default): CUDA when PyTorch sees a GPU, which trains the GPU recipe "
                        "(presets/demo_gpu.yaml: 640×192, batch 8), else the CPU")
    parser.add_argument("--minutes", type=float,
                        help="the whole demo's wall-time budget: the first steps are timed and the training "
                        "length (and its cosine schedule) fitted to what the other stages leave")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the demo's training preset, e.g. --set model.structure_attention=residual "
                        "(repeatable; the report records it)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run_demo(args.out, tiny=args.tiny, seed=args.seed, steps=args.steps, device=args.device, minutes=args.minutes,
             overrides=args.overrides)
    return 0
