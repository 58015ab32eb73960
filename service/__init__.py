"""The case service: draft cases from camera agents, their evidence, and reviewers' decisions."""
