"""Tensor exchange for the PyTorch oracle scripts (the other half of test/helpers/torch.ts).

A tensor travels as {"dtype": "float32", "shape": [2, 3], "data": [...]} inside a JSON document.
JSON carries float32 and float64 exactly, and nothing here unpickles anything.
Run the scripts with Debian's /usr/bin/python3, which has python3-torch.
"""

import json
import os
import sys

import torch

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
}
NAMES = {v: k for k, v in DTYPES.items()}


def _is_tensor(v):
    return isinstance(v, dict) and set(v) == {"dtype", "shape", "data"}


def _decode(v):
    if _is_tensor(v):
        return torch.tensor(v["data"], dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
    if isinstance(v, dict):
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _encode(v):
    if isinstance(v, torch.Tensor):
        t = v.detach().cpu()
        if t.dtype not in NAMES:
            raise TypeError(f"cannot send a {t.dtype} tensor back")
        return {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data": t.reshape(-1).tolist()}
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    return v


def main(compute):
    """Reads argv[1], calls compute(input) -> dict, writes argv[2] atomically."""
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} input.json output.json")
    torch.manual_seed(0)
    with open(sys.argv[1], encoding="utf8") as f:
        request = _decode(json.load(f))
    result = _encode(compute(request))
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf8") as f:
        json.dump(result, f, allow_nan=False)  # a NaN in the oracle is a failure, not data
    os.replace(tmp, sys.argv[2])
