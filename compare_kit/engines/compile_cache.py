"""A persistent on-disk cache of nutpie's compiled entry points, so a model compiles once per machine.

nutpie compiles a PyMC model in two steps: PyTensor turns the log density (and
the map to the reported variables) into numba functions, which PyTensor already
caches on disk under a key derived from the whole graph, constants included; then
nutpie wraps each in a C callback (``numba.cfunc``) that it never caches, and that
wrapper takes most of the compile time. Here the two wrappers are the same code as
nutpie's, generated as source and cached by numba in compare_kit's cache folder
under a key made of PyTensor's key for the wrapped function, the wrapper's source,
and the versions of numba, nutpie, PyTensor and this module. A different model,
different data or a library upgrade is a different key: never a wrong model.

Only models nutpie would compile without shared data qualify (compare_kit's own
and Bambi's models: the data are constants) and only when PyTensor could cache the
wrapped function (its constants under numba's 1 MB limit for static globals).
Anything else, and any failure while loading or saving an entry (a corrupt or
unreadable file), falls back to nutpie's own uncached compile.

It reaches into private parts of numba (its cache locators), PyTensor (its table of cached
functions) and nutpie (its PyMC compile steps), written against the versions in ``WRITTEN_FOR``
(pyproject.toml pins the same ranges). Under any other version the cache steps aside and nutpie
compiles as usual (status ``"uncacheable: ..."``); ``tests/engines/test_compile_cache.py`` fails with
a message saying what to re-check.

Where: ``COMPARE_KIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/compare_kit`` or
``~/.cache/compare_kit``; ``fit_bayesian(compile_cache=...)`` takes a folder, or
``False`` to compile without the cache. Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import weakref
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FORMAT = 1
ENV_VAR = "COMPARE_KIT_CACHE_DIR"
# the (major, minor) series of each library whose private parts this module uses, as it was written
WRITTEN_FOR = {"numba": (0, 68), "nutpie": (0, 16), "pytensor": (3, 3)}


def version_problems() -> list[str]:
    """The libraries whose installed series is not the one this module was written against."""
    from importlib import metadata

    problems = []
    for name, series in WRITTEN_FOR.items():
        installed = metadata.version(name)
        parts = tuple(int(p) for p in installed.split(".")[:2] if p.isdigit())
        if parts != series:
            problems.append(f"{name} {installed} (written for {series[0]}.{series[1]}.x)")
    return problems


def default_cache_dir() -> Path:
    """``$COMPARE_KIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/compare_kit``, else ``~/.cache/compare_kit``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "compare_kit"


def resolve_cache_dir(option: Path | str | bool | None) -> Path | None:
    """``True``/``None``: the default folder; ``False``: no cache; a path: that folder."""
    if option is False:
        return None
    if option is None or option is True:
        return default_cache_dir()
    return Path(option).expanduser()



_OURS: weakref.WeakKeyDictionary[Any, tuple[str, Path]] = weakref.WeakKeyDictionary()
_registered = False


def _register_locator() -> None:
    """Teach numba where our wrappers' entries live (only functions in ``_OURS`` match)."""
    global _registered
    if _registered:
        return
    import numba
    import nutpie
    import pytensor
    from numba.core.caching import CacheImpl, _CacheLocator

    stamp = (CACHE_FORMAT, numba.__version__, nutpie.__version__, pytensor.__version__)

    class Locator(_CacheLocator):
        def __init__(self, py_func: Any, py_file: str, key: str, folder: Path) -> None:
            self._py_func = py_func
            self._py_file = py_file
            self._key = key
            self._folder = folder

        def ensure_cache_path(self) -> None:
            self._folder.mkdir(parents=True, exist_ok=True)
            probe = self._folder / f".probe-{os.getpid()}"
            probe.write_bytes(b"")  # raises if the folder is not writable: numba then skips it
            probe.unlink()

        def get_cache_path(self) -> str:
            return str(self._folder)

        def get_source_stamp(self) -> Any:
            return stamp

        def get_disambiguator(self) -> str:
            return self._key

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            entry = _OURS.get(py_func)
            return None if entry is None else cls(py_func, py_file, *entry)

    CacheImpl._locator_classes.insert(0, Locator)
    _registered = True


