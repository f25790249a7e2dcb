"""RoPE inverse frequencies as Hugging Face transformers computes them (default and "llama3"
rope_type), re-implemented here in float32 PyTorch from the published formula, for config.test.ts.

Usage: /usr/bin/python3 oracle_rope.py IN.json OUT.json
IN: [{"head_dim", "rope_theta", "rope_scaling": null | {factor, low_freq_factor, high_freq_factor,
      original_max_position_embeddings}}, ...]; OUT: [[inv_freq...], ...] (float32 values).
"""

import json
import math
import sys

import torch


def inv_freq(case):
    dim, base = case["head_dim"], case["rope_theta"]
    f = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = case["rope_scaling"]
    if rs is None:
        return f
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / lo, old / hi
    wavelen = 2 * math.pi / f
    # long wavelengths (low frequencies) are slowed down by `factor`, short ones kept,
    # and the band between interpolated smoothly
    scaled = torch.where(wavelen > low_wavelen, f / factor, f)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        cases = json.load(fh)
    out = [inv_freq(c).tolist() for c in cases]
    with open(sys.argv[2], "w") as fh:
        json.dump(out, fh)
