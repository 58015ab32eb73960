"""The frame pipeline: sources, sampling, batching, tracking, zone rules, evidence, outbox and delivery."""
