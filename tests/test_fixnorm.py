"""FixNorm: roles proven by a numerical probe, norms held, the effective-LR identity, exact resume."""

from __future__ import annotations

import io

import pytest
import timm
import torch
from helpers import tiny_net
from torch import nn

from fixnorm_zoo.optim.fixnorm import CLASSIFIER, FREE, INVARIANT, FixNorm, param_roles

# (timm name, kwargs): the families we ship plus others, at a small input so the probe is quick.
PROBE_MODELS = [
    ("resnet18", {}),
    ("efficientnet_b0", {}),  # depthwise convs + squeeze-excite convs
    ("mobilenetv2_100", {}),
    ("regnetx_002", {}),
    ("regnety_002", {}),  # RegNetY has squeeze-excite
    ("convnext_atto", {"ls_init_value": 1.0}),  # convs with bias feeding LayerNorm: not invariant
]


def _randomize_affine(model: nn.Module, x: torch.Tensor) -> None:
    """Make every branch and bias visible to the probe: timm zero-inits last BNs and layer biases, which hides a
    branch or fakes invariance. Biases get the scale of their layer's output, so neither part dominates."""
    scales: dict[nn.Module, float] = {}
    hooks = [
        m.register_forward_hook(lambda mod, _i, out: scales.__setitem__(mod, float(out.std())))
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear) and m.bias is not None
    ]
    with torch.no_grad():
        for m in model.modules():
            if (
                isinstance(m, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm)
                and m.weight is not None
            ):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.eps = 1e-12  # in float64, so an invariant weight's probe differs only by rounding
        model.eval()
        model(x)
        for h in hooks:
            h.remove()
        for m, std in scales.items():
            m.bias.normal_(0.0, std)


