"""pyproject.toml is the single source of dependencies; environment.yml must
describe the same environment for conda users."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: pip names whose conda-forge package has another name
CONDA_NAMES = {"bleach[css]": "bleach-with-css", "ibis-framework[duckdb]": "ibis-duckdb", "ibis-framework[pyspark]": "ibis-pyspark",
               "ibis-framework[postgres]": "ibis-postgres", "psycopg[binary]": "psycopg"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(.*)$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("spark", "postgres", "test"):
        reqs += project["optional-dependencies"][extra]
    out = {}
    for req in reqs:
        name, spec = _split(req)
        out[CONDA_NAMES.get(name, name)] = spec
    return out


def _conda() -> tuple[dict, dict]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps, pip = {}, []
    for d in env["dependencies"]:
        if isinstance(d, dict):
            pip += d["pip"]
        else:
            name, spec = _split(d)
            deps[name] = spec
    return env, deps, pip


def test_environment_yml_lists_the_same_packages_and_versions():
    env, deps, pip = _conda()
    assert env["channels"] == ["conda-forge"]
    assert deps.pop("python").startswith("=3.11")
    deps.pop("pip", None)
    assert deps == _pyproject()


def test_environment_yml_installs_the_package_itself():
    _, _, pip = _conda()
    assert pip == ["-e ."]
