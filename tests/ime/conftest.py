from __future__ import annotations

from pathlib import Path

import pytest

from edge.ime import PinyinDictionary
from edge.ime.pinyin import default_dictionary_dir, dictionary_file, ensure_dictionary


@pytest.fixture(scope="session")
def dictionary(tmp_path_factory: pytest.TempPathFactory) -> PinyinDictionary:
    """The real compiled dictionary (built once per machine, as the kiosk does)."""
    path = dictionary_file(default_dictionary_dir(tmp_path_factory.mktemp("data")))
    ensure_dictionary(path)
    found = PinyinDictionary(Path(path))
    yield found
    found.close()
