"""TRL's preference losses on Finch's batches: one step's loss, rewards and LoRA gradients from
TRL 1.13's DPOTrainer and ORPOTrainer (trl.experimental.orpo) on a Hugging Face model, for
test/train/preference-oracle.test.ts (needs the Python venv of .ci/run; test/helpers/prerequisites.ts
finds it).

Usage: trl_oracle.py DIR
  DIR/manifest.json: {"base": model folder, "weights": {HF name: tensor} (replace base weights: a 4-bit
  base as Finch dequantizes it), "cases": [case, ...]}; a tensor is {"offset", "shape", "dtype"} into
  DIR/tensors.bin (little-endian). A case: {"name", "method": "dpo" | "orpo", "beta", "label_smoothing",
  "orpo_lambda", "lora": {"rank", "alpha", "rslora", "targets"}, "policy": {PEFT name: tensor},
  "reference": {PEFT name: tensor} or null (DPO's reference: base + this adapter, else the base),
  "batch": {"input_ids", "attention_mask", "labels"}: 2P rows, the P chosen rows first, labels -100
  where a token is not scored}.
  Writes DIR/out.json ({case: {"loss", "rewards_chosen", "rewards_rejected", "grads": {PEFT name:
  {"offset", "shape"}}}}) and DIR/out.bin (float32 gradients).

How each case runs TRL:
  dpo   DPOTrainer._compute_loss on {input_ids, attention_mask, completion_mask = labels != -100}.
        Reference 'base': the adapter is created from a peft_config, so TRL disables it for the
        reference. Reference adapter: a PeftModel holding it is passed, so TRL copies it to a frozen
        "ref" adapter; the trained adapter is then set to the policy's values.
        Label smoothing: TRL 1.13's "sigmoid" loss ignores it; conservative DPO,
        -(1 - e) logsig(z) - e logsig(-z), is TRL's own losses combined:
        2 (1 - e) * "sigmoid" - (1 - 2 e) * "robust" (loss_type/loss_weights).
  orpo  ORPOTrainer.get_batch_loss_metrics on {chosen,rejected}_{input_ids,attention_mask,labels},
        with the SFT term over the chosen answer's tokens (Finch's, as --train-on completions):
        TRL's ORPOTrainer takes it over the whole chosen sequence, prompt included, so the
        cross-entropy its concatenated_forward returns is replaced by the one over chosen_labels.
"""

import json
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32}


class AnswerNllORPOTrainer(ORPOTrainer):
    """TRL's ORPO with its SFT term over the chosen answer's tokens (chosen_labels != -100)."""

    def concatenated_forward(self, model, batch):
        out = super().concatenated_forward(model, batch)
        chosen_logits = out[2]  # [P, W - 1, V]: the logits that predict tokens 1..W-1
        labels = batch["chosen_labels"][:, 1:]
        labels = F.pad(labels, (0, chosen_logits.shape[1] - labels.shape[1]), value=-100)
        nll = F.cross_entropy(chosen_logits.reshape(-1, chosen_logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return (*out[:4], nll, *out[5:])


def main(folder):
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    blob = open(os.path.join(folder, "tensors.bin"), "rb").read()

    def tensor(e):
        a = np.frombuffer(blob, dtype=DTYPES[e["dtype"]], count=int(np.prod(e["shape"])), offset=e["offset"])
        return torch.from_numpy(a.copy().reshape(e["shape"]))

    tok = AutoTokenizer.from_pretrained(manifest["base"])
    dummy = Dataset.from_dict({"prompt": ["a"], "chosen": ["b"], "rejected": ["c"]})
    torch.set_num_threads(2)
    results, out_parts, offset = {}, [], 0
    work = tempfile.mkdtemp()
    for case in manifest["cases"]:
        model = AutoModelForCausalLM.from_pretrained(manifest["base"], dtype=torch.float32)
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, e in manifest["weights"].items():
                params[name].copy_(tensor(e))
        spec = case["lora"]
        lora = LoraConfig(r=spec["rank"], lora_alpha=spec["alpha"], use_rslora=spec["rslora"], target_modules=spec["targets"],
                          lora_dropout=0.0, task_type="CAUSAL_LM")
        common = dict(output_dir=work, report_to=[], bf16=False, use_cpu=True, gradient_checkpointing=False, remove_unused_columns=False)
        if case["method"] == "dpo":
            eps = case["label_smoothing"]
            losses = dict(loss_type=["sigmoid"]) if eps == 0 else dict(
                loss_type=["sigmoid", "robust"], loss_weights=[2 * (1 - eps), -(1 - 2 * eps)], label_smoothing=eps)
            args = DPOConfig(beta=case["beta"], max_length=None, **losses, **common)
            if case["reference"] is None:
                trainer = DPOTrainer(model=model, args=args, train_dataset=dummy, processing_class=tok, peft_config=lora)
            else:
                peft_model = get_peft_model(model, lora)
                set_lora(peft_model, case["reference"], tensor)
                trainer = DPOTrainer(model=peft_model, args=args, train_dataset=dummy, processing_class=tok)
        else:
            args = ORPOConfig(beta=case["orpo_lambda"], max_length=4096, **common)
            trainer = AnswerNllORPOTrainer(model=model, args=args, train_dataset=dummy, processing_class=tok, peft_config=lora)
        model = trainer.model
        set_lora(model, case["policy"], tensor)
        model.train()
        b = {k: tensor(v) for k, v in case["batch"].items()}
        if case["method"] == "dpo":
            inputs = {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"], "completion_mask": (b["labels"] != -100).long()}
            loss = trainer._compute_loss(model, inputs, return_outputs=False)
            metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        else:
            P = b["input_ids"].shape[0] // 2
            batch = {}
            for side, rows in (("chosen", slice(0, P)), ("rejected", slice(P, 2 * P))):
                batch[f"{side}_input_ids"] = b["input_ids"][rows]
                batch[f"{side}_attention_mask"] = b["attention_mask"][rows]
                batch[f"{side}_labels"] = b["labels"][rows]
            loss, metrics = trainer.get_batch_loss_metrics(model, batch, "train")
        loss.backward()
        grads = {}
        for name, p in model.named_parameters():
            if "lora_" in name and ".default." in name:
                g = p.grad.detach().float().contiguous().numpy()
                grads[name.replace(".default.", ".")] = {"offset": offset, "shape": list(g.shape)}
                out_parts.append(g.tobytes())
                offset += g.nbytes
        results[case["name"]] = {
            "loss": float(loss.detach()), "rewards_chosen": float(metrics["rewards/chosen"]),
            "rewards_rejected": float(metrics["rewards/rejected"]), "reward_accuracy": float(metrics["rewards/accuracies"]),
            "reward_margin": float(metrics["rewards/margins"]), "grads": grads,
        }
    with open(os.path.join(folder, "out.bin"), "wb") as f:
        f.write(b"".join(out_parts))
    with open(os.path.join(folder, "out.json"), "w") as f:
        json.dump(results, f)


def set_lora(model, values, tensor):
    """Sets the trained ("default") adapter's matrices from Finch's, by PEFT name."""
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, e in values.items():
            params[name.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")].copy_(tensor(e))


if __name__ == "__main__":
    main(sys.argv[1])
