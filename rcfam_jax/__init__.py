"""rcfam_jax: Recurrence-Complete Frame-based Action Models (arXiv 2510.06828) in JAX.

Shape suffixes name an array's axes in order: `h_BxH` has shape (B, H), `gx_TxBx4H` shape
(T, B, 4H); a leading `x` stands for any leading axes (`logits_xV`). The letters of the core:
  B  batch: sequences (lanes) per step       T  time steps (frames, actions) of a window
  K  time steps in one block of a blocked scan (head_chunk, loss_chunk, the LSTM's unroll or
     recompute interval)
  N  frames in one frame-head call (B*K, or any flattened leading axes)
  R, C  rows and columns of the cell grid: the frame's, halved by each downsample block
  7  channels of a cell: codepoint, foreground R G B, background R G B
  D  frame-head width (d_model)             E  a layer's output width where it is not D
  L  tokens per frame entering the attention blocks
  A  attention heads                        P  width of one head (D / A)
  H  LSTM hidden size (4H: the four gates)  V  actions (the vocabulary)
  I, O  a matmul's input and output widths (nn.matmul)
The research tools (rcfam_jax.research) name any further letters in their own docstrings.
"""
