"""Pinyin candidates from the compiled jieba + pypinyin dictionary: what comes first, and why."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.ime import PinyinDictionary
from edge.ime.pinyin import _jieba_words, build_dictionary, syllable_ends


def texts(dictionary: PinyinDictionary, typed: str) -> list[str]:
    return [c.text for c in dictionary.candidates(typed)]


def test_common_characters_come_first_and_a_second_reading_ranks_low(dictionary) -> None:
    found = texts(dictionary, "shui")
    assert {"水", "谁", "睡", "税"} <= set(found[:5])
    # 说 reads "shui" only in 游说: far below its main reading's frequency
    assert "说" not in found[:4]
    assert all(c.consumed == 4 for c in dictionary.candidates("shui"))


def test_exact_matches_are_ordered_by_jieba_frequency(dictionary) -> None:
    words = _jieba_words()
    exact = [c.text for c in dictionary.candidates("shi") if c.consumed == 3][:10]
    freqs = [words.get(t, 0) for t in exact]
    assert freqs == sorted(freqs, reverse=True) and freqs[0] > 0
    assert exact[0] == "是"


def test_whole_words_win_and_completions_follow(dictionary) -> None:
    assert texts(dictionary, "xuyao")[0] == "需要"
    assert texts(dictionary, "shangmen")[0] == "上门"
    assert {"水管", "水果"} <= set(texts(dictionary, "shuig"))  # a syllable still being typed


def test_a_long_input_offers_its_leading_word_and_keeps_the_rest(dictionary) -> None:
    first = dictionary.candidates("shuiguanloushui")[0]
    assert (first.text, first.consumed) == ("水管", len("shuiguan"))
    # then "loushui" is left: 漏水 is among its first candidates
    assert "漏水" in texts(dictionary, "loushui")[:3]


def test_leading_words_stop_at_syllable_boundaries(dictionary) -> None:
    # "peizhen": 陪 + 诊, never a word ending mid-syllable such as 佩着 ("peizhe" + "n")
    found = dictionary.candidates("peizhen")
    assert "陪" in [c.text for c in found[:5]]
    assert {c.consumed for c in found} <= {3, 7}


def test_syllables_are_split_in_the_fewest_pieces() -> None:
    syllables = frozenset({"xi", "an", "xian", "shui", "guan", "lou", "g"})
    assert syllable_ends("xian", syllables) == [4]
    assert syllable_ends("shuiguanlou", syllables) == [4, 8, 11]
    assert syllable_ends("shuig", syllables - {"g"}) == [4]


@pytest.mark.parametrize("typed", ["", "shui1", "水", "a b", "x" * 61])
def test_bad_input_is_refused_clearly(dictionary, typed: str) -> None:
    with pytest.raises(ValueError, match="letters a-z"):
        dictionary.candidates(typed)


def test_u_umlaut_is_typed_as_v(dictionary) -> None:
    assert "绿" in texts(dictionary, "lv")[:5]
    assert texts(dictionary, "lü") == texts(dictionary, "lv")


def test_the_compiled_file_is_small_and_indexed(dictionary) -> None:
    path = Path(dictionary.path)
    assert path.stat().st_size < 12_000_000
    with sqlite3.connect(path) as db:
        plan = " ".join(row[-1] for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT word FROM words WHERE key = 'shui' ORDER BY freq DESC"))
    assert "words_by_key" in plan and "TEMP B-TREE" not in plan


def test_a_build_never_leaves_half_a_file(tmp_path: Path, monkeypatch) -> None:
    import edge.ime.pinyin as pinyin

    def broken() -> list:
        raise RuntimeError("disk full")

    monkeypatch.setattr(pinyin, "_rows", broken)
    target = tmp_path / "pinyin.sqlite"
    with pytest.raises(RuntimeError):
        build_dictionary(target)
    assert list(tmp_path.iterdir()) == []
