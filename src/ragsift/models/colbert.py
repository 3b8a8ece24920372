"""A late-interaction (ColBERT) model: a transformer encoder plus a linear projection that turns
every token into a small unit vector; queries and documents are compared with MaxSim
(:mod:`ragsift.models.maxsim`).

Input layout, as in ColBERT and PyLate:

- query:    ``[CLS] [Q] tokens [SEP] [MASK] ... [MASK]`` padded with mask tokens to
  ``query_length`` (query augmentation); the mask tokens' vectors take part in MaxSim, and
  unless ``attend_to_expansion_tokens`` the real tokens do not attend to them;
- document: ``[CLS] [D] tokens [SEP]`` cut at ``document_length``; vectors of punctuation
  (``skiplist_words``) are dropped from scoring.

Every vector is ``normalize(W h_t)`` with ``h_t`` the encoder's last hidden state of token ``t``
and ``W`` the projection (``embedding_size`` x hidden, no bias; 128 by default).

Folders: reads and writes the PyLate layout (``modules.json`` with Transformer + Dense,
ColBERT settings in ``config_sentence_transformers.json``, prefix tokens added to the
tokenizer), and reads the Stanford ColBERT layout (``HF_ColBERT`` weights with ``linear.weight``
and ``artifact.metadata``). Any other encoder folder (a BERT, a sentence-transformers bi-encoder)
starts a new model with a fresh projection: that is what the training issue trains.
"""

from __future__ import annotations

import json
import logging
import os
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ragsift.atomic import atomic_dir
from ragsift.errors import DataFormatError, UsageError
from ragsift.models.batching import length_sorted_batches
from ragsift.models.dropout import attention_dropout_for
from ragsift.models.hub import model_id, resolve_model
from ragsift.models.st_layout import DenseLayer, SentenceTransformerLayout, read_json

logger = logging.getLogger(__name__)

ST_CONFIG = "config_sentence_transformers.json"


