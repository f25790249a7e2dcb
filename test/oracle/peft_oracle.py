"""Interop with the real Hugging Face PEFT: `check` for merge.test.ts, `make` for the fixtures of
adapter.test.ts (needs the Python venv of .ci/run with torch, transformers and peft;
test/helpers/prerequisites.ts finds it).

Usage:
  peft_oracle.py check BASE_DIR FINCH_ADAPTER_DIR FINCH_MERGED_DIR OUT.json
      Loads Finch's adapter with PeftModel.from_pretrained on the base model and reports: warnings
      raised while loading (unexpected config keys, missing/unexpected tensor keys), the largest
      difference between the LoRA weights PEFT holds and the file's, PEFT's merge_and_unload()
      weights against Finch's merged checkpoint, the logits of the PEFT model against those of
      Finch's merged checkpoint loaded by transformers, and the PEFT model's logits themselves
      (with the token ids) for the test to compare with Finch's own forward of base + adapter.
  peft_oracle.py make BASE_DIR OUT_ADAPTER_DIR VARIANT
      Makes a PEFT adapter the ordinary way (LoraConfig + get_peft_model, random non-zero B,
      save_pretrained) for Finch to load, and OUT_ADAPTER_DIR/expected.json with, per tensor, its
      shape, sum and first values as PEFT holds them. VARIANT "f32": r 4, alpha 16, q/k/up_proj,
      PEFT's default float32 weights; "bf16-all-linear": r 2, alpha 4, rsLoRA, "all-linear",
      the model cast to bfloat16 before saving; "all-linear-f32": r 4, alpha 8, "all-linear" on the
      family's own projections (Phi-3's fused qkv_proj and gate_up_proj), float32, and
      OUT_ADAPTER_DIR/logits.json: the PEFT model's logits [T, V] at the ids `check` uses.
"""

import json
import sys
import warnings

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


IDS = torch.tensor([[1, 5, 9, 42, 7, 100, 3, 17]])  # the tokens whose logits are compared


def load_base(path):
    return AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()


def check(base_dir, adapter_dir, merged_dir, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(load_base(base_dir), adapter_dir).eval()
    file_tensors = load_file(f"{adapter_dir}/adapter_model.safetensors")
    state = model.state_dict()
    lora_diff = 0.0
    loaded = 0
    for name, t in file_tensors.items():
        key = name.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        lora_diff = max(lora_diff, float((state[key] - t.float()).abs().max()))
        loaded += 1
    scaling = next(m.scaling["default"] for m in model.modules() if isinstance(getattr(m, "scaling", None), dict))
    ids = IDS
    with torch.no_grad():
        peft_logits = model(ids).logits
        merged_by_peft = model.merge_and_unload().state_dict()
    finch_merged = load_base(merged_dir)
    weight_diff = 0.0
    for name, t in finch_merged.state_dict().items():
        weight_diff = max(weight_diff, float((merged_by_peft[name] - t).abs().max()))
    with torch.no_grad():
        finch_logits = finch_merged(ids).logits
    report = {
        "warnings": [str(w.message) for w in caught],
        "scaling": float(scaling),
        "lora_tensors_loaded": loaded,
        "lora_max_diff": lora_diff,
        "merged_weight_max_diff": weight_diff,
        "logits_max_diff": float((peft_logits - finch_logits).abs().max()),
        "logits_scale": float(peft_logits.abs().max()),
        "ids": ids[0].tolist(),
        "peft_logits": peft_logits[0].flatten().tolist(),
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


def make(base_dir, out_dir, variant):
    torch.manual_seed(0)
    if variant == "f32":
        cfg = LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "k_proj", "up_proj"],
                         task_type="CAUSAL_LM", init_lora_weights=False)
    elif variant == "all-linear-f32":
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False)
    elif variant == "bf16-all-linear":
        cfg = LoraConfig(r=2, lora_alpha=4, use_rslora=True, target_modules="all-linear", task_type="CAUSAL_LM",
                         init_lora_weights=False)
    else:
        sys.exit(f"unknown variant {variant}")
    model = get_peft_model(load_base(base_dir), cfg)
    if variant.startswith("bf16"):
        model = model.to(torch.bfloat16)
    model.save_pretrained(out_dir)
    if variant == "all-linear-f32":
        with torch.no_grad():
            logits = model.eval()(IDS).logits[0]
        with open(f"{out_dir}/logits.json", "w") as f:
            json.dump({"ids": IDS[0].tolist(), "logits": logits.flatten().tolist()}, f)
    expected = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            v = p.detach().double()
            expected[name.replace(".default", "")] = {"shape": list(v.shape), "sum": float(v.sum()), "first": v.flatten()[:4].tolist()}
    with open(f"{out_dir}/expected.json", "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*sys.argv[2:6])
    elif sys.argv[1] == "make":
        make(*sys.argv[2:5])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
