"""Opt-in speed settings of HiPART inference: ``torch.compile`` and bf16 autocast (``HiPART(compile=..., dtype=...)``,
``skeletok hipart bench --compile --dtype bf16``).

Neither is on by default. fp32 without compiling gives the reference tokens (the tests compare the cached generation
with a straightforward recomputation). A compiled pipeline may reorder floating-point sums, so its tokens could
differ where two codes' logits nearly tie; bf16 autocast covers decoding and lifting only (generation stays fp32:
bf16 generation is no faster on a CPU, whose single-query steps are too small for it, and it moved 5 % of the
tokens), so its tokens are the fp32 ones and its joints move by bf16 rounding. ``bench`` reports the token agreement
and the MPJPE difference of both (its ``fast`` section).

``torch.compile`` (inductor; on CPU it needs a C++ compiler) compiles lazily at the first call of every new input
shape, which takes minutes on a small CPU for a whole HiPART pipeline (16 generation steps unrolled into one graph).
`FROZEN` are the inductor options of inference-only graphs: ``freezing`` folds the (frozen) weights into the graph as
constants, which lets inductor pre-pack them for its matmul kernels, and ``cpp_wrapper`` calls the kernels from
generated C++ instead of Python, which removes most of the per-operation overhead at batch 1 (`parse_options` reads
other choices, ``bench --compile-options cpp_wrapper=false``). Compiling pays off for small models only: at the
paper's ``h36m`` size the generated C++ took g++ more than 30 minutes, and without it the compiled pipeline was
slower than eager (numbers in ``recipes/hipart/README.md``, Benchmark). If compiling fails (no
compiler, an unsupported platform or torch), `Compiled` warns once and runs the eager function from then on, so ``compile=True`` never breaks inference.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable

import torch

__all__ = ["DTYPES", "FROZEN", "check_dtype", "parse_options", "autocast", "Compiled"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# inductor options for graphs whose weights never change after compiling (see the module docstring)
FROZEN = {"freezing": True, "cpp_wrapper": True}


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is a key of `DTYPES`, else a ValueError naming the choices."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return dtype


def parse_options(items: list[str] | tuple[str, ...], base: dict | None = None) -> dict:
    """Inductor options from ``KEY=VALUE`` strings (``true``/``false``, integers, else the string) over ``base``.

    E.g. ``parse_options(["cpp_wrapper=false"], FROZEN)`` is ``{"freezing": True, "cpp_wrapper": False}``.

    Raises:
        ValueError: for an item without ``=`` or with an empty key.
    """
    options = dict(base or {})
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"compile options must be KEY=VALUE (e.g. cpp_wrapper=false), got {item!r}")
        low = value.strip().lower()
        options[key.strip()] = (low == "true" if low in ("true", "false")
                                else int(low) if low.lstrip("-").isdigit() else value.strip())
    return options


def autocast(device: torch.device, dtype: str):
    """A ``torch.autocast`` context for ``dtype`` on ``device`` (a no-op context for ``"fp32"``)."""
    if check_dtype(dtype) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


class Compiled:
    """``fn`` through ``torch.compile``, falling back to ``fn`` itself if compiling fails.

    Until one compiled call has succeeded, an exception from the compiled function (compiler missing, backend
    failure) switches this wrapper to the eager ``fn`` for good, with one `RuntimeWarning`, and the call is repeated
    eagerly (so a genuine input error is raised by the eager function, as without compiling). After a success,
    exceptions propagate.

    Args:
        fn: the function or module to compile.
        name: what it is, for the warning.
        enabled: False returns ``fn``'s results without compiling anything.
        options: inductor options (``torch.compile(options=...)``), e.g. `FROZEN`.
    """

    def __init__(self, fn: Callable, *, name: str, enabled: bool = True, options: dict | None = None):
        self.fn, self.name = fn, name
        self.compiled: Callable | None = None
        self.proven = False
        if enabled:
            try:
                self.compiled = torch.compile(fn, options=options)
            except Exception as err:  # noqa: BLE001 - any failure means: run eagerly
                self._give_up(err)

    def _give_up(self, err: BaseException) -> None:
        warnings.warn(f"torch.compile of {self.name} failed ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                      "running it eagerly", RuntimeWarning, stacklevel=3)
        self.compiled = None

    @property
    def active(self) -> bool:
        """Whether calls go through the compiled function."""
        return self.compiled is not None

    def __call__(self, *args, **kwargs):
        if self.compiled is None:
            return self.fn(*args, **kwargs)
        if self.proven:
            return self.compiled(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - see the class docstring
            self._give_up(err)
            return self.fn(*args, **kwargs)
        self.proven = True
        return out
