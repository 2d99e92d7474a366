"""Iris templates at rest and in the 1:N search.

- `TemplateCipher`: AES-256-GCM, key in a 0600 file outside the database. The resident id is
  the associated data, so a template copied onto another resident's row does not decrypt.
- `IrisTemplateStore`: where encrypted blobs live (SQL table, file, memory); it never sees a
  plain template. `MemoryTemplateStore` is the in-process one.
- `IrisGallery`: every enrolled template bit-packed in two arrays, searched at once over all
  templates and all rotation shifts.
- `IrisEnrolments`: the three together; what the pickup flow and the enrol screen call.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.identity.iris import (
    CODE_BYTES,
    MAX_SHIFT,
    Decision,
    IrisTemplate,
    decide,
    normalise_distance,
    popcount_rows,
    shifted_bits,
)
from edge.identity.keys import load_or_create_key

_BLOB_VERSION = b"\x01"
_NONCE_BYTES = 12


class TemplateCipherError(Exception):
    """A stored template does not decrypt: wrong key, another resident's row, or damage."""


class TemplateCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("template key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path) -> "TemplateCipher":
        """The key in `path`, created (0600) on first use."""
        return cls(load_or_create_key(path, 32))

    def encrypt(self, subject_id: str, template: IrisTemplate) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, template.to_bytes(), subject_id.encode())
        return _BLOB_VERSION + nonce + sealed

    def decrypt(self, subject_id: str, blob: bytes) -> IrisTemplate:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _BLOB_VERSION:
            raise TemplateCipherError("not an encrypted iris template")
        nonce, sealed = blob[1:1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, sealed, subject_id.encode())
        except InvalidTag as exc:
            raise TemplateCipherError("iris template does not decrypt with this key") from exc
        return IrisTemplate.from_bytes(plain)


class IrisTemplateStore(Protocol):
    """Encrypted template blobs by subject (resident) id. Implementations: a SQL table,
    `MemoryTemplateStore`. Blobs are opaque: a store never decrypts."""

    def save(self, subject_id: str, blob: bytes) -> None:
        """Insert or replace the subject's template."""
        ...

    def delete(self, subject_id: str) -> bool:
        """True when the subject had a template."""
        ...

    def load_all(self) -> Iterable[tuple[str, bytes]]: ...


class MemoryTemplateStore:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def save(self, subject_id: str, blob: bytes) -> None:
        with self._lock:
            self._blobs[subject_id] = blob

    def delete(self, subject_id: str) -> bool:
        with self._lock:
            return self._blobs.pop(subject_id, None) is not None

    def load_all(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._blobs.items())


@dataclass(frozen=True)
class GalleryMatch:
    subject_id: str
    distance: float
    shift: int
    decision: Decision


