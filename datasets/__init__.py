"""Dataset recipes and cards; installed as the package data of `streetwatch.recipes`."""
