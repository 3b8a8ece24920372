"""Batch jobs that resume, written shard by shard: teacher labelling, hard-negative mining,
encoding, synthetic queries and GainRAG gain labels."""
