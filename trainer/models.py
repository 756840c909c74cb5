"""Loading a policy: any Hugging Face causal LM from a local folder, or a tiny one built from a config.

Nothing here downloads: ``from_pretrained`` runs with ``local_files_only=True``. The tiny model is a
Llama with a character-level tokenizer (printable ASCII), small enough to train on 2 CPU cores.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

__all__ = ["build_char_tokenizer", "build_tiny_model", "load_policy", "pick_device"]

_SPECIALS = ["<pad>", "<eos>", "<unk>"]


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character, plus <pad>, <eos> and <unk>."""
    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    vocab = {tok: i for i, tok in enumerate(_SPECIALS + chars)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def build_tiny_model(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 256,
    max_positions: int = 64,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A freshly initialised Llama sized for the tokenizer (deterministic for a given seed)."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def load_policy(
    path: str | None, tiny: dict[str, Any] | None, *, dtype: str = "float32", device: torch.device | None = None
) -> tuple[torch.nn.Module, Any]:
    """(model, tokenizer) from a local folder, or built from ``tiny`` (the kwargs of ``build_tiny_model``)."""
    torch_dtype = getattr(torch, dtype)
    if path:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"model.path {path!r} is not a local folder (hub downloads are not used)")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
    elif tiny is not None:
        tokenizer = build_char_tokenizer()
        model = build_tiny_model(tokenizer, **tiny).to(torch_dtype)
    else:
        raise ValueError("set model.path (a local Hugging Face folder) or model.tiny (build a tiny model)")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if device is not None:
        model = model.to(device)
    return model, tokenizer
