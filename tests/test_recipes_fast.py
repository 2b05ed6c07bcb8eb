"""``recipes.hipart.fast``: the opt-in compile falls back to eager cleanly and, with a C++ compiler, compiles a tiny
HiPART into one graph with the eager tokens; bf16 autocast; fp32 default tokens."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from recipes.hipart import fast
from recipes.hipart.bench import _parts, build_models
from recipes.hipart.fast import Compiled, autocast, check_dtype
from recipes.hipart.inference import HiPART
from skeletok.lifter import HierarchicalLifter
from skeletok.prior import HierarchicalARPrior
from skeletok.tokenizer import HierarchicalPoseTokenizer


def _failing_compile(message):
    def compile(fn, **kwargs):
        def compiled(*args, **kw):
            raise RuntimeError(message)

        return compiled

    return compile


def test_compile_failure_at_the_first_call_falls_back_to_eager_with_one_warning(monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile("no C++ compiler found"))
    wrapped = Compiled(lambda x: x + 1, name="a function")
    assert wrapped.active
    with pytest.warns(RuntimeWarning, match="torch.compile of a function failed .*no C\\+\\+ compiler"):
        assert wrapped(1) == 2
    assert not wrapped.active
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wrapped(2) == 3


def test_compile_unavailable_at_construction_runs_eagerly(monkeypatch):
    def broken(fn, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="running it eagerly"):
        wrapped = Compiled(lambda x: 2 * x, name="f")
    assert not wrapped.active and wrapped(3) == 6


def test_an_input_error_after_fallback_is_the_eager_error(monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile("backend failed"))

    def fn(x):
        if x < 0:
            raise ValueError("x must be >= 0")
        return x

    wrapped = Compiled(fn, name="f")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="x must be >= 0"):
        wrapped(-1)


def test_errors_of_a_proven_compiled_function_propagate(monkeypatch):
    calls = []

    def compile(fn, **kwargs):
        def compiled(x):
            calls.append(x)
            if len(calls) > 1:
                raise ValueError("bad input")
            return fn(x)

        return compiled

    monkeypatch.setattr(torch, "compile", compile)
    wrapped = Compiled(lambda x: x, name="f")
    assert wrapped(1) == 1
    with pytest.raises(ValueError, match="bad input"):
        wrapped(2)
    assert wrapped.active


def test_disabled_never_compiles(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("compiled"))
    assert Compiled(lambda: 5, name="f", enabled=False)() == 5


def test_parse_options_reads_bools_ints_and_strings_over_a_base():
    assert fast.parse_options(["cpp_wrapper=false"], fast.FROZEN) == {"freezing": True, "cpp_wrapper": False}
    assert fast.parse_options(["max_autotune=True", "threads=-2", "mode= fast "]) == {
        "max_autotune": True, "threads": -2, "mode": "fast"}
    assert fast.FROZEN == {"freezing": True, "cpp_wrapper": True}  # the base is not modified
    for bad in ("cpp_wrapper", "=true"):
        with pytest.raises(ValueError, match="compile options must be KEY=VALUE"):
            fast.parse_options([bad])


def test_hipart_passes_its_compile_options_to_torch_compile(monkeypatch):
    seen = []

    def record(fn, **kwargs):
        seen.append(kwargs.get("options"))
        return fn

    monkeypatch.setattr(torch, "compile", record)
    model, _ = build_models("demo", compile=True)
    assert seen == [fast.FROZEN] and model.compile_options == fast.FROZEN
    build_models("demo", compile=True, compile_options={"freezing": True})
    assert seen[-1] == {"freezing": True}
    model.predict(torch.rand(2, 17, 2) - 0.5, torch.ones(2, 17, dtype=torch.bool))
    assert model.compile_active  # the (recording) compiled pipeline ran without falling back


def test_dtype_choices_and_autocast():
    assert check_dtype("bf16") == "bf16"
    with pytest.raises(ValueError, match="dtype must be one of \\['bf16', 'fp32'\\], got 'float16'"):
        check_dtype("float16")
    with autocast(torch.device("cpu"), "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert set(fast.DTYPES) == {"fp32", "bf16"}


def test_hipart_bf16_returns_fp32_outputs_and_fp32_default_is_the_reference(monkeypatch):
    torch.manual_seed(0)
    model, _ = build_models("demo")
    snap = model.snap[2] if model.snap else None  # the preset's snapping, kept by every variant
    bf16 = type(model)(model.tokenizer, model.prior, model.lifter, device="cpu", dtype="bf16", snap_detail=snap)
    monkeypatch.setattr(torch, "compile", _failing_compile("no compiler"))
    compiled = type(model)(model.tokenizer, model.prior, model.lifter, device="cpu", compile=True, snap_detail=snap)
    x = torch.rand(3, 17, 2) - 0.5
    vis = torch.rand(3, 17) > 0.3
    ref = model.predict(x, vis)
    low = bf16.predict(x, vis)
    assert low.joints_3d.dtype == low.dense_2d.dtype == low.fine_2d.dtype == torch.float32
    assert low.q_s.shape == ref.q_s.shape and torch.isfinite(low.joints_3d).all()
    with pytest.warns(RuntimeWarning, match="running it eagerly"):
        again = compiled.predict(x, vis)
    assert torch.equal(again.q_s, ref.q_s) and torch.equal(again.joints_3d, ref.joints_3d)
    with pytest.raises(ValueError, match="dtype must be one of"):
        type(model)(model.tokenizer, model.prior, model.lifter, device="cpu", dtype="half")


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="inductor needs a C++ compiler")
def test_real_compile_of_a_tiny_hipart_is_one_graph_with_the_eager_tokens():
    """Compiles for real (about 30 s on 2 cores): 2 parts keep the unrolled generation small."""
    torch.manual_seed(0)
    parts = 2
    tokenizer = HierarchicalPoseTokenizer(num_fine=96, num_dense=48, num_parts=parts, dense_per_part=3,
                                          fine_parts=_parts(96, parts), dense_parts=_parts(48, parts), dim=16,
                                          depth=1, code_dim=8, codebook_size_sparse=16, codebook_size_dense=16)
    prior = HierarchicalARPrior(num_parts=parts, dense_per_part=3, codebook_size_sparse=16, codebook_size_dense=16,
                                code_dim=(8, 8), dim=16, depth=1, heads=2, dropout=0.0)
    lifter = HierarchicalLifter(level_points=(17, 48, 96), dim=16, depth=1, heads=2)
    for module in (tokenizer, prior, lifter):
        module.eval().requires_grad_(False)
    eager = HiPART(tokenizer, prior, lifter, device="cpu")
    compiled = HiPART(tokenizer, prior, lifter, device="cpu", compile=True)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 17, 2, generator=g) - 0.5
    vis = torch.rand(5, 17, generator=g) > 0.3
    vis[0, 0] = False  # one pose with its pelvis hidden: the fallback centre runs inside the graph too
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager would warn
        fast_out = compiled.predict(x, vis)
    assert compiled.compile_active
    # one graph: no data-dependent check split it
    assert dict(torch._dynamo.utils.counters["graph_break"]) == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    ref = eager.predict(x, vis)
    assert torch.equal(fast_out.q_s, ref.q_s) and torch.equal(fast_out.q_d, ref.q_d)
    torch.testing.assert_close(fast_out.joints_3d, ref.joints_3d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_out.fine_2d, ref.fine_2d, atol=1e-5, rtol=1e-5)
    # bad input is still rejected with the eager message before the graph runs
    bad = x.clone()
    bad[1, 3] = float("nan")
    vis_bad = vis.clone()
    vis_bad[1, 3] = True
    with pytest.raises(ValueError, match="sparse_2d must be finite"):
        compiled.predict(bad, vis_bad)


def _mixed_visibility(b: int, seed: int = 0) -> torch.Tensor:
    """``(b, 17)``: every other pose fully seen, the rest with about 30 % of their joints hidden (at least one)."""
    g = torch.Generator().manual_seed(seed)
    vis = torch.rand(b, 17, generator=g) > 0.3
    vis[1::2, 5] = False
    vis[::2] = True
    return vis


def test_lazy_gives_the_default_answer_and_generates_tokens_for_partly_seen_poses_only(monkeypatch):
    torch.manual_seed(0)
    model, _ = build_models("demo")  # the demo preset: levels snapped, no token detail
    lazy = model.reference(lazy=True)
    assert lazy.lazy and not model.lazy
    x = torch.rand(8, 17, 2) - 0.5
    vis = _mixed_visibility(8)
    generated = []
    generate = model.prior.generate

    def spy(x_s, visibility, **kwargs):
        generated.append(visibility.clone())
        return generate(x_s, visibility, **kwargs)

    ref = model.predict(x, vis)
    monkeypatch.setattr(model.prior, "generate", spy)
    out = lazy.predict(x, vis)
    seen = vis.all(1)
    assert len(generated) == 1 and torch.equal(generated[0], vis[~seen])  # the prior never ran on a fully seen pose
    torch.testing.assert_close(out.joints_3d, ref.joints_3d, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.fine_2d, ref.fine_2d, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.dense_2d, ref.dense_2d, atol=1e-6, rtol=0)
    assert torch.equal(out.q_s[~seen], ref.q_s[~seen]) and torch.equal(out.q_d[~seen], ref.q_d[~seen])
    assert (out.q_s[seen] == -1).all() and (out.q_d[seen] == -1).all() and (ref.q_s >= 0).all()
    generated.clear()
    every = lazy.predict(x[seen], vis[seen])  # a batch of fully seen poses: no generation at all
    assert not generated and (every.q_s == -1).all()
    torch.testing.assert_close(every.joints_3d, ref.joints_3d[seen], atol=1e-6, rtol=0)
    # the ablation without levels is unchanged, and bad input is still the prior's clear error
    torch.testing.assert_close(lazy.densify_and_lift(x, vis, hide_levels=True)[-1],
                               model.densify_and_lift(x, vis, hide_levels=True)[-1], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="NaN|finite"):
        lazy.predict(torch.full((2, 17, 2), float("nan")))


def test_lazy_refuses_models_whose_fully_seen_poses_read_their_tokens():
    torch.manual_seed(0)
    model, _ = build_models("demo")
    parts = model.tokenizer, model.prior, model.lifter
    for kwargs, why in ((dict(), "not snapped"), (dict(snap_detail=0.5), "detail"),
                        (dict(snap_detail=0.0, gate_levels=True, guess_min_logp=-1.0), "guess_min_logp")):
        with pytest.raises(ValueError, match=f"lazy=True needs .*{why}"):
            HiPART(*parts, device="cpu", lazy=True, **kwargs)
    confident = HierarchicalLifter(level_points=(17, 48, 96), dim=8, depth=1, heads=2, confidence=True)
    with pytest.raises(ValueError, match="lifter reads the prior's confidence"):
        HiPART(model.tokenizer, model.prior, confident, device="cpu", lazy=True, snap_detail=0.0)


def test_lazy_compiled_falls_back_to_eager_with_the_same_answer(monkeypatch):
    torch.manual_seed(0)
    model, _ = build_models("demo")
    monkeypatch.setattr(torch, "compile", _failing_compile("no compiler"))
    compiled = HiPART(model.tokenizer, model.prior, model.lifter, device="cpu", compile=True, lazy=True,
                      snap_detail=0.0)
    x = torch.rand(6, 17, 2) - 0.5
    vis = _mixed_visibility(6, seed=1)
    ref = model.predict(x, vis)
    with pytest.warns(RuntimeWarning, match="running it eagerly"):
        out = compiled.predict(x, vis)  # a mixed batch: the whole pipeline, fully seen poses' tokens -1
    seen = vis.all(1)
    assert (out.q_s[seen] == -1).all() and torch.equal(out.q_s[~seen], ref.q_s[~seen])
    torch.testing.assert_close(out.joints_3d, ref.joints_3d, atol=1e-6, rtol=0)
    with pytest.warns(RuntimeWarning, match="fully seen poses failed"):
        seen_only = compiled.predict(x[seen], vis[seen])  # its own graph, also falling back
    torch.testing.assert_close(seen_only.joints_3d, ref.joints_3d[seen], atol=1e-6, rtol=0)
