"""``mldanet view``: a local page to look at depth predictions (input, depth, 3-D point cloud).

* :mod:`mldanet.view.predictions`: what the page shows: a :class:`Prediction` (depth, input image,
  pixel intrinsics) from an uploaded image or a ``mldanet predict`` output folder, and the point cloud
  back-projected from it.
* :mod:`mldanet.view.server`: the standard library's ``ThreadingHTTPServer`` serving the page and
  the predictions (JSON, float32 little-endian binaries, JPEG).
* :mod:`mldanet.view.page`: the one self-contained HTML page (inline CSS and JavaScript, a 2-D
  canvas point-cloud renderer); nothing is fetched from elsewhere, so it works offline.
Why the standard library and not Gradio: docs/ARCHITECTURE.md ("The viewer").
"""
