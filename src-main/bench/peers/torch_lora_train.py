"""PyTorch peer for `finch bench train`: the same Llama-architecture LoRA training step, written
the way a PyTorch user would (frozen nn.Linear base, LoRA A/B, torch.optim.AdamW), in float32 on
the CPU, or on a GPU with "device": "cuda" (CUDA and ROCm builds of torch both name it cuda).
Prints one JSON line: {"tokens_per_s", "step_s", "peak_rss_mb", "loss"}, plus "gpu_peak_mb" on a GPU.

With "batches" (a file written by train-data.ts) it trains on a real dataset's rows instead of
random tokens, as a Hugging Face Trainer run with the default collator does: rows in a seeded
random order, each batch padded to its own longest row (labels -100 and attention masked on the
padding), no length grouping; "tokens_per_s" then counts real (non-padding) tokens.

Usage: python3 torch_lora_train.py '<json config>'
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
torch.manual_seed(0)
D, L, H, KV, I, V = c["hidden"], c["layers"], c["heads"], c["kv_heads"], c["intermediate"], c["vocab"]
hd = D // H
B, T, r, alpha = c["batch"], c["seq"], c["rank"], c["alpha"]


class LoRALinear(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.base = nn.Linear(i, o, bias=False)
        self.base.weight.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(r, i))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.b = nn.Parameter(torch.zeros(o, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(D), requires_grad=False)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


def rot(x):
    return torch.cat([-x[..., hd // 2:], x[..., : hd // 2]], -1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(), RMSNorm()
        self.q, self.k, self.v, self.o = LoRALinear(D, H * hd), LoRALinear(D, KV * hd), LoRALinear(D, KV * hd), LoRALinear(H * hd, D)
        self.g, self.u, self.d = LoRALinear(D, I), LoRALinear(D, I), LoRALinear(I, D)

    def forward(self, h, cos, sin, mask):
        B, T = h.shape[0], h.shape[1]
        x = self.n1(h)
        q = self.q(x).view(B, T, H, hd).transpose(1, 2)
        k = self.k(x).view(B, T, KV, hd).transpose(1, 2)
        v = self.v(x).view(B, T, KV, hd).transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1) @ v
        h = h + self.o(a.transpose(1, 2).reshape(B, T, D))
        x = self.n2(h)
        return h + self.d(F.silu(self.g(x)) * self.u(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.emb.weight.requires_grad_(False)
        self.layers = nn.ModuleList([Layer() for _ in range(L)])
        self.norm = RMSNorm()
        self.head = nn.Linear(D, V, bias=False)
        self.head.weight.requires_grad_(False)

    def forward(self, ids, cos, sin, mask):
        h = self.emb(ids)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.head(self.norm(h))


dev = torch.device(c.get("device", "cpu"))
m = Model().to(dev)
params = [p for p in m.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
ang = torch.arange(T).float()[:, None] * inv
emb = torch.cat([ang, ang], -1)
cos, sin = emb.cos()[None, None].to(dev), emb.sin()[None, None].to(dev)
mask = torch.full((T, T), -1e9).triu(1)[None, None].to(dev)
ids = torch.randint(0, V, (B, T)).to(dev)
labels = torch.randint(0, V, (B, T)).to(dev)
batches = json.load(open(c["batches"]))["peer"] if c.get("batches") else None


def collate(rows):
    """Pads rows to the batch's longest (right padding, labels -100): ids, labels, additive mask [B, 1, T, T], real tokens."""
    t = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), t, dtype=torch.long)
    labels = torch.full((len(rows), t), -100, dtype=torch.long)
    keep = torch.zeros(len(rows), t, dtype=torch.bool)
    for b, r in enumerate(rows):
        n = len(r["ids"])
        ids[b, :n] = torch.tensor(r["ids"])
        labels[b, :n] = torch.tensor(r["labels"])
        keep[b, :n] = True
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    allowed = causal[None] & keep[:, None, :]
    allowed |= torch.eye(t, dtype=torch.bool)[None]  # a padding query attends to itself (finite softmax)
    bias = torch.zeros(len(rows), 1, t, t).masked_fill(~allowed[:, None], -1e9)
    return ids, labels, bias, int(keep.sum())


def rope(t):
    a = torch.arange(t).float()[:, None] * inv
    e = torch.cat([a, a], -1)
    return e.cos()[None, None].to(dev), e.sin()[None, None].to(dev)


step_no = 0


def step():
    global step_no
    if batches is None:
        logits = m(ids, cos, sin, mask)
        loss = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)
        real = B * T
    else:
        bi, bl, bias, real = collate(batches[step_no % len(batches)])
        step_no += 1
        c_, s_ = rope(bi.shape[1])
        logits = m(bi.to(dev), c_, s_, bias.to(dev))
        # The logits at t predict the label at t + 1 (Hugging Face's causal LM loss).
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), bl[:, 1:].reshape(-1).to(dev), ignore_index=-100)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item(), real


for _ in range(c["warmup"]):
    step()
t0 = time.perf_counter()
real_tokens = 0
for _ in range(c["steps"]):
    loss, real = step()
    real_tokens += real
dt = (time.perf_counter() - t0) / c["steps"]  # loss.item() waits for the device, so dt is the step's
out = {"tokens_per_s": real_tokens / c["steps"] / dt, "step_s": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss": loss}
if dev.type == "cuda":
    out["gpu_peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
print(json.dumps(out))
