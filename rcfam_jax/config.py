"""Frozen dataclass configs: what the model computes (ModelConfig), how it is executed
(ExecConfig: kernels, chunking and rematerialisation), the data and the device mesh.

Two runs with equal ModelConfigs and parameters compute the same function, whatever their
ExecConfigs (up to floating-point rounding); the frame size is ModelConfig's alone.

Experiments are ml-collections ConfigDicts; `rcfam_jax.experiment.parse_config` turns them into
these dataclasses with `from_dict`, so that everything below gets hashable, typed values that
`functools.partial` can close over.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

N_CHANNELS = 7  # codepoint, fg R G B, bg R G B
REDUCTIONS = ("last_pos", "mean")
ATTENTION_IMPLS = ("auto", None, "xla", "cudnn")
CONV_IMPLS = ("auto", "xla", "matmul", "im2col", "parity")
LSTM_IMPLS = ("scan", "fused")
HEAD_REMATS = ("full", "convs", "matmuls", "none")
LSTM_REMATS = ("none", "step", "nested")
DTYPES = ("float32", "bfloat16", "float16")
DISTRIBUTED = ("auto", "on", "off")
DOWNSAMPLE_MODES = ("dilated", "geglu")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Frame head + residual LSTM stack + linear action head: the function and its numerics.

  Defaults: 24x80 frames, d=512, 3 attention layers of 8 heads, 2 downsample blocks, one LSTM
  layer of 512, 4096 actions.
  """

  rows: int = 24  # frame size: the one source (the data is rendered at it)
  cols: int = 80
  n_codepoints: int = 256  # codepoints >= this are clamped to n_codepoints - 1 (as the
  # author's loaders do)
  d_model: int = 512  # frame-head width; the embedding fed to the LSTM
  n_layer: int = 3  # transformer blocks in the frame head
  n_head: int = 8
  mlp_ratio: int = 4
  downsample_blocks: int = 2  # each: RMSNorm -> 3x3 conv (dilation 2) -> GELU -> 2x2 avg pool
  downsample_mode: str = "dilated"  # 'geglu': undilated conv to 2d channels, value * GELU(gate)
  attention_bias: bool = True  # biases of the attention blocks' four dense layers
  reduction: str = "last_pos"  # 'last_pos' (bottom-right token) or 'mean'
  lstm_hidden: int = 512
  lstm_layers: int = 1  # residual stack: layers after the first add their input
  lstm_biases: int = 1  # 2: separate input and recurrent biases (b_ih, b_hh) as in
  # PyTorch and the author's code; the same function as one
  forget_bias: float = 0.0  # added to the forget-gate bias at init
  vocab_size: int = 4096
  compute_dtype: str = "bfloat16"  # matmul inputs; params, norms, cell state and logits stay fp32
  rms_eps: float = 1e-5

  def __post_init__(self):
    _check_choice("reduction", self.reduction, REDUCTIONS)
    _check_choice("compute_dtype", self.compute_dtype, DTYPES)
    _check_choice("downsample_mode", self.downsample_mode, DOWNSAMPLE_MODES)
    _check_choice("lstm_biases", self.lstm_biases, (1, 2))
    for name in (
      "rows",
      "cols",
      "n_codepoints",
      "d_model",
      "n_head",
      "mlp_ratio",
      "lstm_hidden",
      "lstm_layers",
      "vocab_size",
    ):
      if getattr(self, name) < 1:
        raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
    if self.n_layer < 0 or self.downsample_blocks < 0:
      raise ValueError("ModelConfig.n_layer and downsample_blocks must be >= 0")
    if self.d_model % self.n_head:
      raise ValueError(
        f"ModelConfig.d_model={self.d_model} must be divisible by n_head={self.n_head}"
      )
    f = self.downsample_factor
    if self.rows % f or self.cols % f:
      raise ValueError(
        f"frame grid {self.rows}x{self.cols} is not divisible by 2^downsample_blocks={f}: "
        f"use rows and cols that are multiples of {f}, or fewer downsample_blocks"
      )

  @property
  def downsample_factor(self) -> int:
    return 2**self.downsample_blocks

  @property
  def n_tokens(self) -> int:
    """Tokens per frame entering the attention blocks."""
    f = self.downsample_factor
    return (self.rows // f) * (self.cols // f)

  @property
  def frame_shape(self) -> tuple[int, int, int]:
    return (self.rows, self.cols, N_CHANNELS)

  def forward_flops_per_frame(self) -> float:
    """Matmul FLOPs of one frame through the frame head as it runs (2 per multiply-add)."""
    d, flops = self.d_model, 0.0
    r, c = self.rows, self.cols
    for _ in range(self.downsample_blocks):
      flops += 2 * r * c * 9 * d * d * (2 if self.downsample_mode == "geglu" else 1)
      r, c = r // 2, c // 2
    return flops + self.attention_flops_per_frame()

  def attention_flops_per_frame(self) -> float:
    """Matmul FLOPs of one frame through the attention blocks. With 'last_pos' the last block
    runs at the last position only (frame_head.last_position_block): keys and values of every
    token, the rest for one."""
    d, n, mlp = self.d_model, self.n_tokens, self.mlp_ratio
    per_layer = 2 * n * d * (4 * d + 2 * mlp * d) + 4 * n * n * d
    if self.reduction != "last_pos" or not self.n_layer:
      return self.n_layer * per_layer
    last = 2 * n * d * 2 * d + 2 * d * (2 * d + 2 * mlp * d) + 4 * n * d
    return (self.n_layer - 1) * per_layer + last


@dataclasses.dataclass(frozen=True)
class ExecConfig:
  """How the model runs: kernels, and the memory-bounded BPTT scheme. Never what it computes.

  conv_impl: the frame head's 3x3 convolutions: 'xla' (cuDNN on GPU), 'matmul' (nine shifted
    matmuls), 'im2col', 'parity' (the dilated conv as four undilated ones on the parity
    sub-grids; dilated downsample_mode only) or 'auto' (CPU: matmul; elsewhere parity for
    the dilated mode, xla for geglu).
  attention_impl: 'auto' is cuDNN's flash attention on a GPU where it applies (bf16 or fp16,
    head size a multiple of 8 up to 128), else JAX's choice (None, XLA's attention); 'cudnn'
    asks for it, 'xla' for XLA's.
  lstm_impl: 'scan' (lax.scan, portable) or 'fused' (the persistent CUDA kernel, lstm_fused;
    its recurrent matmul is bf16, so it needs compute_dtype='bfloat16').
  lstm_unroll: time steps per iteration of the LSTM's scan.
  head_chunk: time steps per frame-head call (chunk of head_chunk x B frames); 32 halved the
    peak of 64 and ran faster on an H200 (docs/BENCHMARKS.md).
  head_remat: 'full' recomputes the frame head in the backward pass and keeps only its output
    vector (memory flat in T); 'convs' also keeps each chunk's convolution outputs, so the
    backward pass recomputes only the cheap rest (2.5 MB per frame at the reference config:
    memory grows with T); 'matmuls' keeps the attention blocks' dense outputs too (8 MB per
    frame); 'none' stores every activation (plain backprop).
  layer_remat: also checkpoint each attention block inside a chunk (its forward recomputed in
    the backward pass; at the reference configuration on an H200 it no longer lowers the
    compiled peak, docs/BENCHMARKS.md; not with 'convs' / 'matmuls', which keep what it would
    recompute).
  lstm_remat: 'none' keeps each step's residuals; 'step' keeps only carries; 'nested' keeps
    carries every `recompute_interval` steps and recomputes the rest.
  loss_chunk: time steps per logits chunk; logits are never materialised for the whole sequence.
  frames_on_host: the window's frames stay in pinned host memory and each head chunk is copied to
    the device inside the step (one device), so device memory no longer grows with T by the
    frames themselves (2 bytes per packed cell, 7 unpacked); the caller places them
    (`frames_to_host`).
  """

  head_chunk: int = 32
  head_remat: str = "full"
  layer_remat: bool = False
  lstm_remat: str = "none"
  recompute_interval: int = 64
  loss_chunk: int = 128
  frames_on_host: bool = False
  conv_impl: str = "auto"
  attention_impl: str | None = "auto"
  lstm_impl: str = "scan"
  lstm_unroll: int = 8

  def __post_init__(self):
    _check_choice("conv_impl", self.conv_impl, CONV_IMPLS)
    _check_choice("attention_impl", self.attention_impl, ATTENTION_IMPLS)
    _check_choice("lstm_impl", self.lstm_impl, LSTM_IMPLS)
    _check_choice("head_remat", self.head_remat, HEAD_REMATS)
    if self.layer_remat and self.head_remat in ("convs", "matmuls"):
      raise ValueError(
        f"ExecConfig.layer_remat recomputes whole attention blocks, which "
        f"head_remat={self.head_remat!r} keeps: use head_remat='full' with it"
      )
    _check_choice("lstm_remat", self.lstm_remat, LSTM_REMATS)
    for name in ("head_chunk", "recompute_interval", "loss_chunk", "lstm_unroll"):
      if getattr(self, name) < 1:
        raise ValueError(f"ExecConfig.{name} must be >= 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  dir: str = "data/self_24x80"
  sources: tuple[str, ...] = ("self",)
  val_sources: tuple[str, ...] = ()  # whole repositories held out for validation
  val_fraction: float = 0.0  # and/or the last fraction of each repository's commits
  window: int = 256  # steps per stored record
  max_keys_per_commit: int = 100_000  # commits above are teleported (skipped, reset)
  max_segment_steps: int = 1 << 16
  max_lane_steps: int | None = None  # reader: split segments into pieces for the lanes
  tokenizer_size: int = 0  # 0: one action per key (128 ids)
  tokenizer_file: str | None = None  # a `# FBAM_TOK v1.0` file used as is (e.g. the author's),
  # with our keys it lacks added; instead of learning tokenizer_size tokens
  build: bool = True  # build the dataset when `dir` holds none
  cache_dir: str | None = None  # where URL sources are cloned


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """Device mesh ("data", "fsdp") over every device of every process (rcfam_jax/sharding.py).

  data: batch shards; -1 = (devices / fsdp), reduced to its gcd with the global batch when that
    does not divide the batch, the rest going to fsdp. The LSTM and the loss run data-parallel
    over it.
  fsdp: parameters of >= fsdp_min_bytes are sharded over it (LSTM weights stay replicated) and
    the frame head spreads each sequence's T frames over it.
  distributed: 'auto' calls jax.distributed.initialize() when SLURM (several tasks) or
    JAX_COORDINATOR_ADDRESS announce several processes; 'on' always (TPU pods); 'off' never.
  """

  data: int = -1
  fsdp: int = 1
  fsdp_min_bytes: int = 4 << 20
  distributed: str = "auto"

  def __post_init__(self):
    _check_choice("distributed", self.distributed, DISTRIBUTED)
    if self.data == 0 or self.data < -1 or self.fsdp < 1:
      raise ValueError(
        f"mesh.data must be -1 or >= 1 and mesh.fsdp >= 1, got data={self.data}, fsdp={self.fsdp}"
      )


def check_exec(model: ModelConfig, ex: ExecConfig) -> None:
  """The execution choices that only some models support."""
  if ex.lstm_impl == "fused" and model.compute_dtype != "bfloat16":
    raise ValueError(
      "lstm_impl='fused' runs its recurrent matmul in bf16: it computes the "
      f"model only with compute_dtype='bfloat16', not {model.compute_dtype!r}; "
      "use lstm_impl='scan' with it"
    )
  if ex.conv_impl == "parity" and model.downsample_mode != "dilated":
    raise ValueError(
      "conv_impl='parity' rewrites the dilated conv; downsample_mode="
      f"{model.downsample_mode!r} has none: use conv_impl='auto' with it"
    )


def parse_overrides(items):
  """['d_model=256', 'head_chunk=32', ...] -> (ModelConfig, ExecConfig overrides); values
  are JSON where they parse as JSON, else strings."""
  model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
  exec_fields = {f.name for f in dataclasses.fields(ExecConfig)}
  m, b = {}, {}
  for item in items:
    if "=" not in item:
      raise ValueError(f"override {item!r} is not field=value (e.g. d_model=256)")
    k, v = item.split("=", 1)
    try:
      v = json.loads(v)
    except json.JSONDecodeError:
      pass  # a bare string such as bfloat16
    if k in model_fields:
      m[k] = v
    elif k in exec_fields:
      b[k] = v
    else:
      raise ValueError(
        f"unknown field {k!r}; ModelConfig: {sorted(model_fields)}; "
        f"ExecConfig: {sorted(exec_fields)}"
      )
  return m, b


def _check_choice(name, value, choices):
  if value not in choices:
    raise ValueError(f"{name}={value!r} is not one of {choices}")


def from_dict(cls, d: Mapping[str, Any] | None = None, **overrides):
  """Builds `cls` from a mapping (e.g. a ConfigDict), rejecting unknown keys by name."""
  values = dict(d or {})
  values.update(overrides)
  # Lists (from JSON or a ConfigDict) become tuples: frozen dataclasses stay hashable.
  values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - fields)
  if unknown:
    raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(fields)}")
  return cls(**values)
