"""FixNorm over torch.optim.Muon: conv filters orthogonalized as (out, rest) matrices, the rest on SGD; norms held,
channels_last handled, the update really is Muon's, and a state_dict resume is exact."""

from __future__ import annotations

import io

import pytest
import torch
from helpers import tiny_net
from torch import nn

from fixnorm_zoo.optim.fixnorm import CLASSIFIER, INVARIANT, FixNorm
from fixnorm_zoo.optim.matrix import MatrixOptimizer

muon = pytest.importorskip("torch.optim").__dict__.get("Muon")
pytestmark = pytest.mark.skipif(muon is None, reason="this torch has no torch.optim.Muon")
X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g)) for _ in range(n)
    ]


def _train(
    model: nn.Module, opt: torch.optim.Optimizer, batches, *, channels_last: bool = False
) -> list[float]:
    losses = []
    model.train()
    for x, y in batches:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _fixnorm_muon(model: nn.Module, **kw) -> FixNorm:
    return FixNorm(
        model,
        torch.optim.Muon,
        lr=0.05,
        fc_norm=3.0,
        invariant_norm=4.0,
        classifier="8",
        example_input=X,
        **kw,
    )


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_muon_base_trains_and_holds_the_norms(channels_last: bool) -> None:
    torch.manual_seed(0)
    model = tiny_net()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = _fixnorm_muon(model)
    assert isinstance(opt.base_optimizer, MatrixOptimizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = _train(model, opt, _batches(4) * 10, channels_last=channels_last)  # 4 batches seen 10 times
    assert (
        sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.2
    )  # it fits them (random labels: only memorizing helps)
    conv_weights = ["0.weight", "3.weight"]
    for n, p in model.named_parameters():
        assert not torch.equal(p, before[n]), f"{n} never moved"
        if n in conv_weights:
            assert float(p.detach().double().norm()) == pytest.approx(4.0, rel=1e-6), n
        if n == "8.weight":
            assert float(p.detach().double().norm()) == pytest.approx(3.0, rel=1e-6)
    assert opt.diagnostics()["max_norm_error"] < 1e-6
    # the conv filters are Muon's (one 2-D state per filter), the classifier and the free tensors SGD's
    muon_state = opt.base_optimizer.matrix_optimizer.state
    assert sorted(tuple(s.shape) for s in muon_state) == [(16, 27), (32, 144)]
    assert {g["fixnorm_role"] for g in opt.base_optimizer.aux_optimizer.param_groups} == {CLASSIFIER, "free"}


def test_the_conv_update_is_orthogonalized() -> None:
    """One step from zero momentum: the (out, rest) matrix of a conv filter's update has its singular values close
    together (Muon's Newton-Schulz orthogonalization), those of the raw gradient are spread out."""
    torch.manual_seed(0)
    model = tiny_net()
    w = model[3].weight
    others = [p for p in model.parameters() if p is not w]
    opt = MatrixOptimizer(
        [{"params": [w], "matrix": True}, {"params": others}],
        matrix_cls=torch.optim.Muon,
        matrix_kwargs={"lr": 0.01, "weight_decay": 0.0},
        aux_cls=torch.optim.SGD,
        aux_kwargs={"lr": 0.01},
    )
    x, y = _batches(1)[0]
    nn.functional.cross_entropy(model(x), y).backward()
    grad = w.grad.detach().reshape(32, -1).clone()
    before = w.detach().clone()
    opt.step()
    step = (before - w.detach()).reshape(32, -1)
    cond_step = torch.linalg.svdvals(step)
    cond_grad = torch.linalg.svdvals(grad)
    assert float(cond_step[0] / cond_step[-1]) < 3.0
    assert float(cond_grad[0] / cond_grad[-1]) > 2 * float(cond_step[0] / cond_step[-1])


def test_muon_state_dict_resume_is_exact() -> None:
    batches = _batches(24)
    torch.manual_seed(0)
    model = tiny_net()
    opt = _fixnorm_muon(model)
    _train(model, opt, batches[:8])
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    reference = _train(model, opt, batches[8:])

    torch.manual_seed(1)
    model2 = tiny_net()
    opt2 = FixNorm(
        model2, torch.optim.Muon, lr=0.05, fc_norm=7.0, invariant_norm=9.0, classifier="8", example_input=X
    )
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.group(INVARIANT)["fixnorm_targets"] == [4.0, 4.0]  # the checkpoint's targets win
    assert opt2.group(CLASSIFIER)["fixnorm_targets"] == [3.0]
    assert _train(model2, opt2, batches[8:]) == reference
    for (n, p), (_, q) in zip(model.named_parameters(), model2.named_parameters(), strict=True):
        assert torch.equal(p, q), n


def test_scheduler_reaches_the_muon_groups() -> None:
    model = tiny_net()
    opt = _fixnorm_muon(model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _train(model, opt, _batches(1))
    sched.step()
    _train(model, opt, _batches(1, seed=1))
    assert all(g["lr"] == pytest.approx(0.025) for g in opt.param_groups)
    assert [g["lr"] for g in opt.base_optimizer.matrix_optimizer.param_groups] == [pytest.approx(0.025)]


def test_muon_weight_decay_refused_and_aux_kwargs_only_with_muon() -> None:
    with pytest.raises(ValueError, match="FixNorm replaces weight decay"):
        FixNorm(tiny_net(), torch.optim.Muon, lr=0.05, weight_decay=0.1, classifier="8", example_input=X)
    with pytest.raises(TypeError, match="aux_kwargs"):
        FixNorm(tiny_net(), "sgd", lr=0.05, aux_kwargs={"momentum": 0.5}, classifier="8", example_input=X)
    # Muon's own default weight decay (0.1) is turned off, as AdamW's is
    opt = _fixnorm_muon(tiny_net())
    assert opt.base_optimizer.matrix_optimizer.param_groups[0]["weight_decay"] == 0.0
