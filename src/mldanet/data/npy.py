"""Reading ``.npy`` / ``.npz`` files without ever running code hidden in them.

``np.load(..., allow_pickle=True)`` unpickles object arrays, and a pickle can call any Python
function (``os.system`` included). Yet monodepth2's ``gt_depths.npz`` (and ours, for
compatibility) stores its maps as an object array of float arrays, which numpy pickles inside
the ``.npy``. :func:`read_object_array` reads such a pickle with an unpickler that builds only
NumPy arrays and dtypes: every other global the pickle names is refused before it is called.

Numeric arrays never need a pickle: :func:`load_npy` reads them with ``allow_pickle=False``, and
every error names the file and says what to do, never numpy's advice to "load it unsafely".
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from mldanet.paths import require_file

# NumPy 2 moved numpy.core to numpy._core; pickles written by either name the module they came from.
_NUMPY_CORE = getattr(np, "_core", None) or np.core


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """What ``_codecs.encode`` is asked in a protocol-2 pickle: bytes spelt as a latin-1 string.

    Python 3 pickles ``bytes`` (an array's raw data) that way at protocols 0-2, which numpy used
    for ``np.save`` before 1.17 (monodepth2's era). Only that use is honoured.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not raw array data")
    return text.encode("latin1")


# Every global an object array of numeric arrays pickles to, under the names NumPy 1.x (numpy.core)
# and 2.x (numpy._core) write; checked with pickletools on numpy 2's np.save (protocol 4), numpy
# 1.17+ (protocol 3) and pre-1.17 / Python 2 files (protocol 2, bytes through _codecs.encode).
# _frombuffer is what protocol 5 uses for array data; scalar builds one NumPy number (dtype + raw
# bytes), the elements of an N×H×W object array of numbers.
SAFE_GLOBALS = {
    ("numpy.core.multiarray", "scalar"): _NUMPY_CORE.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _NUMPY_CORE.multiarray.scalar,
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _NUMPY_CORE.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _NUMPY_CORE.numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle named a global outside :data:`SAFE_GLOBALS` (it is never imported nor called)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can only build NumPy arrays, dtypes and plain Python containers."""

    def find_class(self, module: str, name: str):
        # GLOBAL, STACK_GLOBAL, INST, OBJ and the extension registry all resolve names here, so
        # nothing else callable can reach REDUCE.
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(module, name) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not array data")


def read_header(handle: IO[bytes], path: str | Path, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``handle``, left just after its header."""
    try:
        version = npy_format.read_magic(handle)
    except (ValueError, OSError, EOFError):
        raise ValueError(
            f"{what} {path} is not a NumPy .npy array (it lacks the .npy signature): write it with numpy.save"
        ) from None
    readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(
            f"{what} {path} is a .npy file of format {version[0]}.{version[1]}, not 1.0 or 2.0: "
            "write it again with numpy.save"
        )
    try:
        return readers[version](handle)
    except (ValueError, OSError, EOFError, SyntaxError):
        raise ValueError(f"{what} {path} has a damaged .npy header: write it again with numpy.save") from None


def refuse_objects(path: str | Path, what: str) -> ValueError:
    """The error for an object array where numbers are expected (it is never unpickled)."""
    return ValueError(
        f"{what} {path} holds Python objects (an object array), not numbers: it was refused unread, since "
        "unpickling could run code; save a numeric array with numpy.save"
    )


def read_numeric(handle: IO[bytes], path: str | Path, what: str) -> np.ndarray:
    """The numeric array of the ``.npy`` stream ``handle`` (at its start), read with ``allow_pickle=False``."""
    start = handle.tell()
    _, _, dtype = read_header(handle, path, what)
    if dtype.hasobject:
        raise refuse_objects(path, what)
    handle.seek(start)
    try:
        return npy_format.read_array(handle, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{what} {path} is truncated or damaged ({str(error).splitlines()[0]}): write it again") from None


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """The numeric array saved in the ``.npy`` file ``path``; ``what`` names it in errors ("depth hint").

    Object arrays are refused without being unpickled; a missing path, a folder, a file that is
    not a ``.npy`` or one cut short each give one line naming the file.
    """
    path = require_file(path, what)
    with open(path, "rb") as handle:
        return read_numeric(handle, path, what)


def npy_header(path: str | Path, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the numeric array in the ``.npy`` file ``path``, from its header alone (the
    data is not read); an object array is refused as by :func:`load_npy`."""
    path = require_file(path, what)
    with open(path, "rb") as handle:
        shape, _, dtype = read_header(handle, path, what)
    if dtype.hasobject:
        raise refuse_objects(path, what)
    return shape, dtype


def read_object_array(handle: IO[bytes], path: str | Path, what: str) -> np.ndarray:
    """The object array pickled in a ``.npy`` stream positioned after its header, built by :class:`ArrayUnpickler`.

    ``encoding="latin1"`` reads Python 2 pickles (their byte strings decode 1:1), as monodepth2's
    loader does.
    """
    try:
        value = ArrayUnpickler(handle, encoding="latin1").load()
    except ForbiddenGlobal as error:
        raise ValueError(
            f"{what} {path} holds a pickle that would call {error.qualified_name}, which no array of numbers needs: "
            "refused without running it (if the file is yours, write it again; otherwise do not use it)"
        ) from None
    except Exception as error:  # noqa: BLE001 - a malformed pickle fails in many ways; none of them ran code
        raise ValueError(
            f"{what} {path} holds a damaged pickled array ({type(error).__name__}: {error}): write it again"
        ) from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{what} {path} holds a pickled {type(value).__name__}, not an array: write it again")
    return value


def npz_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Array name → member name of an ``.npz`` (``data`` → ``data.npy``)."""
    return {name[:-4]: name for name in archive.namelist() if name.endswith(".npy")}


def load_npz(path: str | Path, what: str, allow_objects: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``; the keys in ``allow_objects`` may be object arrays.

    An allowed object array is rebuilt by :func:`read_object_array` (NumPy arrays only); any
    other object array is refused unread.
    """
    path = require_file(path, what)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"{what} {path} is not a NumPy .npz archive: write it with numpy.savez") from None
    arrays = {}
    with archive:
        for key, member in npz_members(archive).items():
            try:
                with archive.open(member) as handle:
                    start = handle.tell()
                    _, _, dtype = read_header(handle, f"{path}[{key}]", what)
                    if dtype.hasobject:
                        if key not in allow_objects:
                            raise refuse_objects(f"{path}[{key}]", what)
                        arrays[key] = read_object_array(handle, path, what)
                    else:
                        handle.seek(start)
                        arrays[key] = read_numeric(handle, f"{path}[{key}]", what)
            except (zipfile.BadZipFile, EOFError, OSError) as error:
                raise ValueError(f"{what} {path} is a damaged .npz archive ({error}): write it again") from None
    return arrays
