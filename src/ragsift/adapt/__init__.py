"""``ragsift adapt``: unsupervised domain adaptation of a bi-encoder (GPL-style) in one command.

The stages chain the jobs and training of the layers below (:mod:`ragsift.adapt.stages`):
synthetic queries with their round-trip filter (:mod:`ragsift.jobs.synthesize`), hard
negatives with teacher scores and false-negative filtering (:mod:`ragsift.jobs.mine`), then
the fine-tuned bi-encoder and optionally a cross-encoder (:mod:`ragsift.train`). The settings
are :class:`ragsift.adapt.config.AdaptConfig`; the time budget is :mod:`ragsift.adapt.budget`.
"""
