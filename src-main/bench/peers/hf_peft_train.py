"""Hugging Face peer for `finch bench train --peer hf`: the LoRA step a user of transformers + PEFT
runs on the CPU. A LlamaForCausalLM of the preset's shape (random weights, float32, the model's
default attention: SDPA), get_peft_model with LoRA on all seven projections, torch.optim.AdamW over
the adapter, clip_grad_norm_ as the Trainer does, and the model's own loss (labels, shifted inside).
"compile": true wraps the PEFT model in torch.compile (its compilation falls in the warm-up steps).
"checkpointing": true turns on the model's gradient checkpointing, as TrainingArguments'
gradient_checkpointing does.

Rows: random tokens [batch, seq] with an all-ones attention mask (every slot is a real token), or,
with "batches" (a file written by train-data.ts), a real dataset's rows padded as the Trainer's
default collator for causal LM fine-tuning does (DataCollatorForSeq2Seq): each batch to its own
longest row, right padding, labels -100 and attention_mask 0 on the padding; "tokens_per_s" then
counts real (non-padding) tokens.

Prints one JSON line: tokens_per_s, step_s, peak_rss_mb, loss, compiled, versions.
Usage: python hf_peft_train.py '<json config>'
"""
import json
import resource
import sys
import time

import torch

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
torch.manual_seed(0)

import peft  # noqa: E402 (after the thread count: importing may start thread pools)
import transformers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

B, T, V = c["batch"], c["seq"], c["vocab"]
config = LlamaConfig(
    vocab_size=V, hidden_size=c["hidden"], intermediate_size=c["intermediate"], num_hidden_layers=c["layers"],
    num_attention_heads=c["heads"], num_key_value_heads=c["kv_heads"], rms_norm_eps=1e-5, rope_theta=c.get("rope_theta", 500000.0),
    max_position_embeddings=max(T, 2048), tie_word_embeddings=False, attention_bias=False, mlp_bias=False, use_cache=False,
)
model = LlamaForCausalLM(config)
if c.get("checkpointing"):
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()  # PEFT's frozen embeddings would otherwise cut the recomputed graph
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
lora = peft.LoraConfig(r=c["rank"], lora_alpha=c["alpha"], lora_dropout=0.0, target_modules=targets, bias="none", task_type="CAUSAL_LM")
model = peft.get_peft_model(model, lora)
model.train()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
forward = torch.compile(model) if c.get("compile") else model

batches = json.load(open(c["batches"]))["peer"] if c.get("batches") else None
ids = torch.randint(0, V, (B, T))
labels = torch.randint(0, V, (B, T))
mask = torch.ones(B, T, dtype=torch.long)


def collate(rows):
    """Right-pads rows to the batch's longest: input_ids (pad 0), attention_mask, labels (-100); and the real tokens."""
    t = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), t, dtype=torch.long)
    am = torch.zeros(len(rows), t, dtype=torch.long)
    lb = torch.full((len(rows), t), -100, dtype=torch.long)
    for b, r in enumerate(rows):
        n = len(r["ids"])
        ids[b, :n] = torch.tensor(r["ids"])
        am[b, :n] = 1
        lb[b, :n] = torch.tensor(r["labels"])
    return ids, am, lb, int(am.sum())


step_no = 0


def step():
    global step_no
    if batches is None:
        bi, bm, bl, real = ids, mask, labels, B * T
    else:
        bi, bm, bl, real = collate(batches[step_no % len(batches)])
        step_no += 1
    loss = forward(input_ids=bi, attention_mask=bm, labels=bl).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item(), real


t_warm = time.perf_counter()
for _ in range(c["warmup"]):
    step()
warmup_s = time.perf_counter() - t_warm
times, real_tokens = [], 0
for _ in range(c["steps"]):
    t0 = time.perf_counter()
    loss, real = step()
    times.append(time.perf_counter() - t0)
    real_tokens += real
# The median step (as Finch's side, bench/timing.ts measure); with a dataset, real tokens over the whole timed span.
step_s = sorted(times)[len(times) // 2] if len(times) % 2 else sum(sorted(times)[len(times) // 2 - 1:len(times) // 2 + 1]) / 2
tokens_per_s = B * T / step_s if batches is None else real_tokens / sum(times)
print(json.dumps({
    "tokens_per_s": tokens_per_s, "step_s": step_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss": loss,
    "warmup_s": warmup_s, "compiled": bool(c.get("compile")), "attention": model.config._attn_implementation,
    "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
}))
