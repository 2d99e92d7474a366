"""The project's own wheel, built offline at another version, for the update tests."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


def build_wheel(workdir: Path, version: str, *, broken: bool = False) -> Path:
    """The project's wheel at `version`; `broken`: its /healthz answers 503, and it brings an
    expand-only migration, so the rollback must run the older release on a newer schema."""
    source = workdir / f"src-{version}"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", "tests", "bench", "docs",
        ".pytest_cache", "node_modules"))
    _replace(source / "pyproject.toml", 'version = "0.1.0"', f'version = "{version}"')
    if broken:
        _replace(source / "edge" / "kiosk_ui" / "app.py", "return jsonify(ok=True)",
                 "return jsonify(ok=False), 503")
        from alembic.script import ScriptDirectory

        from edge.storage.migrate import alembic_config

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        (source / "edge" / "storage" / "migrations" / "versions" / "0099_update_probe.py").write_text(
            f'revision = "0099_update_probe"\ndown_revision = "{head}"\nbranch_labels = None\n'
            "depends_on = None\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n\n"
            "def upgrade():\n    op.create_table('update_probe', sa.Column('id', sa.Integer, primary_key=True))\n\n\n"
            "def downgrade():\n    op.drop_table('update_probe')\n")
    out = workdir / f"wheels-{version}"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(out), str(source)], check=True, timeout=300)
    [wheel] = out.glob("*.whl")
    return wheel


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
