"""The wheel: what it ships, and that it installs beside torchtune (which also ships a top-level ``recipes/``).

torchtune 0.6.1 installs ``recipes/__init__.py`` (it raises on import) and its recipe scripts; PyPI also has an
unrelated ``recipes`` project. skeletok therefore installs the repository's ``recipes/`` folder as
``skeletok_recipes``; the recipe code imports itself relatively, so it runs under either name.

The torchtune test (slow: it builds the wheel, downloads torchtune's wheel from the package index unless
``SKELETOK_TORCHTUNE_WHEEL`` names one, and makes a virtual environment) installs both wheels without
dependencies into one fresh environment, which sees this environment's third-party packages (torch, numpy, ...)
but not its skeletok. torchtune's own dependencies (torchao, datasets, ...) are not installed, so its import is
shown to run its own code up to its first dependency check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import skeletok
from skeletok.cli import main

ROOT = Path(__file__).resolve().parents[1]
TORCHTUNE = "torchtune==0.6.1"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"skeletok {skeletok.__version__}"


def test_recipe_code_imports_itself_relatively():
    """An absolute ``recipes...`` import works from a clone but not in the installed ``skeletok_recipes``."""
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for path in sorted((ROOT / "recipes").rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.match(r"\s*(from|import)\s+recipes\b", line)]
    assert not offenders, "use relative imports inside recipes/:\n" + "\n".join(offenders)


def _pip(*args: str, python: str | Path = sys.executable, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    _pip("wheel", "--no-deps", "--quiet", "-w", str(out / "skeletok"), str(ROOT))
    given = os.environ.get("SKELETOK_TORCHTUNE_WHEEL")
    if given:
        torchtune = Path(given)
    else:
        _pip("download", "--no-deps", "--quiet", "-d", str(out / "torchtune"), TORCHTUNE)
        torchtune = next((out / "torchtune").glob("torchtune-*.whl"))
    return next((out / "skeletok").glob("skeletok-*.whl")), torchtune


@pytest.mark.slow
def test_wheel_ships_every_module_and_no_top_level_recipes(wheels):
    names = zipfile.ZipFile(wheels[0]).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"skeletok", "skeletok_recipes", f"skeletok-{skeletok.__version__}.dist-info"}, tops
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "skeletok").rglob("*.py")}
    expected |= {"skeletok_recipes/" + p.relative_to(ROOT / "recipes").as_posix()
                 for p in (ROOT / "recipes").rglob("*.py")}
    tracked = set(subprocess.run(["git", "ls-files", "skeletok", "recipes"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.split())
    if tracked:  # a git checkout: the committed modules (others' files in progress may be untracked)
        expected = {e for e in expected if e.replace("skeletok_recipes/", "recipes/", 1) in tracked}
    assert expected <= set(names), sorted(expected - set(names))
    assert any(name.startswith("skeletok/data/assets/") and name.endswith(".npz") for name in names)
    metadata = zipfile.ZipFile(wheels[0]).read(f"skeletok-{skeletok.__version__}.dist-info/METADATA").decode()
    assert "Classifier: Programming Language :: Python :: 3" in metadata
    assert "Project-URL: Documentation" in metadata and "Project-URL: Source" in metadata
    assert not set(zipfile.ZipFile(wheels[1]).namelist()) & set(names)  # no file owned by both


# Runs inside the fresh environment: every file each installed distribution recorded is there, unchanged.
_RECORD_CHECK = """
import base64, hashlib, importlib.metadata as md, sys
for name in sys.argv[1:]:
    dist = md.distribution(name)
    for f in dist.files:
        if f.hash is None:
            continue
        data = f.locate().read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest()).rstrip(b"=").decode()
        assert digest == f.hash.value, (name, str(f))
    print(name, dist.version, len(dist.files), "files intact")
"""

_SKELETOK_WORKS = """
import subprocess, sys
import skeletok, skeletok_recipes.hipart.bench, skeletok_recipes.hipart.train_prior
from skeletok.cli import main
assert skeletok.__file__.startswith(sys.prefix), skeletok.__file__
assert skeletok_recipes.hipart.bench.__file__.startswith(sys.prefix)
assert main(["hipart", "bench", "--batch-sizes", "1", "--min-time", "0.01", "--out", "bench.json"]) == 0
"""

_TORCHTUNE_IMPORTS = """
import sys
try:
    import torchtune
except ImportError as err:   # its dependencies are not installed: it must get as far as its own torchao check
    assert "torchao" in str(err), err
    assert sys.modules.get("torchtune") is None
    import importlib.util
    assert importlib.util.find_spec("torchtune").origin.startswith(sys.prefix)
try:
    import recipes
except ModuleNotFoundError as err:  # torchtune's recipes/__init__.py, intact, forbids importing its scripts
    assert "torchtune recipes directory" in str(err), err
else:
    raise AssertionError("torchtune's recipes/__init__.py did not run")
"""


def _fresh_env(path: Path) -> Path:
    """A virtual environment that sees this one's third-party packages but none of skeletok or torchtune."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    view = path / "outer-site-packages"
    view.mkdir()
    outer = Path(sysconfig.get_paths()["purelib"])
    for entry in outer.iterdir():
        if not re.match(r"(skeletok|recipes|torchtune|__editable__|_?virtualenv|distutils-precedence)", entry.name,
                        re.IGNORECASE) and not entry.name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    (site / "zz_outer_site_packages.pth").write_text(f"{view}\n")
    return python


def _run(python: Path, code: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([str(python), "-c", code, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_wheel_and_torchtune_install_together_and_uninstall_independently(wheels, tmp_path):
    ours, theirs = wheels
    python = _fresh_env(tmp_path / "env")
    work = tmp_path / "empty"
    work.mkdir()
    _pip("install", "--no-deps", "--no-index", "--quiet", str(theirs), str(ours), python=python)
    _run(python, _RECORD_CHECK, "skeletok", "torchtune", cwd=work)
    _run(python, _SKELETOK_WORKS, cwd=work)
    _run(python, _TORCHTUNE_IMPORTS, cwd=work)

    _pip("uninstall", "--yes", "--quiet", "torchtune", python=python)      # skeletok stays whole and working
    _run(python, _RECORD_CHECK, "skeletok", cwd=work)
    _run(python, _SKELETOK_WORKS, cwd=work)

    _pip("install", "--no-deps", "--no-index", "--quiet", str(theirs), python=python)
    _pip("uninstall", "--yes", "--quiet", "skeletok", python=python)       # torchtune stays whole
    _run(python, _RECORD_CHECK, "torchtune", cwd=work)
    _run(python, _TORCHTUNE_IMPORTS, cwd=work)
    gone = subprocess.run([str(python), "-c", "import skeletok"], capture_output=True, text=True, cwd=work)
    assert gone.returncode != 0 and "No module named 'skeletok'" in gone.stderr