def _probe_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name,kwargs", PROBE_MODELS, ids=[m for m, _ in PROBE_MODELS])
def test_roles_match_numerical_probe(name: str, kwargs: dict) -> None:
    """Scaling an invariant weight by 2 leaves the train-mode output unchanged; scaling any other conv/linear
    weight changes it."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, drop_rate=0.0, drop_path_rate=0.0, **kwargs)
    model.double()
    x = torch.randn(8, 3, 64, 64, dtype=torch.float64)
    _randomize_affine(model, x[:2])
    roles = param_roles(model, example_input=x[:2])
    model.train()
    base = _probe_output(model, x)
    weights = {n: p for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2}
    assert weights, name
    mismatched = []
    for n, p in weights.items():
        with torch.no_grad():
            p.mul_(2.0)
            out = _probe_output(model, x)
            p.div_(2.0)
        rel = float((out - base).norm() / base.norm())
        unchanged = rel < 1e-8
        if unchanged != (roles[n] == INVARIANT):
            mismatched.append((n, roles[n], rel))
    assert not mismatched, f"{name}: role disagrees with the probe for {mismatched}"
    if name != "convnext_atto":
        assert sum(r == INVARIANT for r in roles.values()) >= 10
    if name in ("efficientnet_b0", "regnety_002"):
        se = [n for n in roles if (".se." in n and n.endswith("weight") and weights.get(n) is not None)]
        assert se and all(roles[n] == FREE for n in se), "squeeze-excite weights must not be invariant"
    if name == "efficientnet_b0":
        assert roles["blocks.1.0.conv_dw.weight"] == INVARIANT  # depthwise conv followed by BN
    head = [n for n, r in roles.items() if r == CLASSIFIER]
    assert head == [n for n, p in model.named_parameters() if p is model.get_classifier().weight]


def test_roles_without_normalization() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    roles = param_roles(model, classifier="3", example_input=torch.randn(2, 3, 8, 8))
    assert roles == {"0.weight": FREE, "0.bias": FREE, "3.weight": CLASSIFIER, "3.bias": FREE}
    opt = FixNorm(model, "sgd", lr=0.1, classifier="3", example_input=torch.randn(2, 3, 8, 8))
    assert [g["fixnorm_role"] for g in opt.param_groups] == [CLASSIFIER, FREE]


def test_groupnorm_bias_breaks_invariance() -> None:
    with_bias = nn.Sequential(nn.Conv2d(3, 8, 3, bias=True), nn.GroupNorm(2, 8))
    without = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.GroupNorm(2, 8))
    x = torch.randn(2, 3, 8, 8)
    assert param_roles(with_bias, example_input=x)["0.weight"] == FREE
    assert param_roles(without, example_input=x)["0.weight"] == INVARIANT


def _batches(
    n: int, seed: int = 0, batch: int = 16, classes: int = 5
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, 3, 8, 8, generator=g), torch.randint(0, classes, (batch,), generator=g))
        for _ in range(n)
    ]


def _train(model: nn.Module, opt: torch.optim.Optimizer, batches: list) -> list[float]:
    losses = []
    model.train()
    for x, y in batches:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


BASES = [
    ("sgd", {"lr": 5.0, "momentum": 0.9, "nesterov": True}),
    (torch.optim.RMSprop, {"lr": 0.5, "alpha": 0.9, "momentum": 0.9}),
    ("adamw", {"lr": 0.3}),
    (torch.optim.Adam, {"lr": 0.3}),
]


@pytest.mark.parametrize("base,kwargs", BASES, ids=["sgd", "rmsprop", "adamw", "adam"])
def test_norms_stay_at_target(base, kwargs) -> None:
    torch.manual_seed(0)
    model = tiny_net()
    initial = {n: float(p.detach().norm()) for n, p in model.named_parameters()}
    opt = FixNorm(model, base, fc_norm=3.0, example_input=torch.randn(2, 3, 8, 8), classifier="8", **kwargs)
    moved = {n: float(p.detach().norm()) for n, p in model.named_parameters()}
    _train(model, opt, _batches(60))
    for n, p in model.named_parameters():
        role = {"0.weight": INVARIANT, "3.weight": INVARIANT, "8.weight": CLASSIFIER}.get(n, FREE)
        norm = float(p.detach().norm())
        if role == INVARIANT:
            assert norm == pytest.approx(initial[n], rel=1e-5), n
        elif role == CLASSIFIER:
            assert norm == pytest.approx(3.0, rel=1e-5), n
    # the free parameters did train (no silent freezing), and invariant weights changed direction
    assert any(
        abs(float(p.detach().norm()) - moved[n]) > 1e-3
        for n, p in model.named_parameters()
        if n.endswith("bias")
    )
    assert opt.diagnostics()["max_norm_error"] < 1e-5


def test_rows_mode_fixes_each_class_row() -> None:
    torch.manual_seed(0)
    model = tiny_net()
    opt = FixNorm(
        model,
        "sgd",
        lr=1.0,
        fc_norm=2.0,
        fc_norm_mode="rows",
        classifier="8",
        example_input=torch.randn(2, 3, 8, 8),
    )
    _train(model, opt, _batches(10))
    rows = model[8].weight.detach().norm(dim=1)
    torch.testing.assert_close(rows, torch.full_like(rows, 2.0 / 5**0.5))


def _identity_run(*, r: float, lr_scale: float, momentum: float, x_probe: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    model = tiny_net().double()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-12  # BN's eps is the one term that is not scale-invariant
    opt = FixNorm(
        model,
        "sgd",
        lr=0.5,
        momentum=momentum,
        invariant_norm=r,
        fc_norm=3.0,
        classifier="8",
        example_input=x_probe[:2],
    )
    opt.group(INVARIANT)["lr"] *= lr_scale
    _train(model, opt, [(x.double(), y) for x, y in _batches(40)])
    assert float(model[3].weight.detach().norm()) == pytest.approx(r, rel=1e-9)
    model.train()
    with torch.no_grad():
        return model(x_probe)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_effective_lr_identity(momentum: float) -> None:
    """FixNorm(r, lr) and FixNorm(c*r, c^2*lr) on the invariant weights trace the same function (float64, BN eps
    near 0: with BN's default eps=1e-5 the runs drift apart by eps/var, visibly after 40 large steps)."""
    c = 3.0
    x_probe = torch.randn(16, 3, 8, 8, dtype=torch.float64)
    ref = _identity_run(r=2.0, lr_scale=1.0, momentum=momentum, x_probe=x_probe)
    same = _identity_run(r=2.0 * c, lr_scale=c**2, momentum=momentum, x_probe=x_probe)
    torch.testing.assert_close(same, ref, rtol=1e-6, atol=1e-6)
    # not trivially true: the same norm without the c^2 LR is another function
    other = _identity_run(r=2.0 * c, lr_scale=1.0, momentum=momentum, x_probe=x_probe)
    assert (other - ref).abs().max() > 1e-2


def test_state_dict_resume_is_exact() -> None:
    batches = _batches(30)
    torch.manual_seed(0)
    model = tiny_net()
    opt = FixNorm(
        model,
        "sgd",
        lr=0.5,
        momentum=0.9,
        nesterov=True,
        fc_norm=3.0,
        classifier="8",
        example_input=torch.randn(2, 3, 8, 8),
    )
    _train(model, opt, batches[:10])
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    reference = _train(model, opt, batches[10:])

    # a fresh optimizer built with other targets: the checkpoint's targets must win
    torch.manual_seed(1)
    model2 = tiny_net()
    opt2 = FixNorm(
        model2,
        "sgd",
        lr=0.5,
        momentum=0.9,
        nesterov=True,
        fc_norm=7.0,
        invariant_norm=9.0,
        classifier="8",
        example_input=torch.randn(2, 3, 8, 8),
    )
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.group(CLASSIFIER)["fixnorm_targets"] == [3.0]
    assert opt2.group(INVARIANT)["fixnorm_targets"] == opt.group(INVARIANT)["fixnorm_targets"]
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    resumed = _train(model2, opt2, batches[10:])
    assert resumed == reference
    for (n, p), (_, q) in zip(model.named_parameters(), model2.named_parameters(), strict=True):
        assert torch.equal(p, q), n


def test_scheduler_drives_the_shared_groups() -> None:
    model = tiny_net()
    opt = FixNorm(model, "sgd", lr=1.0, classifier="8", example_input=torch.randn(2, 3, 8, 8))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _train(model, opt, _batches(1))
    sched.step()
    assert all(g["lr"] == 0.5 for g in opt.base_optimizer.param_groups)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"weight_decay": 1e-4}, ValueError, "FixNorm replaces weight decay"),
        ({"fc_norm": -1.0}, ValueError, "fc_norm=-1.0"),
        ({"fc_norm_mode": "cols"}, ValueError, "fc_norm_mode='cols'"),
        ({"momentun": 0.9}, TypeError, "momentun"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        FixNorm(tiny_net(), "sgd", lr=0.1, classifier="8", example_input=torch.randn(2, 3, 8, 8), **kwargs)


def test_unknown_base_lists_choices() -> None:
    with pytest.raises(ValueError, match="choose one of .*'sgd'"):
        FixNorm(tiny_net(), "sgdd", lr=0.1, classifier="8", example_input=torch.randn(2, 3, 8, 8))


def test_adamw_default_weight_decay_is_turned_off() -> None:
    opt = FixNorm(
        tiny_net(), torch.optim.AdamW, lr=0.1, classifier="8", example_input=torch.randn(2, 3, 8, 8)
    )
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups)


