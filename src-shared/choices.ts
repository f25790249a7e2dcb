// The fixed value lists that the run configuration (run-config.ts), the API's argument schemas
// (schemas.ts) and its types (api.ts) share. Plain data with no imports, so that any process, the
// sandboxed preload included, can take them. The back-end modules that act on one of these values
// keep their own list in the order they need (data/formats.ts detects formats in its own order);
// test/shared/choices.test.ts checks that each holds the same values.

/**
 * ONNX Runtime execution providers Finch can run on. The engine keeps the same list
 * (engine/runtime/session.ts PROVIDERS; the renderer cannot import the engine), and
 * services/system.ts fails to compile when the two differ.
 */
export const PROVIDER_NAMES = ['cpu', 'webgpu', 'dml', 'cuda', 'coreml'] as const;
/** A run's provider: one of the above, or 'auto' (the one provider choice decides, and says why). */
export const PROVIDER_CHOICES = ['auto', ...PROVIDER_NAMES] as const;

/** Dataset formats (data/formats.ts). */
export const FORMAT_NAMES = ['alpaca', 'sharegpt', 'messages', 'completion', 'text'] as const;
/** The fields a column map assigns dataset columns to. */
export const FORMAT_FIELDS = ['instruction', 'input', 'output', 'system', 'conversations', 'messages', 'prompt', 'completion', 'text'] as const;

/**
 * The projections of a Llama-family layer that can carry a LoRA adapter, in PEFT's order
 * (model/lora.ts): what "all" means, and the default.
 */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
/**
 * PEFT's names of the projections Phi-3 fuses: qkv_proj (q, k and v) and gate_up_proj (gate and
 * up). A run may name either spelling: a fused projection is adapted when all its parts are listed,
 * and on a model with separate projections a fused name stands for its parts (model/lora.ts).
 */
export const FUSED_LORA_TARGETS = ['qkv_proj', 'gate_up_proj'] as const;
/** Every projection name a run's target list accepts. */
export const LORA_TARGET_NAMES = [...LORA_TARGETS, ...FUSED_LORA_TARGETS] as const;

/** Which tokens the loss trains: the completion's only (prompt labels -100), or every token. */
export const TRAIN_ON = ['completions', 'all'] as const;
/** 'auto': the model's chat template if it has one, else Finch's fallback; 'model': require it. */
export const TEMPLATE_CHOICES = ['auto', 'model', 'fallback'] as const;
/** Learning-rate schedules after the warm-up (train/schedule.ts). */
export const SCHEDULES = ['constant', 'linear', 'cosine'] as const;
/** The frozen path's dtype (train/precision.ts); 'auto' asks the adapter. */
export const COMPUTE_DTYPE_CHOICES = ['float32', 'float16', 'auto'] as const;
