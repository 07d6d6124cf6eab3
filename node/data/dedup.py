"""Exact and near duplicates: record hashes, word-shingle MinHash signatures, LSH candidates.

Deterministic: hashes are SHA-256, MinHash uses a fixed seed and scheme, and
records are visited in order, so the first occurrence is kept and later ones
are marked. Near duplicates are LSH candidates confirmed by Jaccard >= the
threshold: exact Jaccard of shingle sets inside a shard, the MinHash estimate
against shards vetted earlier (only their signatures are kept).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from node.data.canonical import canonical

_WORD = re.compile(r"\w+")
SCHEME = "affine32"  # datasketch 2.x hashing scheme; stored signatures are only comparable within one scheme


@dataclass(frozen=True)
class DedupConfig:
    min_words: int = 4  # shorter records ("Note:", "See also:") are structural boilerplate, exempt from dedup
    shingle: int = 3  # word n-gram size; 3 keeps paragraph-length records at dozens of shingles
    near_threshold: float = 0.8  # Jaccard at or above which two records are near duplicates
    lsh_threshold: float = 0.7  # LSH candidate threshold, below near_threshold to limit LSH false negatives
    num_perm: int = 128  # MinHash permutations: estimate std ~0.035 at J=0.8
    seed: int = 1  # fixed so every validator computes the same signatures
    max_dup_frac: float = 0.5  # a shard fails above this; real documentation repeats paragraphs across topics


def record_hash(record: bytes) -> bytes:
    return hashlib.sha256(record).digest()


def shingles(text: str, n: int) -> set[bytes]:
    # Canonical text: a copy respelled with fullwidth letters, look-alikes or format characters
    # shingles exactly like its original.
    words = _WORD.findall(canonical(text).lower())
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def exact_duplicates(raws: Sequence[bytes], eligible: Sequence[int], prior_hashes: set[bytes]) -> dict[int, str]:
    """Record index -> what it repeats, for eligible records equal to an earlier one or to a vetted record."""
    out: dict[int, str] = {}
    first_seen: dict[bytes, int] = {}
    for i in eligible:
        h = record_hash(raws[i])
        if h in prior_hashes:
            out[i] = "repeats a record of a shard vetted earlier"
        elif h in first_seen:
            out[i] = f"repeats record {first_seen[h]}"
        else:
            first_seen[h] = i
    return out


def signatures(texts: Sequence[str], cfg: DedupConfig) -> list[MinHash]:
    return MinHash.bulk(
        [sorted(shingles(t, cfg.shingle)) for t in texts], num_perm=cfg.num_perm, seed=cfg.seed, scheme=SCHEME
    )


def near_duplicates(
    texts: Sequence[str], candidates: Sequence[int], prior_signatures: Sequence[np.ndarray], cfg: DedupConfig
) -> dict[int, str]:
    """Record index -> what it nearly repeats (Jaccard >= ``cfg.near_threshold``), first occurrence kept."""
    sets = {i: shingles(texts[i], cfg.shingle) for i in candidates}
    sigs = signatures([texts[i] for i in candidates], cfg)
    lsh = MinHashLSH(threshold=cfg.lsh_threshold, num_perm=cfg.num_perm)
    for k, row in enumerate(prior_signatures):
        lsh.insert(("prior", k), _minhash(row, cfg))
    near: dict[int, str] = {}
    for i, sig in zip(candidates, sigs):
        best: tuple[float, str] | None = None
        for key in lsh.query(sig):
            if key[0] == "prior":
                j = sig.jaccard(_minhash(prior_signatures[key[1]], cfg))
                what = "a record of a shard vetted earlier"
            else:
                j = jaccard(sets[i], sets[key[1]])
                what = f"record {key[1]}"
            if j >= cfg.near_threshold and (best is None or j > best[0]):
                best = (j, what)
        if best is not None:
            near[i] = f"nearly repeats {best[1]} (Jaccard {best[0]:.2f})"
        else:
            lsh.insert(("self", i), sig)
    return near


def _minhash(row: np.ndarray, cfg: DedupConfig) -> MinHash:
    return MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashvalues=row, scheme=SCHEME)
