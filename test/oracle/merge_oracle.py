"""Independent check of a merged checkpoint, for merge.test.ts (Debian's /usr/bin/python3 + torch).

Usage: merge_oracle.py BASE_DIR ADAPTER_DIR MERGED_DIR OUT.json

Reads the three folders with its own safetensors reader, reads adapter_config.json itself (r,
lora_alpha, use_rslora -> scale), maps PEFT names (base_model.model.X.lora_A.weight) to base
weights (X.weight), computes W + scale * B @ A in float64, and writes per merged tensor:
  adapted: true/false
  dtype_ok, shape_ok: the merged tensor kept the base's dtype and shape
  identical: raw bytes equal to the base (expected for every tensor the adapter does not touch)
  excess: max over elements of (|merged - exact| - ulp(exact)/2) / bound, where bound =
          |W| + |scale| * (|B| @ |A|) bounds the float32 rounding error of any summation order
  exact_frac: fraction of elements equal to the exact value rounded once to the base dtype
  change: max |merged - base| / max |base| (how much the adapter moved the weights)
plus "layout": the merged folder's weight files and, for sharded checkpoints, whether its
weight_map equals the base's.
"""

import json
import math
import os
import struct
import sys

import torch

DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
MANT = {"F32": 23, "F16": 10, "BF16": 7}
MIN_EXP = {"F32": -126, "F16": -14, "BF16": -126}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf8"))
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        raw = bytes(data[b:end])
        t = torch.frombuffer(bytearray(raw), dtype=DT[e["dtype"]]).reshape(e["shape"]) if end > b else None
        out[name] = {"dtype": e["dtype"], "shape": e["shape"], "raw": raw, "t": t}
    return out


def read_checkpoint(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(wm.values())):
            for name, v in read_safetensors(os.path.join(folder, shard)).items():
                tensors[name] = v
        return tensors, wm
    return read_safetensors(os.path.join(folder, "model.safetensors")), None


def ulp(x, dtype):
    e = torch.floor(torch.log2(x.abs().clamp_min(2.0 ** MIN_EXP[dtype])))
    return torch.pow(2.0, e - MANT[dtype])


def main():
    base_dir, adapter_dir, merged_dir, out_path = sys.argv[1:5]
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    r, alpha = acfg["r"], acfg["lora_alpha"]
    scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    lora = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    pairs = {}
    for name in lora:
        if name.endswith(".lora_A.weight"):
            module = name[len("base_model.model."):-len(".lora_A.weight")]
            pairs[module + ".weight"] = (lora[name]["t"].double(), lora[name.replace("lora_A", "lora_B")]["t"].double())

    base, base_map = read_checkpoint(base_dir)
    merged, merged_map = read_checkpoint(merged_dir)
    report = {"scale": scale, "tensors": {}, "layout": {
        "files": sorted(os.listdir(merged_dir)),
        "same_names": sorted(base) == sorted(merged),
        "same_weight_map": base_map == merged_map,
    }}
    for name, b in base.items():
        m = merged.get(name)
        if m is None:
            report["tensors"][name] = {"missing": True}
            continue
        rec = {
            "adapted": name in pairs,
            "dtype_ok": m["dtype"] == b["dtype"],
            "shape_ok": m["shape"] == b["shape"],
            "identical": m["raw"] == b["raw"],
        }
        if name in pairs and rec["dtype_ok"] and rec["shape_ok"]:
            a, bb = pairs[name]
            w = b["t"].double()
            exact = w + scale * (bb @ a)
            got = m["t"].double()
            bound = w.abs() + abs(scale) * (bb.abs() @ a.abs())
            excess = (got - exact).abs() - ulp(exact, b["dtype"]) / 2
            rec["excess"] = float((excess / bound).max())
            rec["exact_frac"] = float((exact.to(DT[b["dtype"]]).double() == got).double().mean())
            rec["change"] = float((got - w).abs().max() / w.abs().max())
        report["tensors"][name] = rec
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
