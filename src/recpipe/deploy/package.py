"""What AWS runs, built from this checkout into one folder that Terraform points at:

- ``lambda.zip``: the package and what the serving handlers import (numpy, no torch, no Arrow),
  as Linux wheels for the chosen runtime and architecture (pip's ``--platform``/``--only-binary``).
  boto3 is left out: the Lambda runtime has it. The stream transformation and the inference
  service run from it, each with its own handler (``HANDLERS``).
- ``arrow-layer.zip``: a Lambda layer with Arrow and SQLAlchemy, which the function that runs
  ``vectors load`` adds to ``lambda.zip`` (one zip would pass Lambda's 50 MiB).
- ``glue/recpipe-<version>-py3-none-any.whl`` and ``glue/glue_etl.py``: the package as a
  wheel for Glue's ``--additional-python-modules`` and the job's entry script.
- ``sagemaker/sourcedir.tar.gz``: what SageMaker's PyTorch training container runs in script
  mode (``terraform/modules/training``): ``train.py`` (``recpipe.jobs.sagemaker_train``), the
  wheel, and ``requirements.txt`` (the wheel with its AWS extra and what training adds; the
  container's own torch is kept).
- ``manifest.json``: every file with its size (zipped and unzipped) and SHA-256.

Versions are the ones installed here (``pyproject.toml``'s pins), so the zip runs what the
tests ran. Zips are reproducible: fixed timestamps, sorted entries.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from recpipe.errors import InputError, ServiceError, checkout
from recpipe.progress import SILENT, Progress

# Lambda handlers, by function (Terraform's `handler` strings; a test imports each from its zip)
HANDLERS = {
    "transform": "recpipe.streaming.transform.handler",  # the Firehose transformation
    "inference": "recpipe.api.lambda_handler.handler",  # the HTTP service behind a Function URL
    "vectors_load": "recpipe.vectors.lambda_handler.handler",  # `vectors load` on new artifacts
}
LAMBDA_ZIP, LAYER_ZIP = "lambda.zip", "arrow-layer.zip"
LAYERS = {"vectors_load": [LAYER_ZIP]}  # the functions that need the layer too
# What the handlers import, by distribution, pinned to the installed versions; pip adds what
# these depend on. The package itself goes in without its own dependencies (no DuckDB, no torch).
LAMBDA_DISTRIBUTIONS = (
    "numpy", "pydantic", "python-dotenv", "psycopg", "psycopg-binary", "pgvector",
    "fastapi", "mangum", "prometheus-client", "fastapi-offline",
)
LAYER_DISTRIBUTIONS = ("pyarrow", "sqlalchemy", "pymysql")  # CSVs by Arrow; the catalog from MySQL
GLUE_DISTRIBUTIONS = ("pymysql",)  # the wheel's own dependencies Glue resolves from PyPI
SAGEMAKER_SOURCEDIR = "sagemaker/sourcedir.tar.gz"
SAGEMAKER_DISTRIBUTIONS = ("matplotlib",)  # training's own, beside the container's torch
SAGEMAKER_ENTRY = "import sys\n\nfrom recpipe.jobs.sagemaker_train import main\n\nsys.exit(main())\n"
LAMBDA_MAX_ZIPPED = 50 * 1024 * 1024  # a direct upload; Terraform uses S3, but keep within it
LAMBDA_MAX_UNZIPPED = 250 * 1024 * 1024
# Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26): only wheels for glibc 2.26 and
# older run there. numpy and pyarrow at recpipe's pins ship glibc 2.27+/2.28 wheels only, so the
# zips take their newest releases with manylinux2014 wheels instead. The package tests run every
# handler from its zip, so these versions are the ones tested for Lambda.
RUNTIME_PINS = {"numpy": "2.2.6", "pyarrow": "19.0.1"}
ARCHITECTURES = {a: [f"manylinux_2_{v}_{m}" for v in (26, 17)] + [f"manylinux2014_{m}"]
                 for a, m in (("x86_64", "x86_64"), ("arm64", "aarch64"))}
# Not needed at run time: metadata, Arrow's C++ headers, Cython sources and Flight (RPC), and
# the two unversioned copies of libarrow_python (wheels hold symlinks as copies). Without them
# the loader (lambda.zip + the layer) fits Lambda's 250 MiB; a test runs it from the two zips.
PRUNE = ("*.dist-info", "__pycache__", "bin", "pyarrow/include", "pyarrow/tests", "pyarrow/src",
         "**/*.pyx", "**/*.pxd", "**/*.pxi", "pyarrow/*flight*", "pyarrow/libarrow_python.so",
         "pyarrow/libarrow_python.so.*.*.*")
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Built:
    path: str
    bytes: int
    unzipped_bytes: int
    sha256: str


@dataclass(frozen=True)
class PackageResult:
    output: str
    python: str
    architecture: str
    handlers: dict[str, str]
    layers: dict[str, list[str]]
    dataset: dict[str, Any]  # the training set as the Glue catalog declares it (terraform/ reads it)
    glue_modules: list[str]  # what the Glue job installs beside the wheel (its extras for a MySQL source)
    files: dict[str, Built] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def checkout_root() -> Path:
    """The source tree this recpipe runs from; packaging needs it."""
    root = checkout()
    if root is None:
        raise InputError(f"recpipe runs from {Path(__file__).resolve().parents[2]}, not a source checkout",
                         hint="run `recpipe package` from a clone of the repository (pip install -e .)")
    return root


def pins(distributions: tuple[str, ...] = LAMBDA_DISTRIBUTIONS) -> list[str]:
    """``name==version`` for each distribution, as installed here."""
    out = []
    for name in distributions:
        if name in RUNTIME_PINS:
            out.append(f"{name}=={RUNTIME_PINS[name]}")
            continue
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError as exc:
            raise InputError(f"{name} is not installed here, so its version for the Lambda zip is unknown",
                             hint="install the serving extras first: pip install -e '.[serve,vectors]'") from exc
    return out


def build(output: Path, *, python: str = "3.11", architecture: str = "x86_64",
          progress: Progress = SILENT) -> PackageResult:
    """Build the Lambda zip, its layer and the Glue files into ``output`` (replaced) and describe them."""
    if architecture not in ARCHITECTURES:
        raise InputError(f"unknown architecture {architecture!r}", hint=f"use one of: {', '.join(ARCHITECTURES)}")
    root = checkout_root()
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="recpipe-package-") as tmp:
        work = Path(tmp)
        progress.status("building the recpipe wheel")
        wheel = _wheel(root, work / "wheel")
        platforms = [arg for tag in ARCHITECTURES[architecture] for arg in ("--platform", tag)]
        linux = (*platforms, "--implementation", "cp", "--python-version", python,
                 "--only-binary=:all:", "--no-compile")
        serving, layer = work / "serving", work / "layer"
        progress.status(f"fetching Linux wheels for Python {python} on {architecture}")
        _pip("install", "--target", str(serving), *linux, *pins())
        _pip("install", "--target", str(serving), *linux, "--no-deps", str(wheel))
        # a layer's python/ is on the runtime's sys.path, beside the function's own code
        _pip("install", "--target", str(layer / "python"), *linux, "--no-deps", *pins(LAYER_DISTRIBUTIONS))
        files: dict[str, Built] = {}
        for site in (serving, layer / "python"):
            _prune(site)
            if python == f"{sys.version_info.major}.{sys.version_info.minor}":
                # Lambda's code is read-only: without bytecode in the zip, every cold start compiles
                import compileall
                import py_compile

                progress.status(f"compiling bytecode in {site.name}")
                compileall.compile_dir(site, quiet=1, workers=0,
                                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        for name, site in ((LAMBDA_ZIP, serving), (LAYER_ZIP, layer)):
            progress.status(f"writing {name}")
            files[name] = _zip(site, output / name)
        glue = output / "glue"
        shutil.rmtree(glue, ignore_errors=True)
        glue.mkdir()
        shutil.copy2(wheel, glue / wheel.name)
        shutil.copy2(root / "src" / "recpipe" / "jobs" / "glue_etl.py", glue / "glue_etl.py")
        for path in sorted(glue.iterdir()):
            files[f"glue/{path.name}"] = _describe(path, f"glue/{path.name}", path.stat().st_size)
        progress.status(f"writing {SAGEMAKER_SOURCEDIR}")
        files[SAGEMAKER_SOURCEDIR] = _sourcedir(wheel, output / SAGEMAKER_SOURCEDIR)
    for function in HANDLERS:
        zips = [files[name] for name in (LAMBDA_ZIP, *LAYERS.get(function, []))]
        zipped, unzipped = max(z.bytes for z in zips), sum(z.unzipped_bytes for z in zips)
        if zipped > LAMBDA_MAX_ZIPPED or unzipped > LAMBDA_MAX_UNZIPPED:
            raise InputError(f"the {function} function's code is {zipped / 2**20:.0f} MiB zipped (its largest zip), "
                             f"{unzipped / 2**20:.0f} MiB unzipped: past Lambda's 50/250 MiB",
                             hint="leave a dependency out of the Lambda zip")
    result = PackageResult(str(output), python, architecture, dict(HANDLERS), dict(LAYERS), glue_table(),
                           pins(GLUE_DISTRIBUTIONS), files)
    (output / "manifest.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def glue_table() -> dict[str, Any]:
    """``ratings_ml_training`` in the Glue catalog's (Hive's) types, from the dataset contract."""
    from recpipe.contracts.dataset import DATASET, PARTITION_KEY, TRAINING_COLUMNS

    hive = {"int32": "int", "int64": "bigint", "string": "string", "float64": "double", "date32": "date"}
    types = {name: hive[arrow] for name, arrow, _ in TRAINING_COLUMNS}
    return {"name": DATASET, "partition_key": {"name": PARTITION_KEY, "type": types[PARTITION_KEY]},
            "columns": [{"name": n, "type": t} for n, t in types.items() if n != PARTITION_KEY]}


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],  # noqa: S603 (our args)
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ServiceError(f"pip could not fetch what the Lambda needs: {last}",
                           hint="check the network or the package index (pip config list)")


def _prune(site: Path) -> None:
    for pattern in PRUNE:
        for path in list(site.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()


def _sourcedir(wheel: Path, target: Path) -> Built:
    """SageMaker script mode's source directory, as a reproducible tar.gz."""
    members = {"train.py": SAGEMAKER_ENTRY.encode(), wheel.name: wheel.read_bytes(),
               "requirements.txt": "\n".join([f"./{wheel.name}[aws]", *pins(SAGEMAKER_DISTRIBUTIONS)]).encode() + b"\n"}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(target)
    return _describe(target, SAGEMAKER_SOURCEDIR, sum(len(d) for d in members.values()))


def _wheel(root: Path, into: Path) -> Path:
    """The package as a wheel, built from a copy (setuptools leaves build/ in the tree it builds)."""
    tree = into.parent / "tree"
    shutil.copytree(root / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, tree / name)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(into), str(tree))
    wheels = sorted(into.glob("recpipe-*.whl"))
    if not wheels:
        raise ServiceError(f"pip built no recpipe wheel from {root}")
    return wheels[-1]


def _zip(site: Path, target: Path) -> Built:
    """A reproducible zip of ``site``: sorted entries, fixed timestamps, deflated."""
    unzipped = 0
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(site)), date_time=_EPOCH)
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            zf.writestr(info, data)
    tmp.replace(target)
    return _describe(target, target.name, unzipped)


def _describe(path: Path, name: str, unzipped: int) -> Built:
    """``path`` as the manifest lists it, under ``name`` (relative to the output folder)."""
    return Built(name, path.stat().st_size, unzipped, hashlib.sha256(path.read_bytes()).hexdigest())
