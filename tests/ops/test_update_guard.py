"""The try-once guard and the rollback's limits, on a prefix laid out by hand (the full
install, with venvs and restarts, is tests/deploy/test_update.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge.ops.update import Releases, UpdateError


@pytest.fixture
def releases(tmp_path: Path) -> Releases:
    for version in ("1.0", "2.0"):
        (tmp_path / "releases" / version).mkdir(parents=True)
    os.symlink("releases/1.0", tmp_path / "previous")
    os.symlink("releases/2.0", tmp_path / "current")
    (tmp_path / "state.json").write_text(json.dumps({"pending": "2.0", "pending_starts": 0, "bad": [],
                                                     "history": []}))
    return Releases(tmp_path, restart_command="false")


def test_a_pending_release_gets_one_start(releases: Releases) -> None:
    assert releases.guard() is None  # its one start
    assert releases.version_of("current") == "2.0"
    assert releases.guard() == "1.0"  # started again, never marked good: crashed or hung
    assert releases.version_of("current") == "1.0"
    assert releases.state()["pending"] is None and releases.state()["bad"] == ["2.0"]
    assert releases.guard() is None and releases.version_of("current") == "1.0"


def test_a_release_marked_good_is_never_rolled_back(releases: Releases) -> None:
    assert releases.mark_good() == "2.0"
    assert releases.rollback("the service failed", restart=False) is None
    assert releases.guard() is None and releases.version_of("current") == "2.0"


def test_a_failing_restart_command_is_one_clear_error(releases: Releases) -> None:
    with pytest.raises(UpdateError, match="the restart command failed"):
        releases.rollback("health check failed")
    assert releases.version_of("current") == "1.0"  # the links moved before the restart was asked