@dataclass
class LateInteractionConfig:
    """How texts become token vectors (the keys PyLate writes to ``config_sentence_transformers``).

    ``query_length`` and ``document_length`` count every token, special and prefix included.
    """

    query_prefix: str = "[Q] "
    document_prefix: str = "[D] "
    query_length: int = 32
    document_length: int = 180
    do_query_expansion: bool = True
    attend_to_expansion_tokens: bool = False
    skiplist_words: list[str] = field(default_factory=lambda: list(string.punctuation))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LateInteractionConfig:
        """Take the known keys of ``values`` (missing ones keep their defaults)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})


def is_late_interaction_folder(folder: Path) -> bool:
    """A PyLate folder (``model_type: ColBERT`` or ColBERT keys in its sentence-transformers
    config) or a Stanford ColBERT folder (``HF_ColBERT`` architecture)."""
    st_config = folder / ST_CONFIG
    if st_config.is_file():
        values = read_json(st_config)
        if values.get("model_type") == "ColBERT" or "query_prefix" in values:
            return True
    config = folder / "config.json"
    return config.is_file() and "HF_ColBERT" in (read_json(config).get("architectures") or [])


class LateInteractionModel(torch.nn.Module):
    """Encoder + projection producing one unit vector per token.

    Args:
        encoder: a transformers encoder (output ``last_hidden_state``).
        tokenizer: its fast tokenizer, holding the prefix tokens.
        projection: ``Linear(hidden, embedding_size, bias=False)``.
        config: prefixes, lengths, query augmentation and skiplist.

    Example:
        >>> model = LateInteractionModel.from_pretrained("minilm-l6")  # doctest: +SKIP
        >>> [v.shape for v in model.encode(["what is bm25?"], is_query=True)]  # doctest: +SKIP
        [(32, 128)]
    """

    def __init__(self, encoder: torch.nn.Module, tokenizer: Any, projection: torch.nn.Linear,
                 config: LateInteractionConfig, name: str = "") -> None:
        super().__init__()
        self.name = name  # where it was loaded from (manifests record it)
        self.encoder = encoder
        self.projection = projection
        self.tokenizer = tokenizer
        self.config = config
        self.query_prefix_id = self._prefix_id(config.query_prefix)
        self.document_prefix_id = self._prefix_id(config.document_prefix)
        fill = tokenizer.mask_token_id
        if fill is None:
            fill = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else \
                tokenizer.pad_token_id
        if fill is None:
            raise UsageError(f"{name}: the tokenizer has no mask, eos or pad token for query "
                             f"expansion; ColBERT needs one")
        self.expansion_id = int(fill)
        self.session: Any = None  # an ONNX/OpenVINO session for the encoder (inference only)
        self._token_types = getattr(encoder.config, "type_vocab_size", 0) > 0
        unknown = tokenizer.unk_token_id
        ids = {tokenizer.convert_tokens_to_ids(w) for w in config.skiplist_words}
        self.skiplist_ids = torch.tensor(sorted(i for i in ids if i is not None and i != unknown),
                                         dtype=torch.long)

    def _prefix_id(self, prefix: str) -> int | None:
        if not prefix:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(prefix)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise UsageError(f"{self.name}: prefix {prefix!r} is not a token of the tokenizer")
        return int(token_id)

    # ---- loading and saving ----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str], *, embedding_size: int = 128,
                        seed: int = 0, attention_dropout: float | None = None,
                        **config_overrides: Any) -> LateInteractionModel:
        """Load a PyLate or Stanford ColBERT folder, or start from any encoder folder with a
        fresh projection of ``embedding_size`` (initialised from ``seed``) and new prefix tokens.

        ``config_overrides`` (e.g. ``document_length=300``) replace the folder's settings;
        ``attention_dropout`` the encoder's (for training, see :mod:`ragsift.models.dropout`).
        """
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_model(name)
        st_config = read_json(folder / ST_CONFIG) if (folder / ST_CONFIG).is_file() else {}
        layout = SentenceTransformerLayout.read(folder)  # modules.json, if any
        tokenizer = AutoTokenizer.from_pretrained(layout.transformer_dir)
        if not tokenizer.is_fast:
            raise UsageError(f"{folder}: ragsift needs a fast (Rust) tokenizer (tokenizer.json)")
        encoder = AutoModel.from_pretrained(
            layout.transformer_dir, **attention_dropout_for(layout.transformer_dir,
                                                            attention_dropout))
        dense = layout.dense
        if is_late_interaction_folder(folder) and dense:
            if len(dense) > 1 or dense[0].activation != "Identity":
                raise DataFormatError(folder / "modules.json", None, "Dense",
                                      "expected one linear Dense projection")
            projection, config = dense[0].linear, LateInteractionConfig.from_dict(st_config)
        elif (folder / "artifact.metadata").is_file() or "HF_ColBERT" in (
                encoder.config.architectures or []):
            projection, config = _stanford_projection(folder), _stanford_config(folder)
        else:
            logger.info("%s has no ColBERT projection: adding a fresh %d-dim one", folder,
                        embedding_size)
            generator = torch.Generator().manual_seed(seed)
            hidden = int(encoder.config.hidden_size)
            projection = torch.nn.Linear(hidden, embedding_size, bias=False)
            with torch.no_grad():
                bound = 1 / hidden ** 0.5
                projection.weight.uniform_(-bound, bound, generator=generator)
            config = LateInteractionConfig()
        for key, value in config_overrides.items():
            if value is not None:
                if not hasattr(config, key):
                    raise TypeError(f"unknown late-interaction setting {key!r}")
                setattr(config, key, value)
        _add_prefix_tokens(encoder, tokenizer, config, seed)
        return cls(encoder, tokenizer, projection, config, name=model_id(name))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save atomically in the PyLate layout (the files and keys PyLate's loader reads, checked
        against PyLate's source, not run against the package, which cannot share this
        environment); loads with transformers' ``AutoModel`` and with :meth:`from_pretrained`."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.write(tmp)
        return path

    def write(self, folder: Path) -> None:
        """Write the model files into an existing ``folder`` (see :meth:`save`)."""
        self.encoder.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        DenseLayer(self.projection).save(folder / "1_Dense")
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        ]
        (folder / "modules.json").write_text(json.dumps(modules, indent=2))
        (folder / "sentence_bert_config.json").write_text(json.dumps(
            {"max_seq_length": self.config.document_length - 1, "do_lower_case": False},
            indent=2))
        (folder / ST_CONFIG).write_text(json.dumps(
            {"model_type": "ColBERT", "similarity_fn_name": "MaxSim", "prompts": {},
             "default_prompt_name": None, **asdict(self.config)}, indent=2))

    # ---- tokenisation ----------------------------------------------------------------------
    @property
    def embedding_size(self) -> int:
        return int(self.projection.out_features)

    def document_token_budget(self) -> int:
        """Text tokens a document window holds (``document_length`` less specials and prefix)."""
        return self.config.document_length - self._extra_tokens(self.document_prefix_id)

    def _extra_tokens(self, prefix_id: int | None) -> int:
        return self.tokenizer.num_special_tokens_to_add() + (prefix_id is not None)

    def token_ids(self, texts: Sequence[str], is_query: bool) -> list[list[int]]:
        """Unpadded ids with specials and the prefix after the first token, cut to length."""
        prefix_id = self.query_prefix_id if is_query else self.document_prefix_id
        limit = self.config.query_length if is_query else self.config.document_length
        encoded = self.tokenizer(list(texts), truncation=True,
                                 max_length=limit - (prefix_id is not None),
                                 return_attention_mask=False, return_token_type_ids=False,
                                 verbose=False)["input_ids"]
        if prefix_id is None:
            return encoded
        return [ids[:1] + [prefix_id] + ids[1:] for ids in encoded]

    def collate(self, ids: Sequence[Sequence[int]], is_query: bool) -> dict[str, torch.Tensor]:
        """Pad ids into ``input_ids``/``attention_mask``/``score_mask`` tensors.

        Queries with expansion are padded to ``query_length`` with the mask token and every
        position is scored; otherwise rows are padded to the longest and only real tokens score
        (minus the skiplist for documents).
        """
        expand = is_query and self.config.do_query_expansion
        width = self.config.query_length if expand else max(len(row) for row in ids)
        fill = self.expansion_id if expand else (self.tokenizer.pad_token_id or 0)
        input_ids = torch.full((len(ids), width), fill, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            attention[i, :len(row)] = 1
        if expand:
            score_mask = torch.ones_like(attention, dtype=torch.bool)
            if self.config.attend_to_expansion_tokens:
                attention = torch.ones_like(attention)
        else:
            score_mask = attention.bool()
            if not is_query:
                score_mask &= ~torch.isin(input_ids, self.skiplist_ids)
        return {"input_ids": input_ids, "attention_mask": attention, "score_mask": score_mask}

    # ---- vectors ---------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **_: Any) -> torch.Tensor:
        """``(B, L, embedding_size)`` unit vectors of every position (masks applied by callers)."""
        if self.session is not None and not torch.is_grad_enabled():
            hidden = self.session({"input_ids": input_ids, "attention_mask": attention_mask})
        else:
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if self._token_types else {}
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  **extra).last_hidden_state
        return torch.nn.functional.normalize(self.projection(hidden), p=2, dim=-1)

    def encode(self, texts: Sequence[str], is_query: bool, *, batch_size: int = 32,
               max_batch_tokens: int = 16384, show_progress: bool = False) -> list[np.ndarray]:
        """Token vectors of each text, ``(tokens kept, embedding_size)`` float32, input order."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not a single string")
        ids = self.token_ids(texts, is_query)
        out: list[np.ndarray] = [np.zeros((0, self.embedding_size), np.float32)] * len(ids)
        device = next(self.parameters()).device
        batches = length_sorted_batches([len(row) for row in ids], batch_size, max_batch_tokens)
        self.eval()
        with torch.inference_mode():
            for batch in tqdm(batches, desc="encode tokens", unit="batch",
                              disable=not show_progress):
                features = self.collate([ids[i] for i in batch], is_query)
                vectors = self(features["input_ids"].to(device),
                               features["attention_mask"].to(device)).float().cpu()
                for row, i in enumerate(batch):
                    out[i] = vectors[row][features["score_mask"][row]].numpy()
        return out


