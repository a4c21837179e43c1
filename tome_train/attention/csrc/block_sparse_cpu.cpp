// Fused block-sparse attention for CPU, fp32, forward and backward (tome_train.attention.cpu_fused).
//
// Why a C++ kernel: built from PyTorch ops, block-sparse attention must write the gathered
// key/value blocks and the score matrix of every kept block to memory and read them back in
// each op (~10 passes over ~45 MB at DeiT-S/384), and it pays page faults on every fresh
// buffer. Here one task handles one query block (forward) or one (batch, head) (backward):
// the kept key/value blocks are read in place through BLAS leading dimensions (no gather),
// and the scores of a block stay in a per-thread scratch buffer that fits in L2, like a
// flash-attention kernel. The backward recomputes the probabilities from the saved row
// log-sum-exp instead of storing them (5 GEMMs per block pair, 2 in the forward).
//
// Layout (see layout.py): tokens are in blocks of `block` (the last may be partial); query
// block i attends to the key blocks kv_blocks[b, i, :]; the first `prefix` query rows attend
// to every key. BLAS: the sgemm_ exported by libtorch_cpu (MKL in the x86 wheels).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b,
                       const int* ldb, const float* beta, float* c, const int* ldc);

namespace {

// Row-major C[m x n] = alpha * op(A)[m x k] @ op(B)[k x n] + beta * C through column-major
// BLAS (a row-major matrix is its own transpose in column-major order).
inline void mm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc) {
  const char fa = tb ? 'T' : 'N', fb = ta ? 'T' : 'N';
  sgemm_(&fa, &fb, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

// exp(x) for x <= 0 (softmax arguments after the max is subtracted); 0 below -87 (where
// expf underflows to denormals), so -inf gives exactly 0 as in dense softmax. Branch-free
// so the loops below vectorize: Cody-Waite reduction x = n ln2 + f, |f| <= ln2/2, then a
// degree-7 Taylor polynomial; relative error ~2e-7 over the whole range.
inline float exp_nonpos(float x) {
  const float xc = x < -87.f ? -87.f : x;
  const float n = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x/ln2)
  float f = std::fma(-n, 0.693145751953125f, xc);  // ln2 split in a high part exact in
  f = std::fma(-n, 1.428606765330187e-06f, f);     // float and a low part
  float p = 1.f / 5040;
  p = p * f + 1.f / 720;
  p = p * f + 1.f / 120;
  p = p * f + 1.f / 24;
  p = p * f + 1.f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.f;
  p = p * f + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.f ? 0.f : p * scale;
}

// Row softmax in place; writes each row's log-sum-exp.
void softmax_rows(float* s, float* lse, int rows, int cols, int ld) {
  for (int r = 0; r < rows; ++r) {
    float* x = s + static_cast<int64_t>(r) * ld;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int c = 0; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < cols; ++c) {
      const float e = exp_nonpos(x[c] - mx);
      x[c] = e;
      sum += e;
    }
    const float inv = 1.f / sum;
#pragma omp simd
    for (int c = 0; c < cols; ++c) x[c] *= inv;
    lse[r] = mx + std::log(sum);
  }
}

// P = exp(S - lse), in place: the forward's probabilities, recomputed.
void probs_from_lse(float* s, const float* lse, int rows, int cols, int ld) {
  for (int r = 0; r < rows; ++r) {
    float* x = s + static_cast<int64_t>(r) * ld;
    const float l = lse[r];
#pragma omp simd
    for (int c = 0; c < cols; ++c) x[c] = exp_nonpos(x[c] - l);
  }
}

// dS = P * (dP - rowsum(P * dP)), in place in dp.
void softmax_bwd_rows(float* dp, const float* p, int rows, int cols, int ld) {
  for (int r = 0; r < rows; ++r) {
    float* g = dp + static_cast<int64_t>(r) * ld;
    const float* y = p + static_cast<int64_t>(r) * ld;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int c = 0; c < cols; ++c) dot += g[c] * y[c];
#pragma omp simd
    for (int c = 0; c < cols; ++c) g[c] = y[c] * (g[c] - dot);
  }
}

struct Geometry {
  int64_t B, H, N, D, Dv, nb, kk, b, P;
  int64_t M() const { return B * H; }
  int64_t L() const { return kk * b; }  // widest row of kept keys
  int rows(int64_t block) const { return static_cast<int>(std::min(b, N - block * b)); }
  int64_t scratch() const { return std::max<int64_t>(b * L(), P * N); }
};

