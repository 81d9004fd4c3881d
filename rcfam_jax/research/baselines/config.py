"""Frozen configuration shared by the token-level baselines (transformer, mamba, lstm)."""

from __future__ import annotations

import dataclasses

KINDS = ("transformer", "mamba", "lstm")
# The transformer's position information: rotary (RoPE), none (causal attention alone, so the
# model sees its prefix as a multiset plus its own token), or ALiBi's per-head distance biases.
POS_ENCODINGS = ("rope", "none", "alibi")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """A token model (B, T) ids -> (B, T, output_size) logits.

  Widths are matched across kinds (d_model); parameter counts then differ (see sweep output).
  """

  kind: str
  vocab_size: int
  output_size: int
  d_model: int = 128
  layers: int = 1
  # transformer
  n_head: int = 4
  mlp_ratio: int = 4
  pos_encoding: str = "rope"  # one of POS_ENCODINGS
  rope_base: float = 10_000.0
  # 'auto' (cuDNN on a GPU in bf16/fp16, else XLA: transformer.attention_impl) | 'xla' | 'cudnn'
  attention_impl: str = "auto"
  # mamba-2 (SSD)
  d_state: int = 32
  head_dim: int = 32
  expand: int = 2
  conv_width: int = 4
  chunk: int = 64
  # lstm
  forget_bias: float = 1.0
  unroll: int = 8
  lstm_impl: str = "scan"  # 'scan' (any backend) | 'fused' (rcfam_jax.lstm_fused: NVIDIA GPUs,
  # bf16 recurrent matmul whatever compute_dtype; the main model's LSTM kernel)
  compute_dtype: str = "float32"
  norm_eps: float = 1e-6

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"kind={self.kind!r} is not one of {KINDS}")
    if self.pos_encoding not in POS_ENCODINGS:
      raise ValueError(
        f"ModelConfig.pos_encoding={self.pos_encoding!r} is not one of {POS_ENCODINGS}"
      )
    for name in (
      "vocab_size",
      "output_size",
      "d_model",
      "layers",
      "n_head",
      "d_state",
      "head_dim",
      "chunk",
      "unroll",
    ):
      if getattr(self, name) < 1:
        raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
    if self.attention_impl not in ("auto", "xla", "cudnn"):
      raise ValueError(
        f"ModelConfig.attention_impl={self.attention_impl!r} is not one of auto|xla|cudnn"
      )
    if self.lstm_impl not in ("scan", "fused"):
      raise ValueError(f"ModelConfig.lstm_impl={self.lstm_impl!r} is not one of scan|fused")
    if self.kind == "transformer" and self.d_model % self.n_head:
      raise ValueError(f"d_model={self.d_model} must split into {self.n_head} equal heads")
    rope = self.kind == "transformer" and self.pos_encoding == "rope"
    if rope and (self.d_model // self.n_head) % 2:
      raise ValueError(
        f"d_model={self.d_model} must split into {self.n_head} even-sized heads for RoPE"
      )
    if self.kind == "mamba" and (self.expand * self.d_model) % self.head_dim:
      raise ValueError(
        f"expand*d_model={self.expand * self.d_model} is not divisible by head_dim={self.head_dim}"
      )