def _add_prefix_tokens(encoder: torch.nn.Module, tokenizer: Any, config: LateInteractionConfig,
                       seed: int) -> None:
    """Add the prefixes to the vocabulary when they are not tokens yet (a new model)."""
    vocab = tokenizer.get_vocab()
    missing = [p for p in (config.query_prefix, config.document_prefix) if p and p not in vocab]
    if not missing:
        return
    tokenizer.add_tokens(missing)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder.resize_token_embeddings(len(tokenizer))


def _stanford_projection(folder: Path) -> torch.nn.Linear:
    """The ``linear.weight`` of a Stanford ColBERT checkpoint."""
    weights = folder / "model.safetensors"
    if weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as handle:
            weight = handle.get_tensor("linear.weight")
    else:
        weight = torch.load(folder / "pytorch_model.bin", map_location="cpu",
                            weights_only=True)["linear.weight"]
    projection = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    projection.weight.data.copy_(weight)
    return projection


def _stanford_config(folder: Path) -> LateInteractionConfig:
    """Settings from ``artifact.metadata`` (Stanford defaults when it is absent)."""
    meta_file = folder / "artifact.metadata"
    meta = read_json(meta_file) if meta_file.is_file() else {}
    return LateInteractionConfig(
        query_prefix=meta.get("query_token_id", "[unused0]"),
        document_prefix=meta.get("doc_token_id", "[unused1]"),
        query_length=int(meta.get("query_maxlen", 32)),
        document_length=int(meta.get("doc_maxlen", 180)),
        attend_to_expansion_tokens=bool(meta.get("attend_to_mask_tokens", False)),
    )
