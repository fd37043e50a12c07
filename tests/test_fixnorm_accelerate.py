"""FixNorm under accelerate: checkpoints carry the targets, accumulation micro-steps do not project, and two gloo
processes really all-reduce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from helpers import run_torchrun, tiny_net
from torch import nn

from fixnorm_zoo.optim.fixnorm import CLASSIFIER, INVARIANT, FixNorm


def _fixnorm(model: nn.Module, fc_norm: float = 2.0, **kwargs) -> FixNorm:
    return FixNorm(
        model,
        "sgd",
        lr=0.5,
        momentum=0.9,
        fc_norm=fc_norm,
        classifier="5",
        example_input=torch.randn(2, 3, 6, 6),
        **kwargs,
    )


def _step(model, opt, accelerator, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 3, 6, 6, generator=g), torch.randint(0, 4, (8,), generator=g)
    with accelerator.accumulate(model):
        loss = nn.functional.cross_entropy(model(x), y)
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad()
    return loss.item()


def test_save_state_load_state_carry_targets(tmp_path: Path) -> None:
    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = tiny_net(4, widths=(8,))
    model, opt = acc.prepare(model, _fixnorm(model))
    for i in range(5):
        _step(model, opt, acc, i)
    acc.save_state(str(tmp_path / "ckpt"))
    reference = [_step(model, opt, acc, i) for i in range(5, 10)]

    acc2 = Accelerator(cpu=True)
    torch.manual_seed(3)
    model2 = tiny_net(4, widths=(8,))
    # built with other targets than the checkpoint's (fc_norm 7, invariant norm 5): the checkpoint's must win
    model2, opt2 = acc2.prepare(model2, _fixnorm(model2, fc_norm=7.0, invariant_norm=5.0))
    inner = opt2.optimizer
    assert inner.group(CLASSIFIER)["fixnorm_targets"] == [7.0]
    acc2.load_state(str(tmp_path / "ckpt"))
    assert isinstance(inner, FixNorm)
    assert inner.group(CLASSIFIER)["fixnorm_targets"] == [2.0]
    assert inner.group(INVARIANT)["fixnorm_targets"] == opt.optimizer.group(INVARIANT)["fixnorm_targets"]
    assert inner.group(INVARIANT)["fixnorm_targets"] != [5.0]
    resumed = [_step(model2, opt2, acc2, i) for i in range(5, 10)]
    assert resumed == reference


def test_accumulation_micro_steps_do_not_project() -> None:
    acc = Accelerator(cpu=True, gradient_accumulation_steps=2)
    torch.manual_seed(0)
    model = tiny_net(4, widths=(8,))
    model, opt = acc.prepare(model, _fixnorm(model))
    head = model[5].weight
    with torch.no_grad():
        head.mul_(3.0)  # knock the classifier off its target norm: only a real step may put it back
    _step(model, opt, acc, 0)  # micro-step: no optimizer update, no projection
    assert float(head.detach().norm()) == pytest.approx(6.0, rel=1e-5)
    _step(model, opt, acc, 1)  # sync step: update and projection
    assert float(head.detach().norm()) == pytest.approx(2.0, rel=1e-5)


def two_process_worker(out_dir: str) -> None:
    """Run inside each of two gloo processes: DDP+FixNorm copies stay identical, independent copies do not."""
    acc = Accelerator(cpu=True)
    assert acc.num_processes == 2, acc.num_processes
    torch.manual_seed(0)  # same init on both ranks
    synced, independent = tiny_net(4, widths=(8,)), tiny_net(4, widths=(8,))
    independent.load_state_dict(synced.state_dict())
    opt_ind = _fixnorm(independent)
    synced, opt = acc.prepare(synced, _fixnorm(synced))
    for i in range(6):
        seed = 100 * acc.process_index + i  # each rank sees its own data shard
        _step(synced, opt, acc, seed)
        _step(independent, opt_ind, acc, seed)  # accumulate() on an unprepared model: plain local training
    flat = torch.cat([p.detach().flatten() for p in acc.unwrap_model(synced).parameters()])
    flat_ind = torch.cat([p.detach().flatten() for p in independent.parameters()])
    gathered = acc.gather(flat.unsqueeze(0))
    gathered_ind = acc.gather(flat_ind.unsqueeze(0))
    head_norm = float(acc.unwrap_model(synced)[5].weight.detach().norm())
    if acc.is_main_process:
        result = {
            "world_size": acc.num_processes,
            "synced_max_diff": float((gathered[0] - gathered[1]).abs().max()),
            "independent_max_diff": float((gathered_ind[0] - gathered_ind[1]).abs().max()),
            "head_norm": head_norm,
        }
        Path(out_dir, "result.json").write_text(json.dumps(result))
    # both ranks done before either tears down (a rank closing its connections under a busy peer can abort it),
    # then destroy the process group: left to interpreter exit, gloo can abort ("terminate called")
    acc.wait_for_everyone()
    acc.end_training()


@pytest.mark.multiproc
def test_two_gloo_processes_stay_identical(tmp_path: Path) -> None:
    """Launched with torchrun in a fresh interpreter: forking this pytest process after torch has started its
    thread pool can deadlock the children."""
    code = (
        "import sys; sys.path.insert(0, 'tests'); "
        "from test_fixnorm_accelerate import two_process_worker as w; w(sys.argv[1])"
    )
    script = tmp_path / "worker.py"
    script.write_text(code)
    proc = run_torchrun([str(script), str(tmp_path)], timeout=180, PYTHONPATH=str(Path(__file__).parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world_size"] == 2
    assert result["synced_max_diff"] == 0.0
    assert result["independent_max_diff"] > 1e-3
    assert result["head_norm"] == pytest.approx(2.0, rel=1e-5)
