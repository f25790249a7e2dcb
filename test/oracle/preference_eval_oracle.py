"""A preference evaluation computed by Hugging Face transformers + PEFT, for
test/cli/commands/eval-preference.test.ts (needs the Python venv of .ci/run): the base model from its
folder, Finch's adapter through PeftModel.from_pretrained, each side's answer log-probability from
the model's logits, and the DPO / ORPO formulas as TRL defines them (DPOTrainer's sigmoid loss with
conservative label smoothing; ORPOTrainer's odds ratio, with the SFT term over the chosen answer).

Usage: preference_eval_oracle.py IN.json OUT.json
  IN.json: {"base", "adapter" (folder or null), "reference" (DPO: base + this adapter; null: the
  base), "method": "dpo" | "orpo", "beta", "label_smoothing", "orpo_lambda", "batch" (pairs per
  batch: ORPO's SFT term is a mean over each batch's chosen tokens, and the batches' losses are
  averaged weighting each by its pairs, as TRL's evaluation loop does),
  "pairs": [{"chosen": {"ids", "scored"}, "rejected": {...}}]} with scored[t] = 1 where token t is
  an answer token (scored as predicted from t - 1).
  OUT.json: {"loss", "rewards_chosen", "rewards_rejected", "reward_margin", "reward_accuracy", "pairs"}.
"""

import json
import sys

import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModelForCausalLM


def load(base, adapter):
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return (PeftModel.from_pretrained(model, adapter) if adapter else model).eval()


def side_logps(model, side):
    """Summed log-probability of a side's answer tokens and their count (one unpadded row)."""
    ids = torch.tensor([side["ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].double()
    logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
    mask = torch.tensor(side["scored"][1:], dtype=torch.float64)
    return float((logp * mask).sum()), float(mask.sum())


def logsigmoid(x):
    return float(F.logsigmoid(torch.tensor(x, dtype=torch.float64)))


def log1mexp(x):
    x = torch.tensor(x, dtype=torch.float64)
    return float(torch.log1p(-torch.exp(x)) if x < -0.6931471805599453 else torch.log(-torch.expm1(x)))


def main(inp, out):
    job = json.load(open(inp))
    policy = load(job["base"], job["adapter"])
    pol = [(side_logps(policy, p["chosen"]), side_logps(policy, p["rejected"])) for p in job["pairs"]]
    chosen_r, rejected_r, losses = [], [], []
    if job["method"] == "dpo":
        reference = load(job["base"], job["reference"])
        ref = [(side_logps(reference, p["chosen"])[0], side_logps(reference, p["rejected"])[0]) for p in job["pairs"]]
        beta, eps = job["beta"], job["label_smoothing"]
        for ((pc, _), (pr, _)), (rc, rr) in zip(pol, ref):
            c, r = beta * (pc - rc), beta * (pr - rr)
            chosen_r.append(c)
            rejected_r.append(r)
            losses.append(-(1 - eps) * logsigmoid(c - r) - eps * logsigmoid(r - c))
        loss = sum(losses) / len(losses)
    else:
        lam, size, total = job["orpo_lambda"], job["batch"], 0.0
        for start in range(0, len(pol), size):
            batch = pol[start:start + size]
            nll = -sum(c[0] for c, _ in batch) / sum(c[1] for c, _ in batch)
            ratios = []
            for (cs, cn), (rs, rn) in batch:
                c, r = cs / cn, rs / rn
                chosen_r.append(lam * c)
                rejected_r.append(lam * r)
                ratios.append(logsigmoid((c - r) - (log1mexp(c) - log1mexp(r))))
            total += (nll - lam * sum(ratios) / len(ratios)) * len(batch)
        loss = total / len(pol)
    n = len(chosen_r)
    json.dump({
        "loss": loss, "pairs": n, "rewards_chosen": sum(chosen_r) / n, "rewards_rejected": sum(rejected_r) / n,
        "reward_margin": (sum(chosen_r) - sum(rejected_r)) / n, "reward_accuracy": sum(c > r for c, r in zip(chosen_r, rejected_r)) / n,
    }, open(out, "w"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
