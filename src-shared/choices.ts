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

/** Dataset formats (data/formats.ts); 'preference' rows are pairs of answers (DPO, ORPO). */
export const FORMAT_NAMES = ['alpaca', 'sharegpt', 'messages', 'completion', 'text', 'preference'] as const;
/** The fields a column map assigns dataset columns to. */
export const FORMAT_FIELDS = ['instruction', 'input', 'output', 'system', 'conversations', 'messages', 'prompt', 'completion', 'text', 'chosen', 'rejected'] as const;

/**
 * The projections of a Llama-family layer that can carry a LoRA adapter, in PEFT's order
 * (model/lora.ts): what "all" means, and the default.
 */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
/**
 * PEFT's names of the projections Phi-3 fuses: qkv_proj (q, k and v) and gate_up_proj (gate and
 * up). A run may name either spelling: a fused projection is adapted (as one matrix, as PEFT does)
 * when it or any of its parts is listed, and on a model with separate projections a fused name
 * stands for its parts (model/lora.ts).
 */
export const FUSED_LORA_TARGETS = ['qkv_proj', 'gate_up_proj'] as const;
/** Every projection name a run's target list accepts. */
export const LORA_TARGET_NAMES = [...LORA_TARGETS, ...FUSED_LORA_TARGETS] as const;

/**
 * The families Finch trains by config.json model_type (a multimodal `gemma3` checkpoint is read as
 * its text model), with the names users know them by. model/family.ts says how each is built.
 */
export const MODEL_FAMILY_NAMES = {
  llama: 'Llama', mistral: 'Mistral', qwen2: 'Qwen2', qwen3: 'Qwen3', gemma3_text: 'Gemma 3', phi3: 'Phi-3',
} as const;

/** The name of a model_type's family ("Gemma 3"), or the model_type itself for one Finch does not know. */
export const familyName = (modelType: string): string => (MODEL_FAMILY_NAMES as Record<string, string>)[modelType] ?? modelType;

/** What a run optimises: supervised fine-tuning, or a preference loss over pairs of answers (train/objective.ts). */
export const METHODS = ['sft', 'dpo', 'orpo'] as const;
/** Which tokens the loss trains: the completion's only (prompt labels -100), or every token. */
export const TRAIN_ON = ['completions', 'all'] as const;
/** 'auto': the model's chat template if it has one, else Finch's fallback; 'model': require it. */
export const TEMPLATE_CHOICES = ['auto', 'model', 'fallback'] as const;
/** Learning-rate schedules after the warm-up (train/schedule.ts). */
export const SCHEDULES = ['constant', 'linear', 'cosine'] as const;
/** The frozen path's dtype (train/precision.ts); 'auto' asks the adapter. */
export const COMPUTE_DTYPE_CHOICES = ['float32', 'float16', 'auto'] as const;
