"""rcfam_jax: Recurrence-Complete Frame-based Action Models (arXiv 2510.06828) in JAX.

Shape suffixes used in names (`h_BxH`, `gx_TxBx4H`):
  B batch (lanes)       T time steps (actions)     R, C frame rows and columns
  D frame-head width    H LSTM hidden size         V action vocabulary
  N frames in one frame-head call (B*K)            K time steps in a chunk
  L attention tokens per frame, or layers where stated
Frames are integer cells (..., R, C, 7): codepoint, foreground RGB, background RGB.
"""
