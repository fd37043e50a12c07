"""Kept for the published model cards, which print ``import fixnorm_zoo.architectures`` to register the zoo's
small-input architectures with timm before ``timm.create_model("hf-hub:...")``. The models live in
:mod:`fixnorm_zoo.models.resnet9s`; new code imports that."""

from fixnorm_zoo.models.resnet9s import REGISTERED_MODELS, ResNet9s, resnet9s

__all__ = ["REGISTERED_MODELS", "ResNet9s", "resnet9s"]
