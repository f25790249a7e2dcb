"""PyTorch reference for Finch's composite blocks (src-main/engine/nn/layers.ts).

Each case takes the inputs the test wrote, computes the block the textbook way with torch, and
returns its forward value and, through torch.autograd, the gradient of loss = sum(out * probe)
(a fixed random probe weighs every output element differently) with respect to every input
listed in "wrt". Written from the definitions (Hugging Face Llama, torch.nn.functional), not from
Finch's graph code. Usage: /usr/bin/python3 composite.py input.json output.json
"""

import math

import torch
import torch.nn.functional as F

from exchange import main


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def gated_mlp(x, gate, up, down):
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def self_attention(x, wq, wk, wv, wo, n_heads, n_kv_heads):
    b, t, _ = x.shape
    hd = wq.shape[0] // n_heads
    q = F.linear(x, wq).view(b, t, n_heads, hd).transpose(1, 2)  # [B, H, T, hd]
    k = F.linear(x, wk).view(b, t, n_kv_heads, hd).transpose(1, 2)  # [B, Hkv, T, hd]
    v = F.linear(x, wv).view(b, t, n_kv_heads, hd).transpose(1, 2)
    rep = n_heads // n_kv_heads
    k = k.repeat_interleave(rep, dim=1)  # query head j reads key/value head j // rep
    v = v.repeat_interleave(rep, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)  # [B, H, T, T]
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    probs = scores.masked_fill(future, float("-inf")).softmax(-1)
    return F.linear((probs @ v).transpose(1, 2).reshape(b, t, n_heads * hd), wo)


def cross_entropy(logits, labels):
    return F.cross_entropy(logits, labels.long(), ignore_index=-100)


def tiny_block(p, embed, ids, labels, cfg):
    """Embedding, x + attn(norm(x)), + mlp(norm(.)), final norm, LM head, cross-entropy: the step test's model."""
    eps = cfg["eps"]
    x = embed[ids.long()]  # [B, T, D]
    h = x + self_attention(rms_norm(x, p["attn_norm"], eps), p["wq"], p["wk"], p["wv"], p["wo"], cfg["n_heads"], cfg["n_kv_heads"])
    h = h + gated_mlp(rms_norm(h, p["mlp_norm"], eps), p["gate"], p["up"], p["down"])
    logits = F.linear(rms_norm(h, p["final_norm"], eps), p["lm_head"])
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def probed_case(req, forward):
    t = req["tensors"]
    leaves = {k: t[k].clone().requires_grad_(True) for k in req["wrt"]}
    args = {**t, **leaves}
    out = forward(args, req.get("config", {}))
    loss = (out * t["probe"]).sum() if "probe" in t else out
    grads = torch.autograd.grad(loss, [leaves[k] for k in req["wrt"]])
    return {"out": out, "grads": dict(zip(req["wrt"], grads))}


CASES = {
    "rms_norm": lambda a, c: rms_norm(a["x"], a["weight"], c["eps"]),
    "silu": lambda a, c: F.silu(a["x"]),
    "gated_mlp": lambda a, c: gated_mlp(a["x"], a["gate"], a["up"], a["down"]),
    "self_attention": lambda a, c: self_attention(a["x"], a["wq"], a["wk"], a["wv"], a["wo"], c["n_heads"], c["n_kv_heads"]),
    "cross_entropy": lambda a, c: cross_entropy(a["logits"], a["labels"]),
}


def train_steps(req):
    """Several AdamW steps of tiny_block: the loss and gradient norm per step, and the final state."""
    cfg = req["config"]
    params = {k: v.clone().requires_grad_(True) for k, v in req["params"].items()}
    names = list(params)
    opt = torch.optim.AdamW(
        [params[k] for k in names], lr=cfg["lr"][0], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps_adam"], weight_decay=cfg["weight_decay"]
    )
    losses, norms = [], []
    for step, batch in enumerate(req["batches"]):
        for group in opt.param_groups:
            group["lr"] = cfg["lr"][step]
        opt.zero_grad()
        loss = tiny_block(params, req["embed"], batch["ids"], batch["labels"], cfg)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_([params[k] for k in names], cfg["max_grad_norm"]).item())
        losses.append(loss.item())
        opt.step()
    state = {k: opt.state[params[k]] for k in names}
    return {
        "losses": losses,
        "grad_norms": norms,
        "params": {k: params[k] for k in names},
        "m": {k: state[k]["exp_avg"] for k in names},
        "v": {k: state[k]["exp_avg_sq"] for k in names},
    }


def compute(req):
    if req["case"] == "train_steps":
        return train_steps(req)
    if req["case"] not in CASES:
        raise SystemExit(f"composite.py: unknown case {req['case']!r}; known: {', '.join(CASES)}, train_steps")
    return probed_case(req, CASES[req["case"]])


if __name__ == "__main__":
    main(compute)