class IrisGallery:
    """All enrolled templates, packed as uint64 words, searched over every template and
    every rotation shift in one vectorised pass (XOR, AND, popcount)."""

    _WORDS = CODE_BYTES // 8

    def __init__(self, max_shift: int = MAX_SHIFT) -> None:
        self._max_shift = max_shift
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._codes = np.zeros((0, self._WORDS), np.uint64)
        self._masks = np.zeros((0, self._WORDS), np.uint64)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._index

    def add(self, subject_id: str, template: IrisTemplate) -> None:
        """Add, or replace the subject's template."""
        self.add_many([(subject_id, template)])

    def add_many(self, items: Iterable[tuple[str, IrisTemplate]]) -> None:
        items = list(items)
        with self._lock:
            fresh_codes, fresh_masks = [], []
            for subject_id, template in items:
                code, mask = template.code.view(np.uint64), template.mask.view(np.uint64)
                row = self._index.get(subject_id)
                if row is not None:
                    self._codes[row], self._masks[row] = code, mask
                    continue
                self._index[subject_id] = len(self._ids)
                self._ids.append(subject_id)
                fresh_codes.append(code)
                fresh_masks.append(mask)
            if fresh_codes:
                self._codes = np.vstack([self._codes, *fresh_codes])
                self._masks = np.vstack([self._masks, *fresh_masks])

    def remove(self, subject_id: str) -> bool:
        with self._lock:
            row = self._index.pop(subject_id, None)
            if row is None:
                return False
            last = len(self._ids) - 1
            if row != last:  # move the last row into the hole
                moved = self._ids[last]
                self._ids[row] = moved
                self._index[moved] = row
                self._codes[row], self._masks[row] = self._codes[last], self._masks[last]
            self._ids.pop()
            self._codes, self._masks = self._codes[:last].copy(), self._masks[:last].copy()
            return True

    def distances(self, probe: IrisTemplate) -> dict[str, float]:
        """The probe's distance to every enrolled template, each over all shifts."""
        probe_codes, probe_masks = self._probe_words(probe)
        with self._lock:
            codes, masks, ids = self._codes, self._masks, list(self._ids)
        if not ids:
            return {}
        best = _best_scores(codes, masks, probe_codes, probe_masks)[0]
        return dict(zip(ids, best.tolist()))

    def search(self, probe: IrisTemplate) -> GalleryMatch | None:
        """The closest enrolled template over all shifts; None for an empty gallery.

        Two passes: every template at every other shift, then every shift for the few
        templates the first pass ranked best. A half-step misalignment costs a genuine
        probe far less than the gap to the nearest impostor, so the true best survives
        the first pass and the answer equals the exhaustive one at half the work."""
        probe_codes, probe_masks = self._probe_words(probe)
        with self._lock:
            if not self._ids:
                return None
            codes, masks, ids = self._codes, self._masks, list(self._ids)
        coarse = _best_scores(codes, masks, probe_codes[::2], probe_masks[::2])[0]
        keep = min(_REFINE_CANDIDATES, len(ids))
        rows = np.argpartition(coarse, keep - 1)[:keep]
        fine, best_shift = _best_scores(codes[rows], masks[rows], probe_codes, probe_masks)
        winner = int(np.argmin(fine))
        distance = float(fine[winner])
        shift = int(best_shift[winner]) - self._max_shift
        return GalleryMatch(ids[int(rows[winner])], distance, shift, decide(distance))

    def _probe_words(self, probe: IrisTemplate) -> tuple[np.ndarray, np.ndarray]:
        """The probe turned by every shift, as (shifts, words) uint64 code and mask."""
        turned = [shifted_bits(probe, s) for s in range(-self._max_shift, self._max_shift + 1)]
        return (np.stack([c for c, _ in turned]).view(np.uint64),
                np.stack([m for _, m in turned]).view(np.uint64))


_REFINE_CANDIDATES = 32


def _best_scores(codes: np.ndarray, masks: np.ndarray, probe_codes: np.ndarray,
                 probe_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per template: the best normalised distance over the probe's shifts, and which shift."""
    disagreeing, compared = _count_bits(codes, masks, probe_codes, probe_masks)
    scores = normalise_distance(disagreeing, compared)  # (S, N)
    best_shift = np.argmin(scores, axis=0)
    return scores[best_shift, np.arange(scores.shape[1])], best_shift


_CHUNK_ROWS = 256  # gallery rows per pass: the (shifts x rows x words) temporaries stay in cache


def _count_bits(codes: np.ndarray, masks: np.ndarray, probe_codes: np.ndarray,
                probe_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(disagreeing bits, bits valid in both), each of shape (shifts, templates)."""
    shifts, rows = len(probe_codes), len(codes)
    disagreeing = np.empty((shifts, rows), np.uint16)
    compared = np.empty((shifts, rows), np.uint16)
    for start in range(0, rows, _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        both = masks[None, part] & probe_masks[:, None]
        differ = (codes[None, part] ^ probe_codes[:, None]) & both
        disagreeing[:, part] = popcount_rows(differ)
        compared[:, part] = popcount_rows(both)
    return disagreeing, compared


class IrisEnrolments:
    """Enrolled residents' irises: encrypted in the store, decrypted only into the gallery."""

    def __init__(self, store: IrisTemplateStore, cipher: TemplateCipher,
                 gallery: IrisGallery | None = None) -> None:
        self._store = store
        self._cipher = cipher
        self.gallery = gallery or IrisGallery()

    def load(self) -> list[str]:
        """Fill the gallery from the store. Returns the ids whose blob did not decrypt
        (kept in the store, left out of the search) so the caller can report them."""
        good, broken = [], []
        for subject_id, blob in self._store.load_all():
            try:
                good.append((subject_id, self._cipher.decrypt(subject_id, blob)))
            except (TemplateCipherError, ValueError):
                broken.append(subject_id)
        self.gallery.add_many(good)
        return broken

    def enrol(self, subject_id: str, template: IrisTemplate) -> None:
        self._store.save(subject_id, self._cipher.encrypt(subject_id, template))
        self.gallery.add(subject_id, template)

    def forget(self, subject_id: str) -> bool:
        """Erase a resident's template (withdrawn consent, moved out)."""
        removed = self._store.delete(subject_id)
        return self.gallery.remove(subject_id) or removed

    def identify(self, probe: IrisTemplate) -> GalleryMatch | None:
        return self.gallery.search(probe)
