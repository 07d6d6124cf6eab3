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
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protocol.errors import ShardInputError
from protocol.shards import RecordSchema

KINDS = {".txt": "text", ".jsonl": "json", ".npy": "array"}
Progress = Callable[[int], None]  # called with the number of input bytes just consumed


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one ``shard add`` will walk and parse; each breach is a named ``ShardInputError``."""

    max_files: int = 100_000  # a shard is a unit of trade; more files than this is almost always the wrong directory
    max_dir_depth: int = 64  # deeper trees are generated, not curated, and deep recursion is a crash vector
    max_records: int = 50_000_000  # keeps the record index of one shard well inside memory
    max_json_depth: int = 64  # real documents nest a few levels; thousands of levels only exist to crash parsers


DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class Inputs:
    """The files of one shard: all of one kind, in a deterministic order."""

    files: tuple[Path, ...]
    kind: str  # "text" | "json" | "array"
    total_bytes: int  # sum of file sizes, for progress bars


def show(path: str | os.PathLike[str]) -> str:
    """A file name safe to print: control and format characters (newlines included) are escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(path))


def collect_inputs(paths: Iterable[str | os.PathLike[str]], limits: IngestLimits = DEFAULT_LIMITS) -> Inputs:
    """Expand files and directories (recursively, sorted) into the input files of one shard.

    A path named on the command line is taken as given; inside a directory, a
    symlink whose target leaves that directory is refused, so a link planted in
    a data folder cannot pack files from elsewhere on the contributor's machine.
    """
    found: list[Path] = []
    paths = list(paths)
    for raw in paths:
        path = Path(raw)
        _check_resolvable(path)
        if path.is_dir():
            found.extend(_walk(path, limits, len(found)))
        elif path.is_file():
            if path.suffix not in KINDS:
                raise ShardInputError(f"{show(path)}: unsupported file type {show(path.suffix) or '(none)'}; use .txt, .jsonl or .npy")
            found.append(path)
        else:
            raise ShardInputError(f"{show(path)}: no such file or directory")
        if len(found) > limits.max_files:
            raise ShardInputError(f"more than {limits.max_files} input files; pack them as several shards")
    if not found:
        shown = ", ".join(show(p) for p in paths) or "(no paths)"
        raise ShardInputError(f"no .txt, .jsonl or .npy files found in {shown}")
    kinds = {KINDS[f.suffix] for f in found}
    if len(kinds) > 1:
        raise ShardInputError(f"inputs mix record kinds {sorted(kinds)}; pack text, JSON lines and arrays as separate shards")
    unique = tuple(dict.fromkeys(found))
    return Inputs(unique, kinds.pop(), sum(f.stat().st_size for f in unique))


def _check_resolvable(path: Path) -> None:
    if not path.is_symlink():
        return  # a real file or directory (or a missing path, reported by the caller)
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise ShardInputError(f"{show(path)}: symlink loop; remove the link or point it at a real file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ShardInputError(f"{show(path)}: symlink loop; remove the link or point it at a real file") from None
        raise ShardInputError(f"{show(path)}: {e.strerror}") from None


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


def _walk(top: Path, limits: IngestLimits, already: int) -> list[Path]:
    """Iterative walk (no recursion limit to hit) that never leaves ``top``."""
    root = top.resolve()
    seen: set[tuple[int, int]] = set()
    out: list[Path] = []
    stack: list[tuple[Path, int]] = [(top, 0)]
    while stack:
        d, depth = stack.pop()
        if depth > limits.max_dir_depth:
            raise ShardInputError(
                f"{show(d)}: directories nest more than {limits.max_dir_depth} levels below {show(top)}; flatten the tree"
            )
        st = d.stat()
        if (st.st_dev, st.st_ino) in seen:
            raise ShardInputError(f"{show(d)}: symlink loop (this directory was already visited); remove the link")
        seen.add((st.st_dev, st.st_ino))
        subdirs: list[Path] = []
        for entry in sorted(d.iterdir()):
            if entry.is_symlink():
                _check_resolvable(entry)
                if not _inside(entry.resolve(), root):
                    raise ShardInputError(
                        f"{show(entry)}: symlink points outside the input directory {show(top)}; "
                        "copy the file in or name it on the command line"
                    )
            if entry.is_dir():
                subdirs.append(entry)
            elif entry.is_file() and entry.suffix in KINDS:
                out.append(entry)
                if already + len(out) > limits.max_files:
                    raise ShardInputError(f"more than {limits.max_files} input files under {show(top)}; pack them as several shards")
        stack.extend((s, depth + 1) for s in reversed(subdirs))
    out.sort(key=lambda p: p.parts)
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
    inputs: Inputs, max_record_bytes: int, progress: Progress | None = None, limits: IngestLimits = DEFAULT_LIMITS
) -> tuple[RecordSchema, Iterator[bytes]]:
    """The record schema of ``inputs`` and a generator of their records, in file order."""
    if inputs.kind == "array":
        return _array_schema(inputs.files, max_record_bytes), _counted(_array_records(inputs.files, progress), limits)
    if inputs.kind == "text":
        def gen() -> Iterator[bytes]:
            for path in inputs.files:
                yield from _text_file(path, max_record_bytes, progress)
    else:
        def gen() -> Iterator[bytes]:
            for path in inputs.files:
                yield from _jsonl_file(path, max_record_bytes, progress, limits.max_json_depth)

    return RecordSchema(kind=inputs.kind), _counted(gen(), limits)  # type: ignore[arg-type]


