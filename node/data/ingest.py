"""Turn user files into records: .txt (paragraphs), .jsonl (one JSON object per line), .npy (rows).

Every check here is about untrusted input, so every failure names the file
and what to do. Reading is streaming and bounded: no line or record larger
than ``max_record_bytes`` (+1) is ever held in memory, so a 100 MB single
record fails after reading the limit, not after loading 100 MB.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protocol.errors import ShardInputError
from protocol.shards import RecordSchema

KINDS = {".txt": "text", ".jsonl": "json", ".npy": "array"}
Progress = Callable[[int], None]  # called with the number of input bytes just consumed


@dataclass(frozen=True)
class Inputs:
    """The files of one shard: all of one kind, in a deterministic order."""

    files: tuple[Path, ...]
    kind: str  # "text" | "json" | "array"
    total_bytes: int  # sum of file sizes, for progress bars


def collect_inputs(paths: Iterable[str | os.PathLike[str]]) -> Inputs:
    """Expand files and directories (recursively, sorted) into the input files of one shard."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        _check_resolvable(path)
        if path.is_dir():
            found.extend(_walk(path))
        elif path.is_file():
            if path.suffix not in KINDS:
                raise ShardInputError(f"{path}: unsupported file type {path.suffix or '(none)'}; use .txt, .jsonl or .npy")
            found.append(path)
        else:
            raise ShardInputError(f"{path}: no such file or directory")
    if not found:
        shown = ", ".join(str(p) for p in paths) or "(no paths)"
        raise ShardInputError(f"no .txt, .jsonl or .npy files found in {shown}")
    kinds = {KINDS[f.suffix] for f in found}
    if len(kinds) > 1:
        raise ShardInputError(f"inputs mix record kinds {sorted(kinds)}; pack text, JSON lines and arrays as separate shards")
    unique = tuple(dict.fromkeys(found))
    return Inputs(unique, kinds.pop(), sum(f.stat().st_size for f in unique))


def _check_resolvable(path: Path) -> None:
    try:
        path.resolve(strict=path.is_symlink() or path.exists())
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise ShardInputError(f"{path}: symlink loop; remove the link or point it at a real file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ShardInputError(f"{path}: symlink loop; remove the link or point it at a real file") from None
        raise ShardInputError(f"{path}: {e.strerror}") from None


def _walk(top: Path) -> list[Path]:
    seen: set[tuple[int, int]] = set()
    out: list[Path] = []

    def visit(d: Path) -> None:
        st = d.stat()
        if (st.st_dev, st.st_ino) in seen:
            raise ShardInputError(f"{d}: symlink loop (this directory was already visited); remove the link")
        seen.add((st.st_dev, st.st_ino))
        for entry in sorted(d.iterdir()):
            _check_resolvable(entry)
            if entry.is_dir():
                visit(entry)
            elif entry.is_file() and entry.suffix in KINDS:
                out.append(entry)

    visit(top)
    return out


def paragraphs(lines: Iterable[bytes], max_record_bytes: int, where: str = "input") -> Iterator[bytes]:
    """Group lines into paragraphs (runs of non-blank lines), validating UTF-8; bounded memory."""
    current: list[bytes] = []
    size = 0
    offset = 0
    for line in lines:
        if len(line) > max_record_bytes or size + len(line) > max_record_bytes:
            raise ShardInputError(
                f"{where}: a record starting before byte {offset + len(line)} is larger than the "
                f"{max_record_bytes}-byte limit; split it into paragraphs (blank lines) or raise --max-record-bytes"
            )
        if b"\x00" in line:
            raise ShardInputError(f"{where}: NUL byte near byte {offset + line.index(0)}: this looks like binary data, not text")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ShardInputError(
                f"{where}: invalid UTF-8 at byte {offset + e.start} ({e.reason}); convert the file to UTF-8"
            ) from None
        offset += len(line)
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            current.append(stripped)
            size += len(line)
        elif current:
            yield b"\n".join(current)
            current, size = [], 0
    if current:
        yield b"\n".join(current)


def _bounded_lines(f, limit: int, progress: Progress | None) -> Iterator[bytes]:
    while line := f.readline(limit + 1):
        if progress:
            progress(len(line))
        yield line


def text_records(data: bytes, max_record_bytes: int = 1 << 20) -> list[bytes]:
    """Paragraph records of an in-memory UTF-8 text (used for the demo corpus)."""
    return list(paragraphs(data.splitlines(keepends=True), max_record_bytes))


def iter_file_records(
    inputs: Inputs, max_record_bytes: int, progress: Progress | None = None
) -> tuple[RecordSchema, Iterator[bytes]]:
    """The record schema of ``inputs`` and a generator of their records, in file order."""
    if inputs.kind == "array":
        return _array_schema(inputs.files, max_record_bytes), _array_records(inputs.files, progress)
    reader = _text_file if inputs.kind == "text" else _jsonl_file

    def gen() -> Iterator[bytes]:
        for path in inputs.files:
            yield from reader(path, max_record_bytes, progress)

    return RecordSchema(kind=inputs.kind), gen()  # type: ignore[arg-type]


def _text_file(path: Path, max_record_bytes: int, progress: Progress | None) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from paragraphs(_bounded_lines(f, max_record_bytes, progress), max_record_bytes, str(path))


def _jsonl_file(path: Path, max_record_bytes: int, progress: Progress | None) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for lineno, line in enumerate(_bounded_lines(f, max_record_bytes, progress), 1):
            if len(line) > max_record_bytes:
                raise ShardInputError(f"{path}:{lineno}: line longer than the {max_record_bytes}-byte record limit")
            body = line.strip()
            if not body:
                continue
            try:
                value = json.loads(body.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise ShardInputError(f"{path}:{lineno}: invalid UTF-8 ({e.reason})") from None
            except json.JSONDecodeError as e:
                raise ShardInputError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(value, dict):
                raise ShardInputError(f"{path}:{lineno}: each line must be a JSON object, got {type(value).__name__}")
            yield body


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ShardInputError(f"{path}: not a readable .npy array ({e})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim < 1 or arr.shape[0] == 0:
        raise ShardInputError(f"{path}: need an array with at least one row (one record per row)")
    if arr.dtype.kind not in "biuf":
        raise ShardInputError(f"{path}: dtype {arr.dtype} is not a plain numeric type")
    return arr


def _array_schema(files: tuple[Path, ...], max_record_bytes: int) -> RecordSchema:
    schemas = set()
    for path in files:
        arr = _load_npy(path)
        row_bytes = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
        if row_bytes > max_record_bytes:
            raise ShardInputError(f"{path}: one row is {row_bytes} bytes, above the {max_record_bytes}-byte record limit")
        schemas.add((arr.dtype.str, tuple(int(d) for d in arr.shape[1:]) or (1,)))
    if len(schemas) > 1:
        raise ShardInputError(f"arrays disagree on (dtype, row shape): {sorted(schemas)}; pack them separately")
    dtype, shape = schemas.pop()
    return RecordSchema(kind="array", dtype=dtype, shape=shape)


def _array_records(files: tuple[Path, ...], progress: Progress | None) -> Iterator[bytes]:
    for path in files:
        arr = _load_npy(path)
        for row in arr:
            data = np.ascontiguousarray(row).tobytes()
            if progress:
                progress(len(data))
            yield data
