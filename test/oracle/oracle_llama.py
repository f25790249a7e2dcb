"""Independent PyTorch reference of the Hugging Face Llama/Mistral/Qwen2 decoder with LoRA.

Reads <dir>/manifest.json (config, tensor index, batch) and <dir>/tensors.bin (little-endian
float32/int64/int32), computes the logits [B*T, V], the causal-LM loss (mean over targets != -100) and the gradient of every
LoRA matrix, and writes <dir>/out.bin + out.json the same way. Written from the architecture
description (transformers' modeling_llama), not from Finch's graph code.
"""
import json
import math
import sys

import torch

torch.set_default_dtype(torch.float32)
d = sys.argv[1]
man = json.load(open(f"{d}/manifest.json"))
raw = open(f"{d}/tensors.bin", "rb").read()


def load(name):
    e = man["tensors"][name]
    dt = {"float32": torch.float32, "int64": torch.int64, "int32": torch.int32}[e["dtype"]]
    n = 1
    for s in e["shape"]:
        n *= s
    itemsize = 8 if dt == torch.int64 else 4
    buf = bytearray(raw[e["offset"] : e["offset"] + n * itemsize])
    return torch.frombuffer(buf, dtype=dt).reshape(e["shape"]).clone()


cfg = man["config"]
H, KV, hd, D = cfg["numHeads"], cfg["numKvHeads"], cfg["headDim"], cfg["hiddenSize"]
eps = cfg["rmsNormEps"]
lora = man["lora"]  # {rank, alpha, targets, rslora}
scale = lora["alpha"] / (math.sqrt(lora["rank"]) if lora["rslora"] else lora["rank"])
W = {k: load(k) for k in man["tensors"] if not k.startswith("base_model.") and k not in ("input_ids", "position_ids", "attn_bias", "targets")}
A = {k: load(k).requires_grad_(True) for k in man["tensors"] if k.startswith("base_model.")}

ids = load("input_ids")
pos = load("position_ids")
bias = load("attn_bias")
targets = load("targets")
B, T = ids.shape


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


inv_freq = torch.tensor(man["invFreq"], dtype=torch.float64)
ang = pos.to(torch.float64)[..., None] * inv_freq  # [B, T, hd/2]
emb = torch.cat([ang, ang], -1)
cos, sin = emb.cos().float()[:, None], emb.sin().float()[:, None]  # [B, 1, T, hd]


def rot(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def proj(x, layer, block, name, bias_ok):
    path = f"model.layers.{layer}.{block}.{name}"
    y = x @ W[f"{path}.weight"].T
    if bias_ok and f"{path}.bias" in W:
        y = y + W[f"{path}.bias"]
    if name in lora["targets"]:
        a = A[f"base_model.model.{path}.lora_A.weight"]
        b = A[f"base_model.model.{path}.lora_B.weight"]
        y = y + scale * ((x @ a.T) @ b.T)
    return y


h = W["model.embed_tokens.weight"][ids]  # [B, T, D]
for l in range(cfg["numLayers"]):
    x = rms(h, W[f"model.layers.{l}.input_layernorm.weight"])
    q = proj(x, l, "self_attn", "q_proj", True).view(B, T, H, hd).transpose(1, 2)
    k = proj(x, l, "self_attn", "k_proj", True).view(B, T, KV, hd).transpose(1, 2)
    v = proj(x, l, "self_attn", "v_proj", True).view(B, T, KV, hd).transpose(1, 2)
    q = q * cos + rot(q) * sin
    k = k * cos + rot(k) * sin
    k = k.repeat_interleave(H // KV, dim=1)
    v = v.repeat_interleave(H // KV, dim=1)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias
    o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
    h = h + proj(o, l, "self_attn", "o_proj", False)
    x = rms(h, W[f"model.layers.{l}.post_attention_layernorm.weight"])
    g = proj(x, l, "mlp", "gate_proj", False)
    u = proj(x, l, "mlp", "up_proj", False)
    h = h + proj(torch.nn.functional.silu(g) * u, l, "mlp", "down_proj", False)
h = rms(h, W["model.norm.weight"])
head = W["model.embed_tokens.weight"] if cfg["tieWordEmbeddings"] else W["lm_head.weight"]
logits = (h @ head.T).reshape(B * T, -1)
loss = torch.nn.functional.cross_entropy(logits, targets.long(), ignore_index=-100)
loss.backward()

outs = {"loss": loss.detach().reshape(1), "logits": logits.detach()}
for k, a in A.items():
    outs["grad:" + k] = a.grad
index, blob, off = {}, bytearray(), 0
for k, t in outs.items():
    b = t.contiguous().float().numpy().tobytes()
    index[k] = {"offset": off, "shape": list(t.shape)}
    blob += b
    off += len(b)
open(f"{d}/out.bin", "wb").write(blob)
json.dump(index, open(f"{d}/out.json", "w"))
