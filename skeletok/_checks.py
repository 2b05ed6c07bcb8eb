"""Input validation shared by every public entry point.

Public functions and modules validate their inputs here so that bad input raises a
`ValueError` naming the argument, what was received and what was expected, instead of a
traceback from deep inside torch or einops.

Checks of values (finiteness, index ranges, 0/1 masks) are skipped while ``torch.compile`` traces (`checking_values`):
they are data-dependent and would split a compiled graph, so a compiled caller checks its input before the graph.

Shape specs are tuples whose items are ints (an exact size), strings (a named size that
must agree across every tensor checked with the same ``dims`` dict) or ``None`` (any size).
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = [
    "checking_values", "check_shape", "check_tensor", "check_visibility", "check_finite_where", "check_choice",
    "check_index_range",
]

ShapeSpec = Sequence[int | str | None]


def checking_values() -> bool:
    """Whether value checks run: False while ``torch.compile`` traces (see the module docstring)."""
    return not torch.compiler.is_compiling()


def _fmt(spec: ShapeSpec) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in spec) + ")"


def check_tensor(
    name: str,
    x,
    shape: ShapeSpec,
    *,
    dims: dict[str, int] | None = None,
    kind: str = "float",
    finite: bool = True,
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the expected shape, dtype kind and finiteness.

    Args:
        name: argument name used in the error message.
        x: the value to check.
        shape: expected shape; ints are exact, strings are named sizes bound in ``dims``,
            ``None`` matches any size.
        dims: named sizes shared between calls; bound on first use, checked afterwards.
        kind: ``"float"``, ``"int"`` (integer dtypes) or ``"bool"``; ``"any"`` skips the check.
        finite: for floats, reject NaN and inf.

    Returns:
        ``x`` unchanged.

    Raises:
        ValueError: with the argument name, the received and the expected shape or value.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {_fmt(shape)}, got {type(x).__name__}")
    check_shape(name, tuple(x.shape), shape, dims=dims)
    if kind == "float" and not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")
    if kind == "int" and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise ValueError(f"{name} must be an integer tensor (token indices), got dtype {x.dtype}")
    if kind == "bool" and x.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor, got dtype {x.dtype}")
    if finite and x.is_floating_point() and checking_values() and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf value(s) in a tensor of shape {tuple(x.shape)}")
    return x


def check_shape(name: str, got: tuple, shape: ShapeSpec, *, dims: dict[str, int] | None = None) -> None:
    """Check a shape tuple ``got`` (of a tensor or a numpy array) against a shape spec.

    Args:
        name: what the shape belongs to, used in the error message.
        got: the received shape.
        shape: expected shape; ints are exact, strings are named sizes bound in ``dims``, ``None`` any size.
        dims: named sizes shared between calls; bound on first use, checked afterwards.

    Raises:
        ValueError: naming ``name``, the received and the expected shape.
    """
    if len(got) != len(shape):
        raise ValueError(f"{name} must have shape {_fmt(shape)} ({len(shape)} dims), got {got}")
    dims = {} if dims is None else dims
    for axis, (size, want) in enumerate(zip(got, shape)):
        if want is None:
            continue
        if isinstance(want, str):
            bound = dims.setdefault(want, size)
            if bound != size:
                raise ValueError(
                    f"{name} has size {size} on axis {axis} ('{want}'), but '{want}' is {bound} "
                    f"elsewhere; expected shape {_fmt(shape)} with {want}={bound}, got {got}"
                )
        elif size != want:
            raise ValueError(f"{name} must have shape {_fmt(shape)}, got {got}")


def check_visibility(name: str, v, shape: ShapeSpec, *, dims: dict[str, int] | None = None) -> torch.Tensor | None:
    """Check an optional per-point visibility mask; bool, or 0/1 floats/ints (converted to bool).

    Returns:
        The mask as a bool tensor, or ``None`` when ``v`` is ``None``.
    """
    if v is None:
        return None
    check_tensor(name, v, shape, dims=dims, kind="any", finite=False)
    if v.dtype != torch.bool:
        if checking_values() and not torch.isin(v.float(), torch.tensor([0.0, 1.0], device=v.device)).all():
            raise ValueError(f"{name} must be bool or contain only 0/1, got values outside {{0, 1}}")
        v = v.bool()
    return v


def check_finite_where(name: str, x: torch.Tensor, visible: torch.Tensor | None, *, points: str = "points",
                       mask: str = "visibility") -> None:
    """Check that ``x`` ``(..., n, c)`` is finite at the points where ``visible`` ``(..., n)`` bool is True.

    Hidden points may hold anything (NaN included); ``visible=None`` means every point is visible.

    Raises:
        ValueError: naming ``x``, how many visible ``points`` hold NaN/inf, and the ``mask`` to mark them in instead.
    """
    if not checking_values():
        return
    bad = ~torch.isfinite(x).all(dim=-1)
    if visible is not None:
        bad = bad & visible
    if bad.any():
        raise ValueError(f"{name} must be finite at visible {points}, got NaN/inf at {int(bad.sum())} visible "
                         f"{points}; mark them False in {mask} instead")


def check_choice(name: str, value, choices: Sequence) -> None:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_index_range(name: str, x: torch.Tensor, size: int) -> torch.Tensor:
    """Check integer indices lie in ``[0, size)``."""
    if checking_values() and x.numel() and (int(x.min()) < 0 or int(x.max()) >= size):
        raise ValueError(f"{name} must hold indices in [0, {size}), got range [{int(x.min())}, {int(x.max())}]")
    return x
