"""The README's configuration table names every REFERRAL_API_* variable the code reads."""

from __future__ import annotations

import re

from referral_api import config
from referral_api.config import PROJECT_ROOT

NAME = re.compile(r"REFERRAL_API_[A-Z][A-Z0-9_]*[A-Z0-9]")
OVERRIDES_ONLY = {"TESTING", "EVALUATION_TIME"}


def _readme_table() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def _names_in_code() -> set[str]:
    sources = [*(PROJECT_ROOT / "referral_api").rglob("*.py"), PROJECT_ROOT / "gunicorn.conf.py",
               PROJECT_ROOT / "wsgi.py", PROJECT_ROOT / "Dockerfile"]
    found = set()
    for path in sources:
        found.update(NAME.findall(path.read_text(encoding="utf-8")))
    # config.py reads the variables by prefix: its short names are the rest of the list
    # (TESTING and EVALUATION_TIME are create_app overrides, never read from the environment).
    found.update(f"REFERRAL_API_{short}" for short in config._KNOWN
                 if short not in OVERRIDES_ONLY)
    return found


def test_every_variable_is_in_the_readme_table() -> None:
    table = _readme_table()
    missing = sorted(name for name in _names_in_code() if f"`{name}`" not in table)
    assert not missing, f"add to the README's Configuration table: {missing}"
    assert "`REFERRAL_API_LOG_LEVEL`" in table


def test_the_table_names_no_variable_the_code_does_not_read() -> None:
    stale = sorted(set(NAME.findall(_readme_table())) - _names_in_code())
    assert not stale, f"in the README but read nowhere: {stale}"
