"""``mldanet.data.npy``: every way a .npy / .npz can be wrong gives one line naming the file, and no
message passes on numpy's advice to load a file unsafely."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

from mldanet.data.npy import load_npy, load_npz, npy_header


def npy_bytes(array: np.ndarray, version=(1, 0)) -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, version=version, allow_pickle=True)
    return buffer.getvalue()


def test_numeric_arrays_load_exactly(tmp_path):
    array = np.random.default_rng(0).uniform(0, 80, (5, 7)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    loaded = load_npy(tmp_path / "a.npy", "depth hint")
    assert loaded.dtype == np.float32 and np.array_equal(loaded, array)
    assert npy_header(tmp_path / "a.npy", "depth hint") == ((5, 7), np.dtype(np.float32))
    (tmp_path / "v2.npy").write_bytes(npy_bytes(array, version=(2, 0)))
    assert np.array_equal(load_npy(tmp_path / "v2.npy", "depth hint"), array)


def test_bad_npy_files_name_the_file(tmp_path):
    def message(name: str, data: bytes, error=ValueError) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(error) as raised:
            load_npy(path, "disparity file")
        text = str(raised.value)
        assert "allow_pickle" not in text and "unsafe" not in text and "\n" not in text
        return text.replace(str(path), name)

    good = npy_bytes(np.ones((4, 4), np.float32))
    assert message("garbage.npy", b"garbage") == (
        "disparity file garbage.npy is not a NumPy .npy array (it lacks the .npy signature): write it with numpy.save"
    )
    assert message("header.npy", good[:10] + b"{'descr': <f4" + good[23:]) == (
        "disparity file header.npy has a damaged .npy header: write it again with numpy.save"
    )
    assert message("short.npy", good[:-8]).startswith("disparity file short.npy is truncated or damaged (")
    assert message("v3.npy", good[:6] + b"\x03\x00" + good[8:]) == (
        "disparity file v3.npy is a .npy file of format 3.0, not 1.0 or 2.0: write it again with numpy.save"
    )
    objects = np.empty(2, dtype=object)
    objects[:] = [np.ones(2), np.ones(3)]
    assert message("objects.npy", npy_bytes(objects)) == (
        "disparity file objects.npy holds Python objects (an object array), not numbers: it was refused unread, "
        "since unpickling could run code; save a numeric array with numpy.save"
    )
    with pytest.raises(FileNotFoundError, match=f"disparity file not found: {tmp_path / 'absent.npy'}"):
        load_npy(tmp_path / "absent.npy", "disparity file")
    with pytest.raises(IsADirectoryError, match=f"disparity file {tmp_path} is a folder, not a file"):
        load_npy(tmp_path, "disparity file")


def test_bad_object_arrays_and_archives_name_the_file(tmp_path):
    objects = np.empty(1, dtype=object)
    objects[0] = np.ones((2, 2))
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, npy_format.header_data_from_array_1_0(objects))

    def archive(name: str, member: bytes) -> str:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zipped:
            zipped.writestr("data.npy", member)
        with pytest.raises(ValueError) as raised:
            load_npz(path, "ground-truth file", allow_objects=("data",))
        return str(raised.value).replace(str(path), name)

    pickled = pickle.dumps(objects, protocol=4)
    assert archive("cut.npz", header.getvalue() + pickled[: len(pickled) // 2]).startswith(
        "ground-truth file cut.npz holds a damaged pickled array ("
    )
    assert archive("list.npz", header.getvalue() + pickle.dumps([1, 2])) == (
        "ground-truth file list.npz holds a pickled list, not an array: write it again"
    )
    np.savez(tmp_path / "good.npz", data=np.ones((2, 3, 4), np.float32))
    corrupt = bytearray((tmp_path / "good.npz").read_bytes())
    corrupt[corrupt.index(b"\x93NUMPY") + 200] ^= 0xFF  # a flipped byte in the data: the CRC fails
    (tmp_path / "corrupt.npz").write_bytes(bytes(corrupt))
    with pytest.raises(ValueError) as raised:
        load_npz(tmp_path / "corrupt.npz", "ground-truth file")
    assert str(raised.value).startswith(f"ground-truth file {tmp_path / 'corrupt.npz'} is a damaged .npz archive (")
