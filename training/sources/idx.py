"""IDX, the file format MNIST and EMNIST ship in: read (gzip-compressed or not) and write (for test data)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def open_idx(path: Path):
    """Open an IDX file (gzip-compressed or not) for reading; the format MNIST and EMNIST ship in."""
    return gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")


def read_idx_header(handle, path: Path) -> tuple[int, ...]:
    """The shape an IDX file's header announces; the handle is left at the first byte of data."""
    head = handle.read(4)
    if len(head) < 4:
        raise ValueError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {head.hex()}).")
    dims = handle.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path} is too short to be an IDX file.")
    return struct.unpack(f">{ndim}I", dims)


def read_idx(path: Path) -> np.ndarray:
    """Read a whole IDX file into memory."""
    with open_idx(path) as handle:
        shape = read_idx_header(handle, path)
        body = np.frombuffer(handle.read(), dtype=np.uint8)  # gzip checks its CRC32 here
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {body.size} bytes; the file is truncated.")
    return body.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file (gzip if the name ends in .gz). Used to build test data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())
