"""Shows a built dataset: frames as text, or an asciicast v2 (`.cast`) file.

    python -m data_pipelines.view DIR [--split train] [--segment 0] [--start 0]
        [--steps 5] [--cast out.cast --fps 30]

Text mode prints, per step, the key about to be pressed and the frame (0x7F as
U+2421). `--cast` writes the steps as an asciicast (`asciinema play out.cast`).
"""

import argparse
import sys

from data_pipelines import ansi, codec
from data_pipelines import keys as K
from data_pipelines.reader import Split


def segment_steps(split: Split, seg: int, start: int, steps: int):
  """Yields (step, key, cells (H, W), cursor) of a segment."""
  s = split.segments[seg]
  keys, cursor = split.segment_arrays(seg)
  stop = min(s["n_steps"], start + steps) if steps > 0 else s["n_steps"]
  for t in range(start, stop):
    rec, off = divmod(t, split.window)
    yield t, int(keys[t]), split.cells(s["first_record"] + rec)[off], cursor[t]


def write_cast(split: Split, seg: int, start: int, steps: int, path: str, fps: float) -> int:
  meta = split.segments[seg]
  title = (
    f"{meta['repo']} segment {meta['index']} "
    f"({meta['first_commit'][:10]}..{meta['last_commit'][:10]})"
  )
  screens = [
    (*codec.split_cells(x), cur) for _, _, x, cur in segment_steps(split, seg, start, steps)
  ]
  with open(path, "w") as f:
    f.writelines(
      line + "\n" for line in ansi.cast_lines(screens, split.rows, split.cols, title, fps)
    )
  return len(screens)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    prog="python -m data_pipelines.view", description=__doc__.split("\n")[0]
  )
  ap.add_argument("dir")
  ap.add_argument("--split", default="train")
  ap.add_argument("--segment", type=int, default=0, help="index within the split")
  ap.add_argument("--start", type=int, default=0)
  ap.add_argument("--steps", type=int, default=5, help="0: to the end of the segment")
  ap.add_argument("--cast", help="write an asciicast v2 file instead of printing")
  ap.add_argument("--fps", type=float, default=30.0)
  a = ap.parse_args(argv)
  split = Split(a.dir, a.split)
  if not 0 <= a.segment < len(split.segments):
    print(f"error: --segment must be in [0, {len(split.segments)})", file=sys.stderr)
    return 2
  if a.cast:
    n = write_cast(split, a.segment, a.start, a.steps, a.cast, a.fps)
    print(f"wrote {n} frames to {a.cast}")
    return 0
  for t, k, x, cur in segment_steps(split, a.segment, a.start, a.steps):
    cp, _ = codec.split_cells(x)
    print(f"--- step {t}  cursor {tuple(int(c) for c in cur)}  next key {K.key_name(k)}")
    print("\n".join(ansi.row_text(row) for row in cp))
  return 0


if __name__ == "__main__":
  sys.exit(main())
