"""Shipped weights and their model card; installed as the package data of `streetwatch.models`."""
