// sample_pdf and merge_samples (placeholder: filled in by the importance-sampling work).
#pragma once

#include <ATen/core/Tensor.h>
