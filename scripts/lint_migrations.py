"""Lint every Alembic migration with squawk (`make lint`, CI).

Each revision is rendered to the SQL it runs (Alembic's offline mode, no database needed)
and checked on its own, so that squawk sees which tables already exist. A migration may
silence a rule it breaks on purpose with a line `# squawk-ignore: <rule>, <rule> - <why>`.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[1]
SQUAWK = str(Path(sys.executable).with_name("squawk"))
CONFIG_EXCLUDED = tomllib.loads((ROOT / ".squawk.toml").read_text())["excluded_rules"]
IGNORE = re.compile(r"^# squawk-ignore: ([\w, -]+?) - ", re.MULTILINE)


def render(config: Config, previous: str | None, revision: str) -> str:
    from alembic import command

    out = io.StringIO()
    config.output_buffer = out  # type: ignore[attr-defined]
    command.upgrade(config, f"{previous}:{revision}" if previous else revision, sql=True)
    return out.getvalue()


def main() -> int:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = "postgresql://lint@localhost/lint"  # never connected
    config.attributes["configure_logging"] = False
    script = ScriptDirectory.from_config(config)
    revisions = list(reversed(list(script.walk_revisions())))
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        for revision in revisions:
            source = Path(revision.path).read_text()
            ignored = [rule.strip() for line in IGNORE.findall(source) for rule in line.split(",")]
            sql = Path(folder) / (Path(revision.path).stem + ".sql")
            sql.write_text(render(config, revision.down_revision, revision.revision))  # type: ignore[arg-type]
            argv = [SQUAWK, "--config", str(ROOT / ".squawk.toml"), str(sql)]
            if ignored:  # --exclude replaces the config's excluded rules: name them again
                argv.append("--exclude=" + ",".join([*CONFIG_EXCLUDED, *ignored]))
            failed |= subprocess.run(argv, check=False).returncode  # noqa: S603
    return failed


if __name__ == "__main__":
    sys.exit(main())
