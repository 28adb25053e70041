"""A CRNN's config without torch: what the torch model (:mod:`.model`) and the onnxruntime one
(:mod:`scenetext.runtime.onnxrt`) are built from."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .charset import DEFAULT_CHARS, Charset


@dataclass
class CRNNConfig:
    variant: str = "small"
    chars: str = DEFAULT_CHARS
    height: int = 32
    in_channels: int = 1  # gray input, as in the paper
    #: 0: one class per character plus the CTC blank. Otherwise the network is a frame tagger with
    #: this many classes (the word splitter of :mod:`scenetext.detection.splitter` uses 2).
    classes: int = 0

    @property
    def num_outputs(self) -> int:
        return self.classes or self.charset.num_classes

    @property
    def charset(self) -> Charset:
        return Charset(self.chars)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CRNNConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