_LOGP_SRC = """
def logp_numba(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
        logp_val, grad = inner(x)
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SRC = """
def expand_numba(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
        (values,) = inner(x)
        out[...] = values
    except Exception:
        return -2
    return 0
"""


class _Uncacheable(Exception):
    pass


def _cfunc(src: str, name: str, inner: Any, sig: Any, folder: Path) -> tuple[Any, str]:
    """The C callback of ``src`` wrapping ``inner``; (cfunc, "hit" | "miss" | "unsaved")."""
    import numba
    import nutpie
    import pytensor
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    inner_key = CACHED_SRC_FUNCTIONS.get(getattr(inner, "py_func", None))
    if inner_key is None:
        raise _Uncacheable("PyTensor did not cache the wrapped function")
    key = hashlib.sha256("\0".join([str(CACHE_FORMAT), numba.__version__, nutpie.__version__,
                                    pytensor.__version__, inner_key, src]).encode()).hexdigest()
    # Load (or compile) the wrapped function itself first. The wrapper's machine code calls it by
    # symbol and the copy already in memory is the one that runs; with the same copy in memory
    # every time, a cache hit, a cold compile and nutpie's own compile give the same draws.
    array = numba.types.Array(numba.types.float64, 1, "C")
    inner.compile((numba.types.UniTuple(array, 1),))  # its one argument, packed as *args

    def build() -> tuple[Any, bool]:
        # __name__: numba rebuilds a cached entry's environment from the defining module
        env: dict[str, Any] = {"__name__": __name__, "numba": numba, "np": np, "inner": inner}
        exec(compile(src, f"<compare_kit {name} {key[:12]}>", "exec"), env)  # noqa: S102 - our template
        _OURS[env[name]] = (key, folder)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = numba.cfunc(sig, cache=True)(env[name])
        return compiled, not any("Cannot cache" in str(w.message) for w in caught)

    try:
        compiled, saved = build()
    except Exception:  # noqa: BLE001 - an unreadable entry under this key: drop it, compile afresh
        for path in folder.glob(f"*{key}*"):
            path.unlink(missing_ok=True)
        compiled, saved = build()
    if compiled.cache_hits:
        return compiled, "hit"
    if not saved:  # e.g. constants over numba's 1 MB limit: compiled, but not for the next run
        return compiled, "unsaved"
    # Just compiled and saved: load the saved entry and run that, as every later run will, so that
    # the draws do not depend on whether this run compiled or loaded
    compiled, _ = build()
    if not compiled.cache_hits:
        raise _Uncacheable("the entry just saved could not be loaded")
    return compiled, "miss"


def compile_pymc_model(model: Any, var_names: list[str], folder: Path | None) -> tuple[Any, str]:
    """nutpie's numba compile of ``model``, its wrappers cached in ``folder``; (compiled, cache status).

    The status is ``"hit"``, ``"miss"`` (compiled and saved), ``"unsaved"`` (compiled, but numba
    could not save it: constants over its 1 MB limit), ``"off"`` or ``"uncacheable: why"`` (nutpie's
    own compile).
    """
    import nutpie

    with exact_math():
        if folder is None:
            return nutpie.compile_pymc_model(model, backend="numba", var_names=var_names), "off"
        versions = version_problems()
        if versions:
            status = f"uncacheable: private internals unchecked for {', '.join(versions)}"
            return nutpie.compile_pymc_model(model, backend="numba", var_names=var_names), status
        try:
            return _compile_cached(model, var_names, folder)
        except _Uncacheable as exc:
            status = f"uncacheable: {exc}"
        except Exception as exc:  # noqa: BLE001 - an unreadable or corrupt entry: compile as nutpie does
            status = f"uncacheable: {type(exc).__name__}: {exc}"
        return nutpie.compile_pymc_model(model, backend="numba", var_names=var_names), status


def exact_math() -> AbstractContextManager[Any]:
    """PyTensor's numba functions compiled without fastmath, for compiles inside this block.

    With fastmath, numba code just compiled in memory rounds differently (last bits) from the same
    code loaded from PyTensor's on-disk cache, and NUTS carries the difference into the draws: the
    same seed gave other draws on a machine's first run (cold cache) than on every later run.
    Without it both give the same bits; sampling speed is unchanged (measured on the radon models).
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def _compile_cached(model: Any, var_names: list[str], folder: Path) -> tuple[Any, str]:
    """nutpie 0.16's ``compile_pymc_model(backend="numba")`` for a model without shared data."""
    import numba
    from nutpie import compile_pymc as ncp
    from pymc.initial_point import make_initial_point_fn

    _register_locator()
    initial_point_fn = ncp._wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True))
    (n_dim, n_expanded, logp_fn_pt, expand_fn_pt, initial_point_fn, shape_info,
     reparameterized_names) = ncp._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=initial_point_fn, var_names=var_names)
    if list(logp_fn_pt.get_shared()) or list(expand_fn_pt.get_shared()):
        raise _Uncacheable("the model has shared data")
    user_data = ncp.make_user_data({}, {})
    logp_sig = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                                 numba.types.CPointer(numba.types.double),
                                 numba.types.CPointer(numba.types.double), numba.types.voidptr)
    expand_sig = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                   numba.types.CPointer(numba.types.double),
                                   numba.types.CPointer(numba.types.double), numba.types.voidptr)
    logp, logp_status = _cfunc(_LOGP_SRC.format(n_dim=n_dim), "logp_numba", logp_fn_pt.vm.jit_fn, logp_sig,
                            folder)
    expand, expand_status = _cfunc(_EXPAND_SRC.format(n_dim=n_dim, n_expanded=n_expanded), "expand_numba",
                                expand_fn_pt.vm.jit_fn, expand_sig, folder)
    dims, coords = ncp._prepare_dims_and_coords(model, shape_info, reparameterized_names)
    compiled = ncp.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand, initial_point_func=initial_point_fn,
        shared_data={}, shared_var_keys={}, user_data=user_data, n_expanded=n_expanded,
        shape_info=shape_info, logp_func=logp_fn_pt, expand_func=expand_fn_pt,
        reparameterized_names=reparameterized_names)
    statuses = {logp_status, expand_status}
    return compiled, next(st for st in ("unsaved", "miss", "hit") if st in statuses)
