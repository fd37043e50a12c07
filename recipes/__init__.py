"""The shipped training recipes (YAML), kept at the repository's root so users can browse them, and installed as
``fixnorm_zoo.recipes`` package data (``pyproject.toml`` maps this folder there): ``fixnorm-zoo list --recipes``."""
