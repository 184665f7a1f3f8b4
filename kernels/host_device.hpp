// Marks functions usable from both the host and CUDA device code. Element math lives in
// small inline functions carrying this marker so that both backends share one definition.
#pragma once

#if defined(__CUDACC__)
#define DOPPEL_HOST_DEVICE __host__ __device__
#else
#define DOPPEL_HOST_DEVICE
#endif