Geometry check_inputs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                      const torch::Tensor& kv_blocks, int64_t block, int64_t prefix) {
  for (const auto* t : {&q, &k, &v}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == torch::kFloat32 && t->dim() == 4 &&
                    t->is_contiguous(),
                "q, k, v must be contiguous float32 CPU tensors [B, H, N, D]");
  }
  TORCH_CHECK(k.sizes() == q.sizes() && v.size(0) == q.size(0) && v.size(1) == q.size(1) &&
                  v.size(2) == q.size(2),
              "q, k, v must share B, H, N (and q, k the head dim)");
  TORCH_CHECK(kv_blocks.device().is_cpu() && kv_blocks.scalar_type() == torch::kInt64 &&
                  kv_blocks.dim() == 3 && kv_blocks.is_contiguous(),
              "kv_blocks must be a contiguous int64 CPU tensor [B, n_blocks, k]");
  const int64_t N = q.size(2);
  TORCH_CHECK(block >= 1 && prefix >= 0 && prefix <= std::min(block, N),
              "need block_size >= 1 and 0 <= num_prefix_tokens <= min(block_size, N)");
  const int64_t nb = (N + block - 1) / block;
  TORCH_CHECK(kv_blocks.size(0) == q.size(0) && kv_blocks.size(1) == nb && kv_blocks.size(2) >= 1 &&
                  kv_blocks.size(2) <= nb,
              "kv_blocks must be [B, ceil(N / block_size), k] with 1 <= k <= n_blocks");
  // The kernel reads memory at these blocks, and duplicates or a missing block 0 would give
  // a silently different attention than the layout's mask: check every row (cheap).
  const int64_t* idx = kv_blocks.data_ptr<int64_t>();
  const int64_t kk = kv_blocks.size(2);
  for (int64_t row = 0; row < kv_blocks.numel() / kk; ++row) {
    const int64_t* r = idx + row * kk;
    for (int64_t j = 0; j < kk; ++j) {
      TORCH_CHECK(r[j] >= 0 && r[j] < nb, "kv_blocks values must be in [0, n_blocks)");
      TORCH_CHECK(j == 0 || r[j] > r[j - 1], "kv_blocks rows must be sorted without duplicates");
    }
    TORCH_CHECK(r[0] == 0, "kv_blocks rows must start with key block 0 (the prefix block)");
  }
  return Geometry{q.size(0), q.size(1), N, q.size(3), v.size(3), nb, kv_blocks.size(2), block,
                  prefix};
}

// Scaled scores of query rows [r0, r0 + nr) of block i against its kept key blocks, side by
// side in s (leading dimension ld). Returns the number of key columns.
int block_scores(const Geometry& g, const float* qm, const float* km, const int64_t* blocks,
                 int64_t i, int64_t r0, int nr, float scale, float* s, int ld) {
  int off = 0;
  for (int64_t j = 0; j < g.kk; ++j) {
    const int len = g.rows(blocks[j]);
    mm(false, true, nr, len, (int)g.D, scale, qm + (i * g.b + r0) * g.D, (int)g.D,
       km + blocks[j] * g.b * g.D, (int)g.D, 0.f, s + off, ld);
    off += len;
  }
  return off;
}

}  // namespace

// Returns {out [B, H, N, Dv], lse [B*H, N]}.
std::vector<torch::Tensor> forward(torch::Tensor q, torch::Tensor k, torch::Tensor v,
                                   torch::Tensor kv_blocks, int64_t block, int64_t prefix,
                                   double scale_d) {
  const Geometry g = check_inputs(q, k, v, kv_blocks, block, prefix);
  const float scale = static_cast<float>(scale_d);
  const int64_t N = g.N, D = g.D, Dv = g.Dv, L = g.L();
  auto out = torch::empty({g.B, g.H, N, Dv}, q.options());
  auto lse = torch::empty({g.M(), N}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
  const int64_t* kvb = kv_blocks.data_ptr<int64_t>();
  at::parallel_for(0, g.M() * g.nb, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> scratch(g.scratch());
    float* s = scratch.data();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m = t / g.nb, i = t % g.nb;
      const float *qm = qp + m * N * D, *km = kp + m * N * D, *vm = vp + m * N * Dv;
      float* om = op + m * N * Dv;
      float* lm = lp + m * N;
      if (i == 0 && g.P > 0) {  // prefix rows: dense over all keys
        const int P = (int)g.P;
        mm(false, true, P, (int)N, (int)D, scale, qm, (int)D, km, (int)D, 0.f, s, (int)N);
        softmax_rows(s, lm, P, (int)N, (int)N);
        mm(false, false, P, (int)Dv, (int)N, 1.f, s, (int)N, vm, (int)Dv, 0.f, om, (int)Dv);
      }
      const int64_t r0 = (i == 0) ? g.P : 0;
      const int nr = g.rows(i) - (int)r0;
      if (nr <= 0) continue;
      const int64_t* blocks = kvb + ((m / g.H) * g.nb + i) * g.kk;
      const int cols = block_scores(g, qm, km, blocks, i, r0, nr, scale, s, (int)L);
      softmax_rows(s, lm + i * g.b + r0, nr, cols, (int)L);
      int off = 0;
      for (int64_t j = 0; j < g.kk; ++j) {
        const int len = g.rows(blocks[j]);
        mm(false, false, nr, (int)Dv, len, 1.f, s + off, (int)L, vm + blocks[j] * g.b * Dv,
           (int)Dv, j ? 1.f : 0.f, om + (i * g.b + r0) * Dv, (int)Dv);
        off += len;
      }
    }
  });
  return {out, lse};
}

