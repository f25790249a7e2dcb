"""PyTorch peer for `finch bench load`: what a lean PyTorch user does with a Hugging Face folder on a
CPU: map the safetensors file(s), convert every tensor once to float32, and run one forward of the
Llama-family decoder over the prompt to pick the first new token (greedy). No transformers import:
the forward below is the architecture (RMSNorm, RoPE, grouped-query attention, SiLU MLP, q/k/v
biases for Qwen2, tied head).

With "train_seq": T it instead runs the first training step a LoRA fine-tune starts with: LoRA
r=16 (alpha 32) on all seven projections, one forward and backward over T tokens (next-token
cross-entropy), one AdamW step; it reports "first_step_s" (process start to the end of that step).

Usage: python3 torch_load.py '<json: {"dir", "threads", "prompt": [ids], "spawned_ms", "train_seq"?}>'
Prints one JSON line: {"first_token_s", "load_s", "forward_s", "peak_rss_mb", "cpu_s", "token"}
(or {"first_step_s", "load_s", "step_s", "peak_rss_mb", "cpu_s", "loss"}).
"""
import json
import math
import mmap
import os
import resource
import struct
import sys
import time

import torch

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
t_import = time.time()
DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def shards(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return sorted({os.path.join(folder, s) for s in json.load(f)["weight_map"].values()})
    return [os.path.join(folder, "model.safetensors")]


def load_float32(folder):
    """Every tensor as float32, read through a memory map (one conversion, no intermediate copy)."""
    out = {}
    for path in shards(folder):
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        (n,) = struct.unpack("<Q", mm[:8])
        header = json.loads(mm[8 : 8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            dt = DTYPES[info["dtype"]]
            raw = torch.frombuffer(mm, dtype=dt, count=(e - b) // torch.empty(0, dtype=dt).element_size(), offset=base + b)
            out[name] = raw.reshape(info["shape"]).float()
    return out


with open(os.path.join(c["dir"], "config.json")) as f:
    cfg = json.load(f)
t0 = time.time()
import warnings

warnings.filterwarnings("ignore", message="The given buffer is not writable")
W = load_float32(c["dir"])
t_loaded = time.time()

D, L = cfg["hidden_size"], cfg["num_hidden_layers"]
H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
hd = cfg.get("head_dim") or D // H
eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)


def rope_inv_freq():
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (orig / wavelen - lo) / (hi - lo)
        scaled = torch.where(wavelen > orig / lo, inv / factor, inv)
        mid = (wavelen <= orig / lo) & (wavelen >= orig / hi)
        inv = torch.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    return inv.float()


def norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


LORA = {}  # module name -> (A [r, in], B [out, r]) while training
LORA_SCALE = 32 / 16


def linear(x, name):
    b = W.get(name + ".bias")
    y = torch.nn.functional.linear(x, W[name + ".weight"], b)
    ab = LORA.get(name)
    return y if ab is None else y + (x @ ab[0].T) @ ab[1].T * LORA_SCALE


def rot(x):
    return torch.cat([-x[..., hd // 2 :], x[..., : hd // 2]], -1)


def trunk(ids):
    """The final normed hidden states [T, D]."""
    T = len(ids)
    h = W["model.embed_tokens.weight"][torch.tensor(ids)]
    ang = torch.arange(T, dtype=torch.float32)[:, None] * rope_inv_freq()[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(L):
        p = f"model.layers.{l}"
        x = norm(h, W[p + ".input_layernorm.weight"])
        q = linear(x, p + ".self_attn.q_proj").view(T, H, hd).transpose(0, 1)
        k = linear(x, p + ".self_attn.k_proj").view(T, KV, hd).transpose(0, 1)
        v = linear(x, p + ".self_attn.v_proj").view(T, KV, hd).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1) @ v
        h = h + linear(a.transpose(0, 1).reshape(T, H * hd), p + ".self_attn.o_proj")
        x = norm(h, W[p + ".post_attention_layernorm.weight"])
        h = h + linear(torch.nn.functional.silu(linear(x, p + ".mlp.gate_proj")) * linear(x, p + ".mlp.up_proj"), p + ".mlp.down_proj")
    return norm(h, W["model.norm.weight"])


HEAD = W.get("lm_head.weight", W["model.embed_tokens.weight"])


@torch.no_grad()
def forward(ids):
    return trunk(ids)[-1:] @ HEAD.T


if c.get("train_seq"):
    torch.manual_seed(0)
    for l in range(L):
        for t in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            out_f, in_f = W[f"model.layers.{l}.{t}.weight"].shape
            a = ((torch.rand(16, in_f) * 2 - 1) / math.sqrt(in_f)).requires_grad_()
            LORA[f"model.layers.{l}.{t}"] = (a, torch.zeros(out_f, 16, requires_grad=True))
    opt = torch.optim.AdamW([p for ab in LORA.values() for p in ab], lr=1e-4)
    ids = [(3 + 7 * i) % cfg["vocab_size"] for i in range(c["train_seq"] + 1)]
    loss = torch.nn.functional.cross_entropy(trunk(ids[:-1]) @ HEAD.T, torch.tensor(ids[1:]))
    loss.backward()
    opt.step()
    t_done = time.time()
    print(json.dumps({
        "first_step_s": t_done - c["spawned_ms"] / 1000,
        "load_s": t_loaded - t0,
        "step_s": t_done - t_loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
        "loss": float(loss),
    }))
    sys.exit(0)

token = int(forward(c["prompt"]).argmax(-1)[0])
t_done = time.time()
print(json.dumps({
    "first_token_s": t_done - c["spawned_ms"] / 1000,
    "load_s": t_loaded - t0,
    "forward_s": t_done - t_loaded,
    "import_s": t_import - c["spawned_ms"] / 1000,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
    "token": token,
}))
