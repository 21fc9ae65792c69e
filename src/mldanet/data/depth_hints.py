"""Depth hints on disk (docs/METHOD.md §8.4): one fused-SGM depth per target image, what ``mldanet hints`` writes.

A hint is :func:`mldanet.sgm.fused_sgm_depth` of the image and its stereo partner resized to the
hint size, with fx = 0.58·W (pixels) and baseline 0.1, so it is in training units at any
resolution; it is saved where its dataset's ``hint_name`` says (KITTI:
``<hints_dir>/<date>/<drive>/image_0{2|3}/<frame>.npy``), beside ``hints_settings.json`` (what they
were computed with, checked before any is reused). The jobs come from the dataset
(:meth:`mldanet.data.base.FrameDataset.hint_jobs`); this module only runs them.
SGBM is single-threaded, so :func:`compute_hints` spreads pairs over spawned worker processes
that never import torch. A :class:`Shard` of the jobs (:func:`shard_jobs`) lets N processes on N
machines share one hints folder: the shares are disjoint, each hint is written atomically, and
the settings file is agreed on (:func:`agree_settings_file`), never overwritten by a shard.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mldanet.data.images import load_image, resize_image
from mldanet.data.npy import npy_header
from mldanet.units import TRAINING_BASELINE
from mldanet.paths import require_writable_dir, write_atomic
from mldanet.sgm import create_matcher, fused_sgm_depth

SETTINGS_FILE = "hints_settings.json"  # beside the hints: what they were computed with (see check_hint_settings)


def save_npy_atomic(array: np.ndarray, path: Path) -> None:
    """``np.save`` through a temporary file and a rename: an interrupted write leaves no partial ``.npy``."""
    write_atomic(path, lambda handle: np.save(handle, array))


@dataclass(frozen=True)
class HintSettings:
    """What every hint job shares (sent once to each worker process)."""

    height: int
    width: int
    block_sizes: tuple[int, ...]
    num_disparities: tuple[int, ...]


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (1-based) of ``count`` disjoint shares of a run's hint jobs."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` → ``Shard(2, 4)``: K of N, 1 ≤ K ≤ N; anything else is an error naming ``text``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"--shard {text!r} is not K/N (two whole numbers, such as 1/4)")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ValueError(f"--shard {text}: N (the number of shards) must be at least 1")
    if not 1 <= index <= count:
        raise ValueError(f"--shard {text}: K must be between 1 and N={count} (K counts from 1)")
    return Shard(index, count)


@dataclass(frozen=True)
class HintJob:
    """One hint: the target image, its stereo partner, the hint file, and the camera's fx ÷ image width."""

    base: str
    lookup: str
    out: str
    normalised_fx: float
    base_is_right: bool = False


def compute_hint(settings: HintSettings, job: HintJob) -> float:
    """Compute and save one hint; returns its valid fraction."""
    base, lookup = (resize_image(load_image(path), settings.height, settings.width) for path in (job.base, job.lookup))
    depth = fused_sgm_depth(
        base,
        lookup,
        job.normalised_fx * settings.width,
        TRAINING_BASELINE,
        job.base_is_right,
        settings.block_sizes,
        settings.num_disparities,
    )
    save_npy_atomic(depth, Path(job.out))
    return float(np.count_nonzero(depth)) / depth.size


def shard_jobs(jobs: list[HintJob], out_dir: str | Path, shard: Shard) -> list[HintJob]:
    """``shard``'s share of ``jobs``: sorted by output path relative to ``out_dir`` (code-point order,
    so it does not depend on the machine, its locale or where it mounts ``out_dir``), every
    ``shard.count``-th from the ``shard.index``-th. Jobs writing the same file count once, so the
    shares are disjoint, together are every job, and differ in size by at most one."""
    by_file = {Path(os.path.relpath(job.out, out_dir)).as_posix(): job for job in reversed(jobs)}
    ordered = [by_file[key] for key in sorted(by_file)]
    return ordered[shard.index - 1 :: shard.count]


def settings_record(settings: HintSettings, layout: dict[str, object]) -> dict[str, object]:
    """What the saved hints depend on (not where they are read from or written to), as JSON values;
    ``layout``: what the dataset adds (KITTI: the image type and its normalised fx)."""
    return {
        "height": settings.height,
        "width": settings.width,
        **layout,
        "block_sizes": list(settings.block_sizes),
        "num_disparities": list(settings.num_disparities),
        "baseline": TRAINING_BASELINE,
    }


