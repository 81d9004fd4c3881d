// Persistent LSTM layer for XLA's FFI (rcfam_jax/lstm_fused.py builds and calls it).
//
// One cooperative kernel runs all T steps of the forward recurrence, another all steps of the
// backward one. Block j owns hidden units [16j, 16j+16): its slice of W_h (H x 64 gate columns
// forward, 16 rows of 4H backward) is loaded into shared memory once and the per-unit cell
// state never leaves the block. Per step each block reads the whole previous hidden state
// (bf16, from L2) for its B x H by H x 64 product on the tensor cores (16x16x16 bf16 tiles,
// f32 accumulation), applies the cell to its units and meets the other blocks at a grid
// barrier. Everything parallel over T (input projection, weight gradients, gate
// pre-activations for the backward pass) stays in XLA as large GEMMs.
//
// Cell (gate order i, f, g, o), as rcfam_jax/lstm.py:
//   hp = reset ? h0 : h_{t-1};  cp = reset ? c0 : c_{t-1}
//   [i f g o] = gx_t + bf16(hp) W_h;  c_t = s(f) cp + s(i) tanh(g);  h_t = s(o) tanh(c_t)
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>
#include <string>

#include "xla/ffi/api/ffi.h"

// Profiling by subtraction only (results are wrong): RCFAM_ABLATE bit 1 drops the grid barrier,
// bit 2 the staging of each step's operands, bit 4 the tensor-core products
// (lstm_fused.profile_ablated builds such a variant; the bench times them).
#ifndef RCFAM_ABLATE
#define RCFAM_ABLATE 0
#endif

namespace ffi = xla::ffi;
using namespace nvcuda;
using bf16 = __nv_bfloat16;