def test_issue_example_on_timm() -> None:
    model = timm.create_model("resnet18", num_classes=10)
    roles = param_roles(model)
    assert set(roles.values()) == {INVARIANT, CLASSIFIER, FREE}
    opt = FixNorm(model, torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True, fc_norm=4.0)
    # what a timm training loop relies on: schedulers step it, the classifier sits at fc_norm from the start
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    opt.step()
    sched.step()
    assert all(g["lr"] == pytest.approx(0.01) for g in opt.param_groups)
    assert float(model.fc.weight.detach().norm()) == pytest.approx(4.0, rel=1e-6)


def test_projection_lands_on_the_target_for_large_tensors() -> None:
    """Norms reduce in float64: a float32 sum over resnet18's 2.4M-element layer4.1.conv2.weight was 2e-4 off."""
    import timm

    from fixnorm_zoo.optim.fixnorm import FixNorm

    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=10)
    opt = FixNorm(model, "rmsproptf", lr=0.01, example_input=torch.randn(2, 3, 64, 64))
    model(torch.randn(4, 3, 64, 64)).sum().backward()
    opt.step()
    checked = 0
    for group in opt.param_groups:
        for p, target in zip(group["params"], group["fixnorm_targets"], strict=True):
            if target is not None and p.numel() > 1_000_000:
                assert abs(float(p.detach().double().norm()) - target) / target < 1e-6
                checked += 1
    assert checked >= 4  # layer4's 2.4M-element convs (and layer3's), not an empty loop


def test_fc_norm_without_a_classifier_is_an_error_naming_classifier() -> None:
    import torchvision

    from fixnorm_zoo.optim.fixnorm import FixNorm

    model = torchvision.models.resnet18(num_classes=10)  # no timm get_classifier()
    with pytest.raises(ValueError, match="classifier="):
        FixNorm(model, fc_norm=4.0, lr=0.1, example_input=torch.randn(2, 3, 32, 32))
    opt = FixNorm(model, fc_norm=4.0, classifier="fc", lr=0.1, example_input=torch.randn(2, 3, 32, 32))
    assert float(model.fc.weight.double().norm()) == pytest.approx(4.0, rel=1e-6)
    assert opt.group("classifier") is not None


@pytest.mark.parametrize(
    ("name", "cls_name", "nesterov"),
    [
        ("momentum", "SGD", False),
        ("sgd", "SGD", False),
        ("rmsproptf", "RMSpropTF", None),
        ("lamb", "Lamb", None),
    ],
)
def test_timm_optimizer_names_are_accepted_or_refused_by_name(name, cls_name, nesterov) -> None:
    import timm

    from fixnorm_zoo.optim.fixnorm import FixNorm

    model = timm.create_model("resnet18", num_classes=10)
    opt = FixNorm(model, name, lr=0.1, example_input=torch.randn(2, 3, 32, 32))
    assert type(opt.base_optimizer).__name__ == cls_name
    if nesterov is not None:
        assert opt.base_optimizer.defaults["nesterov"] is nesterov
    with pytest.raises(ValueError, match="neither a torch.optim nor a timm optimizer"):
        FixNorm(model, "no_such_opt", lr=0.1, example_input=torch.randn(2, 3, 32, 32))
