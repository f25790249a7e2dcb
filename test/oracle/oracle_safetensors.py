"""Independent safetensors reader/writer and dtype conversions in PyTorch, for safetensors.test.ts.

Usage (Debian's /usr/bin/python3, which has python3-torch; no safetensors package needed):
  oracle_safetensors.py convert IN.safetensors OUT.safetensors
      IN holds F32 tensors (written by Finch). Checks its layout, then writes OUT with, per tensor
      NAME: NAME.bf16 (BF16), NAME.f16 (F16), NAME.bf16_f32 and NAME.f16_f32 (torch's values of
      those, as F32), NAME.f64 (F64) and NAME.i64 (I64, truncated toward zero; 0 where |x| >= 2^62 or not finite).
  oracle_safetensors.py stats DIR_OR_FILE OUT.json
      Reads a checkpoint (model.safetensors or a sharded index) and writes, per tensor,
      {dtype, shape, sum, sumsq, first} computed in float64 from the raw bytes.
"""

import json
import os
import struct
import sys

import torch

DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64,
      "I32": torch.int32, "U8": torch.uint8}
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1}
NAME = {v: k for k, v in DT.items()}


def read_file(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        raw = bytearray(data[b:end])
        t = torch.frombuffer(raw, dtype=DT[e["dtype"]]) if end > b else torch.zeros(0, dtype=DT[e["dtype"]])
        out[name] = (e, t.reshape(e["shape"]))
    return n, header, meta, out, len(data)


def write_file(path, tensors):
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header).encode("utf8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def convert(src, dst):
    n, header, _meta, tensors, data_len = read_file(src)
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    names = list(header)
    assert names == sorted(names), "tensor names are not sorted"
    off = 0
    for name in names:  # contiguous, in name order, covering the whole data section
        b, e = header[name]["data_offsets"]
        assert b == off, f"{name}: begins at {b}, expected {off}"
        off = e
    assert off == data_len, f"data section has {data_len} bytes, tensors cover {off}"
    out = {}
    for name, (e, t) in tensors.items():
        assert e["dtype"] == "F32"
        bf, hf = t.to(torch.bfloat16), t.to(torch.float16)
        out[name + ".bf16"], out[name + ".f16"] = bf, hf
        out[name + ".bf16_f32"], out[name + ".f16_f32"] = bf.float(), hf.float()
        out[name + ".f64"] = t.double()
        finite = torch.where(torch.isfinite(t) & (t.abs() < 2.0 ** 62), t, torch.zeros_like(t))
        out[name + ".i64"] = finite.double().trunc().long()
    write_file(dst, out)


def stats(src, out_path):
    files = []
    if os.path.isdir(src):
        index = os.path.join(src, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                files = [os.path.join(src, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
        else:
            files = [os.path.join(src, "model.safetensors")]
    else:
        files = [src]
    result = {}
    for path in files:
        _n, _h, _m, tensors, _l = read_file(path)
        for name, (e, t) in tensors.items():
            d = t.double()
            result[name] = {"dtype": e["dtype"], "shape": e["shape"], "sum": d.sum().item(),
                            "sumsq": (d * d).sum().item(), "first": d.reshape(-1)[:4].tolist()}
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "stats":
        stats(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
