"""The model-card template and one rendered card per zoo entry, kept at the repository's root so users can read
them, and installed as ``fixnorm_zoo.model_cards`` package data (``pyproject.toml`` maps this folder there)."""
