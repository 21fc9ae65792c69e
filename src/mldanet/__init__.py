"""MLDA-Net: self-supervised monocular depth estimation (multi-level features + dual attention)."""

__version__ = "0.1.0"
