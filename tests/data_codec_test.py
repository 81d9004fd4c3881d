"""Frame codec: sparse XOR-delta round trip and the palette expansion to the contract."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_pipelines import codec, render
from data_pipelines import syntax as S


@settings(max_examples=40, deadline=None)
@given(
  L=st.integers(1, 9),
  H=st.integers(1, 5),
  W=st.integers(1, 7),
  p=st.floats(0, 1),
  seed=st.integers(0, 2**16),
)
def test_encode_decode_round_trip(L, H, W, p, seed):
  rng = np.random.default_rng(seed)
  x = codec.cells(
    rng.integers(0, 128, (L, H, W)).astype(np.uint8),
    rng.integers(0, S.NUM_STYLES, (L, H, W)).astype(np.uint8),
  )
  keep = rng.random((L, H, W)) > p  # runs of unchanged cells over time
  x = np.where(keep, x[:1], x).astype(np.uint16)
  blob = codec.encode_frames(x)
  assert np.array_equal(codec.decode_frames(blob, L, H, W), x)
  enc = codec.Encoder()
  assert enc.encode(x) == blob == enc.encode(x.copy())


def test_to_rgb_matches_palette():
  rng = np.random.default_rng(0)
  for shape in [(1, 1), (3, 5), (2, 4, 12, 40)]:
    cp = rng.integers(0, 128, shape).astype(np.uint8)
    st = rng.integers(0, S.NUM_STYLES, shape).astype(np.uint8)
    got = codec.to_rgb(codec.cells(cp, st))
    assert got.shape == shape + (7,) and got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.array_equal(got, render.to_rgb(cp, st))
    assert np.array_equal(got[..., 0], cp) and np.array_equal(got[..., 4:], S.PALETTE[st, 3:])


def test_cursor_style_inverts():
  assert (S.PALETTE[S.TEXT | S.CURSOR] == np.r_[S.PALETTE[S.TEXT, 3:], S.PALETTE[S.TEXT, :3]]).all()
  assert len({tuple(S.PALETTE[s]) for s in range(S.PROMPT + 1)}) == S.PROMPT + 1
