"""The command line: run a program under the hook, as plain ``python`` would run it."""

from __future__ import annotations

import argparse
import importlib.machinery
import io
import os
import sys
import types

from . import __version__, compat, config

USAGE = """python -m transparent_mp [options] (script.py | -m module | -c code) [args ...]
       python -m transparent_mp deploy [--help] [deploy options]
       python -m transparent_mp doctor [--help] [doctor options]"""
#: Subcommands, taken only when the first argument is exactly their name.
SUBCOMMANDS = ("deploy", "doctor")

DESCRIPTION = """\
Run an unmodified multiprocessing program with its processes on remote workers
and its shared state in Redis. The program sees the same sys.argv, __main__,
sys.path[0] and exit status as under plain `python`.

Every option can also be set with its environment variable (in brackets); an
option given here wins over the environment.
"""

EPILOG = """\
examples:
  python -m transparent_mp app.py --epochs 3
  python -m transparent_mp --workers 8 -m mypackage.train
  PYTHONPATH=$(python -m transparent_mp --sitecustomize-dir) python app.py

AWS Lambda (the `aws` extra: pip install 'transparent-mp[aws]'):
  python -m transparent_mp deploy --role ARN   build and create/update the function
  python -m transparent_mp doctor --redis-url rediss://:PASSWORD@HOST:6379
                                               check credentials, function and store
  python -m transparent_mp --backend lambda --redis-url rediss://... app.py
A script named deploy or doctor runs as ./deploy or ./doctor.
"""


def _parser() -> argparse.ArgumentParser:
    env = config.env_name
    p = argparse.ArgumentParser(
        prog="python -m transparent_mp", usage=USAGE, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", choices=config.BACKENDS,
                   help=f"where processes run (default: local) [{env('backend')}]")
    p.add_argument("--workers", type=int, metavar="N",
                   help="concurrency: what cpu_count() reports and the warm workers kept "
                        f"(default: this machine's CPUs) [{env('workers')}]")
    p.add_argument("--redis-url", metavar="URL",
                   help="redis://, rediss:// or unix:// URL of the store (default: start an "
                        f"embedded redis-server) [{env('redis_url')}]")
    p.add_argument("--idle-timeout", type=float, metavar="S",
                   help=f"seconds an idle warm worker lives (default: 60) [{env('idle_timeout')}]")
    p.add_argument("--stats", action="store_true", default=None,
                   help=f"print invocations and bytes used at exit [{env('stats')}]")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help=f"log what happens (-v info, -vv debug) [{env('log_level')}]")
    p.add_argument("--sitecustomize-dir", action="store_true",
                   help="print the folder to put on PYTHONPATH to install the hook, and exit")
    p.add_argument("--version", action="version", version=f"transparent_mp {__version__}")
    p.add_argument("-m", dest="module", metavar="module", help="run a library module as a script")
    p.add_argument("-c", dest="code", metavar="code", help="run a program passed as a string")
    return p


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """Our options, and the program with its arguments (from the script, -m or -c on)."""
    takes_value = {"--backend", "--workers", "--redis-url", "--idle-timeout"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-m", "-c"):
            return argv[: i + 2], argv[i + 2:]
        if arg == "--":
            return argv[:i], argv[i + 1:]
        if not arg.startswith("-"):
            return argv[:i], argv[i:]
        i += 2 if arg in takes_value else 1
    return argv, []


def _apply_options(ns: argparse.Namespace) -> None:
    values = {"backend": ns.backend, "workers": ns.workers, "redis_url": ns.redis_url,
              "idle_timeout": ns.idle_timeout, "stats": ns.stats}
    if ns.verbose:
        values["log_level"] = "DEBUG" if ns.verbose > 1 else "INFO"
    for name, value in values.items():
        if value is not None:
            os.environ[config.env_name(name)] = str(int(value) if value is True else value)
    config.reload()


def _fresh_main(**attrs: object) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__dict__.update(__builtins__=__builtins__, __spec__=None, __cached__=None, **attrs)
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    return module


def _run_script(path: str, args: list[str]) -> None:
    sys.argv = [path, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    filename = os.path.abspath(path)  # as python >= 3.9 sets __file__ of a script
    with io.open_code(filename) as f:
        source = f.read()
    loader = importlib.machinery.SourceFileLoader("__main__", filename)
    module = _fresh_main(__file__=filename, __loader__=loader)
    exec(compile(source, filename, "exec"), module.__dict__)


def _run_module(name: str, args: list[str]) -> None:
    sys.argv = [name, *args]
    sys.path[0] = os.getcwd()
    _fresh_main()
    compat.run_module_as_main(name, alter_argv=True)
    sys.modules["__mp_main__"] = sys.modules["__main__"]


def _run_code(code: str, args: list[str]) -> None:
    sys.argv = ["-c", *args]
    sys.path[0] = ""
    module = _fresh_main(__loader__=importlib.machinery.BuiltinImporter)
    exec(compile(code, "<string>", "exec"), module.__dict__)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in SUBCOMMANDS:
        subcommand = importlib.import_module(f"{__package__}.{argv[0]}")
        raise SystemExit(subcommand.main(argv[1:]))
    ours, program = _split(argv)
    parser = _parser()
    ns = parser.parse_args(ours)
    if ns.sitecustomize_dir:
        from .util import sitecustomize_dir

        print(sitecustomize_dir())
        return
    if ns.module is None and ns.code is None and not program:
        parser.error("nothing to run: give a script, -m module or -c code")
    try:
        _apply_options(ns)
    except ValueError as exc:
        parser.error(str(exc))
    from . import hook
    from .util import configure_logging

    configure_logging(config.settings().log_level)
    hook.install()
    if ns.module is not None:
        _run_module(ns.module, program)
    elif ns.code is not None:
        _run_code(ns.code, program)
    else:
        if not os.path.exists(program[0]):
            sys.stderr.write(f"{sys.executable}: can't open file {program[0]!r}: "
                             "[Errno 2] No such file or directory\n")
            raise SystemExit(2)
        _run_script(program[0], program[1:])
