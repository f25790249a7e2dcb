"""PyTorch peer for `finch bench train`: the same Llama-architecture LoRA training step, written
the way a PyTorch user would (frozen nn.Linear base, LoRA A/B, torch.optim.AdamW), in float32 on
the CPU, or on a GPU with "device": "cuda" (CUDA and ROCm builds of torch both name it cuda).
Prints one JSON line: {"tokens_per_s", "step_s", "peak_rss_mb", "loss"}, plus "gpu_peak_mb" on a GPU.

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


def step():
    logits = m(ids, cos, sin, mask)
    loss = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()


for _ in range(c["warmup"]):
    step()
t0 = time.perf_counter()
for _ in range(c["steps"]):
    loss = step()
dt = (time.perf_counter() - t0) / c["steps"]  # loss.item() waits for the device, so dt is the step's
out = {"tokens_per_s": B * T / dt, "step_s": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss": loss}
if dev.type == "cuda":
    out["gpu_peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
print(json.dumps(out))
