"""PyTorch reference for Finch's AdamW (src-main/engine/optim/adamw.ts).

Applies torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW to the given parameters with the
given gradients, one list of gradients per step, and returns the parameters after every step,
the gradient norm clip_grad_norm_ reported, and the final moments.
Usage: /usr/bin/python3 adamw.py input.json output.json
"""

import torch

from exchange import main


def compute(req):
    hp = req["hyper"]
    names = list(req["params"])
    params = [req["params"][k].clone().requires_grad_(True) for k in names]
    opt = torch.optim.AdamW(params, lr=req["lr"][0], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], weight_decay=hp["weight_decay"])
    history, norms = [], []
    for step, grads in enumerate(req["grads"]):
        for group in opt.param_groups:
            group["lr"] = req["lr"][step]
        for p, k in zip(params, names):
            p.grad = grads[k].clone()
        if hp["max_grad_norm"] is not None:
            norms.append(torch.nn.utils.clip_grad_norm_(params, hp["max_grad_norm"]).item())
        opt.step()
        history.append({k: p.detach().clone() for k, p in zip(names, params)})
    return {
        "params": history,
        "grad_norms": norms,
        "m": {k: opt.state[p]["exp_avg"] for k, p in zip(names, params)},
        "v": {k: opt.state[p]["exp_avg_sq"] for k, p in zip(names, params)},
    }


if __name__ == "__main__":
    main(compute)
