// The phases of the fixed-order reduction of per-block partials (cuda/reduce.cu, and the fused reduction and Adam
// update of cuda/adam.cu): a block is 32 parameters x kReduceRows threads (one warp a row); row y sums partials y,
// y + kReduceRows, ..., then the rows are added as a fixed binary tree (row y += row y + s for s = kReduceRows / 2,
// ..., 2, 1), always in the same order (deterministic: a resumed run repeats its steps bit for bit). One warp of
// block 0 also sums the partial losses. The kernels serving a batch (Members) offset the pointers to their member
// first: blockIdx.x counts the blocks of one member.
//
// 32 rows (1024 threads) rather than 8: each thread has about blocks / 32 partials to read (8 for one 4x40 network at
// N = 1026), issued eight at a time, so the reads are in flight at once instead of in a chain of L2 round trips
// (benchmarks/NOTES.md).
#pragma once

namespace pinntk::reduce {

constexpr int kReduceRows = 32;
// The grid of a reduction over P parameters (blockDim (32, kReduceRows)).
inline dim3 reduce_threads() { return dim3(32, kReduceRows); }
inline unsigned reduce_blocks(int P) { return static_cast<unsigned>((P + 31) / 32); }
// The grid of a reduction for `members` members of a batch: one slice of reduce_blocks(P) in y per member.
inline dim3 reduce_grid(int P, int members) { return dim3(reduce_blocks(P), static_cast<unsigned>(members)); }

// The loss: in block 0, row 1 (one warp) strides over the blocks' partial losses, then a fixed-order shuffle tree;
// *loss in double.
template <class Real>
__device__ inline void reduce_partial_loss(int blocks, const Real* partial_loss, double* loss) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  if (blockIdx.x == 0 && ty == 1) {
    double s = 0.0;
    for (int b = tx; b < blocks; b += 32) s += double(partial_loss[b]);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (tx == 0) *loss = s;
  }
}

// Parameter p = blockIdx.x * 32 + threadIdx.x summed over the blocks' partials (blocks x P, row-major). Every
// thread of the block calls it (it holds barriers); it returns true, with the sum in g and p set, in row 0 for
// p < P, and false elsewhere.
template <class Real>
__device__ inline bool reduce_partials(int P, int blocks, const Real* partial, Real& g, int& p) {
  __shared__ Real rowsum[kReduceRows][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  p = blockIdx.x * 32 + tx;
  g = Real(0);
  if (p < P) {
#pragma unroll 8
    for (int b = ty; b < blocks; b += kReduceRows) g += partial[static_cast<size_t>(b) * P + p];
  }
  rowsum[ty][tx] = g;
  for (int s = kReduceRows / 2; s > 0; s >>= 1) {
    __syncthreads();
    if (ty < s) {
      g += rowsum[ty + s][tx];
      rowsum[ty][tx] = g;
    }
  }
  return ty == 0 && p < P;
}

}  // namespace pinntk::reduce