def _counted(records: Iterator[bytes], limits: IngestLimits) -> Iterator[bytes]:
    for n, record in enumerate(records, 1):
        if n > limits.max_records:
            raise ShardInputError(f"more than {limits.max_records} records; pack the inputs as several shards")
        yield record


def json_depth(value: object) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return deepest


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _bracket_depth(body: bytes | str) -> int:
    """Deepest nesting of ``[``/``{`` outside JSON strings, found without parsing."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    bare = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    step = np.isin(bare, _OPEN).astype(np.int32) - np.isin(bare, _CLOSE).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)


def parse_json_record(body: bytes | str, max_depth: int = DEFAULT_LIMITS.max_json_depth) -> dict:
    """One JSONL record as a dict, or ``ValueError`` saying why not (never ``RecursionError``)."""
    # The depth is measured before parsing: the C JSON scanner can overflow the C stack (a crash,
    # not an exception) on deep input before Python's recursion limit is reached.
    if (depth := _bracket_depth(body)) > max_depth:
        raise ValueError(f"JSON nests {depth} levels, more than the {max_depth} allowed")
    try:
        value = json.loads(body)
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError(f"JSON nests deeper than the parser allows (limit {max_depth} levels)") from None
    if not isinstance(value, dict):
        raise ValueError(f"each line must be a JSON object, got {type(value).__name__}")
    if (depth := json_depth(value)) > max_depth:
        raise ValueError(f"JSON nests {depth} levels, more than the {max_depth} allowed")
    return value


def _text_file(path: Path, max_record_bytes: int, progress: Progress | None) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from paragraphs(_bounded_lines(f, max_record_bytes, progress), max_record_bytes, show(path))


def _jsonl_file(path: Path, max_record_bytes: int, progress: Progress | None, max_depth: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for lineno, line in enumerate(_bounded_lines(f, max_record_bytes, progress), 1):
            if len(line) > max_record_bytes:
                raise ShardInputError(f"{show(path)}:{lineno}: line longer than the {max_record_bytes}-byte record limit")
            body = line.strip()
            if not body:
                continue
            try:
                body.decode("utf-8")
                parse_json_record(body, max_depth)
            except UnicodeDecodeError as e:
                raise ShardInputError(f"{show(path)}:{lineno}: invalid UTF-8 ({e.reason})") from None
            except ValueError as e:
                raise ShardInputError(f"{show(path)}:{lineno}: {e}") from None
            yield body


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ShardInputError(f"{show(path)}: not a readable .npy array ({e})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim < 1 or arr.shape[0] == 0:
        raise ShardInputError(f"{show(path)}: need an array with at least one row (one record per row)")
    if arr.dtype.kind not in "biuf":
        raise ShardInputError(f"{show(path)}: dtype {arr.dtype} is not a plain numeric type")
    return arr


def _array_schema(files: tuple[Path, ...], max_record_bytes: int) -> RecordSchema:
    schemas = set()
    for path in files:
        arr = _load_npy(path)
        row_bytes = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
        if row_bytes > max_record_bytes:
            raise ShardInputError(f"{show(path)}: one row is {row_bytes} bytes, above the {max_record_bytes}-byte record limit")
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
