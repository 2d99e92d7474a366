"""Template encryption at rest, the store, and the 1:N gallery."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from edge.identity.iris import ANGLES, BANDS, IrisTemplate, hamming_distance
from edge.identity.keys import KeyFileError, load_or_create_key
from edge.identity.templates import (
    IrisEnrolments,
    IrisGallery,
    MemoryTemplateStore,
    TemplateCipher,
    TemplateCipherError,
)


def random_template(rng: np.random.Generator, valid: float = 0.8) -> IrisTemplate:
    """Like a real IrisCode, neighbouring angular samples agree (a band-pass filter's
    phase changes smoothly), but different eyes are independent."""
    noise = rng.normal(size=(BANDS, ANGLES)) + 1j * rng.normal(size=(BANDS, ANGLES))
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    smooth = sum(w * np.roll(noise, k, axis=1) for k, w in zip(range(-6, 7), kernel))
    code = np.stack([smooth.real > 0, smooth.imag > 0], axis=-1)
    return IrisTemplate.from_bits(code, rng.random((BANDS, ANGLES, 2)) < valid)


def noisy_turned_copy(rng: np.random.Generator, template: IrisTemplate, shift: int,
                      flips: float) -> IrisTemplate:
    code, mask = template.bits()
    code = np.roll(code ^ (rng.random(code.shape) < flips), shift, axis=1)
    return IrisTemplate.from_bits(code, np.roll(mask, shift, axis=1))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


# ----------------------------------------------------------------------------- keys, cipher

def test_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "iris.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32 and load_or_create_key(path) == first


def test_key_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "iris.key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o644)
    load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_of_wrong_size_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "iris.key"
    path.write_bytes(b"too short")
    with pytest.raises(KeyFileError, match="expected 32"):
        load_or_create_key(path)


def test_cipher_round_trip_and_ciphertext_hides_the_template(tmp_path: Path, rng) -> None:
    cipher = TemplateCipher.from_key_file(tmp_path / "iris.key")
    template = random_template(rng)
    blob = cipher.encrypt("res-1", template)
    assert cipher.decrypt("res-1", blob) == template
    assert template.code.tobytes()[:16] not in blob and template.to_bytes() not in blob
    assert cipher.encrypt("res-1", template) != blob  # fresh nonce every time


def test_wrong_key_does_not_decrypt(tmp_path: Path, rng) -> None:
    blob = TemplateCipher.from_key_file(tmp_path / "a.key").encrypt("res-1", random_template(rng))
    with pytest.raises(TemplateCipherError):
        TemplateCipher.from_key_file(tmp_path / "b.key").decrypt("res-1", blob)


def test_template_moved_to_another_resident_does_not_decrypt(tmp_path: Path, rng) -> None:
    cipher = TemplateCipher.from_key_file(tmp_path / "iris.key")
    blob = cipher.encrypt("res-1", random_template(rng))
    with pytest.raises(TemplateCipherError):
        cipher.decrypt("res-2", blob)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x02" + bytes(60), b"\x01" + bytes(60)])
def test_damaged_blobs_are_refused(tmp_path: Path, blob: bytes) -> None:
    with pytest.raises(TemplateCipherError):
        TemplateCipher.from_key_file(tmp_path / "iris.key").decrypt("res-1", blob)


def test_template_repr_shows_no_bits(rng) -> None:
    template = random_template(rng)
    text = repr(template) + str(template)
    assert "IrisTemplate" in text and template.code.tobytes().hex()[:8] not in text
    assert "[" not in text  # no array dump


def test_template_bytes_round_trip_and_refuse_other_versions(rng) -> None:
    template = random_template(rng)
    assert IrisTemplate.from_bytes(template.to_bytes()) == template
    with pytest.raises(ValueError):
        IrisTemplate.from_bytes(b"\x02" + template.to_bytes()[1:])
    with pytest.raises(ValueError):
        IrisTemplate.from_bytes(template.to_bytes()[:-1])


# ----------------------------------------------------------------------------- gallery

def test_gallery_search_equals_exhaustive_search(rng) -> None:
    gallery = IrisGallery()
    enrolled = {f"res-{i}": random_template(rng) for i in range(300)}
    gallery.add_many(enrolled.items())
    for target, shift in [("res-7", 0), ("res-123", 5), ("res-299", -6), ("res-0", 3)]:
        probe = noisy_turned_copy(rng, enrolled[target], shift, flips=0.12)
        match = gallery.search(probe)
        exhaustive = min((hamming_distance(probe, t)[0], sid) for sid, t in enrolled.items())
        assert match is not None and match.subject_id == target == exhaustive[1]
        assert match.distance == pytest.approx(exhaustive[0], abs=1e-6)
        assert match.shift == -shift and match.decision == "match"


def test_stranger_is_no_match(rng) -> None:
    gallery = IrisGallery()
    gallery.add_many((f"res-{i}", random_template(rng)) for i in range(200))
    match = gallery.search(random_template(rng))
    assert match is not None and match.decision == "no_match" and match.distance > 0.4


def test_gallery_replace_and_remove(rng) -> None:
    gallery = IrisGallery()
    first, second, third = (random_template(rng) for _ in range(3))
    gallery.add_many([("a", first), ("b", second), ("c", third)])
    assert gallery.remove("a") and not gallery.remove("a") and len(gallery) == 2
    assert gallery.search(third).subject_id == "c"  # the moved row still answers to its id
    gallery.add("b", first)  # re-enrolment replaces
    assert len(gallery) == 2 and gallery.search(first).subject_id == "b"
    assert IrisGallery().search(first) is None


def test_mostly_masked_probe_cannot_match(rng) -> None:
    gallery = IrisGallery()
    template = random_template(rng)
    gallery.add("res-1", template)
    code, mask = template.bits()
    sliver = np.zeros_like(mask)
    sliver[0, :40] = True  # 80 bits left: far too few to decide anything
    match = gallery.search(IrisTemplate.from_bits(code, mask & sliver))
    assert match.distance == 1.0 and match.decision == "no_match"


# ----------------------------------------------------------------------------- enrolments

def test_enrolments_store_only_ciphertext_and_reload(tmp_path: Path, rng) -> None:
    store = MemoryTemplateStore()
    cipher = TemplateCipher.from_key_file(tmp_path / "iris.key")
    enrolments = IrisEnrolments(store, cipher)
    templates = {f"res-{i}": random_template(rng) for i in range(5)}
    for subject_id, template in templates.items():
        enrolments.enrol(subject_id, template)
    for subject_id, blob in store.load_all():
        assert templates[subject_id].to_bytes() not in blob
    restarted = IrisEnrolments(store, cipher)
    assert restarted.load() == [] and len(restarted.gallery) == 5
    assert restarted.identify(templates["res-3"]).subject_id == "res-3"
    assert restarted.forget("res-3") and "res-3" not in restarted.gallery
    assert [sid for sid, _ in store.load_all()].count("res-3") == 0


def test_undecryptable_rows_are_reported_not_fatal(tmp_path: Path, rng) -> None:
    store = MemoryTemplateStore()
    good = TemplateCipher.from_key_file(tmp_path / "good.key")
    IrisEnrolments(store, good).enrol("res-1", random_template(rng))
    store.save("res-2", TemplateCipher.from_key_file(tmp_path / "old.key").encrypt(
        "res-2", random_template(rng)))
    enrolments = IrisEnrolments(store, good)
    assert enrolments.load() == ["res-2"]
    assert "res-1" in enrolments.gallery and "res-2" not in enrolments.gallery


def test_distances_to_every_enrolled_template(rng) -> None:
    gallery = IrisGallery()
    enrolled = {f"res-{i}": random_template(rng) for i in range(20)}
    gallery.add_many(enrolled.items())
    probe = noisy_turned_copy(rng, enrolled["res-4"], 1, flips=0.1)
    distances = gallery.distances(probe)
    assert set(distances) == set(enrolled)
    assert min(distances, key=distances.get) == "res-4"
    assert distances["res-9"] == pytest.approx(hamming_distance(probe, enrolled["res-9"])[0])


def test_popcount_fallback_for_numpy_before_2(rng, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.identity import iris

    words = rng.integers(0, 2**63, (3, 5, 32), dtype=np.uint64)
    fast = iris.popcount_rows(words)
    monkeypatch.delattr(np, "bitwise_count")
    assert np.array_equal(iris.popcount_rows(words), fast)
    assert fast[0, 0] == sum(bin(int(w)).count("1") for w in words[0, 0])