namespace {

constexpr int kUnits = 16;              // hidden units per block (one wmma tile wide)
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;   // = 16 batch rows x 16 units: one cell per thread
constexpr int kPad = 8;                 // bf16 row padding of shared tiles (bank spread)
constexpr int kWs = 64 + kPad;          // forward W_h slice row stride

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

// Asynchronous global -> shared copies (cp.async): no registers, overlap with compute.
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(
                   (unsigned)__cvta_generic_to_shared(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(
                   (unsigned)__cvta_generic_to_shared(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

// 16 rows of `cols` bf16 (row stride `ld` in global) into shared memory with row stride
// cols + kPad: every thread issues its 16-byte pieces at once (cp.async); stage_rows also waits.
__device__ __forceinline__ void issue_rows(bf16* dst, const bf16* src, int cols, size_t ld) {
  if (RCFAM_ABLATE & 2) return;
  const int per_row = cols / 8;
  for (int i = threadIdx.x; i < 16 * per_row; i += kThreads) {
    const int r = i / per_row, c = (i % per_row) * 8;
    cp_async16(dst + r * (cols + kPad) + c, src + r * ld + c);
  }
}

__device__ __forceinline__ void stage_rows(bf16* dst, const bf16* src, int cols, size_t ld) {
  issue_rows(dst, src, cols, ld);
  cp_async_wait_all();
  __syncthreads();
}

// The same 16 rows into registers (kHold 16-byte pieces per thread at most: 16 x cols <=
// 8 x kHold x kThreads), loaded while other work runs; put_rows then writes them to shared.
constexpr int kHold = 16;

__device__ __forceinline__ void hold_rows(uint4 (&reg)[kHold], const bf16* src, int cols,
                                          size_t ld) {
  if (RCFAM_ABLATE & 2) return;
  const int per_row = cols / 8;
#pragma unroll
  for (int k = 0; k < kHold; ++k) {
    const int i = threadIdx.x + k * kThreads, r = i / per_row, c = (i % per_row) * 8;
    if (i < 16 * per_row) reg[k] = __ldcg(reinterpret_cast<const uint4*>(src + r * ld + c));
  }
}

__device__ __forceinline__ void put_rows(bf16* dst, const uint4 (&reg)[kHold], int cols) {
  if (RCFAM_ABLATE & 2) return;
  const int per_row = cols / 8;
#pragma unroll
  for (int k = 0; k < kHold; ++k) {
    const int i = threadIdx.x + k * kThreads, r = i / per_row, c = (i % per_row) * 8;
    if (i < 16 * per_row) *reinterpret_cast<uint4*>(dst + r * (cols + kPad) + c) = reg[k];
  }
}

__device__ __forceinline__ void st_release(unsigned int* p, unsigned int v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned int ld_acquire(const unsigned int* p) {
  unsigned int v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Barrier over all blocks of a cooperative launch with no shared counter: each block publishes
// how many barriers it has reached in its own flag (thread 0, after bar.sync and a gpu-scope
// fence: the block's writes come first), and its first gridDim.x threads each wait for one
// block's flag to reach the same count. One L2 round trip fewer than counter + generation.
constexpr int kMaxBlocks = kThreads;  // flags, zeroed before the launch

__device__ __forceinline__ void grid_sync(unsigned int* flags, unsigned int& epoch) {
  __syncthreads();
  if (RCFAM_ABLATE & 1) return;
  ++epoch;
  if (threadIdx.x == 0) {
    __threadfence();
    st_release(flags + blockIdx.x, epoch);
  }
  if (threadIdx.x < gridDim.x) {
    while (ld_acquire(flags + threadIdx.x) < epoch) {
    }
  }
  __syncthreads();
}

template <typename FragB>
__device__ __forceinline__ void mma(FragC& acc, const FragA& a, const FragB& b) {
  if (!(RCFAM_ABLATE & 4)) wmma::mma_sync(acc, a, b, acc);
}

__device__ __forceinline__ void add_into(FragC& a, const FragC& b) {
  for (int i = 0; i < a.num_elements; ++i) a.x[i] += b.x[i];
}

struct FwdArgs {
  const float* gx;       // (T, B, 4H) input projection incl. bias
  const bf16* w;         // (H, 4H)
  const float* h_init;   // (B, H) carried state
  const float* c_init;
  const float* h0;       // (H) learned reset state
  const float* c0;
  const uint8_t* reset;  // (T, B)
  float* y;              // (T, B, H) h_t
  float* c;              // (T, B, H) c_t
  bf16* hp;              // (T, B, H) the matmul input of step t (after reset)
  unsigned int* bar;
  int T, B, H;
};

__global__ void __launch_bounds__(kThreads, 1) lstm_fwd(FwdArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int H = a.H, G = 4 * H, B = a.B, T = a.T, u0 = blockIdx.x * kUnits;
  const int tid = threadIdx.x, warp = tid / 32, bl = tid / kUnits, ul = tid % kUnits;
  const int u = u0 + ul, ldh = H + kPad;
  bf16* ws = reinterpret_cast<bf16*>(smem);               // (H, kWs): gate q, unit ul at q*16+ul
  bf16* hs = ws + H * kWs;                                // (16, H + kPad) staged hp rows
  float* red = reinterpret_cast<float*>(hs + 16 * ldh);   // (2, 16, 64) k-split partial sums
  float* cs = red + 2 * 16 * 64;                          // (B, 16) cell state
  float* gxs = cs + B * kUnits;                           // (B, 4, 16) gx of the coming step
  for (int i = tid; i < H * 64; i += kThreads) {
    const int k = i / 64, n = i % 64;
    ws[k * kWs + n] = a.w[(size_t)k * G + (n / 16) * H + u0 + n % 16];
  }
  for (int b = bl; b < B; b += 16) {
    const bool r = a.reset[b];
    a.hp[(size_t)b * H + u] = __float2bfloat16(r ? a.h0[u] : a.h_init[(size_t)b * H + u]);
    cs[b * kUnits + ul] = r ? a.c0[u] : a.c_init[(size_t)b * H + u];
    for (int q = 0; q < 4; ++q) gxs[(b * 4 + q) * kUnits + ul] = a.gx[(size_t)b * G + q * H + u];
  }
  unsigned int epoch = 0;
  grid_sync(a.bar, epoch);

  const int q = warp % 4, kh = warp / 4, ktiles = H / 16;
  for (int t = 0; t < T; ++t) {
    for (int m = 0; m < B; m += 16) {
      stage_rows(hs, a.hp + ((size_t)t * B + m) * H, H, H);  // also lands this step's gxs
      FragC acc0, acc1;
      wmma::fill_fragment(acc0, 0.f);
      wmma::fill_fragment(acc1, 0.f);
      // Warps (q, kh): gate q, k-tiles kh, kh+2, ...; two accumulators halve the mma chain.
      int kt = kh;
      for (; kt + 2 < ktiles; kt += 4) {
        FragA fa0, fa1;
        FragBRow fb0, fb1;
        wmma::load_matrix_sync(fa0, hs + kt * 16, ldh);
        wmma::load_matrix_sync(fb0, ws + kt * 16 * kWs + q * 16, kWs);
        wmma::load_matrix_sync(fa1, hs + (kt + 2) * 16, ldh);
        wmma::load_matrix_sync(fb1, ws + (kt + 2) * 16 * kWs + q * 16, kWs);
        mma(acc0, fa0, fb0);
        mma(acc1, fa1, fb1);
      }
      for (; kt < ktiles; kt += 2) {
        FragA fa;
        FragBRow fb;
        wmma::load_matrix_sync(fa, hs + kt * 16, ldh);
        wmma::load_matrix_sync(fb, ws + kt * 16 * kWs + q * 16, kWs);
        mma(acc0, fa, fb);
      }
      add_into(acc0, acc1);
      wmma::store_matrix_sync(red + kh * 16 * 64 + q * 16, acc0, 64, wmma::mem_row_major);
      __syncthreads();
      const int b = m + bl;
      float gt[4];
      for (int g = 0; g < 4; ++g)
        gt[g] = red[bl * 64 + g * 16 + ul] + red[16 * 64 + bl * 64 + g * 16 + ul] +
                gxs[(b * 4 + g) * kUnits + ul];
      const float ig = sigmoid(gt[0]), fg = sigmoid(gt[1]), gg = tanhf(gt[2]);
      const float og = sigmoid(gt[3]);
      const float c = fg * cs[b * kUnits + ul] + ig * gg, h = og * tanhf(c);
      const size_t o = ((size_t)t * B + b) * H + u;
      a.y[o] = h;
      a.c[o] = c;
      if (t + 1 < T) {
        const bool r = a.reset[(size_t)(t + 1) * B + b];
        a.hp[o + (size_t)B * H] = __float2bfloat16(r ? a.h0[u] : h);
        cs[b * kUnits + ul] = r ? a.c0[u] : c;
        for (int g = 0; g < 4; ++g)  // lands during the barrier; waited for in stage_rows
          cp_async4(gxs + (b * 4 + g) * kUnits + ul,
                    a.gx + ((size_t)(t + 1) * B + b) * G + g * H + u);
      }
      __syncthreads();
    }
    if (t + 1 < T) grid_sync(a.bar, epoch);
  }
}

struct BwdArgs {
  const float* pre;      // (T, B, 4H) gate pre-activations (recomputed by XLA)
  const float* c;        // (T, B, H) c_t
  const float* cp;       // (T, B, H) the cell input of step t (after reset)
  const float* dy;       // (T, B, H) cotangent of h_t from above
  const float* dh_fin;   // (B, H) cotangent of the final state
  const float* dc_fin;
  const uint8_t* reset;  // (T, B)
  const bf16* w;         // (H, 4H)
  float* dg;             // (T, B, 4H) cotangent of the gate pre-activations
  bf16* dgb;             // (T, B, 4H) the same in bf16: the recurrent product's input
  float* dhp;            // (T, B, H) cotangent of hp_t
  float* dcp;            // (T, B, H) cotangent of cp_t
  unsigned int* bar;
  int T, B, H;
};

constexpr int kPf = 8;  // prefetched floats per cell: 4 pre-activations, c, cp, dy, pad

__global__ void __launch_bounds__(kThreads, 1) lstm_bwd(BwdArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int H = a.H, G = 4 * H, B = a.B, T = a.T, u0 = blockIdx.x * kUnits;
  const int tid = threadIdx.x, warp = tid / 32, bl = tid / kUnits, ul = tid % kUnits;
  const int u = u0 + ul, ldw = G + kPad, ldd = 2 * H + kPad;
  bf16* wr = reinterpret_cast<bf16*>(smem);               // (16, 4H + kPad): rows u0.. of W_h
  bf16* ds = wr + kUnits * ldw;                           // (16, 2H + kPad) staged half of dg
  float* red = reinterpret_cast<float*>(ds + 16 * ldd);   // (8, 16, 16) k-split partial sums
  float* dcs = red + kWarps * 256;                        // (B, 16) cotangent of c carried back
  float* pf = dcs + B * kUnits;                           // (B, 16, kPf) the coming step's inputs
  for (int i = tid; i < kUnits * G; i += kThreads)
    wr[(i / G) * ldw + i % G] = a.w[(size_t)u0 * G + i];
  auto prefetch = [&](int t, int b) {  // lands during the barrier
    float* p = pf + (b * kUnits + ul) * kPf;
    const size_t o = ((size_t)t * B + b) * H + u;
    for (int g = 0; g < 4; ++g) cp_async4(p + g, a.pre + ((size_t)t * B + b) * G + g * H + u);
    cp_async4(p + 4, a.c + o);
    cp_async4(p + 5, a.cp + o);
    cp_async4(p + 6, a.dy + o);
  };
  for (int b = bl; b < B; b += 16) prefetch(T - 1, b);
  __syncthreads();
  unsigned int epoch = 0;

  const int ktiles = 2 * H / 16;  // per staged half of the 4H gate columns
  for (int t = T - 1; t >= -1; --t) {
    for (int m = 0; m < B; m += 16) {
      const int b = m + bl;
      float dhp = 0.f;  // cotangent of hp_{t+1}: dg_{t+1} W_h^T for this block's units
      if (t + 1 < T) {
        FragC acc0, acc1;
        wmma::fill_fragment(acc0, 0.f);
        wmma::fill_fragment(acc1, 0.f);
        // Both halves of dg_{t+1}'s 4H columns are fetched at once (one L2 round trip): the
        // first into shared memory, the second into registers until the first is consumed.
        const bf16* src = a.dgb + ((size_t)(t + 1) * B + m) * G;
        uint4 held[kHold];
        issue_rows(ds, src, 2 * H, G);
        hold_rows(held, src + 2 * H, 2 * H, G);
        cp_async_wait_all();
        __syncthreads();
        for (int half = 0; half < 2; ++half) {
          const int k0 = half * 2 * H;
          if (half) {
            put_rows(ds, held, 2 * H);
            __syncthreads();
          }
          int kt = warp;
          for (; kt + kWarps < ktiles; kt += 2 * kWarps) {
            FragA fa0, fa1;
            FragBCol fb0, fb1;
            wmma::load_matrix_sync(fa0, ds + kt * 16, ldd);
            wmma::load_matrix_sync(fb0, wr + k0 + kt * 16, ldw);
            wmma::load_matrix_sync(fa1, ds + (kt + kWarps) * 16, ldd);
            wmma::load_matrix_sync(fb1, wr + k0 + (kt + kWarps) * 16, ldw);
            mma(acc0, fa0, fb0);
            mma(acc1, fa1, fb1);
          }
          for (; kt < ktiles; kt += kWarps) {
            FragA fa;
            FragBCol fb;
            wmma::load_matrix_sync(fa, ds + kt * 16, ldd);
            wmma::load_matrix_sync(fb, wr + k0 + kt * 16, ldw);
            mma(acc0, fa, fb);
          }
          __syncthreads();  // the next half overwrites ds
        }
        add_into(acc0, acc1);
        wmma::store_matrix_sync(red + warp * 256, acc0, 16, wmma::mem_row_major);
        __syncthreads();
        for (int w = 0; w < kWarps; ++w) dhp += red[w * 256 + bl * 16 + ul];
        a.dhp[((size_t)(t + 1) * B + b) * H + u] = dhp;
      }
      if (t >= 0) {
        cp_async_wait_all();  // this thread's prefetch (no-op when staging already waited)
        const float* p = pf + (b * kUnits + ul) * kPf;
        const float ig = sigmoid(p[0]), fg = sigmoid(p[1]), gg = tanhf(p[2]);
        const float og = sigmoid(p[3]), tc = tanhf(p[4]);
        float dh, dc;
        if (t == T - 1) {
          dh = a.dh_fin[(size_t)b * H + u];
          dc = a.dc_fin[(size_t)b * H + u];
        } else {
          const bool r = a.reset[(size_t)(t + 1) * B + b];
          dh = r ? 0.f : dhp;
          dc = r ? 0.f : dcs[b * kUnits + ul];
        }
        dh += p[6];
        dc += dh * og * (1.f - tc * tc);
        const float d[4] = {dc * gg * ig * (1.f - ig), dc * p[5] * fg * (1.f - fg),
                            dc * ig * (1.f - gg * gg), dh * tc * og * (1.f - og)};
        const size_t og4 = ((size_t)t * B + b) * G + u;
        for (int g = 0; g < 4; ++g) {
          a.dg[og4 + g * H] = d[g];
          a.dgb[og4 + g * H] = __float2bfloat16(d[g]);
        }
        dcs[b * kUnits + ul] = dc * fg;
        a.dcp[((size_t)t * B + b) * H + u] = dc * fg;
        if (t > 0) prefetch(t - 1, b);
      }
      __syncthreads();
    }
    if (t >= 0) grid_sync(a.bar, epoch);
  }
}

size_t fwd_smem(int B, int H) {
  return ((size_t)H * kWs + 16 * (H + kPad)) * sizeof(bf16) +
         (2 * 16 * 64 + B * kUnits * 5) * sizeof(float);
}

size_t bwd_smem(int B, int H) {
  return ((size_t)kUnits * (4 * H + kPad) + 16 * (2 * H + kPad)) * sizeof(bf16) +
         (kWarps * 256 + B * kUnits * (1 + kPf)) * sizeof(float);
}

template <typename Args>
ffi::Error Launch(void (*kernel)(Args), Args args, size_t smem, cudaStream_t stream) {
  if (args.H % 16 || args.H > 1024 || args.B % 16 || args.T < 1)
    return ffi::Error::InvalidArgument(
        "lstm_persistent: needs H % 16 == 0, H <= 1024, B % 16 == 0 (the wrapper pads B) and "
        "T >= 1 (use lstm_impl='scan' otherwise); got H=" +
        std::to_string(args.H) + " B=" + std::to_string(args.B) + " T=" + std::to_string(args.T));
  const int blocks = args.H / kUnits;
  cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e == cudaSuccess) e = cudaMemsetAsync(args.bar, 0, kMaxBlocks * sizeof(unsigned int), stream);
  if (e == cudaSuccess) {
    void* params[] = {&args};
    e = cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), dim3(blocks),
                                    dim3(kThreads), params, smem, stream);
  }
  if (e != cudaSuccess)
    return ffi::Error::Internal(
        std::string("lstm_persistent: launch of ") + std::to_string(blocks) + " blocks with " +
        std::to_string(smem) + " bytes of shared memory failed: " + cudaGetErrorString(e) +
        " (every block must be resident at once: H <= 16 x the multiprocessor count, and the "
        "W_h slice must fit in shared memory; use lstm_impl='scan' otherwise)");
  return ffi::Error::Success();
}

ffi::Error FwdImpl(cudaStream_t stream, ffi::Buffer<ffi::F32> gx, ffi::Buffer<ffi::BF16> w,
                   ffi::Buffer<ffi::F32> h_init, ffi::Buffer<ffi::F32> c_init,
                   ffi::Buffer<ffi::F32> h0, ffi::Buffer<ffi::F32> c0,
                   ffi::Buffer<ffi::U8> reset, ffi::ResultBuffer<ffi::F32> y,
                   ffi::ResultBuffer<ffi::F32> c, ffi::ResultBuffer<ffi::BF16> hp,
                   ffi::ResultBuffer<ffi::U32> bar) {
  const auto d = gx.dimensions();
  FwdArgs a{gx.typed_data(),
            reinterpret_cast<const bf16*>(w.typed_data()),
            h_init.typed_data(),
            c_init.typed_data(),
            h0.typed_data(),
            c0.typed_data(),
            reset.typed_data(),
            y->typed_data(),
            c->typed_data(),
            reinterpret_cast<bf16*>(hp->typed_data()),
            bar->typed_data(),
            (int)d[0],
            (int)d[1],
            (int)(d[2] / 4)};
  return Launch(lstm_fwd, a, fwd_smem(a.B, a.H), stream);
}

ffi::Error BwdImpl(cudaStream_t stream, ffi::Buffer<ffi::F32> pre, ffi::Buffer<ffi::F32> c,
                   ffi::Buffer<ffi::F32> cp, ffi::Buffer<ffi::F32> dy,
                   ffi::Buffer<ffi::F32> dh_fin, ffi::Buffer<ffi::F32> dc_fin,
                   ffi::Buffer<ffi::U8> reset, ffi::Buffer<ffi::BF16> w,
                   ffi::ResultBuffer<ffi::F32> dg, ffi::ResultBuffer<ffi::BF16> dgb,
                   ffi::ResultBuffer<ffi::F32> dhp, ffi::ResultBuffer<ffi::F32> dcp,
                   ffi::ResultBuffer<ffi::U32> bar) {
  const auto d = pre.dimensions();
  BwdArgs a{pre.typed_data(),
            c.typed_data(),
            cp.typed_data(),
            dy.typed_data(),
            dh_fin.typed_data(),
            dc_fin.typed_data(),
            reset.typed_data(),
            reinterpret_cast<const bf16*>(w.typed_data()),
            dg->typed_data(),
            reinterpret_cast<bf16*>(dgb->typed_data()),
            dhp->typed_data(),
            dcp->typed_data(),
            bar->typed_data(),
            (int)d[0],
            (int)d[1],
            (int)(d[2] / 4)};
  return Launch(lstm_bwd, a, bwd_smem(a.B, a.H), stream);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(RcfamLstmFwd, FwdImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U8>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::BF16>>()
                                  .Ret<ffi::Buffer<ffi::U32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RcfamLstmBwd, BwdImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U8>>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::BF16>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U32>>());
