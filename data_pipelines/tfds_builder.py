"""TFDS `git_text_video` builder writing ArrayRecord files, without TensorFlow.

Storage layout and sidecar: docs/DATA_PIPELINE.md §5.

One record per window of L steps, yielded in segment order (shuffling disabled):

| feature | shape, dtype | meaning |
|---|---|---|
| frames | bytes | codec.encode_frames of the L frames before each step |
| actions | (L,) uint8 | key ids (keys.py); PAD past the end of the segment |
| cursor | (L, 2) int16 | cursor screen cell (row, col) |
| mode | (L,) uint8 | editor mode (0 edit, 1 goto, 2 open, 3 rename) |
| valid | (L,) bool | step exists (the last window of a segment is padded) |
| commit_index | (L,) int32 | first-parent index of the commit being typed |
| segment_id, window_index | int32 | record position; window 0 starts with BOS |
| is_first | bool | window_index == 0 |
| repo | text | source name |

Frames are compressed by the build workers (codec.py) rather than by TFDS's
single-process `encoding="zlib"`, so compression runs in parallel.
"""

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

VERSION = "1.0.0"
NAME = "git_text_video"


def config_name(rows: int, cols: int, window: int) -> str:
  return f"r{rows}_c{cols}_l{window}"


def features(window: int) -> tfds.features.FeaturesDict:
  L = window
  T = tfds.features.Tensor
  return tfds.features.FeaturesDict(
    {
      "frames": T(shape=(), dtype=np.object_),
      "actions": T(shape=(L,), dtype=np.uint8),
      "cursor": T(shape=(L, 2), dtype=np.int16),
      "mode": T(shape=(L,), dtype=np.uint8),
      "valid": T(shape=(L,), dtype=np.bool_),
      "commit_index": T(shape=(L,), dtype=np.int32),
      "segment_id": tfds.features.Scalar(dtype=np.int32),
      "window_index": tfds.features.Scalar(dtype=np.int32),
      "is_first": tfds.features.Scalar(dtype=np.bool_),
      "repo": tfds.features.Text(),
    }
  )


class GitTextVideo(tfds.core.GeneratorBasedBuilder):
  """Text-video from Git histories; `splits` maps split name -> example generator."""

  VERSION = tfds.core.Version(VERSION)

  # No checksums file or code lookup: TFDS's default `code_path` needs the
  # `importlib_resources` package, which is not a dependency.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return None

  def __init__(
    self,
    *,
    rows: int,
    cols: int,
    window: int,
    splits: dict[str, Callable[[], Iterator[tuple[int, dict]]]],
    **kwargs,
  ):
    self.rows, self.cols, self.window, self._splits = rows, cols, window, splits
    config = tfds.core.BuilderConfig(
      name=config_name(rows, cols, window), description=f"{rows}x{cols} frames, windows of {window}"
    )
    super().__init__(config=config, file_format="array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      features=features(self.window),
      disable_shuffling=True,
      description=__doc__.split("\n")[0],
    )

  def _split_generators(self, dl_manager):
    return {name: self._generate_examples(name) for name in self._splits}

  def _generate_examples(self, split: str):
    yield from self._splits[split]()


@contextlib.contextmanager
def deterministic_serialization():
  """tf.Example protos serialised with sorted map keys, so two builds are byte-identical.

  TFDS serialises the feature map in hash-table order, which changes between
  processes; this patch is undone on exit.
  """
  cls = example_serializer.ExampleSerializer
  original = cls.serialize_example

  def serialize(self, example):
    return self.get_tf_example(example).SerializeToString(deterministic=True)

  cls.serialize_example = serialize
  try:
    yield
  finally:
    cls.serialize_example = original


def example(
  seg_id: int, window_index: int, repo: str, frames: bytes, w, commit_index: np.ndarray
) -> dict:
  """One record from a replay.Window `w` (copied: it may be reused), frames and commits."""
  return {
    "frames": frames,
    "actions": w.actions.copy(),
    "cursor": w.cursor.copy(),
    "mode": w.mode.copy(),
    "valid": w.valid.copy(),
    "commit_index": commit_index.copy(),
    "segment_id": seg_id,
    "window_index": window_index,
    "is_first": window_index == 0,
    "repo": repo,
  }


def data_source(tfds_dir: str, split: str):
  """Random-access source of a built split (no TensorFlow needed)."""
  return tfds.builder_from_directory(tfds_dir).as_data_source(split)