// Returns {dq, dk, dv}.
std::vector<torch::Tensor> backward(torch::Tensor grad_out, torch::Tensor q, torch::Tensor k,
                                    torch::Tensor v, torch::Tensor kv_blocks, torch::Tensor lse,
                                    int64_t block, int64_t prefix, double scale_d) {
  const Geometry g = check_inputs(q, k, v, kv_blocks, block, prefix);
  TORCH_CHECK(grad_out.sizes() == v.sizes() && grad_out.is_contiguous() &&
                  grad_out.scalar_type() == torch::kFloat32,
              "grad_out must be a contiguous float32 tensor shaped like the output");
  TORCH_CHECK(lse.numel() == g.M() * g.N && lse.is_contiguous() && lse.scalar_type() == torch::kFloat32,
              "lse must be the contiguous float32 [B*H, N] tensor returned by forward");
  const float scale = static_cast<float>(scale_d);
  const int64_t N = g.N, D = g.D, Dv = g.Dv, L = g.L();
  auto dq = torch::empty_like(q);
  auto dk = torch::empty_like(k);
  auto dv = torch::empty_like(v);
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float *dop = grad_out.data_ptr<float>(), *lp = lse.data_ptr<float>();
  float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
  const int64_t* kvb = kv_blocks.data_ptr<int64_t>();
  // One task per (batch, head): it owns that head's dK and dV, so no two threads add into the
  // same rows and no atomics or per-thread copies are needed.
  at::parallel_for(0, g.M(), 1, [&](int64_t m0, int64_t m1) {
    std::vector<float> pbuf(g.scratch()), dsbuf(g.scratch());
    float *p = pbuf.data(), *ds = dsbuf.data();
    for (int64_t m = m0; m < m1; ++m) {
      const float *qm = qp + m * N * D, *km = kp + m * N * D, *vm = vp + m * N * Dv;
      const float* dom = dop + m * N * Dv;
      const float* lm = lp + m * N;
      float *dqm = dqp + m * N * D, *dkm = dkp + m * N * D, *dvm = dvp + m * N * Dv;
      std::memset(dkm, 0, sizeof(float) * N * D);
      std::memset(dvm, 0, sizeof(float) * N * Dv);
      if (g.P > 0) {  // dense prefix rows
        const int P = (int)g.P;
        mm(false, true, P, (int)N, (int)D, scale, qm, (int)D, km, (int)D, 0.f, p, (int)N);
        probs_from_lse(p, lm, P, (int)N, (int)N);
        mm(true, false, (int)N, (int)Dv, P, 1.f, p, (int)N, dom, (int)Dv, 1.f, dvm, (int)Dv);
        mm(false, true, P, (int)N, (int)Dv, 1.f, dom, (int)Dv, vm, (int)Dv, 0.f, ds, (int)N);
        softmax_bwd_rows(ds, p, P, (int)N, (int)N);
        mm(false, false, P, (int)D, (int)N, scale, ds, (int)N, km, (int)D, 0.f, dqm, (int)D);
        mm(true, false, (int)N, (int)D, P, scale, ds, (int)N, qm, (int)D, 1.f, dkm, (int)D);
      }
      for (int64_t i = 0; i < g.nb; ++i) {
        const int64_t r0 = (i == 0) ? g.P : 0;
        const int nr = g.rows(i) - (int)r0;
        if (nr <= 0) continue;
        const int64_t* blocks = kvb + ((m / g.H) * g.nb + i) * g.kk;
        const float* doi = dom + (i * g.b + r0) * Dv;
        const float* qi = qm + (i * g.b + r0) * D;
        const int cols = block_scores(g, qm, km, blocks, i, r0, nr, scale, p, (int)L);
        probs_from_lse(p, lm + i * g.b + r0, nr, cols, (int)L);
        int off = 0;
        for (int64_t j = 0; j < g.kk; ++j) {  // dV_j += P_j^T dO_i ; dP_j = dO_i V_j^T
          const int len = g.rows(blocks[j]);
          float* dvj = dvm + blocks[j] * g.b * Dv;
          mm(true, false, len, (int)Dv, nr, 1.f, p + off, (int)L, doi, (int)Dv, 1.f, dvj, (int)Dv);
          mm(false, true, nr, len, (int)Dv, 1.f, doi, (int)Dv, vm + blocks[j] * g.b * Dv, (int)Dv,
             0.f, ds + off, (int)L);
          off += len;
        }
        softmax_bwd_rows(ds, p, nr, cols, (int)L);
        off = 0;
        for (int64_t j = 0; j < g.kk; ++j) {  // dQ_i += s dS_j K_j ; dK_j += s dS_j^T Q_i
          const int len = g.rows(blocks[j]);
          mm(false, false, nr, (int)D, len, scale, ds + off, (int)L, km + blocks[j] * g.b * D,
             (int)D, j ? 1.f : 0.f, dqm + (i * g.b + r0) * D, (int)D);
          mm(true, false, len, (int)D, nr, scale, ds + off, (int)L, qi, (int)D, 1.f,
             dkm + blocks[j] * g.b * D, (int)D);
          off += len;
        }
      }
    }
  });
  return {dq, dk, dv};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "block-sparse attention forward (CPU, fp32)");
  m.def("backward", &backward, "block-sparse attention backward (CPU, fp32)");
}
