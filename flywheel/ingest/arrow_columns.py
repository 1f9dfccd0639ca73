"""Python values -> Arrow arrays without `pyarrow.array`.

`pyarrow.array` imports pandas on its first call in a process (to ask whether the input is a pandas
object), and that import costs about 0.3 s of CPU: more than parsing 20,000 log lines, paid again by
every ingest worker process. These builders assemble the same arrays from buffers (one join and one
length pass per column, in C) and never touch pandas.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def column(values: list[Any] | tuple[Any, ...], kind: pa.DataType) -> pa.Array:
    """An array of `kind` (large_string, int64, float64 or timestamp[us]) from Python values."""
    if pa.types.is_large_string(kind):
        return strings(values)
    if pa.types.is_timestamp(kind):
        return _fixed(values, kind, np.int64, _micros)
    dtype = np.int64 if pa.types.is_int64(kind) else np.float64
    return _fixed(values, kind, dtype, None)


def strings(values: list[Any] | tuple[Any, ...]) -> pa.Array:
    """large_string from str, UTF-8 bytes or None; bytes that are not UTF-8 raise ArrowInvalid."""
    count = len(values)
    nulls = values.count(None)
    if nulls == count:
        return pa.nulls(count, pa.large_string())
    first = next(v for v in values if v is not None)
    empty: str | bytes = "" if first.__class__ is str else b""
    present = [empty if v is None else v for v in values] if nulls else values
    try:
        joined = empty.join(present)  # type: ignore[arg-type]
    except TypeError:  # str and bytes mixed: make it all bytes
        present = [v.encode() if v.__class__ is str else v for v in present]
        empty, joined = b"", b"".join(present)
    sizes: Any = map(len, present)
    if isinstance(joined, str):
        data = joined.encode()
        if len(data) != len(joined):  # not all ASCII: characters are not bytes, measure each value
            sizes = (len(v.encode()) for v in present)
    else:
        data = joined
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.fromiter(sizes, dtype=np.int64, count=count), out=offsets[1:])
    buffers = [_validity(values, nulls), pa.py_buffer(offsets), pa.py_buffer(data)]
    array = pa.Array.from_buffers(pa.large_string(), count, buffers, nulls)
    if isinstance(joined, bytes):
        array.validate(full=True)  # the bytes must be UTF-8, as pyarrow.array checks
    return array


def utf8_strings(data: bytes | bytearray, sizes: Any) -> pa.Array:
    """large_string without nulls from the values' UTF-8 bytes laid end to end and their sizes
    (any buffer of int64, e.g. array("q")); raises ArrowInvalid when the bytes are not UTF-8."""
    count = len(sizes)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(sizes, dtype=np.int64, count=count), out=offsets[1:])
    if offsets[-1] != len(data):
        raise ValueError(f"sizes add up to {offsets[-1]} bytes, the data holds {len(data)}")
    array = pa.Array.from_buffers(pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    array.validate(full=True)
    return array


def booleans(mask: np.ndarray) -> pa.Array:
    """A boolean array (no nulls) from a numpy bool mask, e.g. for Table.filter."""
    bits = pa.py_buffer(np.packbits(mask, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, bits])


def _fixed(values: Any, kind: pa.DataType, dtype: Any, convert: Any) -> pa.Array:
    count = len(values)
    nulls = values.count(None)
    if nulls == count:
        return pa.nulls(count, kind)
    present = [0 if v is None else v for v in values] if nulls else values
    data = np.array(present)  # plain Python numbers: converted in C, the type inferred
    # Only what pyarrow.array takes without loss: integers for integer columns, numbers for floats.
    accepted = "iuf" if dtype is np.float64 else "i"
    if data.dtype.kind not in accepted or data.shape != (count,):
        if convert is None:
            raise TypeError(f"cannot store {_kinds(present)} values as {kind}")
        data = np.fromiter(map(convert, present), dtype=dtype, count=count)
    data = data.astype(dtype, copy=False)
    return pa.Array.from_buffers(kind, count, [_validity(values, nulls), pa.py_buffer(data)], nulls)


def _kinds(values: Any) -> str:
    return "/".join(sorted({type(v).__name__ for v in values}))


def _micros(value: Any) -> int:
    """Microseconds since the epoch of an int (already microseconds) or a datetime (naive: UTC)."""
    if value.__class__ is int:
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"cannot store {type(value).__name__} as a timestamp")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - _EPOCH) // _MICROSECOND


def _validity(values: Any, nulls: int) -> pa.Buffer | None:
    if not nulls:
        return None
    present = np.fromiter((v is not None for v in values), dtype=np.bool_, count=len(values))
    return pa.py_buffer(np.packbits(present, bitorder="little"))
