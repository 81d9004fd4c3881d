"""Learn an action vocabulary from a built dataset.

  python -m data_pipelines.vocab DIR --size N --out tokenizer.txt [--split train]

Writes the `# FBAM_TOK v1.0` file of `Tokenizer.learn` over the split's key streams (tokens: the
keys' terminal bytes, keys.ACTION_ENCODING; the author's loaders read the file) and prints one
JSON line (tokens, keys, model steps, keys per step). Its own module because it needs both
the reader (the dataset's key streams) and the tokenizer, which the reader imports.
"""

import argparse
import json

from data_pipelines.reader import Split
from data_pipelines.tokenizer import Tokenizer


def key_streams(ds_dir: str, split: str = "train") -> list:
  """Every segment's key ids of one split, in segment order."""
  s = Split(ds_dir, split)
  return [s.segment_arrays(i)[0] for i in range(len(s.segments))]


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    prog="python -m data_pipelines.vocab",
    description="Learn an FBAM_TOK vocabulary from a built dataset.",
  )
  ap.add_argument("dir")
  ap.add_argument("--size", type=int, default=20_351)
  ap.add_argument("--out", required=True)
  ap.add_argument("--split", default="train")
  a = ap.parse_args(argv)
  streams = key_streams(a.dir, a.split)
  tok = Tokenizer.learn(streams, a.size)
  tok.save(a.out)
  n_keys = sum(len(s) for s in streams)
  n_tok = sum(len(tok.encode_all(s)[0]) for s in streams)
  print(
    json.dumps(
      {
        "tokens": len(tok),
        "keys": n_keys,
        "steps": n_tok,
        "keys_per_step": round(n_keys / max(n_tok, 1), 3),
        "out": a.out,
      }
    )
  )
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
