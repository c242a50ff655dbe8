"""ImageNet-style classification: the backbone with its global-pool + FC head (paper Table 1)."""