def read_settings_file(path: Path) -> dict[str, object]:
    """The record a previous run left in ``path``; an unreadable one is an error naming it."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a hints settings file ({error}): delete it and pass --overwrite") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{path} is not a hints settings file (no JSON object): delete it and pass --overwrite")
    return stored


def differing_settings(stored: dict[str, object], asked: dict[str, object]) -> list[str]:
    """``"width 640 there, 1024 asked"`` for every setting ``stored`` has otherwise than ``asked``."""
    return [f"{key} {stored.get(key)} there, {value} asked" for key, value in asked.items() if stored.get(key) != value]


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists (then False, and ``path`` is left as it is).

    ``data`` is written whole to a temporary file beside ``path`` and hard-linked into place, which
    fails when the name exists: a reader never sees a partial file, and of racing creators exactly
    one wins. Where the file system has no hard links, ``O_EXCL`` creates it (a reader racing the
    one write may then see it empty).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        try:
            os.link(temporary, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some FUSE or SMB mounts)
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            return True
    finally:
        os.unlink(temporary)


def agree_settings_file(path: Path, asked: dict[str, object]) -> None:
    """Record ``asked`` in ``path`` unless a record is there, which must then have ``asked``'s values.

    Safe for processes racing on one folder (shards): the record is created exclusively
    (:func:`create_exclusive`), and whoever finds it created compares it like any earlier record,
    so racing runs with equal settings all go on and, with different ones, all but the first refuse.
    """
    if not path.exists() and create_exclusive(path, (json.dumps(asked, indent=2) + "\n").encode()):
        return
    differences = differing_settings(read_settings_file(path), asked)
    if differences:
        raise ValueError(
            f"the hints in {path.parent} were computed with other settings ({path}: {'; '.join(differences)}): "
            "pass --overwrite to compute them again with these, or choose another --out"
        )


def check_hint_settings(
    out_dir: Path, settings: HintSettings, layout: dict[str, object], present: list[Path], overwrite: bool
) -> None:
    """Refuse to resume hints computed with other settings; record this run's settings beside the hints.

    ``present``: the hint files of this run's lines that exist already. With a settings file, its
    record must equal this run's (size, SGBM block sizes and disparity ranges, image type and the
    constants depths are scaled by). Without one (hints from before it was written), every present
    file must at least have the asked size. ``overwrite`` recomputes instead of refusing (this
    run's lines only: hints of other lines in ``out_dir`` stay as they were) and replaces the
    record; without it an existing record is never rewritten (:func:`agree_settings_file`).
    """
    path = out_dir / SETTINGS_FILE
    asked = settings_record(settings, layout)
    if overwrite:
        write_atomic(path, lambda handle: handle.write((json.dumps(asked, indent=2) + "\n").encode()))
        return
    if not path.exists():
        for hint in present:
            shape, _ = npy_header(hint, "depth hint")
            if tuple(shape) != (settings.height, settings.width):
                size = "×".join(map(str, shape[::-1]))
                raise ValueError(
                    f"{hint} is {size}, not the {settings.width}×{settings.height} asked, and {out_dir} has no "
                    f"{SETTINGS_FILE} to say how its hints were computed: pass --overwrite to compute them again, "
                    "or choose another --out"
                )
    agree_settings_file(path, asked)


_worker_settings: HintSettings | None = None


def _init_worker(settings: HintSettings) -> None:
    global _worker_settings
    cv2.setNumThreads(1)  # one process per core; OpenCV threads would only contend
    _worker_settings = settings


def _worker_job(job: HintJob) -> float:
    assert _worker_settings is not None
    return compute_hint(_worker_settings, job)


@dataclass(frozen=True)
class HintsSummary:
    pairs_done: int
    pairs_skipped: int  # output already present (and not --overwrite)
    pairs_missing: int  # an input image was missing (only with skip_missing)
    mean_valid_fraction: float  # over the pairs computed in this run; nan when none was
    seconds: float
    shard: Shard | None = None  # this run's share of the jobs, when sharded
    shard_jobs: int = 0  # jobs in that share
    total_jobs: int = 0  # jobs of all shards

    @property
    def pairs_per_second(self) -> float:
        return self.pairs_done / self.seconds if self.seconds > 0 else math.nan

    def __str__(self) -> str:
        text = (
            f"{self.pairs_done} hints computed, {self.pairs_skipped} already present, "
            f"{self.pairs_missing} missing inputs; {self.seconds:.1f} s ({self.pairs_per_second:.2f} pairs/s)"
        )
        if self.shard is not None:
            text = f"shard {self.shard}: {self.shard_jobs} of {self.total_jobs} jobs; " + text
        # with nothing computed there is no fraction to report (it would read "nan")
        return text + (f"; mean valid fraction {self.mean_valid_fraction:.3f}" if self.pairs_done else "")


def check_settings(settings: HintSettings, workers: int = 1) -> None:
    """Refuse, naming the flag, settings no hint can be computed with (before any job is made or run)."""
    height, width = settings.height, settings.width
    if height <= 0 or width <= 0:
        raise ValueError(f"hint size {height}×{width} must be positive")
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    for block_size in settings.block_sizes:
        for count in settings.num_disparities:
            create_matcher(block_size, count)  # bad parameters fail here, before any worker starts
    if max(settings.num_disparities) >= width:
        raise ValueError(
            f"--num-disparities {max(settings.num_disparities)} must be below the hint width (--width {width}): "
            "give smaller disparity ranges (multiples of 16) or a larger width"
        )


def run_hint_jobs(
    jobs: list[HintJob],
    out_dir: str | Path,
    settings: HintSettings,
    layout: dict[str, object],
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    skip_missing: bool = False,
    shard: Shard | None = None,
) -> HintsSummary:
    """Compute the hints of ``jobs`` (any dataset's), or of ``shard``'s share of them, into ``out_dir``.

    Existing outputs are skipped unless ``overwrite``, provided they were computed with these
    settings (recorded in ``out_dir/hints_settings.json`` with ``layout``, see
    :func:`check_hint_settings`). A missing input image is an error naming it, or with
    ``skip_missing`` the pair is left out and counted. ``workers`` > 1 uses spawned processes
    (one pair at a time each). ``layout`` must not depend on the share (the caller computes it
    from all jobs), so that every shard records the same settings.
    """
    start = time.perf_counter()
    check_settings(settings, workers)
    require_writable_dir(out_dir, "hints folder")

    total_jobs = len({job.out for job in jobs})
    if shard is not None:
        jobs = shard_jobs(jobs, out_dir, shard)
    present = [] if overwrite else [Path(job.out) for job in jobs if Path(job.out).is_file()]
    check_hint_settings(Path(out_dir), settings, layout, present, overwrite)
    todo, skipped, missing = [], 0, []
    for job in jobs:
        if not overwrite and Path(job.out).is_file():
            skipped += 1
            continue
        absent = [path for path in (job.base, job.lookup) if not Path(path).is_file()]
        if absent:
            missing.append(absent[0])
            continue
        todo.append(job)
    if missing and not skip_missing:
        raise FileNotFoundError(
            f"image not found: {missing[0]} ({len(missing)} pairs lack an image; --skip-missing leaves them out)"
        )

    fractions = []
    desc = "depth hints" if shard is None else f"depth hints, shard {shard} ({len(jobs)} of {total_jobs} jobs)"
    bar = tqdm(total=len(todo), desc=desc, unit="pair", disable=not progress, smoothing=0.1)
    with bar:
        if workers == 1 or len(todo) <= 1:
            for job in todo:
                fractions.append(compute_hint(settings, job))
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(todo)), initializer=_init_worker, initargs=(settings,)) as pool:
                for fraction in pool.imap_unordered(_worker_job, todo):
                    fractions.append(fraction)
                    bar.update()
    return HintsSummary(
        pairs_done=len(fractions),
        pairs_skipped=skipped,
        pairs_missing=len(missing),
        mean_valid_fraction=float(np.mean(fractions)) if fractions else math.nan,
        seconds=time.perf_counter() - start,
        shard=shard,
        shard_jobs=len(jobs),
        total_jobs=total_jobs,
    )
