"""The zoo: the registry, the Hub, loading and evaluating models, cards and publishing.

Modules::

    registry.py   Registry(path) over zoo.json (the zoo's one data file; locked, atomic writes)
    hub.py        Hub download and cache, sha256 check, mirrors, push of a release folder
    timm_tags.py  published entries as timm pretrained tags (architecture.tag), registered when timm loads
    pretrained.py load(name) -> eval-mode timm model (+ get_transforms)
    evaluate.py   evaluate(): a zoo model, run directory or hf-hub model with its own eval transform
    cards.py      model cards (model_cards/template.md; a recipe-only or retired entry's card)
    publish.py    publish(): check, stage (the re-evaluation gate, the repo folder), deliver, record
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Registry": "registry",
        "ModelInfo": "registry",
        "list_models": "registry",
        "model_info": "registry",
        "load": "pretrained",
        "get_transforms": "pretrained",
        "model_from_entry": "pretrained",
        "register_timm_tags": "timm_tags",
        "render_card": "cards",
    },
)
