"""transformers' own implementation of a model family as the oracle of Finch's graphs (the venv's
Python: transformers 5.17, peft 0.21, torch 2.13; test/helpers/prerequisites.ts finds it).

Usage:
  hf_family.py make SPECS.json
      Writes tiny random checkpoints the way transformers does, one per entry {"out", "model_type",
      "config", "seed"}: the family's config class with "config", the model from it (seeded, eager
      attention), every norm weight perturbed by N(0, 0.1) so that (1 + w) and the q/k norms matter,
      save_pretrained (safetensors) and a generation_config.json.
  hf_family.py run DIR [DIR...]
      Reads DIR/manifest.json and DIR/tensors.bin (the exchange of test/helpers/hf-oracle.ts):
      "model" (the checkpoint folder), "overrides" (weights by HF name replacing the checkpoint's:
      the dequantized 4-bit weights Finch computes with; an lm_head of a tied model unties it),
      "lora" ({r, alpha, rslora, targets} and the LoRA matrices by PEFT name, through PEFT's
      LoraConfig + set_peft_model_state_dict), "train" (input_ids, attention_mask, position_ids
      [B, T] and targets [B*T]) and "decode" (rows of prompt ids and teacher-forced next ids).
      Writes DIR/out.bin + DIR/out.json: "logits" [B*T, V] of the forward, "loss" (mean
      cross-entropy over targets != -100), "grad:<PEFT name>" of every LoRA matrix, and per decode
      row "decode.<b>" [steps + 1, V]: the logits of the prefill's last position and of each cached
      decoding step (model(..., past_key_values=cache)).
"""

import json
import sys
import warnings

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(True)


def make(spec, out):
    config = AutoConfig.for_model(spec["model_type"], **spec["config"])
    torch.manual_seed(spec.get("seed", 0))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    gen = torch.Generator().manual_seed(spec.get("seed", 0) + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id).save_pretrained(out)


def read_exchange(d):
    man = json.load(open(f"{d}/manifest.json"))
    raw = open(f"{d}/tensors.bin", "rb").read()
    dtypes = {"float32": (torch.float32, 4), "int64": (torch.int64, 8), "int32": (torch.int32, 4)}

    def load(name):
        e = man["tensors"][name]
        dt, size = dtypes[e["dtype"]]
        n = 1
        for s in e["shape"]:
            n *= s
        return torch.frombuffer(bytearray(raw[e["offset"] : e["offset"] + n * size]), dtype=dt).reshape(e["shape"]).clone()

    return man, load


def run(d):
    man, load = read_exchange(d)
    model = AutoModelForCausalLM.from_pretrained(man["model"], dtype=torch.float32, attn_implementation="eager")
    overrides = {k[len("override:"):]: load(k) for k in man["tensors"] if k.startswith("override:")}
    with torch.no_grad():
        if "lm_head.weight" in overrides and model.config.tie_word_embeddings:
            model.lm_head.weight = torch.nn.Parameter(overrides.pop("lm_head.weight"))  # a 4-bit head beside a float embedding
        state = model.state_dict()
        for name, value in overrides.items():
            if name not in state:
                raise KeyError(f"override {name} is not a weight of the model")
            state[name].copy_(value)
    lora = man.get("lora")
    if lora:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

        config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], use_rslora=lora["rslora"], target_modules=lora["targets"], lora_dropout=0.0)
        model = get_peft_model(model, config)
        weights = {k: load(k) for k in man["tensors"] if k.startswith("base_model.")}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = set_peft_model_state_dict(model, weights)
        if result.unexpected_keys:
            raise KeyError(f"PEFT did not take {result.unexpected_keys[:4]}")
        missing = [k for k in result.missing_keys if "lora_" in k]
        if missing:
            raise KeyError(f"PEFT has LoRA weights the exchange lacks: {missing[:4]}")
        params = {name: p for name, p in model.named_parameters() if "lora_" in name}
    model.eval()

    outputs = {}
    if "train" in man:
        ids, mask, pos, targets = (load(f"train.{k}") for k in ("input_ids", "attention_mask", "position_ids", "targets"))
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits  # [B, T, V]
        flat = logits.reshape(-1, logits.shape[-1])
        loss = torch.nn.functional.cross_entropy(flat, targets.long(), ignore_index=-100)
        outputs["logits"] = flat.detach()
        outputs["loss"] = loss.detach().reshape(1)
        if lora:
            loss.backward()
            for name, p in params.items():
                outputs["grad:" + name.replace(".default.weight", ".weight")] = p.grad.detach().clone()
    with torch.no_grad():
        for b, row in enumerate(man.get("decode", [])):
            out = model(input_ids=torch.tensor([row["prompt"]]), use_cache=True)
            steps = [out.logits[0, -1]]
            cache = out.past_key_values
            for t, token in enumerate(row["next"]):
                position = torch.tensor([[len(row["prompt"]) + t]])
                out = model(input_ids=torch.tensor([[token]]), position_ids=position, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                steps.append(out.logits[0, -1])
            outputs[f"decode.{b}"] = torch.stack(steps)

    index, parts, offset = {}, [], 0
    for name, t in outputs.items():
        data = t.contiguous().to(torch.float32).numpy().tobytes()
        index[name] = {"offset": offset, "shape": list(t.shape)}
        parts.append(data)
        offset += len(data)
    open(f"{d}/out.bin", "wb").write(b"".join(parts))
    json.dump(index, open(f"{d}/out.json", "w"))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        for spec in json.load(open(sys.argv[2])):
            make(spec, spec["out"])
    elif sys.argv[1] == "run":
        for d in sys.argv[2:]:
            run(d)
    else:
        raise SystemExit(__doc__)
