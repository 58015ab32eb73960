"""The detector: model loading and inference, the taxonomy, dataset recipes, training and evaluation."""
