"""Pinyin -> Chinese candidates ranked by how common they are.

The dictionary is compiled once, at first use, from two well-kept packages: jieba's word list
with its corpus frequencies (which words, how common) and pypinyin's phrase data (how each word
is read, heteronyms resolved in context). The result is one SQLite file in the data folder,
indexed by the toneless pinyin key ("shuiguan" -> 水管), so a lookup is an index range scan.
"""
from __future__ import annotations

import importlib.resources
import os
import re
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import platformdirs

# Bump when the build changes: an old cached file is then rebuilt, never misread.
FORMAT_VERSION = 1
MAX_WORD_CHARS = 6
# jieba's rarest words (frequency 3-4: names, transliterations) double the file for little use.
MIN_WORD_FREQ = 5
# A character's other readings (说 read "shui" in 游说) rank far below its main one.
OTHER_READING_WEIGHT = 0.01
MAX_INPUT_CHARS = 60
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_PINYIN_INPUT = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class Candidate:
    text: str
    consumed: int  # how many letters of the typed pinyin this candidate stands for


def dictionary_file(folder: Path) -> Path:
    return folder / f"pinyin-v{FORMAT_VERSION}.sqlite"


def default_dictionary_dir(data_dir: Path) -> Path:
    """The compiled dictionary is derived data, the same on every box: the user's cache folder
    (one build per machine and format version), else the data folder when that is not writable."""
    cache = Path(platformdirs.user_cache_dir("edge")) / "ime"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        return cache
    except OSError:
        return Path(data_dir) / "ime"


def _jieba_words() -> dict[str, int]:
    """jieba's dict.txt: "word frequency part-of-speech" per line; Chinese words only."""
    text = (importlib.resources.files("jieba") / "dict.txt").read_text("utf-8")
    words: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) >= 2 and len(parts[0]) <= MAX_WORD_CHARS and _HAN.match(parts[0]):
            words[parts[0]] = max(words.get(parts[0], 0), int(parts[1]))
    return words


def _rows() -> list[tuple[str, str, int]]:
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.style import convert

    words = _jieba_words()
    rows: list[tuple[str, str, int]] = []
    for word, freq in words.items():
        if len(word) == 1 or freq < MIN_WORD_FREQ:
            continue  # single characters below, with every reading
        syllables = lazy_pinyin(word, style=Style.NORMAL, errors="ignore")
        if len(syllables) == len(word):
            rows.append(("".join(syllables), word, freq))
    # Every character pypinyin knows, under each of its readings: a rare surname still has a way in.
    for codepoint, readings in pinyin_dict.items():
        char = chr(codepoint)
        if not _HAN.match(char):
            continue
        keys: list[str] = []
        for reading in readings.split(","):  # the main reading first
            key = convert(reading, Style.NORMAL, strict=False)
            if key.isascii() and key.isalpha() and key not in keys:
                keys.append(key)
        for rank, key in enumerate(keys):
            freq = words.get(char, 0)
            rows.append((key, char, freq if rank == 0 else int(freq * OTHER_READING_WEIGHT)))
    return rows


_BUILDING = threading.Lock()  # one build at a time in this process (several apps may ask at once)


def build_dictionary(path: Path) -> None:
    """Compile the dictionary to `path` (written beside it, then renamed: never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=path.name, suffix=".partial", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        db = sqlite3.connect(partial)
        try:
            db.execute("CREATE TABLE words (key TEXT NOT NULL, word TEXT NOT NULL, freq INTEGER NOT NULL)")
            db.executemany("INSERT INTO words VALUES (?, ?, ?)", _rows())
            # key then frequency: exact and prefix lookups are index range scans, already ordered.
            db.execute("CREATE INDEX words_by_key ON words (key, freq DESC, word)")
            db.commit()
            db.execute("VACUUM")
        finally:
            db.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def ensure_dictionary(path: Path) -> None:
    """Build the file unless it is there (built earlier, or by another app in this process)."""
    with _BUILDING:
        if not path.exists():
            build_dictionary(path)


def syllable_ends(typed: str, syllables: frozenset[str]) -> list[int]:
    """Where whole syllables end in what was typed, in the fewest syllables ("xian" is 先, not
    西安); the tail may be a syllable still being typed. [4, 8, 11] for "shuiguanlou"."""
    best: dict[int, list[int]] = {0: []}  # position -> syllable ends that reach it
    for start in range(len(typed)):
        if start not in best:
            continue
        for end in range(start + 1, min(len(typed), start + 6) + 1):
            if typed[start:end] in syllables:
                path = best[start] + [end]
                if end not in best or len(path) < len(best[end]):
                    best[end] = path
    whole = max(best)  # as far as whole syllables reach; the rest is being typed
    return best[whole]


class PinyinDictionary:
    """Candidates for what a resident has typed so far, most common first.

    Order: words read exactly as typed; then words that begin with it (typing "shuig" offers
    水管 and 水果); then words for a leading run of whole syllables, longest first (for
    "shuiguanlou", 水管, leaving "lou" to type on). Each candidate says how many letters it uses.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._syllables: frozenset[str] = frozenset()

    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is None:
                ensure_dictionary(self.path)
                db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
                self._syllables = frozenset(
                    key for (key,) in db.execute("SELECT DISTINCT key FROM words WHERE length(word) = 1"))
                self._db = db
            return self._db

    def warm(self) -> None:
        """Build or open the file now (say, in the background at start), not on the first tap."""
        self._connection()

    def candidates(self, typed: str, limit: int = 24) -> list[Candidate]:
        typed = typed.strip().lower().replace("ü", "v")
        if not typed or len(typed) > MAX_INPUT_CHARS or not _PINYIN_INPUT.match(typed):
            raise ValueError("pinyin is letters a-z only, up to 60 of them")
        db = self._connection()
        found: list[Candidate] = []
        seen: set[str] = set()

        def add(query: str, *args: object) -> None:
            for key, word in db.execute(query, (*args, limit)).fetchall():
                if word not in seen and len(found) < limit:
                    seen.add(word)
                    found.append(Candidate(word, min(len(key), len(typed))))

        exact = "SELECT key, word FROM words WHERE key = ? ORDER BY freq DESC LIMIT ?"
        with self._lock:  # one connection, shared by the server's threads
            add(exact, typed)
            add("SELECT key, word FROM words WHERE key > ? AND key < ? ORDER BY freq DESC LIMIT ?",
                typed, typed + "{")
            for end in reversed(syllable_ends(typed, self._syllables)):
                if len(found) >= limit:
                    break
                if end < len(typed):
                    add(exact, typed[:end])
        return found

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
