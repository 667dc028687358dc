"""A standard dill pickle as a list of parts, the large buffers left where they are.

:func:`dump_parts` pickles with protocol 5 and lets large contiguous buffers (numpy
arrays, ``bytes``, ``bytearray``) go *out of band*; it then splices each one back in
place as the in-band opcode the pickler would have written (``BYTEARRAY8`` or
``BYTES8``). The parts joined are an ordinary protocol 5 pickle that any unpickler
(a worker, ``pydaisi``, ``dill.loads``) reads, but nothing joins them here: an upload
sends them one after the other, and the large ones are views of the caller's objects.

Example:
    >>> import dill
    >>> parts = dump_parts({"x": b"a" * (1 << 20)})
    >>> dill.loads(b"".join(parts))["x"] == b"a" * (1 << 20)
    True
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import sys
from typing import Any

import dill

from ._errors import DaisiSerializationError

__all__ = ["OUT_OF_BAND_MIN", "dump_parts", "parts_size"]

OUT_OF_BAND_MIN = 1 << 16
"""Buffers at least this large are not copied into the pickle."""

_MAX_SCAN = 1 << 22
"""A pickle (without its large buffers) longer than this is joined instead of scanned."""

_NEXT_BUFFER = pickle.NEXT_BUFFER
_READONLY_BUFFER = pickle.READONLY_BUFFER
_BYTES8 = pickle.BINBYTES8
_BYTEARRAY8 = pickle.BYTEARRAY8
_FRAME = pickle.FRAME


def _failure(value: Any, param: str | None, exc: BaseException) -> DaisiSerializationError:
    where = f"argument {param!r}" if param else "the value"
    return DaisiSerializationError(
        f"{where} of type {type(value).__name__!r} can't be serialized: "
        f"{type(exc).__name__}: {exc}",
        param=param,
    )


class _Pickler(dill.Pickler):  # type: ignore[misc]
    """dill, but a large contiguous numpy array goes as protocol 5 buffer (dill's own
    reduction copies the data into a ``bytes`` first)."""

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        np = sys.modules.get("numpy")  # never imported here: only seen if in use
        if (
            np is not None
            and type(obj) is np.ndarray
            and obj.nbytes >= OUT_OF_BAND_MIN
            and id(obj) not in self.memo
        ):
            reduced = obj.__reduce_ex__(5)
            if len(reduced) == 2 and type(reduced[1][0]) is pickle.PickleBuffer:
                self.save_reduce(*reduced, obj=obj)
                return
        super().save(obj, save_persistent_id)


def dump_parts(value: Any, *, param: str | None = None) -> list[memoryview]:
    """``value`` as dill protocol 5 bytes, in parts (large buffers are not copied).

    Raises :class:`DaisiSerializationError` naming ``param`` if impossible.
    """
    buffers: list[memoryview] = []

    def keep_out(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: the pickler copies it in band
            return True
        if raw.nbytes < OUT_OF_BAND_MIN:
            return True
        buffers.append(raw)
        return False

    out = io.BytesIO()
    try:
        _Pickler(out, protocol=5, buffer_callback=keep_out).dump(value)
    except Exception as exc:
        raise _failure(value, param, exc) from exc
    data = out.getbuffer()
    if not buffers:
        return [data]
    if len(data) > _MAX_SCAN:  # a huge graph of small objects too: one copy is cheaper
        return [memoryview(b"".join(_splice(data, buffers)))]
    return _splice(data, buffers)


def _splice(data: memoryview, buffers: list[memoryview]) -> list[memoryview]:
    """The in-band pickle of an out-of-band one: each ``NEXT_BUFFER`` (with its
    ``READONLY_BUFFER``) becomes ``BYTEARRAY8`` (``BYTES8``) and the buffer's bytes.

    ``FRAME`` opcodes are dropped (frames are optional and the spliced ones would have
    the wrong length); memo indices are unchanged, as no ``MEMOIZE`` is added.
    """
    parts: list[memoryview] = []
    start = 0  # start of the data not yet copied to parts
    pending = iter(buffers)
    skip_readonly = -1
    for op, _arg, pos in pickletools.genops(io.BytesIO(data)):
        assert pos is not None
        code = op.code.encode("latin-1")
        if code == _FRAME:
            parts.append(data[start:pos])
            start = pos + 9  # the opcode and its 8-byte length
        elif code == _NEXT_BUFFER:
            buffer = next(pending)
            readonly = data[pos + 1 : pos + 2] == _READONLY_BUFFER
            parts.append(data[start:pos])
            header = (_BYTES8 if readonly else _BYTEARRAY8) + struct.pack("<Q", buffer.nbytes)
            parts.append(memoryview(header))
            parts.append(buffer)
            start = pos + 1
            skip_readonly = pos + 1 if readonly else -1
        elif code == _READONLY_BUFFER and pos == skip_readonly:
            start = pos + 1
    parts.append(data[start:])
    return [p for p in parts if p.nbytes]


def parts_size(parts: list[memoryview]) -> int:
    """The number of bytes in ``parts``."""
    return sum(p.nbytes for p in parts)
