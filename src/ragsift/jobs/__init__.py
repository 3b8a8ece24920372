"""Batch jobs that resume: teacher labelling and hard-negative mining, written shard by shard."""
